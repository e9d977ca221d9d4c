"""The 板块 choropleth: each polygon coloured by its value's quantile class, sealed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import Element, Figure

from geo_app.assets import VENDOR_URL, asset_urls
from geo_app.i18n import t
from geo_app.maps.elements import _CSS, _add_shape, _Legend
from geo_app.maps.legend import _swatch
from geo_app.maps.payload import simplify_for_display, to_display_datum
from geo_app.maps.style import _BOUNDARY_COLOR, _WATER_COLOR
from geo_app.maps.template import escape_html, seal

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
        swatch = _swatch(_NO_DATA_FILL, "#888888", dashed=True, fill_opacity=0.6)
        parts.append(f'<div class="row">{swatch}{escape_html(t("chl_no_data", lang))}</div>')
    if unpainted:
        names = ("、" if lang == "zh" else ", ").join(unpainted)
        parts.append(f'<div class="note">'
                     f'{escape_html(t("chl_unpainted", lang, boards=names))}</div>')
    if schematic:
        names = ("、" if lang == "zh" else ", ").join(schematic)
        parts.append(f'<div class="note">'
                     f'{escape_html(t("chl_schematic", lang, boards=names))}</div>')
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
            style = {"color": _WATER_COLOR, "weight": 2 if river else 0.6,
                     "fillColor": _WATER_COLOR,
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
