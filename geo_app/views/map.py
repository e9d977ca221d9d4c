"""The map page: filtered entities, strategy layers, boundaries and water on a Folium map."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from geo_app import assets, maps, store
from geo_app.errors import GeoAppError
from geo_app.filters import EntityFilter
from geo_app.i18n import t
from geo_app.views.common import (
    data_version,
    db_path,
    entity_table,
    language_switch,
    layer_choices,
    show_error,
    sidebar_filter,
    url_choice,
    write_choice_to_url,
)

MAP_HEIGHT = 700
_BASEMAP_WIDGET = "basemap_select"


@dataclass(frozen=True)
class _Static:
    """What the map draws whatever the filter (read once per database version)."""

    layers: gpd.GeoDataFrame
    boundaries: gpd.GeoDataFrame
    water: gpd.GeoDataFrame
    boards: pd.DataFrame
    total: int


@st.cache_data(show_spinner=False, max_entries=4)
def _static(path: str, version: str) -> _Static:
    db = Path(path)
    return _Static(layers=store.read_geo_table(db, "layers"),
                   boundaries=store.read_geo_table(db, "boundaries"),
                   water=store.read_geo_table(db, "water"),
                   boards=store.read_table(db, "boards"),
                   total=store.count_entities(db))


@st.cache_data(show_spinner=False, max_entries=64)
def _entities(path: str, version: str, flt: EntityFilter) -> gpd.GeoDataFrame:
    return store.query_entities(Path(path), flt)


@st.cache_resource(show_spinner=False)
def _vendor_ready() -> str:
    # copies Leaflet & co. into static/vendor once per server process
    return str(assets.ensure_assets())


def _asset_base() -> str:
    return assets.vendor_url(str(st.get_option("server.baseUrlPath") or ""))


def basemap_select(lang: str) -> str:
    """Sidebar basemap choice, kept in the URL as ``?basemap=`` (omitted for the default)."""
    options = list(maps.BASEMAPS)
    url_choice("basemap", _BASEMAP_WIDGET, options, maps.DEFAULT_BASEMAP)
    choice = st.sidebar.selectbox(t("map_basemap", lang), options,
                                  format_func=lambda v: maps.basemap_label(v, lang),
                                  key=_BASEMAP_WIDGET)
    write_choice_to_url("basemap", _BASEMAP_WIDGET, choice, maps.DEFAULT_BASEMAP)
    return choice


def _draw_map(inputs: maps.MapInputs, lang: str, basemap: str) -> None:
    fmap = maps.build_map(inputs, lang=lang, basemap=basemap, asset_base=_asset_base(),
                          height=MAP_HEIGHT)
    # returned_objects=[]: pans, zooms and clicks stay in the browser (no rerun)
    st_folium(fmap, height=MAP_HEIGHT, use_container_width=True, returned_objects=[],
              key="main_map")


def _draw_no_point(ents: gpd.GeoDataFrame, lang: str, layer_names: dict[str, str]) -> None:
    no_point = ents[ents.geometry.isna() | ents.geometry.is_empty]
    st.subheader(f"{t('no_point', lang)} ({len(no_point)})")
    if len(no_point):
        st.caption(t("map_no_point_hint", lang))
        table = entity_table(no_point, lang, layer_names)
        keep = [t("col_name_zh", lang), t("col_name_en", lang), t("kind", lang), t("board", lang),
                t("status", lang), t("col_id", lang)]
        st.dataframe(table[keep], hide_index=True, width="stretch", height=560)


def render() -> None:
    """Draw the page."""
    lang = language_switch()
    try:
        db = db_path()
        version = data_version(db)
        static = _static(str(db), version)
        known_layers, layer_names = layer_choices(db, lang)
        flt = sidebar_filter(lang, known_layers, layer_names)
        basemap = basemap_select(lang)
        ents = _entities(str(db), version, flt)
        _vendor_ready()
    except GeoAppError as err:
        show_error(err)
        return
    st.title(t("app_title", lang))
    on_map = int((ents.geometry.notna() & ~ents.geometry.is_empty).sum())
    st.markdown(t("map_counts", lang, on_map=on_map, no_point=len(ents) - on_map, n=len(ents),
                  total=static.total))
    if not len(ents):
        st.info(t("map_none_match", lang))
    inputs = maps.MapInputs(entities=ents, layers=static.layers, boundaries=static.boundaries,
                            water=static.water, boards=static.boards, focus_layers=flt.layers)
    col_map, col_side = st.columns([7, 3], gap="medium")
    with col_map:
        _draw_map(inputs, lang, basemap)
        base = maps.BASEMAPS[basemap]
        notes = [t("sip_no_polygon", lang)]
        if base.datum == "gcj02":
            notes.append(t("map_gcj_note", lang))
        notes.append(t("map_no_tiles_note", lang) if base.tiles is None
                     else t("map_tiles_note", lang, name=maps.basemap_label(basemap, lang)))
        notes.append(t("map_share_hint", lang))
        st.caption("  \n".join(notes))
    with col_side:
        _draw_no_point(ents, lang, layer_names)
