"""Build the web map: entities, strategy layers, boundaries, water and legend, sealed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure

from geo_app.aggregate import Points, ViewPlan
from geo_app.assets import VENDOR_URL, asset_urls
from geo_app.i18n import t
from geo_app.maps.elements import (
    _CELL_CSS,
    _CSS,
    _add_shape,
    _Bind,
    _Cells,
    _CompactMarkers,
    _Legend,
    _ViewExtras,
)
from geo_app.maps.legend import _safe_color, legend_html, legend_kinds_html
from geo_app.maps.payload import (
    MapInputs,
    cells_payload,
    display_inputs,
    layer_name_map,
    marker_payload,
    simplify_for_display,
    with_shared_counts,
)
from geo_app.maps.popups import popup_html, tooltip_html
from geo_app.maps.style import (
    _BOUNDARY_COLOR,
    _CITY_COLOR,
    _ICON_PX,
    _WATER_COLOR,
    BASEMAPS,
    DEFAULT_BASEMAP,
    basemap_label,
    is_exact,
    marker_svg,
)
from geo_app.maps.template import escape_html, seal
from geo_app.vocab import BOARDS, KINDS, label


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
    levels = (dict(zip(bounds["adcode"].astype(str), bounds["level"], strict=True))
              if "level" in bounds else {})
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
    return {str(c) for c in boards.loc[status == "schematic", "county_adcode"]
            if isinstance(c, str) and c}


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
        text = (t("map_board_of_county", lang, boards="、".join(mapped)) if mapped
                else t("map_no_board", lang))
        tip = (f"<b>{escape_html(row.get(name_col) or row.get('name_zh'))}</b>"
               + ("" if city else f"<br>{escape_html(text)}"))
        style = {"color": _CITY_COLOR if city else _BOUNDARY_COLOR, "weight": 2.5 if city else 1.2,
                 "fill": not city, "fillColor": "#ffffff", "fillOpacity": 0.0, "opacity": 0.8}
        _add_shape(group, row.geometry, style, tip)
    for _, row in gdf[gdf["adcode"].astype(str).isin(schematic)].iterrows():
        if row.geometry is None or row.geometry.is_empty:
            continue
        tip = (f"<b>{escape_html(row.get(name_col) or row.get('name_zh'))}</b>"
               f"<br>{escape_html(t('board_schematic', lang))}")
        style = {"color": _BOUNDARY_COLOR, "weight": 1.8, "dashArray": "6 4", "fill": True,
                 "fillColor": "#ffffff", "fillOpacity": 0.0, "opacity": 0.9}
        _add_shape(group, row.geometry, style, tip)
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
        tip = (f"<b>{escape_html(row.get(name_col) or row.get('name_zh'))}</b>"
               f"<br>{escape_html(kind)}")
        _add_shape(group, row.geometry, style, tip)
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
        _add_shape(group, row.geometry, style, tip)
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
        icon = folium.DivIcon(html=marker_svg(row.get("kind"), exact),
                              icon_size=(_ICON_PX, _ICON_PX),
                              icon_anchor=(half, half),
                              class_name=f"sim-marker sim-kind-{kind} "
                                         f"{'sim-exact' if exact else 'sim-approx'}")
        marker = folium.Marker(location=(geom.y, geom.x), icon=icon)
        marker.add_child(_Bind(popup=popup_html(row, lang, layer_names),
                               tooltip=tooltip_html(row, lang)))
        cluster.add_child(marker)
    cluster.add_to(m)
    return cluster



def _bounds(points: gpd.GeoDataFrame, extra: Iterable[Any]) -> list[list[float]] | None:
    geoms = [g for g in list(points.geometry.values) + list(extra)
             if g is not None and not g.is_empty]
    if not geoms:
        return None
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geoms, dtype=object))
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


#: How :func:`build_map` draws the entities (see there).
MAP_MODES = ("markers", "compact", "view")
#: Overlays are simplified to this tolerance (degrees, about 20 m) in the large-registry


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
                         subdomains=base.subdomains, max_zoom=base.max_zoom,
                         control=False).add_to(m)
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


def view_layer(plan: ViewPlan, *, lang: str = "zh", entities: gpd.GeoDataFrame | None = None,
               layer_names: Mapping[str, str] | None = None,
               kind_counts: Mapping[str, int] | None = None,
               fit: list[list[float]] | None = None) -> folium.FeatureGroup:
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
    kind_counts, fit
        For a base map that does not change with the filter (``"view"`` mode built
        without points): the filter's entities per kind, which the layer writes into the
        legend, and ``[[south, west], [north, east]]`` to fit the map to (the first
        drawing of a filter; None keeps the view).
    """
    group = folium.FeatureGroup(name="sim-view", control=False)
    if kind_counts is not None or fit is not None:
        _ViewExtras(legend_kinds_html(kind_counts or {}, lang), fit,
                    {"padding": [FIT_PADDING_PX, FIT_PADDING_PX],
                     "maxZoom": FIT_MAX_ZOOM}).add_to(group)
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


def layer_host() -> folium.Map:
    """A bare map to render a :func:`view_layer` on, without its base map.

    A view's layer script names its map only through the map's variable, which
    ``st_folium`` replaces with the component's own name, so the layer's script is the
    same on any map: the page renders its base map once (per filter) and each view's
    layer on one of these.
    """
    return folium.Map(location=(31.3, 120.62), zoom_start=9, tiles=None)


def asset_links(m: folium.Map) -> tuple[list[str], list[str]]:
    """The style sheets and scripts ``m``'s elements load (each once, in tree order), as
    ``st_folium`` hands them to its component."""
    css: list[str] = []
    js: list[str] = []
    todo: list[Any] = [m]
    while todo:
        element = todo.pop()
        css += [href for _, href in getattr(element, "default_css", [])]
        js += [src for _, src in getattr(element, "default_js", [])]
        todo += reversed(list(getattr(element, "_children", {}).values()))
    return list(dict.fromkeys(css)), list(dict.fromkeys(js))


def render_html(m: folium.Map) -> str:
    """The map as a standalone HTML page (what the tests inspect)."""
    return m.get_root().render()
