"""The import page: template, upload, bilingual check report, import, batches with removal.

Read-only unless the visitor has signed in as an editor (:mod:`geo_app.views.account`):
a viewer sees the template, the batches and the change log, and no upload, import or
removal control. The write functions check the actor again (:func:`geo_app.auth.require_editor`).

Every user value is shown through ``st.text`` or ``st.dataframe`` (plain text, never
Markdown): a file named ``{{7*7}}.csv``, ``:smile:.csv`` or ``<img src=x>.csv``
shows as exactly that. Markdown (``st.error``, ``st.success``) carries only this app's
own sentences. Nothing here uses ``unsafe_allow_html``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from geo_app import ingest
from geo_app.auth import Actor
from geo_app.errors import GeoAppError
from geo_app.i18n import t
from geo_app.views.account import account_box
from geo_app.views.common import data_version, db_path, language_switch, md_escape, show_error
from geo_app.vocab import DATUMS, REGISTRY_COLUMNS

UPLOAD_TYPES = ["csv", "txt", "tsv", "xlsx", "geojson", "json"]
_DATUM_OPTIONS: list[str | None] = [None, "wgs84", "gcj02", "bd09"]
_PREVIEW_COLUMNS = ["id", "name_zh", "name_en", "kind", "level", "status", "board", "lon", "lat",
                    "source_lon", "source_lat", "source_datum", "location_precision", "source"]


def render() -> None:
    """Draw the page."""
    lang = language_switch()
    st.title(t("imp_title", lang))
    st.caption(t("imp_intro", lang))
    actor = account_box(lang)
    _flash(lang)
    try:
        db = db_path()
    except GeoAppError as err:
        show_error(err)
        return
    _template(lang)
    if actor.is_editor:
        upload, datum = _upload_widgets(lang)
        if upload is not None:
            _check_and_import(upload.name, upload.getvalue(), datum, db, actor, lang)
    _batches(db, actor, lang)
    _audit(db, lang)


def _flash(lang: str) -> None:
    """The outcome of the previous run's import or removal (kept across ``st.rerun``)."""
    done = st.session_state.pop("imp_flash", None)
    if done is not None:
        key, kwargs = done
        st.success(md_escape(t(key, lang, **kwargs)))


def _template(lang: str) -> None:
    st.download_button(t("imp_template", lang), ingest.TEMPLATE_PATH.read_bytes(),
                       file_name="import_template.csv", mime="text/csv", key="imp_template")
    with st.expander(t("imp_columns", lang)):
        st.dataframe(_columns_table(lang), hide_index=True, width="stretch")


def _columns_table(lang: str) -> pd.DataFrame:
    zh = ingest.COLUMN_ZH
    yes, no = t("imp_yes", lang), t("imp_no", lang)
    return pd.DataFrame({
        "column": list(REGISTRY_COLUMNS),
        t("imp_col_header_zh", lang): [zh[c] for c in REGISTRY_COLUMNS],
        t("imp_col_required", lang): [yes if c in ingest.REQUIRED_COLUMNS else no
                                      for c in REGISTRY_COLUMNS],
    })


def _upload_widgets(lang: str) -> tuple[UploadedFile | None, str | None]:
    generation = st.session_state.setdefault("imp_generation", 0)
    left, right = st.columns([3, 2])
    upload = left.file_uploader(t("imp_upload", lang), type=UPLOAD_TYPES,
                                key=f"imp_file_{generation}", help=t("imp_upload_help", lang))
    datum = right.selectbox(t("imp_datum", lang), _DATUM_OPTIONS, key="imp_datum",
                            format_func=lambda d: _datum_label(d, lang))
    return upload, datum


def _datum_label(datum: str | None, lang: str) -> str:
    if datum is None:
        return t("imp_datum_from_file", lang)
    zh, en = DATUMS[datum.upper()]
    return zh if lang == "zh" else en


@st.cache_data(show_spinner=False, max_entries=4)
def _checked(data: bytes, name: str, datum: str | None, path: str,
             version: str) -> ingest.ImportReport:
    # ``version`` changes with every write, so ids taken meanwhile are checked again
    return ingest.check_upload(data, name, Path(path), datum=datum)


def _check_and_import(name: str, data: bytes, datum: str | None, db: Path, actor: Actor,
                      lang: str) -> None:
    try:
        report = _checked(data, name, datum, str(db), data_version(db))
    except GeoAppError as err:
        show_error(err)
        return
    _show_report(report, lang)
    label = t("imp_do", lang, n=len(report.rows))
    if st.button(label, type="primary", disabled=not report.ok, key="imp_do"):
        try:
            batch = ingest.import_report(report, db, actor=actor)
        except GeoAppError as err:
            show_error(err)
            return
        st.session_state["imp_flash"] = ("imp_done", {"n": len(report.rows), "batch": batch})
        st.session_state["imp_generation"] = st.session_state.get("imp_generation", 0) + 1
        st.rerun()


def _show_report(report: ingest.ImportReport, lang: str) -> None:
    st.subheader(t("imp_report", lang))
    st.text(f"{'文件' if lang == 'zh' else 'File'}: {report.file_name}")
    (st.success if report.ok else st.error)(md_escape(report.summary(lang, with_name=False)))
    cols = st.columns(4)
    cols[0].metric(t("imp_rows", lang), len(report.rows))
    cols[1].metric(t("imp_errors", lang), len(report.errors))
    cols[2].metric(t("imp_warnings", lang), len(report.warnings))
    cols[3].metric(t("imp_encoding", lang), report.encoding or "–")
    if report.problems:
        st.dataframe(report.table(), hide_index=True, width="stretch", key="imp_problems")
    if len(report.rows):
        st.caption(t("imp_preview", lang))
        preview = pd.DataFrame(report.rows[_PREVIEW_COLUMNS]).head(500)
        st.dataframe(preview, hide_index=True, width="stretch", key="imp_preview")


_BATCH_COLUMNS = ["batch_id", "file_name", "imported_at", "made_by", "target", "row_count",
                  "rows_present", "source_datum"]
_AUDIT_COLUMNS = ["changed_at", "action", "batch_id", "made_by", "target", "file_name", "row_count"]


def _change_table(load: Callable[[], pd.DataFrame], columns: list[str], *, title: str,
                  empty: str, key: str, lang: str) -> pd.DataFrame | None:
    """A table of changes (batches or the audit log) under ``title``; returns what it shows,
    or None when there is nothing (or the database cannot be read: the error is shown)."""
    st.subheader(t(title, lang))
    try:
        table = load()
    except GeoAppError as err:
        show_error(err)
        return None
    if table.empty:
        st.caption(t(empty, lang))
        return None
    st.dataframe(table[columns], hide_index=True, width="stretch", key=key,
                 column_config={"made_by": t("imp_col_made_by", lang)})
    return table


def _batches(db: Path, actor: Actor, lang: str) -> None:
    batches = _change_table(lambda: ingest.list_batches(db), _BATCH_COLUMNS, title="imp_batches",
                            empty="imp_no_batches", key="imp_batches", lang=lang)
    if batches is not None and actor.is_editor:
        _remove_widgets(db, batches, actor, lang)


def _audit(db: Path, lang: str) -> None:
    """The change log: every import and removal, with who made it and when."""
    _change_table(lambda: ingest.list_audit(db), _AUDIT_COLUMNS, title="imp_audit",
                  empty="imp_no_audit", key="imp_audit", lang=lang)


def _remove_widgets(db: Path, batches: pd.DataFrame, actor: Actor, lang: str) -> None:
    names = dict(zip(batches["batch_id"], batches["file_name"], strict=True))
    choice = st.selectbox(t("imp_remove_choose", lang), list(names), index=None,
                          format_func=lambda b: f"{b} · {names[b]}", key="imp_remove_choice")
    confirm = st.checkbox(t("imp_remove_confirm", lang), key="imp_remove_confirm")
    if st.button(t("imp_remove", lang), disabled=not (choice and confirm), key="imp_remove"):
        try:
            removed = ingest.remove_batch(db, str(choice), actor=actor)
        except GeoAppError as err:
            show_error(err)
            return
        st.session_state["imp_flash"] = ("imp_removed", {"n": removed, "batch": choice})
        for key in ("imp_remove_choice", "imp_remove_confirm"):
            st.session_state.pop(key, None)
        st.rerun()
