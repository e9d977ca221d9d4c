"""The comparison's snapshot (:class:`CompareData`), its labels, and how one figure is read
(the figure in use, its qualifier) and written (:func:`format_number`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_app import store

#: The states of a plan item, with their labels.
PLAN_STATUSES: Mapping[str, tuple[str, str]] = {
    "achieved": ("已达成（据登记表）", "Achieved (per registry)"),
    "not_yet": ("未达成（据登记表）", "Not yet (per registry)"),
    "unknown": ("无数据", "No data"),
    "qualitative": ("定性任务（无量化目标）", "Qualitative (no measurable target)"),
}

# Labels of indicator codes used in board_indicators.csv that indicators.csv does not name
# (or names with a different scope); anything else falls back to indicators.csv, then the code.
_INDICATOR_LABELS: Mapping[str, tuple[str, str]] = {
    "gdp": ("地区生产总值", "GDP"),
    "resident_population": ("常住人口", "Resident population"),
    "national_incubators": ("国家级孵化器", "National incubators"),
    "high_tech_enterprises_net_new": ("高新技术企业净增", "High-tech enterprises, net increase"),
    "listed_companies": ("上市公司", "Listed companies"),
    "national_hitech_zone_rank": ("国家高新区综合评价位次", "Rank among national high-tech zones"),
    "incubators_provincial_plus": ("省级以上孵化器", "Provincial-or-higher incubators"),
    "maker_spaces_provincial_plus": ("省级以上众创空间", "Provincial-or-higher maker spaces"),
    "unicorn_enterprises": ("独角兽企业", "Unicorn enterprises"),
    "potential_unicorn_enterprises": ("潜在独角兽企业", "Potential unicorn enterprises"),
    "unicorn_enterprises_incl_potential": ("独角兽企业（含潜在）",
                                           "Unicorn enterprises (incl. potential)"),
    "national_key_labs_approved": ("获批全国重点实验室", "National key laboratories approved"),
    "land_area_km2": ("土地面积", "Land area"),
}

_UNIT_LABELS: Mapping[str, tuple[str, str]] = {"rank": ("位", "rank")}

_TEXT: Mapping[str, tuple[str, str]] = {
    "no_data": ("无数据（未找到公开数字）", "no data (no public figure found)"),
    "no_layer_entities": ("该图层无登记主体，占比无定义",
                          "no registry entity in this layer: share undefined"),
    "registry": ("现状（登记表）", "current (registry)"),
    "registry_area": ("现状（登记表）；面积{year}", "current (registry); area {year}"),
    "layer_year": ("现状（示意图层）", "current (schematic layer)"),
    "plan_year": ("2023年计划", "2023 plan"),
    "src_count": ("data/registry.csv 及用户导入，按“板块”字段计数，不含计划项",
                  "data/registry.csv plus user imports, counted by the 板块 field, plan "
                  "items excluded"),
    "src_density": ("主体数：{count}；面积：{area}", "entities: {count}; area: {area}"),
    "src_layer": ("layers/{spec}（示意范围，按规则生成）；县界：{bounds}",
                  "layers/{spec} (schematic, rule-built); county polygons: {bounds}"),
    "src_plan": ("种子文件二.5.三、二.5.四；data/registry.csv",
                 "seed 二.5.三, 二.5.四; data/registry.csv"),
    "user": ("用户导入", "user import"),
    "shipped": ("随附数据", "shipped data"),
}


_HEADERS: Mapping[str, tuple[str, str]] = {
    "metric_id": ("指标代码", "metric_id"), "metric": ("指标", "Metric"),
    "rank": ("排名", "Rank"), "board": ("板块", "板块"),
    "board_en": ("板块（英文）", "板块 (English)"),
    "comparator": ("限定", "Qualifier"), "value": ("数值", "Value"), "unit": ("单位", "Unit"),
    "year": ("年份", "Year"),
    "source": ("来源", "Source"), "notes": ("说明", "Notes"),
}


def _tr(key: str, lang: str, **kw: object) -> str:
    zh, en = _TEXT[key]
    text = en if lang == "en" else zh
    return text.format(**kw) if kw else text


def header(column: str, lang: str) -> str:
    """The displayed header of a comparison-table column.

    >>> header("value", "zh"), header("value", "en")
    ('数值', 'Value')
    """
    zh, en = _HEADERS[column]
    return en if lang == "en" else zh


@dataclass(frozen=True)
class CompareData:
    """A snapshot of everything the comparison views need (plain frames, picklable).

    Attributes
    ----------
    boards
        The ``boards`` table (ten rows: names, land area and its source, county adcode).
    entities
        Entity rows without geometry (``id, name_zh, name_en, kind, level, status, board,
        layers``).
    board_indicators
        Public and user figures per 板块 (``board, indicator, year, value, unit, source,
        notes, origin, batch_id, imported_at``).
    indicators
        The city's 2022 results and 2023 targets in file order.
    layer_summary, layer_by_board
        :func:`geo_app.layers.layer_stats` ``summary`` (+ ``spec_file``) and ``by_board``.
    boundaries
        County polygons (WGS-84).
    water
        Lakes and rivers (WGS-84), drawn over the choropleth for orientation.
    """

    boards: pd.DataFrame
    entities: pd.DataFrame
    board_indicators: pd.DataFrame
    indicators: pd.DataFrame
    layer_summary: pd.DataFrame
    layer_by_board: pd.DataFrame
    boundaries: gpd.GeoDataFrame
    water: gpd.GeoDataFrame | None = None


def load_compare_data(db_path: Path) -> CompareData:
    """Read a :class:`CompareData` snapshot from the database (the one thin loader)."""
    from geo_app.layers import layer_stats  # layers imports store; keep this module light

    stats = layer_stats(db_path)
    layers = store.read_table(db_path, "layers")[["id", "spec_file"]]
    entities = pd.DataFrame(store.query_entities(db_path).drop(columns="geometry"))
    bi = store.read_table(db_path, "board_indicators", order_by="rowid")
    batches = store.read_table(db_path, "import_batches")[["batch_id", "imported_at"]]
    bi = bi.merge(batches, on="batch_id", how="left")
    return CompareData(
        boards=store.read_table(db_path, "boards"),
        entities=entities,
        board_indicators=bi,
        indicators=store.read_table(db_path, "indicators", order_by="rowid"),
        layer_summary=stats["summary"].merge(layers, on="id", how="left"),
        layer_by_board=stats["by_board"],
        boundaries=store.read_geo_table(db_path, "boundaries"),
        water=store.read_geo_table(db_path, "water"),
    )


def indicator_label(code: str, indicators: pd.DataFrame, lang: str) -> str:
    """Display name of an indicator code (shipped label, then indicators.csv, then the code)."""
    if code in _INDICATOR_LABELS:
        zh, en = _INDICATOR_LABELS[code]
        return en if lang == "en" else zh
    hit = indicators[indicators["metric"] == code] if len(indicators) else indicators
    if len(hit):
        return str(hit["indicator_en" if lang == "en" else "indicator_zh"].iloc[0])
    return code


def current_figures(board_indicators: pd.DataFrame) -> pd.DataFrame:
    """One figure per (board, indicator, year): a user import supersedes the shipped figure,
    and a later import an earlier one."""
    if board_indicators.empty:
        return board_indicators.copy()
    df = board_indicators.copy()
    df["_user"] = (df["origin"] == "user").astype(int)
    df["_at"] = pd.to_datetime(df.get("imported_at"), errors="coerce")
    df["_pos"] = np.arange(len(df))
    df = df.sort_values(["_user", "_at", "_pos"], na_position="first", kind="stable")
    df = df.drop_duplicates(["board", "indicator", "year"], keep="last")
    return df.sort_values("_pos").drop(columns=["_user", "_at", "_pos"])


def _comparators(frame: pd.DataFrame) -> pd.Series:
    """The ``comparator`` (qualifier) of each figure; ``=`` where a frame or a cell has none."""
    if "comparator" not in frame:
        return pd.Series("=", index=frame.index, dtype=object)
    return frame["comparator"].fillna("").replace("", "=").astype(str)


def unit_label(unit: str, lang: str) -> str:
    """A unit as shown in ``lang`` (the data write ranks as ``rank``).

    >>> unit_label("rank", "zh"), unit_label("亿元", "en")
    ('位', '亿元')
    """
    zh, en = _UNIT_LABELS.get(unit, (unit, unit))
    return en if lang == "en" else zh


def format_number(value: float | None, unit: str = "", *, comparator: str = "=",
                  value_max: float | None = None, year: str = "", lang: str = "zh") -> str:
    """Display text of a value: ``>13,400 家``, ``2–3 家``, ``无数据`` for a gap.

    >>> format_number(13400.0, "家", comparator=">")
    '>13,400 家'
    >>> format_number(float("nan"), "亿元", lang="en")
    'no data'
    >>> format_number(2.0, "家", comparator="range", value_max=3.0, year="2023")
    '2–3 家 (2023)'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no data" if lang == "en" else "无数据"
    text = _plain_number(float(value))
    if comparator == "range" and value_max is not None and not math.isnan(value_max):
        text = f"{text}–{_plain_number(float(value_max))}"
    elif comparator in (">", "<", "≈", ">=", "<="):
        text = {">=": "≥", "<=": "≤"}.get(comparator, comparator) + text
    if unit:
        text = f"{text} {unit}"
    return f"{text} ({year})" if year else text


def _plain_number(v: float) -> str:
    if v.is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.4f}".rstrip("0").rstrip(".")
