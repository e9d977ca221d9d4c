"""The only package that imports folium (and branca): build the web map, offline and with every
value escaped.

Every value shown in a popup, tooltip, layer control or the legend is escaped and reaches the
page as a JSON string, and every element of every map is sealed, so that no byte of data is
ever template source (:mod:`geo_app.maps.template`, "the template boundary"). Leaflet and
Leaflet.markercluster are loaded from the app's own ``/app/static/vendor/`` (see
:mod:`geo_app.assets`); the map needs no jQuery, Bootstrap or icon fonts because it draws its
own SVG markers.

Inside the app every coordinate is WGS-84. Only when the AMap (高德) basemap, which is
GCJ-02, is chosen, every drawn coordinate is shifted WGS-84 → GCJ-02 so the overlays
sit on the tiles (:func:`to_display_datum`); the data themselves never change.

The modules, in the order a map is made (callers import every public name from here):

``template``
    The template boundary: :func:`escape_html`, :func:`script_json`, :func:`seal`.
``style``
    Basemaps (:data:`BASEMAPS`), the marker of each kind (:data:`KIND_STYLES`,
    :func:`marker_svg`), overlay colours.
``popups``
    The popup and tooltip text of an entity (:func:`popup_html`, :func:`tooltip_html`).
``elements``
    The Leaflet element classes (popup binding, legend control, compact markers, cells)
    and the page's CSS.
``legend``
    The web map's legend (:func:`legend_html`).
``payload``
    :class:`MapInputs` in the display datum (:func:`display_inputs`) and the compact
    payloads of the large-registry modes (:func:`marker_payload`, :func:`cells_payload`).
``webmap``
    :func:`build_map`, :func:`view_layer`, :func:`map_bounds`, :func:`render_html`,
    :func:`layer_host`, :func:`asset_links`.
``choropleth``
    The 板块 choropleth (:func:`build_choropleth`) and its classes.
"""

from __future__ import annotations

from geo_app.maps.choropleth import (
    CHOROPLETH_COLUMNS,
    CHOROPLETH_PALETTE,
    build_choropleth,
    choropleth_legend_html,
    choropleth_tooltip,
    class_breaks,
    class_colors,
    value_class,
)
from geo_app.maps.legend import legend_html, legend_kinds_html
from geo_app.maps.payload import (
    DISPLAY_TOLERANCE,
    MapInputs,
    cells_payload,
    display_inputs,
    layer_name_map,
    marker_payload,
    simplify_for_display,
    to_display_datum,
    with_entities,
    with_shared_counts,
)
from geo_app.maps.popups import (
    SHARED_COLUMN,
    linkify,
    popup_cells,
    popup_html,
    popup_rows,
    stand_in_place,
    tooltip_html,
)
from geo_app.maps.style import (
    BASEMAPS,
    DEFAULT_BASEMAP,
    KIND_STYLES,
    Basemap,
    KindStyle,
    basemap_label,
    is_exact,
    kind_style,
    marker_svg,
)
from geo_app.maps.template import escape_html, script_json, seal
from geo_app.maps.webmap import (
    FIT_MAX_ZOOM,
    FIT_PADDING_PX,
    MAP_MODES,
    asset_links,
    build_map,
    layer_host,
    map_bounds,
    render_html,
    view_layer,
)

__all__ = [
    "BASEMAPS",
    "CHOROPLETH_COLUMNS",
    "CHOROPLETH_PALETTE",
    "DEFAULT_BASEMAP",
    "DISPLAY_TOLERANCE",
    "FIT_MAX_ZOOM",
    "FIT_PADDING_PX",
    "KIND_STYLES",
    "MAP_MODES",
    "SHARED_COLUMN",
    "Basemap",
    "KindStyle",
    "MapInputs",
    "asset_links",
    "basemap_label",
    "build_choropleth",
    "build_map",
    "cells_payload",
    "choropleth_legend_html",
    "choropleth_tooltip",
    "class_breaks",
    "class_colors",
    "display_inputs",
    "escape_html",
    "is_exact",
    "kind_style",
    "layer_host",
    "layer_name_map",
    "legend_html",
    "legend_kinds_html",
    "linkify",
    "map_bounds",
    "marker_payload",
    "marker_svg",
    "popup_cells",
    "popup_html",
    "popup_rows",
    "render_html",
    "script_json",
    "seal",
    "simplify_for_display",
    "stand_in_place",
    "to_display_datum",
    "tooltip_html",
    "value_class",
    "view_layer",
    "with_entities",
    "with_shared_counts",
]
