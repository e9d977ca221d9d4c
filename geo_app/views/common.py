"""Shared view helpers: language and filters kept in the URL query string, cached reads."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import streamlit as st

from geo_app import build, store
from geo_app.filters import EntityFilter, filter_from_query, filter_to_query
from geo_app.i18n import LANGS, t
from geo_app.settings import load_settings
from geo_app.vocab import BOARDS, KINDS, LEVELS, STATUSES, label


def db_path() -> Path:
    """The database, built from ``data/`` on first start (and when the data change)."""
    return build.ensure_database(load_settings())


@st.cache_data(show_spinner=False)
def _layers_table(path: str, built_at: str) -> gpd.GeoDataFrame:
    return store.read_geo_table(Path(path), "layers")


def get_lang() -> str:
    """Language from the URL (``?lang=en``); Chinese by default."""
    lang = st.query_params.get("lang", "zh")
    return lang if lang in LANGS else "zh"


def language_switch() -> str:
    """Sidebar language switch, written back to the URL; returns the language."""
    lang = get_lang()
    choice = st.sidebar.radio(t("language", lang), LANGS, index=LANGS.index(lang),
                              format_func=lambda v: "中文" if v == "zh" else "English",
                              horizontal=True, key="lang_radio")
    if choice != lang:
        st.query_params["lang"] = choice
        lang = choice
    return lang


def url_filter(known_layers: list[str]) -> EntityFilter:
    """Read the entity filter from the URL; invalid values are dropped with a warning."""
    params = {k: st.query_params.get_all(k) for k in ("kind", "level", "status", "board", "layer", "q")}
    clean: dict[str, list[str]] = {}
    vocab = {"kind": KINDS, "level": LEVELS, "status": STATUSES, "board": BOARDS}
    for key, values in params.items():
        parts = [p for v in values for p in v.split(",") if p]
        if key in vocab:
            parts = [p for p in parts if p in vocab[key]]
        elif key == "layer":
            parts = [p for p in parts if p in known_layers]
        clean[key] = parts
    return filter_from_query(clean, known_layers=known_layers)


def sidebar_filter(lang: str, known_layers: list[str], layer_names: dict[str, str]) -> EntityFilter:
    """Filter widgets in the sidebar, initialised from and written back to the URL."""
    current = url_filter(known_layers)
    sb = st.sidebar
    sb.header(t("filters", lang))
    kinds = sb.multiselect(t("kind", lang), list(KINDS), default=list(current.kinds),
                           format_func=lambda v: label(KINDS, v, lang), key="f_kind")
    levels = sb.multiselect(t("level", lang), list(LEVELS), default=list(current.levels),
                            format_func=lambda v: label(LEVELS, v, lang), key="f_level")
    statuses = sb.multiselect(t("status", lang), list(STATUSES), default=list(current.statuses),
                              format_func=lambda v: label(STATUSES, v, lang), key="f_status")
    boards = sb.multiselect(t("board", lang), list(BOARDS), default=list(current.boards),
                            format_func=lambda v: label(BOARDS, v, lang), key="f_board")
    layers = sb.multiselect(t("layer", lang), known_layers, default=list(current.layers),
                            format_func=lambda v: layer_names.get(v, v), key="f_layer")
    search = sb.text_input(t("search", lang), value=current.search, key="f_q", max_chars=200)
    flt = filter_from_query({"kind": kinds, "level": levels, "status": statuses, "board": boards,
                             "layer": layers, "q": [search] if search else []},
                            known_layers=known_layers)
    write_filter_to_url(flt)
    return flt


def write_filter_to_url(flt: EntityFilter) -> None:
    """Replace the filter keys of the query string (language and other keys are kept)."""
    wanted = filter_to_query(flt)
    for key in ("kind", "level", "status", "board", "layer", "q"):
        values = wanted.get(key)
        if values:
            if st.query_params.get_all(key) != values:
                st.query_params[key] = values
        elif key in st.query_params:
            del st.query_params[key]
