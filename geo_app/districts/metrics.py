"""Metrics that rank the ten 板块 (registry counts, area, layers, plan, public figures) and
the comparison table shared by the page, its downloads and ``geo-app compare``."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geo_app.districts.data import (
    PLAN_STATUSES,
    CompareData,
    _comparators,
    _tr,
    current_figures,
    format_number,
    header,
    indicator_label,
    unit_label,
)
from geo_app.districts.plan import plan_items
from geo_app.errors import FilterError
from geo_app.vocab import BOARDS, CITY, KINDS, LEVELS

#: Kinds counted as "platforms" for the national-platform metric (zones, universities,
#: firms and core areas are counted by their own metrics).
PLATFORM_KINDS = ("laboratory", "technology_innovation_center", "research_institute",
                  "innovation_platform", "incubator", "offshore_innovation_center",
                  "international_cooperation", "major_facility")
#: The metric the page and ``geo-app compare`` show first: a published figure, the one of
#: ``data/board_indicators.csv`` with values for the most 板块 (GDP, six of ten; see
#: docs/indicators.md), never a count of this project's own registry.
DEFAULT_METRIC = "ind:gdp"
#: How counts of this map's registry are named wherever they are shown.
REGISTRY_LABEL = ("本图登记主体数（非官方统计）",
                  "Entities in this map's registry (not an official statistic)")
# Caveats of the county polygon that stands for a 板块 (from data/boards.csv notes).
_POLYGON_NOTES: Mapping[str, tuple[str, str]] = {
    "苏州工业园区": ("无官方多边形：面积占比按示意范围计算",
                     "no official polygon: area share of its schematic area"),
    "苏州高新区": ("用虎丘区多边形减去园区示意范围（与园区相邻的边界为示意）",
                 "the 虎丘区 polygon minus SIP's schematic area (the edge with SIP is schematic)"),
    "吴中区": ("吴中区多边形减去园区示意范围（与园区相邻的边界为示意），含部分太湖水面",
             "the 吴中区 polygon minus SIP's schematic area (the edge with SIP is schematic), "
             "incl. part of Taihu"),
}
#: The columns of a comparison table, in order (shown under :func:`header`).
_COLUMNS = ("metric_id", "metric", "rank", "board", "board_en", "comparator", "value", "unit",
            "year", "source", "notes")


@dataclass(frozen=True)
class Metric:
    """One comparable quantity per 板块.

    Attributes
    ----------
    key
        Stable id used by the URL, the CLI and exports (``entities``, ``kind:laboratory``,
        ``ind:gdp``...).
    label_zh, label_en
        Display names.
    group
        ``registry``, ``area``, ``layer``, ``plan`` or ``public``.
    lower_is_better
        Ranks ascend instead of descend (positions in a ranking).
    """

    key: str
    label_zh: str
    label_en: str
    group: str
    lower_is_better: bool = False

    def label(self, lang: str) -> str:
        """The name in ``lang``."""
        return self.label_en if lang == "en" else self.label_zh


def _registry(key: str, what_zh: str, what_en: str) -> Metric:
    """A count of this map's own registry, labelled as such (never an official statistic)."""
    if not what_zh:
        zh, en = REGISTRY_LABEL
    else:
        zh = f"本图登记主体数：{what_zh}（非官方统计）"
        en = f"Entities in this map's registry: {what_en} (not an official statistic)"
    return Metric(key, zh, en, "registry")


def list_metrics(data: CompareData) -> list[Metric]:
    """Every metric that can rank the ten 板块, in display order."""
    out = [_registry(key, zh, en) for key, zh, en in (
        ("entities", "", ""),
        ("national_platforms", "国家级平台", "national-level platforms"),
        ("high_tech_zones", "高新区（省级以上）", "high-tech zones (provincial+)"),
        ("high_tech_zones_national", "国家级高新区", "national high-tech zones"),
        *((f"kind:{k}", zh, en) for k, (zh, en) in KINDS.items()),
        *((f"level:{k}", zh, en) for k, (zh, en) in LEVELS.items()),
    )]
    out += [
        Metric("land_area_km2", "土地面积（km²）", "Land area (km²)", "area"),
        Metric("density", f"每百平方公里{REGISTRY_LABEL[0]}", f"{REGISTRY_LABEL[1]} per 100 km²",
               "area"),
    ]
    for row in data.layer_summary.itertuples():
        out.append(Metric(f"layer_area_share:{row.id}", f"{row.name_zh}面积中本板块占比（%）",
                          f"Share of {row.name_en} area in the 板块 (%)", "layer"))
        out.append(Metric(f"layer_entity_share:{row.id}", f"{row.name_zh}主体中本板块占比（%）",
                          f"Share of {row.name_en} entities in the 板块 (%)", "layer"))
    out += [Metric(f"plan:{k}", f"板块计划项：{zh}", f"板块 plan items: {en}", "plan")
            for k, (zh, en) in PLAN_STATUSES.items()]
    bi = data.board_indicators
    codes = list(dict.fromkeys(bi.loc[bi["board"] != CITY, "indicator"]))
    for code in codes:
        units = set(bi.loc[bi["indicator"] == code, "unit"])
        out.append(Metric(f"ind:{code}", indicator_label(code, data.indicators, "zh"),
                          indicator_label(code, data.indicators, "en"), "public",
                          lower_is_better=units == {"rank"}))
    return out


def default_metric(data: CompareData) -> str:
    """:data:`DEFAULT_METRIC` when the data hold it, else the public figure with values for
    the most 板块, else the registry count (a database without public figures)."""
    bi = data.board_indicators
    in_boards = bi[bi["board"].isin(list(BOARDS)) & bi["value"].notna()]
    coverage = in_boards.groupby("indicator", sort=False)["board"].nunique()
    if DEFAULT_METRIC.removeprefix("ind:") in coverage.index:
        return DEFAULT_METRIC
    if len(coverage):
        return f"ind:{coverage.idxmax()}"
    return "entities"


def get_metric(data: CompareData, key: str) -> Metric:
    """The metric named ``key``; :class:`FilterError` listing the choices if there is none."""
    for metric in list_metrics(data):
        if metric.key == key:
            return metric
    keys = ", ".join(m.key for m in list_metrics(data))
    msg = f"Unknown metric {key!r}. Choose one of: {keys} / 未知指标 {key!r}"
    raise FilterError(msg)


def _blank() -> pd.DataFrame:
    boards = list(BOARDS)
    return pd.DataFrame({"board": boards, "value": [np.nan] * len(boards), "unit": "",
                         "year": "", "source": "", "notes": ""})


def counted_entities(entities: pd.DataFrame) -> pd.DataFrame:
    """Entities that count for a 板块: placed in one of the ten and not a plan item."""
    board = entities["board"].fillna("")
    return entities[board.isin(list(BOARDS)) & (entities["status"] != "planned")]


def _count(data: CompareData, mask_fn: Any, lang: str) -> pd.DataFrame:
    ents = counted_entities(data.entities)
    ents = ents[mask_fn(ents)]
    out = _blank()
    out["value"] = out["board"].map(ents.groupby("board").size()).fillna(0).astype(float)
    out["unit"] = "个" if lang == "zh" else "count"
    out["year"] = _tr("registry", lang)
    out["source"] = _tr("src_count", lang)
    return out


def _registry_metric(data: CompareData, key: str, lang: str) -> pd.DataFrame:
    hz = "high_tech_zone"
    masks = {
        "entities": lambda e: pd.Series(True, index=e.index),
        "national_platforms": lambda e: (e["level"] == "national") & e["kind"].isin(PLATFORM_KINDS),
        "high_tech_zones": lambda e: e["kind"] == hz,
        "high_tech_zones_national": lambda e: (e["kind"] == hz) & (e["level"] == "national"),
    }
    if key in masks:
        return _count(data, masks[key], lang)
    column, value = key.split(":", 1)
    return _count(data, lambda e: e[column] == value, lang)


def _area_metric(data: CompareData, key: str, lang: str) -> pd.DataFrame:
    boards = data.boards.set_index("name_zh")
    out = _blank()
    area = out["board"].map(boards["land_area_km2"]).astype(float)
    area_src = out["board"].map(boards["area_source"]).fillna("")
    area_year = out["board"].map(boards["area_year"]).fillna("").astype(str)
    if key == "land_area_km2":
        out["value"], out["unit"], out["year"], out["source"] = area, "km²", area_year, area_src
    else:
        counts = _count(data, lambda e: pd.Series(True, index=e.index), lang)["value"]
        out["value"] = (counts / area * 100).round(3)
        out["unit"] = "个/100 km²" if lang == "zh" else "per 100 km²"
        out["year"] = [_tr("registry_area", lang, year=y) for y in area_year]
        out["source"] = [_tr("src_density", lang, count=_tr("src_count", lang), area=s)
                         for s in area_src]
    out.loc[out["value"].isna(), "notes"] = _tr("no_data", lang)
    return out


def _layer_metric(data: CompareData, key: str, lang: str) -> pd.DataFrame:
    kind, layer_id = key.split(":", 1)
    rows = data.layer_by_board[data.layer_by_board["layer_id"] == layer_id].set_index("board")
    summary = data.layer_summary.set_index("id")
    spec = summary.loc[layer_id, "spec_file"] if "spec_file" in summary.columns else layer_id
    county = data.boards.set_index("name_zh")["county_adcode"]
    bound_src = data.boundaries.set_index("adcode")["source"]
    out = _blank()
    column = "area_share" if kind == "layer_area_share" else "entity_share"
    out["value"] = (out["board"].map(rows[column]).astype(float) * 100).round(2)
    out["unit"] = "%"
    out["year"] = _tr("layer_year", lang)
    out["source"] = [_tr("src_layer", lang, spec=spec, bounds=bound_src.get(county.get(b), "—"))
                     for b in out["board"]]
    notes = []
    for board, value in zip(out["board"], out["value"], strict=True):
        note = ""
        if kind == "layer_area_share" and board in _POLYGON_NOTES:
            note = _POLYGON_NOTES[board][1 if lang == "en" else 0]
        elif math.isnan(value):
            note = _tr("no_layer_entities", lang)
        notes.append(note)
    out["notes"] = notes
    return out


def _plan_metric(data: CompareData, key: str, lang: str) -> pd.DataFrame:
    status = key.split(":", 1)[1]
    items = plan_items(data, lang="zh")
    items = items[items["board"].isin(list(BOARDS)) & (items["status"] == status)]
    out = _blank()
    out["value"] = out["board"].map(items.groupby("board").size()).fillna(0).astype(float)
    out["unit"] = "项" if lang == "zh" else "items"
    out["year"] = _tr("plan_year", lang)
    out["source"] = _tr("src_plan", lang)
    return out


def _public_metric(data: CompareData, key: str, year: str | None, lang: str) -> pd.DataFrame:
    code = key.split(":", 1)[1]
    figs = current_figures(data.board_indicators)
    figs = figs[(figs["indicator"] == code) & figs["board"].isin(list(BOARDS))]
    if year:
        figs = figs[figs["year"].astype(str) == str(year)]
    figs = figs.sort_values("year", kind="stable").drop_duplicates("board", keep="last")
    figs = figs.set_index("board")
    out = _blank()
    figs["comparator"] = _comparators(figs)
    for column in ("value", "unit", "year", "source", "notes", "comparator"):
        mapped = out["board"].map(figs[column])
        out[column] = mapped.astype(float) if column == "value" else mapped.fillna("").astype(str)
    gap = out["value"].isna()
    out.loc[gap, "notes"] = _tr("no_data", lang)
    out.loc[gap, ["unit", "year", "source"]] = ""
    if len(figs):
        out.loc[gap, "unit"] = str(figs["unit"].iloc[0])
    out["unit"] = [unit_label(u, lang) for u in out["unit"]]
    return out


def metric_values(data: CompareData, key: str, *, year: str | None = None,
                  lang: str = "zh") -> pd.DataFrame:
    """The ten 板块 (in vocabulary order) with ``comparator, value, unit, year, source, notes``.

    ``comparator`` is the value's qualifier (``=``, ``>``, ``≈``…; empty for a gap). A value
    nobody has published is ``NaN`` and its note says so; counts from the registry are real
    counts (0 means no entity of that sort is registered).
    """
    metric = get_metric(data, key)
    if metric.group == "registry":
        out = _registry_metric(data, key, lang)
    elif metric.group == "area":
        out = _area_metric(data, key, lang)
    elif metric.group == "layer":
        out = _layer_metric(data, key, lang)
    elif metric.group == "plan":
        out = _plan_metric(data, key, lang)
    else:
        out = _public_metric(data, key, year, lang)
    out["value"] = out["value"].astype(float)
    out["comparator"] = _comparators(out).where(out["value"].notna(), "")
    for column in ("unit", "year", "source", "notes"):
        out[column] = out[column].fillna("").astype(str)
    return out.reset_index(drop=True)


def rank_values(values: pd.Series, *, lower_is_better: bool = False) -> pd.Series:
    """Competition ranks (1, 2, 2, 4) of the known values; unknown values get no rank.

    >>> rank_values(pd.Series([5.0, float("nan"), 7.0, 5.0])).tolist()
    [2, <NA>, 1, 2]
    """
    ranks = values.rank(method="min", ascending=lower_is_better, na_option="keep")
    return ranks.astype("Int64")


def comparison_table(data: CompareData, metrics: Sequence[str], *,
                     boards: Sequence[str] | None = None, year: str | None = None,
                     lang: str = "zh") -> pd.DataFrame:
    """The comparison table shared by the page, its downloads and ``geo-app compare``.

    One block of rows per metric: the ten 板块 ranked (ranks are among all ten; unknown
    values come last without a rank), then restricted to ``boards`` if given. Columns are
    localised (:func:`header`).
    """
    unknown = [b for b in (boards or ()) if b not in BOARDS]
    if unknown:
        msg = f"Unknown 板块 {unknown[0]!r}; choose from {', '.join(BOARDS)} / 未知板块"
        raise FilterError(msg)
    blocks = []
    for key in metrics or [default_metric(data)]:
        metric = get_metric(data, key)
        vals = metric_values(data, key, year=year, lang=lang)
        vals["rank"] = rank_values(vals["value"], lower_is_better=metric.lower_is_better)
        vals["metric_id"] = key
        vals["metric"] = metric.label(lang)
        vals["board_en"] = [BOARDS[b][1] for b in vals["board"]]
        vals["_order"] = np.arange(len(vals))
        vals = vals.sort_values(["rank", "_order"], na_position="last", kind="stable")
        if boards:
            vals = vals[vals["board"].isin(list(boards))]
        blocks.append(vals[list(_COLUMNS)])
    table = pd.concat(blocks, ignore_index=True)
    return table.rename(columns={c: header(c, lang) for c in _COLUMNS})


def profile_table(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Pivot a comparison table into metrics × 板块 with cells like ``>2,700 家 (2022)``."""
    m, b = header("metric", lang), header("board", lang)
    v, u, y = header("value", lang), header("unit", lang), header("year", lang)
    c = header("comparator", lang)
    cmps = table[c] if c in table else pd.Series("=", index=table.index)
    cells = [format_number(val, unit, comparator=cmp or "=", year=yr, lang=lang)
             for val, unit, yr, cmp in zip(table[v], table[u], table[y], cmps, strict=True)]
    wide = table.assign(_cell=cells).pivot_table(index=m, columns=b, values="_cell",
                                                  aggfunc="first", sort=False)
    wide.columns.name = None
    return wide


def mixed_years(table: pd.DataFrame, lang: str = "zh") -> list[str]:
    """The distinct years of the known values in a comparison table, if more than one.

    Ranking figures of different years against each other deserves a warning (the page
    shows one, the CLI prints one).
    """
    value, year = header("value", lang), header("year", lang)
    years = sorted({str(y) for y, v in zip(table[year], table[value], strict=True)
                    if y and not pd.isna(v)})
    if len(years) > 1 and all(re.fullmatch(r"\d{4}", y) for y in years):
        return years
    return []
