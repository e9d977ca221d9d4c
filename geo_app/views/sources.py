"""The data & sources page: what the registry holds, every source and licence, known gaps."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import streamlit as st

from geo_app import store
from geo_app.errors import GeoAppError
from geo_app.i18n import t
from geo_app.settings import PROJECT_ROOT, load_settings
from geo_app.views.common import (
    data_version,
    db_path,
    entity_table,
    language_switch,
    layer_choices,
    md_escape,
    show_error,
)
from geo_app.vocab import BOARDS, KINDS, PRECISIONS, Labels, label


@st.cache_data(show_spinner=False, max_entries=4)
def _holdings(path: str, version: str) -> dict[str, pd.DataFrame]:
    db = Path(path)
    return {
        "meta": pd.DataFrame(sorted(store.read_meta(db).items()), columns=["key", "value"]),
        "entities": pd.DataFrame(store.query_entities(db).drop(columns="geometry")),
        "boundaries": pd.DataFrame(store.read_table(db, "boundaries")),
        "water": pd.DataFrame(store.read_table(db, "water")),
        "layers": pd.DataFrame(store.read_table(db, "layers")),
        "boards": pd.DataFrame(store.read_table(db, "boards")),
    }


def sources_markdown() -> str | None:
    """The text of ``SOURCES.md`` from the data folder (or the project's ``data/``), if any."""
    for folder in (load_settings().data_dir, PROJECT_ROOT / "data"):
        path = folder / "SOURCES.md"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def _origins() -> dict[str, tuple[str, str]]:
    return {o: (t(f"origin_{o}", "zh"), t(f"origin_{o}", "en")) for o in ("shipped", "user")}


def _count(values: pd.Series, vocab: Labels, lang: str, name: str, empty: str) -> pd.DataFrame:
    labels = [label(vocab, v, lang) if isinstance(v, str) and v else empty for v in values]
    counts = pd.Series(labels, dtype=object).value_counts()
    return pd.DataFrame({name: counts.index, t("col_count", lang): counts.to_numpy()})


def _draw_holdings(h: dict[str, pd.DataFrame], lang: str) -> None:
    st.header(t("src_holdings", lang))
    meta = dict(zip(h["meta"]["key"], h["meta"]["value"], strict=False))
    st.caption(t("src_built", lang, built_at=md_escape(meta.get("built_at", "?")),
                 hash=md_escape(str(meta.get("source_hash", "?"))[:12])))
    ents = h["entities"]
    has_point = pd.to_numeric(ents["lon"], errors="coerce").notna() & pd.to_numeric(
        ents["lat"], errors="coerce").notna()
    st.markdown(t("map_counts", lang, on_map=int(has_point.sum()), no_point=int((~has_point).sum()),
                  n=len(ents), total=len(ents)))
    cols = st.columns(4)
    unknown = t("unknown", lang)
    tables = [
        (t("src_by_kind", lang), _count(ents["kind"], KINDS, lang, t("kind", lang), unknown)),
        (t("src_by_board", lang), _count(ents["board"], BOARDS, lang, t("board", lang),
                                         t("src_no_board", lang))),
        (t("src_by_precision", lang), _count(ents["location_precision"], PRECISIONS, lang,
                                             t("col_precision", lang), unknown)),
        (t("src_by_origin", lang), _count(ents["origin"], _origins(), lang, t("col_origin", lang),
                                          unknown)),
    ]
    for col, (title, table) in zip(cols, tables, strict=True):
        with col:
            st.markdown(f"**{title}**")
            st.dataframe(table, hide_index=True, width="stretch")


def _draw_gaps(h: dict[str, pd.DataFrame], lang: str, layer_names: dict[str, str]) -> None:
    st.header(t("src_gaps", lang))
    ents = h["entities"]
    lon = pd.to_numeric(ents["lon"], errors="coerce")
    lat = pd.to_numeric(ents["lat"], errors="coerce")
    no_point = ents[lon.isna() | lat.isna()]
    approx = ents[lon.notna() & lat.notna()
                  & ~ents["location_precision"].isin(["site", "campus"])]
    items = [t("src_gap_sip", lang), t("src_gap_offshore", lang),
             t("src_gap_no_point", lang, n=len(no_point)),
             t("src_gap_precision", lang, n=len(approx)), t("src_gap_layers", lang)]
    st.markdown("\n".join(f"- {item}" for item in items))
    if len(no_point):
        st.dataframe(entity_table(gpd.GeoDataFrame(no_point), lang, layer_names),
                     hide_index=True, width="stretch")


def _draw_sources(h: dict[str, pd.DataFrame], lang: str, layer_names: dict[str, str]) -> None:
    st.header(t("src_files", lang))
    text = sources_markdown()
    if text is None:
        st.warning(t("src_no_sources_md", lang))
    else:
        with st.expander("data/SOURCES.md", expanded=True):
            st.markdown(text)  # trusted project file; HTML in it is still escaped by Streamlit
    st.header(t("src_tables", lang))
    st.subheader(t("src_boundaries", lang))
    st.dataframe(h["boundaries"][["adcode", "name_zh", "name_en", "level", "source", "source_datum",
                                  "conversion"]], hide_index=True, width="stretch")
    st.dataframe(h["boards"][["name_zh", "name_en", "county_adcode", "polygon_status",
                              "land_area_km2", "area_year", "area_source", "notes"]],
                 hide_index=True, width="stretch")
    st.subheader(t("src_water", lang))
    st.dataframe(h["water"][["id", "name_zh", "name_en", "kind", "source", "source_datum",
                             "conversion"]], hide_index=True, width="stretch")
    st.subheader(t("src_layers", lang))
    st.dataframe(h["layers"][["id", "name_zh", "name_en", "schematic", "area_km2", "method",
                              "facts", "spec_file"]], hide_index=True, width="stretch")
    st.subheader(t("src_entity_sources", lang))
    ents = h["entities"]
    table = entity_table(gpd.GeoDataFrame(ents), lang, layer_names)
    table[t("col_location_source", lang)] = ents["location_source"].to_numpy()
    st.dataframe(table, hide_index=True, width="stretch")


def render() -> None:
    """Draw the page."""
    lang = language_switch()
    st.title(t("src_title", lang))
    st.markdown(t("src_intro", lang))
    try:
        db = db_path()
        holdings = _holdings(str(db), data_version(db))
        _ids, layer_names = layer_choices(db, lang)
    except GeoAppError as err:
        show_error(err)
        return
    _draw_holdings(holdings, lang)
    _draw_gaps(holdings, lang, layer_names)
    _draw_sources(holdings, lang, layer_names)
