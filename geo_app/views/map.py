"""The map page: filtered entities, strategy layers, boundaries and water on a Folium map.

How much the page sends depends on how many located entities the filter holds (the
thresholds live in :mod:`geo_app.aggregate`, which explains the approach):

* up to ``CLIENT_LIMIT``: every entity as a folium marker, clustered in the browser;
  pans and zooms never rerun the script (``returned_objects=[]``);
* up to ``MARKER_LIMIT``: every entity once, in the compact marker format; still no reruns;
* above: the page carries the overlays only, and the entities of the current view come
  as ``st_folium``'s ``feature_group_to_add`` - count bubbles per grid cell, or the
  individual markers once the view holds at most ``MARKER_LIMIT``. The map returns its
  bounds and zoom (``returned_objects=["bounds", "zoom"]``), so a pan, a zoom or a click
  on a bubble (which zooms into it) reruns the script, which sends the layer for the new
  view. The base map is the same for every such filter and is rendered once
  (:class:`BaseMap`): a pan, a zoom or a filter change hands the component the same
  strings with a new layer (which also brings the filter's kinds for the legend and, on
  its first drawing, the extent to fit), so the browser keeps its map and swaps the layer.

:func:`plan_map` builds the map without drawing anything, so the benchmarks
(``benchmarks/bench_map.py``) time exactly what the page sends.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import geopandas as gpd
import pandas as pd
import streamlit as st
import streamlit_folium

from geo_app import aggregate, assets, maps, store
from geo_app.errors import GeoAppError
from geo_app.filters import EntityFilter
from geo_app.i18n import t
from geo_app.views.common import (
    WIDGETS_SHOWN_KEY,
    data_version,
    db_path,
    entity_table,
    filter_widgets,
    keep_filter,
    keep_language,
    language_widget,
    layer_choices,
    layers_table,
    seed_filter,
    seed_language,
    show_error,
    url_choice,
    write_choice_to_url,
)

if TYPE_CHECKING:  # only geo_app.maps imports folium; here it is just a type
    import folium

MAP_HEIGHT = 700
#: The map fills the main area: the component's iframe takes most of the viewport's height
#: (the pixel height above is only its starting size), and the map inside follows it.
#: A constant: no data value ever enters this style sheet.
_FILL_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding: 2.5rem 1.5rem 2rem 1.5rem; max-width: none; }
@media (max-width: 640px) {
  [data-testid="stMainBlockContainer"] { padding-left: 0.5rem; padding-right: 0.5rem; }
}
iframe[title="streamlit_folium.st_folium"] { height: max(380px, calc(100vh - 220px)) !important; }
.sim-np { max-height: 560px; overflow: auto; }
.sim-np table { font-size: 0.85rem; width: 100%; }
.sim-np th { position: sticky; top: 0; background: var(--background-color, #fff); }
</style>"""
#: Map width the first drawing of a large filter assumes (the browser then reports its own).
MAP_WIDTH_GUESS = 700
_BASEMAP_WIDGET = "basemap_select"
_MAP_KEY = "main_map"
#: Session keys: the signature of the map on the page, and the last view it reported.
MAP_SIG_KEY = "_map_sig"
VIEW_STATE_KEY = "_map_view"
#: Seconds after a session's first map page reached the browser when the page is run again
#: for the sidebar's widgets, unless the map reported its view before (see :func:`render`).
WIDGETS_DELAY_S = 0.75
_WAKE_KEY = "_map_widgets_wake"
_URL_BAD_KEY = "_map_url_bad"
_WORLD = (-180.0, -90.0, 180.0, 90.0)


@dataclass(frozen=True)
class _Static:
    """What the map draws whatever the filter (read once per build of the database: an
    import changes the entities only, so it keeps these)."""

    layers: gpd.GeoDataFrame
    boundaries: gpd.GeoDataFrame
    water: gpd.GeoDataFrame
    boards: pd.DataFrame


@st.cache_data(show_spinner=False, max_entries=8)
def build_stamp(path: str, version: str) -> str:
    """What identifies the build the file holds (its ``meta``: source hash, build time,
    schema), once per database version. Imports and removals keep it; a rebuild changes it.
    The overlays are cached under it, so the first run after an import does not read them."""
    return repr(sorted(store.read_meta(Path(path)).items()))


@st.cache_resource(show_spinner=False, max_entries=4)
def _static(path: str, build: str) -> _Static:
    """The overlays of a build (shared, not copied: callers never mutate the frames)."""
    db = Path(path)
    return _Static(layers=layers_table(db),  # the sidebar's read of the same table
                   boundaries=store.read_geo_table(db, "boundaries"),
                   water=store.read_geo_table(db, "water"),
                   boards=store.read_table(db, "boards"))


@st.cache_data(show_spinner=False, max_entries=8)
def _total(path: str, version: str) -> int:
    return store.count_entities(Path(path))


@st.cache_resource(show_spinner=False, max_entries=2)
def _point_index(path: str, version: str) -> aggregate.PointIndex:
    """Every entity's point, once per database version (~27 bytes an entity, shared)."""
    read, points, no_point = store.point_index(Path(path), unlocated=aggregate.NO_POINT_COLUMNS)
    return aggregate.PointIndex.from_tables(repr(read), points, no_point)


@st.cache_resource(show_spinner=False, max_entries=2)
def _prepare_search(path: str, version: str) -> threading.Thread:
    """Make the reader's copy of the searched names (:func:`geo_app.store.prepare_search`,
    a head start that leaves any failure to the first search) in a thread, once per
    database version, from the run that draws the search box: the first search would
    otherwise wait for it (~0.3 s at 1M entities).

    Not a daemon: a process that exits meanwhile (the server stopped) waits for it (at most
    ~0.65 s at 1M) instead of stopping it inside DuckDB, which aborted the process
    ("terminate called without an active exception", exit status 134)."""
    thread = threading.Thread(target=store.prepare_search, args=(Path(path),), daemon=False,
                              name="prepare-search")
    thread.start()
    return thread


def load_summary(path: str, version: str, flt: EntityFilter) -> aggregate.PointSummary:
    """Coordinates, kind and precision of every match (~18 bytes each), not the rows.

    Taken from the version's :func:`_point_index` by the row ids the filter matches (at
    1M entities ~30–80 ms, where streaming the matches' points took 200–400 ms); streamed
    when the database changed between reading the index and the match.
    """
    index = _point_index(path, version)
    if flt.is_empty():
        return index.summary()
    read, rowids = store.match_rowids(Path(path), flt)
    if repr(read) == index.version:
        return index.summary(rowids)
    return aggregate.points_from_batches(store.iter_point_batches(
        Path(path), flt, unlocated=aggregate.NO_POINT_COLUMNS, batch_size=262_144))


def load_located(path: str, version: str, flt: EntityFilter) -> gpd.GeoDataFrame:
    """Every located entity of the filter, by id (only used up to ``MARKER_LIMIT`` of them)."""
    rows, _ = store.query_entities_page(Path(path), flt, bbox=_WORLD)
    return rows.sort_values("id", kind="stable").reset_index(drop=True)


def load_window_rows(path: str, version: str, flt: EntityFilter,
                     bbox: tuple[float, float, float, float],
                     limit: int | None) -> gpd.GeoDataFrame:
    """The located entities of the filter inside ``bbox`` (WGS-84), at most ``limit``."""
    rows, _ = store.query_entities_page(Path(path), flt, bbox=bbox, limit=limit)
    return rows


class Loaders(NamedTuple):
    """Where :func:`plan_map` reads from (cached in the app, direct in the benchmarks)."""

    summary: Callable[[str, str, EntityFilter], aggregate.PointSummary]
    located: Callable[[str, str, EntityFilter], gpd.GeoDataFrame]
    window_rows: Callable[[str, str, EntityFilter, tuple[float, float, float, float], int | None],
                          gpd.GeoDataFrame]


#: Uncached reads (benchmarks, tests).
DIRECT = Loaders(load_summary, load_located, load_window_rows)
#: Reads cached per database version and filter (the page). A filter's summary is ~18 MB
#: at 1M entities, hence the small number of entries; it is shared, not copied (a copy
#: costs an unpickling of those 18 MB on every run, pans included): nothing mutates it.
CACHED = Loaders(
    st.cache_resource(show_spinner=False, max_entries=8)(load_summary),
    st.cache_data(show_spinner=False, max_entries=16)(load_located),
    st.cache_data(show_spinner=False, max_entries=32)(load_window_rows),
)


@st.cache_resource(show_spinner=False, max_entries=8)
def _display_overlays(path: str, build: str, datum: str) -> maps.MapInputs:
    """The overlays prepared for a basemap's datum, once per build (:func:`build_stamp`)
    and datum (shifting every vertex to GCJ-02 for AMap is not redone on each run, nor
    after an import). Shared, not copied: callers replace fields, never mutate the frames."""
    static = _static(path, build)
    empty = store.entities_to_gdf(pd.DataFrame({c: pd.Series(dtype=object) for c in
                                                (*store.ENTITY_COLUMNS, "layers")}))
    return maps.display_inputs(maps.MapInputs(
        entities=empty, layers=static.layers, boundaries=static.boundaries, water=static.water,
        boards=static.boards), datum)


@st.cache_resource(show_spinner=False, max_entries=4)
def _display_points(path: str, version: str, flt: EntityFilter, datum: str) -> aggregate.Points:
    """A filter's points in a basemap's datum, once per database version (not per pan)."""
    return CACHED.summary(path, version, flt).points.in_datum(datum)


@st.cache_resource(show_spinner=False)
def _vendor_ready() -> str:
    # copies Leaflet & co. into static/vendor once per server process
    return str(assets.ensure_assets())


def _asset_base() -> str:
    return assets.vendor_url(str(st.get_option("server.baseUrlPath") or ""))


def seed_basemap() -> str:
    """The basemap of this run (``?basemap=``, omitted from the URL for the default), put
    into its widget's state before :func:`basemap_widget` draws it."""
    return url_choice("basemap", _BASEMAP_WIDGET, list(maps.BASEMAPS), maps.DEFAULT_BASEMAP)


def basemap_widget(lang: str) -> str:
    """Draw the basemap choice seeded by :func:`seed_basemap`; write it back to the URL."""
    choice = st.sidebar.selectbox(t("map_basemap", lang), list(maps.BASEMAPS),
                                  format_func=lambda v: maps.basemap_label(v, lang),
                                  key=_BASEMAP_WIDGET)
    keep_basemap(choice)
    return choice


def keep_basemap(choice: str) -> None:
    """What :func:`basemap_widget` does besides drawing: keep ``choice`` and write it to
    the URL."""
    write_choice_to_url("basemap", _BASEMAP_WIDGET, choice, maps.DEFAULT_BASEMAP)


@dataclass(frozen=True)
class MapPage:
    """What one run of the page draws (everything :func:`plan_map` needs)."""

    db: str
    version: str
    flt: EntityFilter
    lang: str
    basemap: str
    summary: aggregate.PointSummary
    inputs: maps.MapInputs
    layer_names: dict[str, str]
    asset_base: str = assets.VENDOR_URL
    build: str = ""

    def signature(self) -> str:
        """Changes with the filter's data: a view reported under another signature (another
        filter, another version of the file) is not applied to this one."""
        return repr((self.db, self.version, self.flt, self.lang, self.basemap))

    def base_signature(self) -> str:
        """Changes whenever a large filter's base map changes (and the browser rebuilds it):
        not with the filter, nor with an import (:func:`build_stamp`)."""
        return repr((self.db, self.build, self.lang, self.basemap, self.asset_base))

    def whole_signature(self) -> str:
        """Changes whenever a small filter's whole map changes (:func:`_whole_map`): with
        the filter's data, the language, the basemap and where the map's scripts are served."""
        return repr((self.signature(), self.asset_base))


@dataclass(frozen=True)
class MapPlan:
    """A map ready for ``st_folium``.

    Attributes
    ----------
    fmap
        The map page.
    layer
        The entities of the current view (``feature_group_to_add``), or None when the
        page carries them itself.
    returned_objects
        What the map reports back (each report reruns the script).
    notes
        Lines for the caption under the map.
    mode
        ``"markers"`` or ``"compact"`` (every entity on the page), ``"cells"`` or
        ``"view markers"`` (the current view's layer).
    """

    fmap: folium.Map
    layer: folium.FeatureGroup | None
    returned_objects: list[str]
    notes: list[str]
    mode: str


def plan_map(page: MapPage, view: aggregate.View | None = None, *,
             loaders: Loaders = CACHED) -> MapPlan:
    """Build the map in the mode its size calls for (no Streamlit element is drawn here).

    ``view`` is the view the browser last reported (large filters only); None draws the
    view the map will fit.
    """
    n = len(page.summary.points)
    if n <= aggregate.MARKER_LIMIT:
        mode = "markers" if n <= aggregate.CLIENT_LIMIT else "compact"
        inputs = maps.with_entities(page.inputs, loaders.located(page.db, page.version, page.flt))
        fmap = maps.build_map(inputs, lang=page.lang, basemap=page.basemap, mode=mode,
                              asset_base=page.asset_base, height=MAP_HEIGHT)
        # returned_objects=[]: pans, zooms and clicks stay in the browser (no rerun)
        return MapPlan(fmap, None, [], [], mode)
    layer, notes, mode = plan_layer(page, view, loaders=loaders)
    return MapPlan(view_base_map(page), layer, ["bounds", "zoom"], notes, mode)


#: The base map of every large filter shows no entity itself (its layer does).
_NO_POINTS = aggregate.make_points([], [])


def view_base_map(page: MapPage) -> folium.Map:
    """The base map of a large filter (``"view"`` mode): overlays and legend, no entity,
    fitted to the city. It is the same for every filter, so a filter change only swaps
    the layer, which brings the filter's kinds for the legend and the extent to fit
    (:func:`plan_layer`)."""
    inputs = dataclasses.replace(page.inputs, focus_layers=(), fit_city=True)
    return maps.build_map(inputs, lang=page.lang, basemap=page.basemap, mode="view",
                          points=_NO_POINTS, asset_base=page.asset_base, height=MAP_HEIGHT)


def fit_bounds(page: MapPage) -> list[list[float]]:
    """``[[south, west], [north, east]]`` a large filter's first drawing fits (display datum):
    its entities, its layers, the city when unfiltered."""
    bounds = maps.map_bounds(page.inputs, basemap=page.basemap, points=page.summary.points)
    return bounds or [[30.8, 119.9], [32.1, 121.4]]


def fit_view(bounds: list[list[float]]) -> aggregate.View:
    """The view ``fitBounds(bounds)`` will show (before the browser reports its own)."""
    (south, west), (north, east) = bounds
    return aggregate.fit_view((west, south, east, north), width_px=MAP_WIDTH_GUESS,
                              height_px=MAP_HEIGHT, padding_px=maps.FIT_PADDING_PX,
                              max_zoom=maps.FIT_MAX_ZOOM)


def plan_layer(page: MapPage, view: aggregate.View | None, *,
               loaders: Loaders = CACHED) -> tuple[folium.FeatureGroup, list[str], str]:
    """The layer of one view of a large filter, the caption's notes and the mode
    (``"cells"`` or ``"view markers"``). The layer also writes the filter's kinds into the
    legend. ``view`` is the view the browser last reported; None is the filter's first
    drawing: the layer fits the map to the filter (:func:`fit_bounds`) and is planned for
    the view that fit will show."""
    fit = None
    if view is None:
        fit = fit_bounds(page)
        view = fit_view(fit)
    base = maps.BASEMAPS[page.basemap]
    points = page.summary.points
    plan = aggregate.plan_view(points.in_datum(base.datum), view, max_zoom=base.max_zoom)
    rows = _plan_rows(page, plan, base.datum, loaders) if plan.mode == "markers" else None
    layer = maps.view_layer(plan, lang=page.lang, entities=rows, layer_names=page.layer_names,
                            kind_counts=points.kind_counts(), fit=fit)
    return layer, _scale_notes(page, plan), "cells" if plan.mode == "cells" else "view markers"


def _scale_notes(page: MapPage, plan: aggregate.ViewPlan) -> list[str]:
    lang, limit, n = page.lang, f"{aggregate.MARKER_LIMIT:,}", f"{len(page.summary.points):,}"
    if plan.mode == "cells" and plan.cells is not None:
        return [t("map_scale_cells", lang, n=n, limit=limit, cells=f"{len(plan.cells):,}")]
    if plan.capped:
        return [t("map_scale_capped", lang, k=f"{plan.in_window:,}", limit=limit)]
    return [t("map_scale_markers", lang, k=f"{plan.in_window:,}", n=n)]


def _plan_rows(page: MapPage, plan: aggregate.ViewPlan, datum: str,
               loaders: Loaders) -> gpd.GeoDataFrame:
    """The located rows inside the plan's window, in the display datum (at most MARKER_LIMIT)."""
    west, south, east, north = plan.window.bbox()
    # the window is in the display datum; GCJ-02 lies within ~0.007 degrees of WGS-84 here
    margin = 0.01 if datum == "gcj02" else 1e-6
    bbox = (round(west - margin, 7), round(south - margin, 7),
            round(east + margin, 7), round(north + margin, 7))
    limit = 4 * aggregate.MARKER_LIMIT if plan.capped else None
    rows = loaders.window_rows(page.db, page.version, page.flt, bbox, limit)
    rows = maps.to_display_datum(rows, datum)
    inside = plan.window.contains(rows.geometry.x.to_numpy(), rows.geometry.y.to_numpy())
    return rows[inside].iloc[: aggregate.MARKER_LIMIT]


def _remember_view() -> None:
    # on_change of the map (runs before the rerun): the view it reports, stamped with
    # the map it came from, so a view of another filter is never applied to this one
    ss = st.session_state
    ss[VIEW_STATE_KEY] = {"sig": ss.get(MAP_SIG_KEY), "state": ss.get(_MAP_KEY)}


def current_view(sig: str, *, max_zoom: int) -> aggregate.View | None:
    """The view the browser last reported for the map with signature ``sig`` (None if none)."""
    stored = st.session_state.get(VIEW_STATE_KEY)
    if not isinstance(stored, dict) or stored.get("sig") != sig:
        return None
    return aggregate.view_from_state(stored.get("state"), min_zoom=0, max_zoom=max_zoom)


@dataclass(frozen=True)
class BaseMap:
    """The component arguments of a large filter's base map, rendered once.

    A pan or zoom reruns the page, but only the view's layer changes: the base map is
    built and rendered once per :meth:`MapPage.base_signature` (:func:`_base_map`) and each
    run hands the component these same strings with the new layer, so the browser keeps
    its map and swaps the layer. (A sealed folium map cannot be rendered twice, so the
    strings are kept, not the map.) A filter up to ``MARKER_LIMIT`` entities is one whole
    map, kept the same way (:func:`_whole_map`).
    """

    script: str
    header: str
    html: str
    map_id: str
    css_links: list[str]
    js_links: list[str]
    bounds: dict[str, dict[str, float | None]]
    zoom: object

    @classmethod
    def render(cls, fmap: folium.Map, *, whole: bool = False) -> BaseMap:
        """What ``st_folium(fmap, render=whole)`` hands its component, but the layer
        (``whole``: the markers mode, whose icons folium adds while the page renders)."""
        if whole:
            fmap.get_root().render()
        fmap.render()
        html = streamlit_folium._get_html(fmap)  # noqa: SLF001 (as st_folium does)
        header = streamlit_folium._get_header(fmap)  # noqa: SLF001
        script = streamlit_folium._get_map_string(fmap)  # noqa: SLF001
        (south, west), (north, east) = fmap.get_bounds()
        css, js = maps.asset_links(fmap)
        return cls(script=script, header=header, html=html,
                   map_id=streamlit_folium.get_full_id(fmap), css_links=css, js_links=js,
                   bounds={"_southWest": {"lat": south, "lng": west},
                           "_northEast": {"lat": north, "lng": east}},
                   zoom=fmap.options.get("zoom"))


@st.cache_resource(show_spinner=False, max_entries=8)
def _base_map(sig: str, _page: MapPage) -> BaseMap:
    """:class:`BaseMap` of ``_page`` (its :meth:`MapPage.base_signature` ``sig`` is the key)."""
    return BaseMap.render(view_base_map(_page))


def layer_script(layer: folium.FeatureGroup) -> str:
    """The script ``st_folium`` sends for ``feature_group_to_add=layer`` (on any map)."""
    return str(streamlit_folium._get_feature_group_string(layer, map=maps.layer_host()))  # noqa: SLF001


_RETURNED = ["bounds", "zoom"]


def _view_component(base: BaseMap, layer: folium.FeatureGroup | None) -> None:
    """Hand the component the base map and a view's layer, exactly as ``st_folium`` would
    for ``feature_group_to_add=layer`` (``tests/test_views_map.py`` compares them).

    Without a layer, the map is a whole page (up to ``MARKER_LIMIT`` entities): it reports
    nothing (pans, zooms and clicks stay in the browser)."""
    hash_key = streamlit_folium.generate_js_hash(base.script, _MAP_KEY, False)

    def on_change() -> None:  # st_folium's: the reported state under the map's own key
        st.session_state[_MAP_KEY] = st.session_state.get(hash_key, {})
        if layer is not None:
            _remember_view()

    returned = _RETURNED if layer is not None else []
    default = {"bounds": base.bounds, "zoom": base.zoom}
    streamlit_folium._component_func(  # noqa: SLF001
        script=base.script, header=base.header, html=base.html, id=base.map_id, key=hash_key,
        height=MAP_HEIGHT, width=None, returned_objects=returned,
        default={k: v for k, v in default.items() if k in returned}, zoom=None, center=None,
        feature_group=None if layer is None else layer_script(layer), return_on_hover=False,
        layer_control=None, pixelated=False, css_links=base.css_links,
        js_links=base.js_links, on_change=on_change, wrap_longitude=False)


@st.cache_resource(show_spinner=False, max_entries=8)
def _whole_map(sig: str, _page: MapPage) -> BaseMap:
    """The component arguments of a filter up to ``MARKER_LIMIT`` entities
    (:func:`plan_map`), rendered once per :meth:`MapPage.whole_signature` ``sig``: a new
    tab, or a filter chosen again, does not rebuild the map (~0.3–0.45 s a run at 1,000
    entities)."""
    plan = plan_map(_page, None)
    return BaseMap.render(plan.fmap, whole=plan.mode == "markers")


def _draw_map(page: MapPage) -> list[str]:
    """Draw the map; returns notes for the caption.

    Up to ``MARKER_LIMIT`` entities the page carries them all (:func:`plan_map`), built
    and rendered once per filter, language and basemap (:func:`_whole_map`). The whole
    page is rendered first only in the markers mode, where folium adds each marker's icon
    while the page renders; otherwise it would repeat the costliest step (every overlay's
    GeoJSON written out once more) for the same strings (``tests/test_views_map.py``
    checks that the component gets what ``st_folium`` gives either way).

    Above, the base map is the same for every filter and rendered once
    (:class:`BaseMap`); each run only plans, builds and renders the layer of the current
    view (with the filter's legend kinds, and on a filter's first drawing the extent to
    fit), so neither a pan nor a filter change rebuilds the map in the browser.
    """
    if len(page.summary.points) <= aggregate.MARKER_LIMIT:
        _view_component(_whole_map(page.whole_signature(), page), None)
        return []  # the page holds every entity: nothing about the view to note
    sig = page.signature()
    base = _base_map(page.base_signature(), page)
    view = current_view(sig, max_zoom=maps.BASEMAPS[page.basemap].max_zoom)
    layer, notes, _ = plan_layer(page, view, loaders=CACHED)
    st.session_state[MAP_SIG_KEY] = sig
    _view_component(base, layer)
    return notes


def no_point_html(table: pd.DataFrame) -> str:
    """``table`` as one line of HTML (a scrolling table), every header and value escaped.

    Shown through ``st.html`` (sanitised by the frontend's DOMPurify, never Markdown)
    instead of ``st.dataframe``: a data grid makes a new visitor's browser fetch ~20 code
    chunks before it creates the map's frame, and ``st.markdown(unsafe_allow_html=True)``
    one of 188 kB (rehype-raw); this list is only read on demand. Written so that it
    would stay inert as Markdown too: one line (line breaks become ``&#10;``), and ``$``,
    backticks, backslashes (:func:`geo_app.maps.escape_html`) and ``:`` (Streamlit
    rewrites ``:material/…:`` in a Markdown source, raw HTML included) as entities
    (``tests/test_browser_markdown.py``).
    """
    def cell(value: object) -> str:
        return (maps.escape_html(value).replace("\r", "&#13;").replace("\n", "&#10;")
                .replace(":", "&#58;"))

    head = "".join(f"<th>{cell(c)}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False, name=None))
    return (f'<div class="sim-np"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


@st.cache_data(show_spinner=False, max_entries=16)
def _no_point_table(path: str, version: str, flt: EntityFilter, lang: str,
                    layer_names: dict[str, str]) -> str:
    """:func:`no_point_html` of the filter's entities without a point, once per database
    version, filter and language (up to ``NO_POINT_ROWS`` rows: ~20–50 ms a run at 1M)."""
    table = entity_table(CACHED.summary(path, version, flt).no_point, lang, layer_names)
    keep = [t("col_name_zh", lang), t("col_name_en", lang), t("kind", lang), t("board", lang),
            t("status", lang), t("col_id", lang)]
    return no_point_html(table[keep])


def _draw_no_point(page: MapPage) -> None:
    summary, lang = page.summary, page.lang
    title = f"{t('no_point', lang)} ({summary.n_no_point:,})"
    if not summary.n_no_point:
        st.caption(title)
        return
    with st.expander(title, expanded=False):
        st.caption(t("map_no_point_hint", lang))
        # escaped: no_point_html
        st.html(_no_point_table(page.db, page.version, page.flt, lang, page.layer_names))
        if summary.n_no_point > len(summary.no_point):
            st.caption(t("map_no_point_more", lang, shown=f"{len(summary.no_point):,}",
                         n=f"{summary.n_no_point:,}"))


def render() -> None:
    """Draw the page: the map first, then the sidebar.

    The sidebar's widgets are seeded (their state set from the URL or the session) before
    the map is drawn, and drawn after it with the same values: a new visitor's browser
    loads each kind of widget's code when the widget first arrives, and with the widgets
    first the map's frame waited for all of them (~0.65 s of a ~3.8 s first frame at 1M
    entities, 2 cores; docs/scale.md).

    In a session's first run the widgets come one run later still (:func:`_widgets_later`):
    sent with the map, their ~45 code chunks took the browser's connections ahead of the
    map component's frame and Leaflet, and the first marker came ~0.6 s later (1M
    entities, 2 cores; docs/scale.md). That run shows a line in their place; the next run
    draws them. It comes when the map reports its view (large filters report it once
    drawn), or :data:`WIDGETS_DELAY_S` after the page arrived (:func:`_wake_later`),
    whichever is first. The map's frame is kept across the runs (same key; the component
    ignores a new script for a map it has drawn), so nothing is drawn twice. What is below
    the map (its notes, the list of entities without a point) comes in that run too: sent
    with the map, the browser rendered them before it created the map's frame (new tabs
    at 1M, medians of 15: first marker 2.69 s instead of 2.90 s; docs/scale.md).
    """
    later = _widgets_later()
    lang = seed_language()
    # each widget: how to draw it, and what it does besides drawing (for a run that
    # leaves it to the next)
    sidebar: list[tuple[Callable[[], object], Callable[[], object]]] = [
        (lambda: language_widget(lang), lambda: keep_language(lang))]
    try:
        db = db_path()
        version = data_version(db)
        build = build_stamp(str(db), version)
        known_layers, layer_names = layer_choices(db, lang)
        flt, bad = seed_filter(known_layers)
        # the URL's invalid values, said when the widgets are drawn
        stashed = st.session_state.pop(_URL_BAD_KEY, [])
        if later:
            st.session_state[_URL_BAD_KEY] = bad
        else:
            bad = bad or stashed
        sidebar.append((lambda: filter_widgets(lang, known_layers, layer_names, bad),
                        lambda: keep_filter(flt)))
        basemap = seed_basemap()
        sidebar.append((lambda: basemap_widget(lang), lambda: keep_basemap(basemap)))
        summary = CACHED.summary(str(db), version, flt)
        # the unfiltered summary counts every entity: no second query for the total
        total = summary.n_total if flt.is_empty() else _total(str(db), version)
        _vendor_ready()
    except GeoAppError as err:
        show_error(err)
        _draw_sidebar(sidebar, later=False)  # nothing else to wait for
        return
    st.title(t("app_title", lang))
    on_map = len(summary.points)
    st.markdown(t("map_counts", lang, on_map=on_map, no_point=summary.n_no_point,
                  n=summary.n_total, total=total))
    if not summary.n_total:
        st.info(t("map_none_match", lang))
    datum = maps.BASEMAPS[basemap].datum
    inputs = dataclasses.replace(_display_overlays(str(db), build, datum),
                                 focus_layers=flt.layers, fit_city=flt.is_empty())
    if datum != "wgs84" and len(summary.points) > aggregate.MARKER_LIMIT:
        summary = dataclasses.replace(summary, points=_display_points(str(db), version, flt, datum))
    page = MapPage(db=str(db), version=version, flt=flt, lang=lang, basemap=basemap,
                   summary=summary, inputs=inputs, layer_names=layer_names,
                   asset_base=_asset_base(), build=build)
    # the map takes the whole width; what has no location is listed below it
    st.html(_FILL_CSS)  # constant style sheet, no data
    notes: list[str] = []
    try:
        notes = _draw_map(page)
    except GeoAppError as err:
        show_error(err)
    _draw_sidebar(sidebar, later=later)
    if later:
        with st.sidebar:
            st.caption(t("map_sidebar_loading", lang))
            st.fragment(_wake_later, run_every=WIDGETS_DELAY_S)()
        return  # what is below the map comes with the widgets (see above)
    _prepare_search(str(db), version)  # the search box is there: a search may come next
    base = maps.BASEMAPS[basemap]
    notes.append(t("sip_no_polygon", lang))
    if base.datum == "gcj02":
        notes.append(t("map_gcj_note", lang))
    notes.append(t("map_no_tiles_note", lang) if base.tiles is None
                 else t("map_tiles_note", lang, name=maps.basemap_label(basemap, lang)))
    notes.append(t("map_share_hint", lang))
    st.caption("  \n".join(notes))
    _draw_no_point(page)


def _widgets_later() -> bool:
    """Whether this run leaves the sidebar's widgets to the next (:func:`render`): only
    while this session's browser has none yet (:data:`WIDGETS_SHOWN_KEY`, which this sets:
    the next run draws them)."""
    if st.session_state.get(WIDGETS_SHOWN_KEY):
        return False
    st.session_state[WIDGETS_SHOWN_KEY] = True
    return True


def _wake_later() -> None:
    """A fragment that shows nothing and runs the whole page again when the browser's timer
    runs it (every :data:`WIDGETS_DELAY_S`; a page run again meanwhile no longer has it,
    and its timer is gone)."""
    ss = st.session_state
    if ss.get(_WAKE_KEY):  # the timer's run, not the page's
        ss[_WAKE_KEY] = False
        st.rerun()
    ss[_WAKE_KEY] = True


def _draw_sidebar(widgets: Sequence[tuple[Callable[[], object], Callable[[], object]]], *,
                  later: bool) -> None:
    """Draw the seeded sidebar widgets, in order (language, filters, basemap); when they
    are left to a ``later`` run, only do what they do besides drawing."""
    for draw, keep in widgets:
        (keep if later else draw)()
