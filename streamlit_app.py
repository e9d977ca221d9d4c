"""Streamlit entry point: page config and navigation (``streamlit run streamlit_app.py``)."""

import streamlit as st

from geo_app.i18n import t
from geo_app.views import common, compare, export, importer, sources
from geo_app.views import map as map_view

st.set_page_config(page_title="苏州科创地图 Suzhou Innovation Map", page_icon="🗺️", layout="wide")
lang = common.get_lang()
pages = [
    st.Page(map_view.render, title=t("page_map", lang), url_path="map", default=True),
    st.Page(compare.render, title=t("page_compare", lang), url_path="compare"),
    st.Page(export.render, title=t("page_export", lang), url_path="export"),
    st.Page(importer.render, title=t("page_import", lang), url_path="import"),
    st.Page(sources.render, title=t("page_sources", lang), url_path="sources"),
]
st.navigation(pages).run()
