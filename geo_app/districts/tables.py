"""Tables of the comparison page beside the ranking: registry counts by kind or level, the
high-tech zones, every public or user figure, and the 板块 × indicator matrix."""

from __future__ import annotations

import pandas as pd

from geo_app.districts.data import (
    CompareData,
    _comparators,
    _tr,
    current_figures,
    format_number,
    header,
    indicator_label,
)
from geo_app.districts.metrics import counted_entities
from geo_app.vocab import BOARDS, CITY, KINDS, LEVELS, STATUSES, label


def counts_by(data: CompareData, column: str, lang: str) -> pd.DataFrame:
    """Registry entities per 板块 (rows, all ten) by ``kind`` or ``level`` (columns)."""
    vocab = {"kind": KINDS, "level": LEVELS, "status": STATUSES}[column]
    ents = counted_entities(data.entities)
    table = pd.crosstab(ents["board"], ents[column]).reindex(index=list(BOARDS), fill_value=0)
    table = table.reindex(columns=[k for k in vocab if k in table.columns])
    table.columns = [label(vocab, c, lang) for c in table.columns]
    table.index.name = header("board", lang)
    return table.astype(int)


def zone_table(data: CompareData, lang: str) -> pd.DataFrame:
    """High-tech zones per 板块 with level and status (plan items included, marked)."""
    ents = data.entities[data.entities["kind"] == "high_tech_zone"].copy()
    ents["_order"] = ents["board"].map({b: i for i, b in enumerate(BOARDS)})
    ents = ents.sort_values(["_order", "id"], na_position="last")
    name = "name_en" if lang == "en" else "name_zh"
    return pd.DataFrame({
        header("board", lang): ents["board"].fillna("").replace("", "—"),
        ("Zone" if lang == "en" else "高新区"): ents[name].fillna(ents["name_zh"]),
        ("Level" if lang == "en" else "级别"): [label(LEVELS, v, lang) for v in ents["level"]],
        ("Status" if lang == "en" else "状态"): [label(STATUSES, v, lang) for v in ents["status"]],
        ("Source" if lang == "en" else "来源"): ents["source"] if "source" in ents else "",
    }).reset_index(drop=True)


def indicator_table(data: CompareData, lang: str) -> pd.DataFrame:
    """Every public or user figure, 全市 first, with year, source, origin and whether it is
    the figure in use (a user import supersedes a shipped figure of the same year)."""
    bi = data.board_indicators.copy()
    in_use = current_figures(bi).index
    order = {CITY: -1, **{b: i for i, b in enumerate(BOARDS)}}
    bi["_o"] = bi["board"].map(order)
    bi["_in_use"] = bi.index.isin(in_use)
    bi = bi.sort_values(["_o", "indicator", "year"], kind="stable")
    en = lang == "en"
    return pd.DataFrame({
        header("board", lang): bi["board"],
        header("metric", lang): [indicator_label(c, data.indicators, lang)
                                 for c in bi["indicator"]],
        header("metric_id", lang): bi["indicator"],
        header("year", lang): bi["year"].astype(str),
        header("comparator", lang): _comparators(bi),
        header("value", lang): bi["value"].astype(float),
        header("unit", lang): bi["unit"],
        header("source", lang): bi["source"],
        header("notes", lang): bi["notes"].fillna(""),
        ("Origin" if en else "来源类型"): [_tr("user" if o == "user" else "shipped", lang)
                                        for o in bi["origin"]],
        ("In use" if en else "在用"): bi["_in_use"],
    }).reset_index(drop=True)


def indicator_matrix(data: CompareData, lang: str) -> pd.DataFrame:
    """全市 and the ten 板块 × indicators, latest figure per cell, ``无数据`` where none."""
    figs = current_figures(data.board_indicators)
    figs = (figs.sort_values("year", kind="stable")
            .drop_duplicates(["board", "indicator"], keep="last"))
    figs = figs.assign(comparator=_comparators(figs))
    codes = list(dict.fromkeys(data.board_indicators["indicator"]))
    rows = [CITY, *BOARDS]
    cell = {(r.board, r.indicator): format_number(r.value, r.unit, comparator=r.comparator,
                                                  year=str(r.year), lang=lang)
            for r in figs.itertuples()}
    gap = format_number(None, lang=lang)
    matrix = pd.DataFrame({indicator_label(c, data.indicators, lang):
                           [cell.get((b, c), gap) for b in rows] for c in codes}, index=rows)
    matrix.index.name = header("board", lang)
    return matrix
