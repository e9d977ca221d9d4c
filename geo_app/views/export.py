"""The export page: download the current filtered view as GeoJSON, CSV, Excel or GeoPackage.

The filters are the map's (the same sidebar and URL keys), and every download is written
by :func:`geo_app.export.export_file`, the function behind ``geo-app export -o``, to a
private temporary file (:func:`geo_app.export.export_download`): the same filter gives the
same bytes here and on the command line.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from geo_app import export
from geo_app.errors import GeoAppError
from geo_app.filters import EntityFilter
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
    args = ["geo-app", "export", collection]
    if flt is not None:
        for option, values in (("--kind", flt.kinds), ("--level", flt.levels),
                               ("--status", flt.statuses), ("--board", flt.boards),
                               ("--layer", flt.layers)):
            for value in values:
                args += [option, value]
        if flt.search:
            args += ["--search", flt.search]
    args += ["-o", export.file_name(collection, fmt)]
    return shlex.join(args)


def _collection_choice(lang: str) -> str:
    options = list(export.COLLECTIONS)
    url_choice("export", _COLLECTION_WIDGET, options, "entities")
    choice = st.radio(t("exp_collection", lang), options, horizontal=True,
                      format_func=lambda c: t(f"exp_coll_{c}", lang), key=_COLLECTION_WIDGET)
    write_choice_to_url("export", _COLLECTION_WIDGET, choice, "entities")
    return str(choice)


def download_data(db: Path, collection: str, fmt: str,
                  flt: EntityFilter | None) -> Callable[[], bytes]:
    """What a download button is given as ``data``: a callable Streamlit runs on click.

    The callable writes the export to a private temporary file with the CLI's function and
    returns its bytes, deleting the file (:func:`geo_app.export.export_download`).

    Why a callable, and not the file object: Streamlit (1.67 here) keeps every served file
    as ``bytes`` in its in-memory media store, and reads a file object given as ``data``
    in full on *every run of the page*, for every button; a callable (``on_click="ignore"``,
    deferred) runs only when the user clicks, once per click. So the server holds one full
    copy of a file, only after a click, until Streamlit's media cleanup drops it (at the
    second script run after the click): the bytes returned here, stored without a copy. No
    second copy is kept while the file is made (the export streams to disk) and no
    temporary file outlives the click. Streamlit offers no way to serve a download from
    disk, so the one copy cannot be avoided through ``st.download_button``; the CLI writes
    large exports without it.
    """
    return functools.partial(export.export_download, db, collection, fmt, flt=flt)


def _download_buttons(db: Path, collection: str, flt: EntityFilter | None, count: int,
                      lang: str) -> None:
    columns = st.columns(len(export.FORMATS))
    for fmt, column in zip(export.FORMATS, columns, strict=True):
        too_many = fmt == "xlsx" and count > export.XLSX_MAX_ROWS
        with column:
            st.download_button(
                t("exp_download", lang, fmt=FORMAT_LABELS[fmt]),
                data=download_data(db, collection, fmt, flt),  # made on click
                file_name=export.file_name(collection, fmt), mime=export.MEDIA_TYPES[fmt],
                key=f"export_{fmt}", on_click="ignore", disabled=too_many,
                width="stretch")
            if too_many:
                st.caption(t("exp_xlsx_too_many", lang, n=f"{count:,}"))


def render() -> None:
    """Draw the page."""
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
    _download_buttons(db, collection, used, count, lang)
    st.caption(t("exp_cli", lang))
    st.code(cli_command(collection, "geojson", used), language="bash")
    st.caption(t("exp_schema", lang))
