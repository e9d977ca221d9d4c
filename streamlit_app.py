"""Streamlit entry point: page config and navigation (``streamlit run streamlit_app.py``)."""

import streamlit as st

from geo_app.i18n import LANGS, t

st.set_page_config(page_title="苏州科创地图 Suzhou Innovation Map", page_icon="🗺️", layout="wide")
# Something to read at once: the pages' modules (geopandas, folium, DuckDB) take a moment
# to import on a cold start. The language comes straight from the URL here.
_url_lang = st.query_params.get("lang")
_loading = st.empty()
_loading.caption(t("app_loading", _url_lang if _url_lang in LANGS else "zh"))

from geo_app.views import common, compare, export, importer, sources  # noqa: E402
from geo_app.views import map as map_view  # noqa: E402

common.freeze_imports()  # once per process: Streamlit's collection after each run skips them

lang = common.get_lang()
pages = [
    st.Page(map_view.render, title=t("page_map", lang), url_path="map", default=True),
    st.Page(compare.render, title=t("page_compare", lang), url_path="compare"),
    st.Page(export.render, title=t("page_export", lang), url_path="export"),
    st.Page(importer.render, title=t("page_import", lang), url_path="import"),
    st.Page(sources.render, title=t("page_sources", lang), url_path="sources"),
]
_loading.empty()
st.navigation(pages).run()
