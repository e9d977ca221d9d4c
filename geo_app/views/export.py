"""The export page: download the current filtered view as GeoJSON, CSV, Excel or GeoPackage.

The filters are the map's (the same sidebar and URL keys). A click on a "prepare" button
writes the export with :func:`geo_app.export.export_file`, the function behind
``geo-app export -o`` (so the same filter gives the same bytes here and on the command
line), into ``static/downloads/<token>/`` (:func:`geo_app.export.prepare_download`); the page
then links to it, and Streamlit's static file route streams it from disk to the browser.
Nothing of the file is held in the server's memory.
"""

from __future__ import annotations

import html
import shlex
from pathlib import Path
from typing import Any

import streamlit as st

from geo_app import assets, export
from geo_app.errors import GeoAppError
from geo_app.filters import EntityFilter, filter_to_args
from geo_app.i18n import t
from geo_app.views.common import (
    data_version,
    db_path,
    language_switch,
    layer_choices,
    show_error,
    sidebar_filter,
    url_choice,
    write_choice_to_url,
)

_COLLECTION_WIDGET = "export_collection"
FORMAT_LABELS = {"geojson": "GeoJSON", "csv": "CSV", "xlsx": "Excel (.xlsx)", "gpkg": "GeoPackage"}


@st.cache_data(show_spinner=False, max_entries=64)
def _counts(path: str, version: str, collection: str, flt: EntityFilter | None) -> tuple[int, int]:
    return export.count_features(Path(path), collection, flt)


def cli_command(collection: str, fmt: str, flt: EntityFilter | None) -> str:
    """The ``geo-app export`` command line that writes the same file as a download.

    >>> cli_command("entities", "csv", EntityFilter(kinds=("laboratory",), search="a b"))
    "geo-app export entities --kind laboratory --search 'a b' -o suzhou-entities.csv"
    """
    args = ["geo-app", "export", collection, *(filter_to_args(flt) if flt is not None else ())]
    args += ["-o", export.file_name(collection, fmt)]
    return shlex.join(args)


def _collection_choice(lang: str) -> str:
    options = list(export.COLLECTIONS)
    url_choice("export", _COLLECTION_WIDGET, options, "entities")
    choice = st.radio(t("exp_collection", lang), options, horizontal=True,
                      format_func=lambda c: t(f"exp_coll_{c}", lang), key=_COLLECTION_WIDGET)
    write_choice_to_url("export", _COLLECTION_WIDGET, choice, "entities")
    return str(choice)


#: The session's prepared download: the request it answers and the file.
_PREPARED = "export_prepared"
#: Streamlit's cap on a served static file (200 MiB in 1.67; a 1M-entity GeoJSON is 669 MB).
STATIC_FILE_SIZE_LIMIT = 1 << 40
#: The link to a prepared file. A constant template: ``href`` and ``download`` are made by
#: the app (``secrets.token_urlsafe`` and :func:`geo_app.export.file_name`, whose names come
#: from the fixed collections and formats), never from user text, and the label is ours;
#: every value is passed through :func:`html.escape` all the same.
_LINK = '<a href="{href}" download="{name}">⬇ {label}</a>'


def allow_large_static_files(limit: int = STATIC_FILE_SIZE_LIMIT) -> None:
    """Let Streamlit's ``/app/static/`` route serve files up to ``limit`` bytes.

    Streamlit 1.67 answers 404 for a static file over ``MAX_APP_STATIC_FILE_SIZE``
    (200 MiB), a module constant of its Starlette routes that the route reads on each
    request and no config option sets. Large exports are served by that route
    (Starlette's ``FileResponse``, 64 KiB reads), so the cap is raised here; memory does
    not depend on a file's size. If a Streamlit release moves the constant, the
    real-server test of a file above 200 MiB fails (tests/test_views_export.py).
    """
    from streamlit.web.server.starlette import starlette_routes

    current = getattr(starlette_routes, "MAX_APP_STATIC_FILE_SIZE", None)
    if isinstance(current, int) and current < limit:
        starlette_routes.MAX_APP_STATIC_FILE_SIZE = limit  # type: ignore[attr-defined]


def download_link(download: export.Download, base_url_path: str, label: str) -> str:
    """The HTML link that makes the browser save ``download`` (same origin: ``download`` works).

    >>> d = export.Download(Path("x"), "tok/suzhou-water.csv", "suzhou-water.csv", 3, 1)
    >>> download_link(d, "", "Save <CSV>")
    '<a href="/app/static/downloads/tok/suzhou-water.csv"
    download="suzhou-water.csv">⬇ Save &lt;CSV&gt;</a>'
    """
    href = f"{assets.downloads_url(base_url_path)}/{download.url_path}"
    return _LINK.format(href=html.escape(href), name=html.escape(download.name),
                        label=html.escape(label))


def _prepare(db: Path, collection: str, fmt: str, flt: EntityFilter | None, lang: str) -> None:
    """Write the export for a click and remember it in the session (an error is shown)."""
    with st.spinner(t("exp_preparing", lang, fmt=FORMAT_LABELS[fmt])):
        try:
            download = export.prepare_download(db, collection, fmt, assets.DOWNLOADS_DIR,
                                               flt=flt)
        except GeoAppError as err:
            st.session_state.pop(_PREPARED, None)
            show_error(err)
            return
    st.session_state[_PREPARED] = {"request": (collection, flt), "download": download}


def _show_prepared(collection: str, flt: EntityFilter | None, lang: str) -> None:
    """The link to the session's prepared file, if it answers the current choice and exists."""
    prepared: dict[str, Any] | None = st.session_state.get(_PREPARED)
    if prepared is None or prepared["request"] != (collection, flt):
        return
    download: export.Download = prepared["download"]
    if not download.path.is_file():  # removed after DOWNLOAD_MAX_AGE_S
        st.caption(t("exp_link_expired", lang))
        return
    label = t("exp_link", lang, name=download.name, mb=f"{download.size / 1e6:,.1f}")
    base = str(st.get_option("server.baseUrlPath") or "")
    st.markdown(download_link(download, base, label), unsafe_allow_html=True)
    st.caption(t("exp_link_note", lang, minutes=export.DOWNLOAD_MAX_AGE_S // 60))


def _download_section(db: Path, collection: str, flt: EntityFilter | None, count: int,
                      lang: str) -> None:
    columns = st.columns(len(export.FORMATS))
    for fmt, column in zip(export.FORMATS, columns, strict=True):
        too_many = fmt == "xlsx" and count > export.XLSX_MAX_ROWS
        with column:
            if st.button(t("exp_prepare", lang, fmt=FORMAT_LABELS[fmt]), key=f"export_{fmt}",
                         disabled=too_many, width="stretch"):
                _prepare(db, collection, fmt, flt, lang)  # only on a click
            if too_many:
                st.caption(t("exp_xlsx_too_many", lang, n=f"{count:,}"))
    _show_prepared(collection, flt, lang)


def render() -> None:
    """Draw the page."""
    allow_large_static_files()
    lang = language_switch()
    try:
        db = db_path()
        known_layers, layer_names = layer_choices(db, lang)
        flt = sidebar_filter(lang, known_layers, layer_names)
        st.title(t("exp_title", lang))
        st.caption(t("exp_intro", lang))
        collection = _collection_choice(lang)
        used = flt if collection == "entities" else None
        if collection != "entities" and not flt.is_empty():
            st.info(t("exp_filter_ignored", lang))
        count, no_point = _counts(str(db), data_version(db), collection, used)
    except GeoAppError as err:
        show_error(err)
        return
    st.markdown(t("exp_count", lang, n=f"{count:,}"))
    if collection == "entities" and no_point:
        st.caption(t("exp_no_point", lang, n=f"{no_point:,}"))
    _download_section(db, collection, used, count, lang)
    st.caption(t("exp_cli", lang))
    st.code(cli_command(collection, "geojson", used), language="bash")
    st.caption(t("exp_schema", lang))
