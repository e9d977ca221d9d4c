"""The 板块 comparison page: ranking and choropleth, side by side, plan vs result, figures.

The choropleth is a Folium map drawn by the browser (:func:`geo_app.maps.build_choropleth`,
sealed, Leaflet served by the app); every chart and label follows the UI language.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from geo_app import assets, districts, ingest, maps
from geo_app.auth import Actor
from geo_app.errors import GeoAppError, ImportValidationError
from geo_app.filters import parse_values
from geo_app.i18n import t
from geo_app.views.account import current_actor
from geo_app.views.common import (
    data_version,
    db_path,
    language_switch,
    md_escape,
    show_error,
    url_choice,
    write_choice_to_url,
)
from geo_app.vocab import BOARDS, label

_SIDE_DEFAULT_BOARDS = ("苏州工业园区", "苏州高新区", "昆山市")
_SIDE_DEFAULT_METRICS = ("entities", "national_platforms", "density", "ind:gdp", "ind:rd_share_gdp")
_MAP_HEIGHT = 520


def render() -> None:
    """Draw the page."""
    lang = language_switch()
    st.title(t("cmp_title", lang))
    try:
        path = db_path()
        data = _load(str(path), data_version(path))
    except GeoAppError as err:
        show_error(err)
        return
    st.caption(t("cmp_intro", lang))
    rank_tab, side_tab, plan_tab, figures_tab = st.tabs(
        [t(k, lang) for k in ("cmp_tab_rank", "cmp_tab_side", "cmp_tab_plan", "cmp_tab_figures")])
    with rank_tab:
        _ranking(data, lang)
    with side_tab:
        _side_by_side(data, lang)
    with plan_tab:
        _plan(data, lang)
    with figures_tab:
        _figures(data, lang, path)


@st.cache_data(show_spinner=False, max_entries=4)
def _load(path: str, version: str) -> districts.CompareData:
    return districts.load_compare_data(Path(path))


def _metric_choice(data: districts.CompareData, lang: str) -> tuple[str, str | None]:
    metrics = districts.list_metrics(data)
    labels = {m.key: m.label(lang) for m in metrics}
    keys = list(labels)
    default = districts.default_metric(data)
    url_choice("metric", "cmp_metric", keys, default)
    key: str = st.selectbox(t("cmp_metric", lang), keys, format_func=lambda k: labels[k],
                            key="cmp_metric") or default
    write_choice_to_url("metric", "cmp_metric", key, default)
    year = None
    if key.startswith("ind:"):
        bi = data.board_indicators
        years = sorted({str(y) for y in bi.loc[(bi["indicator"] == key[4:])
                                               & bi["board"].isin(list(BOARDS)), "year"]},
                       reverse=True)
        choice = st.selectbox(t("cmp_year", lang), ["", *years], key=f"cmp_year_{key}",
                              format_func=lambda y: y or t("cmp_latest", lang))
        year = choice or None
    return key, year


def _downloads(table: pd.DataFrame, name: str, lang: str, key: str) -> None:
    left, right = st.columns(2)
    left.download_button(t("cmp_download_csv", lang), districts.table_to_csv(table),
                         file_name=f"{name}.csv", mime="text/csv", key=f"{key}_csv",
                         on_click="ignore")
    right.download_button(t("cmp_download_xlsx", lang), districts.table_to_xlsx(table),
                          file_name=f"{name}.xlsx", key=f"{key}_xlsx", on_click="ignore",
                          mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _gap_note(table: pd.DataFrame, lang: str) -> None:
    value, board = (districts.header(c, lang) for c in ("value", "board"))
    gaps = table.loc[table[value].isna(), board].tolist()
    if gaps:
        st.caption(t("cmp_gaps", lang, boards="、".join(gaps) if lang == "zh" else ", ".join(gaps)))
    years = districts.mixed_years(table, lang)
    if years:
        st.warning(t("cmp_mixed_years", lang, years=", ".join(years)))


def _ranking(data: districts.CompareData, lang: str) -> None:
    key, year = _metric_choice(data, lang)
    table = districts.comparison_table(data, [key], year=year, lang=lang)
    st.dataframe(table, hide_index=True, width="stretch", placeholder="—", key="cmp_rank_table")
    _gap_note(table, lang)
    if districts.get_metric(data, key).group == "registry":
        st.caption(t("cmp_registry_note", lang))
    _downloads(table, f"compare-{key.replace(':', '-')}", lang, "cmp_rank")
    st.subheader(t("cmp_map_title", lang))
    values = districts.metric_values(data, key, year=year, lang=lang)
    _choropleth(data, districts.get_metric(data, key), values, lang)


def _choropleth(data: districts.CompareData, metric: districts.Metric, values: pd.DataFrame,
                lang: str) -> None:
    """The interactive choropleth; the 板块 it cannot paint (SIP) listed below it."""
    try:
        assets.ensure_assets()  # Leaflet copied into static/vendor once per process
    except GeoAppError as err:
        show_error(err)
        return
    units = [u for u in values["unit"] if u]
    missing = districts.boards_without_polygon(data, values, lang=lang)
    fmap = maps.build_choropleth(
        districts.choropleth_gdf(data, values, lang=lang), title=metric.label(lang),
        unit=max(set(units), key=units.count) if units else "", lang=lang,
        lower_is_better=metric.lower_is_better, unpainted=list(missing["name"]),
        boundaries=data.boundaries, water=data.water, height=_MAP_HEIGHT,
        asset_base=assets.vendor_url(str(st.get_option("server.baseUrlPath") or "")))
    st_folium(fmap, height=_MAP_HEIGHT, use_container_width=True, returned_objects=[],
              key="cmp_choropleth")
    st.caption(t("cmp_map_note2", lang))
    if len(missing):
        st.markdown(f"**{t('cmp_unpainted_title', lang)}**")
        st.dataframe(pd.DataFrame({
            districts.header("board", lang): missing["name"],
            districts.header("value", lang): missing["value_text"],
            districts.header("year", lang): missing["year"],
            districts.header("source", lang): missing["source"],
            districts.header("notes", lang): [
                t("cmp_unpainted_shared" if r == "shared" else "cmp_unpainted_note", lang)
                for r in missing["reason"]],
        }), hide_index=True, width="stretch", key="cmp_unpainted")


def _small_multiples(table: pd.DataFrame, boards: list[str], lang: str) -> None:
    """One bar chart per metric, 板块 in the chosen order; qualified value, year, source on
    hover."""
    m, b, v, u, y, s, c = (districts.header(k, lang) for k in
                           ("metric", "board", "value", "unit", "year", "source", "comparator"))
    shown = districts.header("board_en", lang) if lang == "en" else b
    order = [label(BOARDS, x, lang) for x in boards]
    names = list(dict.fromkeys(table[m]))
    cols = st.columns(min(3, len(names)) or 1)
    for i, name in enumerate(names):
        part = table[(table[m] == name)]
        known = part[part[v].notna()].assign(value_text=lambda f: [
            districts.format_number(x, unit, comparator=cmp or "=", lang=lang)
            for x, unit, cmp in zip(f[v], f[u], f[c], strict=True)])
        chart = alt.Chart(known).mark_bar().encode(
            x=alt.X(f"{shown}:N", sort=order, title=t("cmp_chart_board", lang),
                    axis=alt.Axis(labelAngle=-30)),
            y=alt.Y(f"{v}:Q", title=str(part[u].iloc[0]) if len(part) else v),
            tooltip=[alt.Tooltip(f"{shown}:N", title=t("cmp_chart_board", lang)),
                     alt.Tooltip("value_text:N", title=t("cmp_chart_value", lang)),
                     alt.Tooltip(f"{y}:N", title=y), alt.Tooltip(f"{s}:N", title=s)],
        ).properties(title=name, height=220)
        with cols[i % len(cols)]:
            st.altair_chart(chart, width="stretch")
            gaps = part.loc[part[v].isna(), shown].tolist()
            if gaps:
                st.caption(t("cmp_gaps", lang, boards=("、" if lang == "zh" else ", ").join(gaps)))


def _side_by_side(data: districts.CompareData, lang: str) -> None:
    metrics = districts.list_metrics(data)
    labels = {mt.key: mt.label(lang) for mt in metrics}
    if "cmp_side_boards" not in st.session_state:
        from_url, _ = parse_values("board", st.query_params.get_all("cmp"))  # unknown: dropped
        st.session_state["cmp_side_boards"] = list(from_url[:4] or _SIDE_DEFAULT_BOARDS)
    chosen = st.multiselect(t("cmp_boards", lang), list(BOARDS), max_selections=4,
                            format_func=lambda v: label(BOARDS, v, lang), key="cmp_side_boards")
    if st.query_params.get("cmp") != ",".join(chosen):
        st.query_params["cmp"] = ",".join(chosen)
    keys = st.multiselect(t("cmp_metrics", lang), list(labels),
                          default=[k for k in _SIDE_DEFAULT_METRICS if k in labels],
                          format_func=lambda k: labels[k], key="cmp_side_metrics")
    if len(chosen) < 2 or not keys:
        st.info(t("cmp_pick_two", lang))
        return
    table = districts.comparison_table(data, keys, boards=chosen, lang=lang)
    _small_multiples(table, chosen, lang)
    st.markdown(f"**{t('cmp_profile', lang)}**")
    st.dataframe(districts.profile_table(table, lang), width="stretch", placeholder="—")
    st.markdown(f"**{t('cmp_long', lang)}**")
    st.dataframe(table, hide_index=True, width="stretch", placeholder="—", key="cmp_side_table")
    _downloads(table, "compare-side-by-side", lang, "cmp_side")
    board_col = districts.header("board", lang)
    for key, column in (("cmp_counts_kind2", "kind"), ("cmp_counts_level2", "level")):
        with st.expander(t(key, lang)):
            st.dataframe(districts.counts_by(data, column, lang).loc[chosen], width="stretch")
    with st.expander(t("cmp_zones", lang), expanded=True):
        zones = districts.zone_table(data, lang)
        st.dataframe(zones[zones[board_col].isin(chosen)], hide_index=True, width="stretch")


def _plan(data: districts.CompareData, lang: str) -> None:
    st.subheader(t("cmp_plan_city", lang))
    st.caption(t("cmp_plan_note", lang))
    progress = districts.plan_progress(data, lang)
    for r in progress[progress["actual_2022"].notna()].itertuples():
        text = t("cmp_progress", lang, indicator=md_escape(r.indicator),
                 actual=md_escape(r.actual_2022_text), target=md_escape(r.target_text))
        if not math.isnan(r.progress):
            pct = f"{r.progress * 100:.0f}%" if r.met is not None else t("cmp_met_unknown", lang)
            st.progress(min(1.0, max(0.0, r.progress)), text=f"{text} · {pct}")
        else:
            st.markdown(f"{text} · _{t('cmp_unit_differs', lang)}_")
        parts = [t("cmp_sources", lang, actual=r.actual_2022_source, target=r.target_source)]
        if not math.isnan(r.actual_2023):
            parts.append(t("cmp_later", lang, value=districts.format_number(r.actual_2023),
                           source=r.actual_2023_source))
        if r.notes:
            parts.append(r.notes)
        st.caption(md_escape(" · ".join(parts)))
    rest = progress[progress["actual_2022"].isna()]
    st.markdown(f"**{t('cmp_plan_no2022', lang, n=len(rest))}**")
    st.dataframe(pd.DataFrame({
        t("cmp_metric", lang): rest["indicator"],
        t("cmp_col_target", lang): rest["target_text"],
        "2022": rest["actual_2022_text"],
        districts.header("source", lang): rest["target_source"],
        districts.header("notes", lang): rest["notes"],
    }), hide_index=True, width="stretch", key="cmp_plan_no2022")
    st.subheader(t("cmp_plan_boards", lang))
    items = districts.plan_items(data, lang)
    st.dataframe(pd.DataFrame({
        districts.header("board", lang): items["board"],
        t("cmp_col_item", lang): items["item"],
        t("cmp_col_section", lang): items["section"],
        t("status", lang): items["status_label"],
        t("cmp_col_evidence", lang): items["evidence"],
        districts.header("source", lang): items["source"],
    }), hide_index=True, width="stretch", placeholder="—", key="cmp_plan_items")
    st.markdown(f"**{t('cmp_plan_counts', lang)}**")
    in_boards = items[items["board"].isin(list(BOARDS))]
    counts = pd.crosstab(in_boards["board"], in_boards["status_label"]).reindex(list(BOARDS),
                                                                                 fill_value=0)
    counts.index.name = districts.header("board", lang)
    counts.columns.name = None
    st.dataframe(counts, width="stretch")


def _figures(data: districts.CompareData, lang: str, path: Path) -> None:
    st.subheader(t("cmp_figures_matrix", lang))
    st.dataframe(districts.indicator_matrix(data, lang), width="stretch", key="cmp_matrix")
    st.markdown(f"**{t('cmp_figures_all', lang)}**")
    figures = districts.indicator_table(data, lang)
    st.dataframe(figures, hide_index=True, width="stretch", placeholder="—", key="cmp_figures")
    _downloads(figures, "board-indicators", lang, "cmp_figs")
    st.subheader(t("cmp_import", lang))
    st.markdown(t("cmp_import_help", lang))
    st.download_button(t("cmp_template", lang), ingest.USER_TEMPLATE.encode("utf-8"),
                       file_name="indicators-template.csv", mime="text/csv", key="cmp_template")
    try:
        actor = current_actor()
    except GeoAppError as err:
        show_error(err)
        return
    if not actor.is_editor:  # read-only: no upload (the core refuses a viewer anyway)
        st.caption(t("cmp_import_editors", lang))
        return
    _importer(data, lang, path, actor)


def _importer(data: districts.CompareData, lang: str, path: Path, actor: Actor) -> None:
    done = st.session_state.setdefault("cmp_imported", {})
    if "cmp_flash" in st.session_state:
        st.success(st.session_state.pop("cmp_flash"))
    upload = st.file_uploader(t("cmp_upload", lang), type=["csv"], key="cmp_upload",
                              max_upload_size=2)
    if upload is None:
        return
    raw = upload.getvalue()
    digest = hashlib.sha256(raw).hexdigest()
    if digest in done:
        st.info(t("cmp_already", lang, batch=done[digest]))
        return
    try:
        frame = ingest.parse_user_indicators(raw, data.board_indicators)
    except ImportValidationError as err:
        show_error(err)
        if err.problems:
            st.markdown(f"**{t('cmp_problems', lang)}**")
            st.dataframe(pd.DataFrame(err.problems), hide_index=True, key="cmp_problems")
        return
    st.success(t("cmp_valid", lang, n=len(frame)))
    st.dataframe(frame, hide_index=True, key="cmp_preview")
    if st.button(t("cmp_do_import", lang, n=len(frame)), key="cmp_do_import", type="primary"):
        try:
            rows, batch = ingest.import_user_indicators(path, raw, upload.name, actor=actor)
        except GeoAppError as err:
            show_error(err)
            return
        done[digest] = batch
        st.session_state["cmp_flash"] = t("cmp_imported", lang, n=len(rows), batch=batch)
        _load.clear()
        st.rerun()
