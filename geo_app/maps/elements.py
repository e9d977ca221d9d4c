"""The Leaflet element classes the maps add (folium ``MacroElement`` and ``Layer``
subclasses with constant templates; every value reaches them escaped) and the page's CSS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import folium
import shapely
from branca.element import MacroElement
from jinja2 import Template

from geo_app.maps.style import _CLUSTER_OPTIONS
from geo_app.maps.template import script_json

# ----------------------------------------------------------------------------- folium elements


class _Bind(MacroElement):
    """Bind a popup and/or tooltip to the parent layer; the HTML travels as a JSON string."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        {%- if this.popup %}
        {{ this._parent.get_name() }}.bindPopup({{ this.popup|tojson }},
            {"maxWidth": 380, "maxHeight": 320});
        {%- endif %}
        {%- if this.tooltip %}
        {{ this._parent.get_name() }}.bindTooltip({{ this.tooltip|tojson }},
            {"sticky": {{ this.sticky|tojson }}});
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


def _add_shape(group: folium.FeatureGroup, geom: Any, style: Mapping[str, Any],
               tooltip: str | None) -> None:
    """Add one outline or area (a shapely geometry) to ``group`` in a fixed ``style``,
    with a sticky ``tooltip`` (escaped HTML) when one is given."""
    feature = {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(geom)}
    layer = folium.GeoJson(feature, style_function=lambda _f, s=dict(style): s)
    if tooltip:
        layer.add_child(_Bind(tooltip=tooltip, sticky=True))
    group.add_child(layer)


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
                return L.divIcon({html: i[0], className: i[1], iconSize: [22, 22],
                                  iconAnchor: [11, 11]});
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
                m.bindTooltip('<b>' + (r[6] ? r[4] : r[3]) + '</b><br>' + S[r[7]],
                              {"sticky": false});
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
                return n < 10000 ? String(n)
                    : n < 1e6 ? Math.round(n / 1000) + 'k' : (n / 1e6).toFixed(1) + 'M';
            }
            function zoomTo(map, r) {
                var b = L.latLngBounds([r[3], r[4]], [r[5], r[6]]);
                var z = Math.max(map.getBoundsZoom(b, false, L.point(40, 40)), map.getZoom() + 1);
                map.setView(b.getCenter(), Math.min(z, map.getMaxZoom()));
            }
            P[0].forEach(function (r) {
                var n = r[2], s = n < 10 ? 0 : n < 100 ? 1 : n < 1000 ? 2 : n < 10000 ? 3 : 4,
                    d = 26 + 6 * s;
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


class _ViewExtras(MacroElement):
    """What a large filter's layer changes on its (filter-independent) base map: the
    legend's kinds with their counts (``kinds``, escaped HTML, as a JSON string) and, on
    the first drawing of a filter, the extent the map fits (``fit``, or None).

    It also makes the map report a move as soon as it ends: inside ``st_folium``'s frame
    (``window.__GLOBAL_DATA__``, the component's state) and only when the map returns
    exactly its bounds and zoom, with the value and the message streamlit-folium's own
    (debounced) report would send."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        (function (map) {
            var kinds = {{ this.kinds|tojson }}, fit = {{ this.fit|tojson }};
            var details = map.getContainer().querySelector(".sim-legend details");
            if (details) {
                var box = details.querySelector(".sim-kinds");
                if (!box) {
                    box = document.createElement("div");
                    box.className = "sim-kinds";
                    details.insertBefore(box, details.querySelector("summary").nextSibling);
                }
                box.innerHTML = kinds;
            }
            if (window.__simReporting !== map && window.__GLOBAL_DATA__) {
                // streamlit-folium reports a move 250 ms after it ended (debounced): report
                // it at once, as that report would (same value, and marked as sent, so the
                // debounced one finds nothing new), and the view's layer comes sooner
                window.__simReporting = map;
                map.on("moveend", function () {
                    var g = window.__GLOBAL_DATA__, r = g && g.returned_objects;
                    if (window.__simReporting !== map || !r || r.length !== 2
                            || r.indexOf("bounds") < 0 || r.indexOf("zoom") < 0) {
                        return;
                    }
                    var value = {bounds: map.getBounds(), zoom: map.getZoom()};
                    if (JSON.stringify(g.previous_data) === JSON.stringify(value)) {
                        return;
                    }
                    g.previous_data = value;
                    window.parent.postMessage({isStreamlitMessage: true,
                        type: "streamlit:setComponentValue", value: value,
                        dataType: "json"}, "*");
                });
            }
            if (fit) {
                map.fitBounds(fit, {{ this.fit_options|tojson }});
            }
        })({{ this.map_name() }});
        {% endmacro %}
    """)

    def __init__(self, kinds: str, fit: list[list[float]] | None,
                 fit_options: dict[str, Any]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # branca has no hints
        self._name = "ViewExtras"
        self.kinds = kinds
        self.fit = fit
        self.fit_options = fit_options

    def map_name(self) -> str:
        """The JavaScript name of the map."""
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
