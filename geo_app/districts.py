"""Per-板块 statistics, plan items and comparison tables (pure functions over DataFrames).

Everything here works on a :class:`CompareData` snapshot; only :func:`load_compare_data`
and :func:`import_user_indicators` touch the database (through :mod:`geo_app.store`).
A value nobody has published is ``NaN`` with a note saying so — never a zero — and
every value carries its year and source.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_app import store
from geo_app.errors import FilterError
from geo_app.export import neutralise
from geo_app.ingest.indicators import (  # noqa: F401  (the import moved to ingest)
    USER_COLUMNS,
    USER_TEMPLATE,
    import_user_indicators,
    parse_user_indicators,
)
from geo_app.vocab import BOARDS, CITY, KINDS, LEVELS, STATUSES, label

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

# Caveats of the county polygon that stands for a 板块 (from data/boards.csv notes).
_POLYGON_NOTES: Mapping[str, tuple[str, str]] = {
    "苏州工业园区": ("无官方多边形：面积占比按示意范围计算", "no official polygon: area share of its schematic area"),
    "苏州高新区": ("用虎丘区多边形减去园区示意范围（与园区相邻的边界为示意）",
                 "the 虎丘区 polygon minus SIP's schematic area (the edge with SIP is schematic)"),
    "吴中区": ("吴中区多边形减去园区示意范围（与园区相邻的边界为示意），含部分太湖水面",
             "the 吴中区 polygon minus SIP's schematic area (the edge with SIP is schematic), incl. part of Taihu"),
}

_UNIT_LABELS: Mapping[str, tuple[str, str]] = {"rank": ("位", "rank")}

_TEXT: Mapping[str, tuple[str, str]] = {
    "no_data": ("无数据（未找到公开数字）", "no data (no public figure found)"),
    "no_layer_entities": ("该图层无登记主体，占比无定义", "no registry entity in this layer: share undefined"),
    "registry": ("现状（登记表）", "current (registry)"),
    "registry_area": ("现状（登记表）；面积{year}", "current (registry); area {year}"),
    "layer_year": ("现状（示意图层）", "current (schematic layer)"),
    "plan_year": ("2023年计划", "2023 plan"),
    "src_count": ("data/registry.csv 及用户导入，按“板块”字段计数，不含计划项",
                  "data/registry.csv plus user imports, counted by the 板块 field, plan items excluded"),
    "src_density": ("主体数：{count}；面积：{area}", "entities: {count}; area: {area}"),
    "src_layer": ("layers/{spec}（示意范围，按规则生成）；县界：{bounds}",
                  "layers/{spec} (schematic, rule-built); county polygons: {bounds}"),
    "src_plan": ("种子文件二.5.三、二.5.四；data/registry.csv",
                 "seed 二.5.三, 二.5.四; data/registry.csv"),
    "user": ("用户导入", "user import"),
    "shipped": ("随附数据", "shipped data"),
}

_COLUMNS = ("metric_id", "metric", "rank", "board", "board_en", "comparator", "value", "unit",
            "year", "source", "notes")
_HEADERS: Mapping[str, tuple[str, str]] = {
    "metric_id": ("指标代码", "metric_id"), "metric": ("指标", "Metric"),
    "rank": ("排名", "Rank"), "board": ("板块", "板块"), "board_en": ("板块（英文）", "板块 (English)"),
    "comparator": ("限定", "Qualifier"), "value": ("数值", "Value"), "unit": ("单位", "Unit"), "year": ("年份", "Year"),
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


# ----------------------------------------------------------------------------- data


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


# ----------------------------------------------------------------------------- metrics


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


def indicator_label(code: str, indicators: pd.DataFrame, lang: str) -> str:
    """Display name of an indicator code (shipped label, then indicators.csv, then the code)."""
    if code in _INDICATOR_LABELS:
        zh, en = _INDICATOR_LABELS[code]
        return en if lang == "en" else zh
    hit = indicators[indicators["metric"] == code] if len(indicators) else indicators
    if len(hit):
        return str(hit["indicator_en" if lang == "en" else "indicator_zh"].iloc[0])
    return code


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


def metric_values(data: CompareData, key: str, *, year: str | None = None,
                  lang: str = "zh") -> pd.DataFrame:
    """The ten 板块 (in vocabulary order) with ``comparator, value, unit, year, source, notes``.

    ``comparator`` is the value's qualifier (``=``, ``>``, ``≈``…; empty for a gap). A value nobody has published is ``NaN`` and its note says so; counts from the
    registry are real counts (0 means no entity of that sort is registered).
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


# ----------------------------------------------------------------------------- tables


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
        header("metric", lang): [indicator_label(c, data.indicators, lang) for c in bi["indicator"]],
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
    figs = figs.sort_values("year", kind="stable").drop_duplicates(["board", "indicator"], keep="last")
    figs = figs.assign(comparator=_comparators(figs))
    codes = list(dict.fromkeys(data.board_indicators["indicator"]))
    rows = [CITY, *BOARDS]
    cell = {(r.board, r.indicator): format_number(r.value, r.unit, comparator=r.comparator,
                                                  year=str(r.year), lang=lang)
            for r in figs.itertuples()}
    gap = format_number(None, lang=lang)
    matrix = pd.DataFrame({indicator_label(c, data.indicators, lang): [cell.get((b, c), gap) for b in rows]
                           for c in codes}, index=rows)
    matrix.index.name = header("board", lang)
    return matrix


# ----------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PlanItem:
    """A per-板块 item of the seed's 2023 plan and how the registry tells its state.

    ``check``: ``level_national`` (the entity's level is national), ``not_preparatory``
    (the entity has left 筹 status), ``offshore`` (no per-板块 list of the offshore
    centres is published: always unknown) or ``qualitative`` (no measurable target).
    """

    board: str
    item_zh: str
    item_en: str
    section: str
    entity_id: str | None
    check: str
    registry_id: str | None = None


PLAN_ITEMS: tuple[PlanItem, ...] = (
    *(PlanItem(b, "实体化运作一个海外离岸创新中心", "Run one overseas offshore innovation centre "
               "as an entity", "二.5.三", None, "offshore") for b in BOARDS),
    PlanItem("太仓市", "推动太仓高新区升级为国家高新区", "Upgrade 太仓高新区 to a national high-tech zone",
             "二.5.四", "hz-taicang", "level_national", "plan-taicang-hz-national"),
    PlanItem("吴江区", "吴江高新区（筹）脱筹", "吴江高新区 leaves preparatory (筹) status",
             "二.5.四", "hz-wujiang-prep", "not_preparatory"),
    PlanItem("吴中区", "吴中高新区（筹）脱筹", "吴中高新区 leaves preparatory (筹) status",
             "二.5.四", "hz-wuzhong-prep", "not_preparatory"),
    PlanItem("常熟市", "常熟虞山高新区（筹）脱筹", "常熟虞山高新区 leaves preparatory (筹) status",
             "二.5.四", "hz-yushan-prep", "not_preparatory"),
    PlanItem("昆山市", "大力提升昆山高新区国家创新型特色园区建设水平",
             "Raise 昆山高新区 as a national innovative characteristic park", "二.5.四",
             "hz-kunshan", "qualitative"),
    PlanItem("常熟市", "大力提升常熟高新区国家创新型特色园区建设水平",
             "Raise 常熟高新区 as a national innovative characteristic park", "二.5.四",
             "hz-changshu", "qualitative"),
    PlanItem("苏州工业园区", "支持苏州工业园区打造世界一流高科技园区",
             "SIP to become a world-class high-tech park", "二.5.四", "hz-sip", "qualitative"),
    PlanItem("苏州高新区", "支持苏州高新区保持第一方阵地位",
             "SND to stay in the first tier of national high-tech zones", "二.5.四", "hz-snd",
             "qualitative"),
)


def _plan_state(item: PlanItem, entities: pd.DataFrame, lang: str) -> tuple[str, str]:
    en = lang == "en"
    by_id = entities.set_index("id")
    if item.check == "offshore":
        n = int(((entities["board"] == item.board)
                 & (entities["kind"] == "offshore_innovation_center")).sum())
        ev = (f"registry: {n} offshore-kind entities in this 板块; the 26 centres' list by "
              f"板块 is not published" if en else
              f"登记表：本板块离岸类主体{n}个；26家海外离岸创新中心的分板块名单未公开")
        return "unknown", ev
    if item.check == "qualitative":
        return "qualitative", ("no measurable target in the seed" if en else "种子文件未给出量化目标")
    if item.entity_id not in by_id.index:
        return "unknown", (f"registry has no {item.entity_id}" if en else f"登记表无 {item.entity_id}")
    row = by_id.loc[item.entity_id]
    lv, st = label(LEVELS, row["level"], lang), label(STATUSES, row["status"], lang)
    evidence = (f"registry {item.entity_id}: level {lv}, status {st}" if en else
                f"登记表 {item.entity_id}：级别{lv}，状态{st}")
    if item.check == "level_national":
        done = row["level"] == "national"
    else:
        if row["status"] == "unknown":
            return "unknown", evidence
        done = row["status"] != "preparatory"
    return ("achieved" if done else "not_yet"), evidence


def plan_items(data: CompareData, lang: str = "zh") -> pd.DataFrame:
    """Per-板块 plan items of the seed (二.5.三, 二.5.四) and the registry's planned rows.

    Columns ``board, item, section, status, status_label, evidence, source``; registry
    plan rows without a 板块 are listed under 全市.
    """
    rows = []
    linked = {i.registry_id for i in PLAN_ITEMS if i.registry_id}
    for item in PLAN_ITEMS:
        status, evidence = _plan_state(item, data.entities, lang)
        src = f"seed {item.section}" + (f"; registry {item.registry_id}" if item.registry_id else "")
        rows.append({"board": item.board, "item": item.item_en if lang == "en" else item.item_zh,
                     "section": item.section, "status": status, "evidence": evidence,
                     "source": src})
    planned = data.entities[(data.entities["status"] == "planned")
                            & ~data.entities["id"].isin(linked)]
    for r in planned.itertuples():
        board = r.board if isinstance(r.board, str) and r.board in BOARDS else CITY
        rows.append({"board": board,
                     "item": (r.name_en or r.name_zh) if lang == "en" else r.name_zh,
                     "section": "", "status": "not_yet",
                     "evidence": (f"registry {r.id}: status planned" if lang == "en" else
                                  f"登记表 {r.id}：状态为计划"),
                     "source": f"{r.source}; registry {r.id}"})
    out = pd.DataFrame(rows)
    out["status_label"] = [PLAN_STATUSES[s][1 if lang == "en" else 0] for s in out["status"]]
    return out


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


def target_met(progress: float, target_cmp: str, actual_cmp: str) -> bool | None:
    """Whether a 2022 value meets a 2023 target, honouring both comparators.

    ``None`` when it cannot be told: no ratio, or an approximate/bounded 2022 figure at or
    above the target (接近4% against 超4%).

    >>> target_met(1.0, ">", "≈"), target_met(1.0, ">", "="), target_met(1.0, "=", "=")
    (None, False, True)
    >>> target_met(1.2, ">", "="), target_met(0.8, ">=", "=")
    (True, False)
    """
    if math.isnan(progress):
        return None
    if progress < 1:
        return None if actual_cmp in ("<", "range") else False
    if actual_cmp in ("≈", "<", "range"):
        return None
    if target_cmp == ">":
        return progress > 1
    return True


def plan_progress(data: CompareData, lang: str = "zh") -> pd.DataFrame:
    """Every 2023 target of the seed with its 2022 result where one exists.

    Pairs are linked by the ``metric`` column of ``indicators``. ``progress`` is the 2022
    value over the target (target over value for ranks), ``NaN`` without a 2022 figure.
    ``actual_2023`` is a later public 全市 figure for the same metric, if one is loaded.
    """
    ind = data.indicators
    actual = ind[(ind["kind"] == "actual") & (ind["year"] == 2022)].drop_duplicates("metric")
    actual = actual.set_index("metric")
    later = current_figures(data.board_indicators)
    later = later[(later["board"] == CITY) & (later["year"].astype(str) == "2023")]
    later = later.drop_duplicates("indicator", keep="last").set_index("indicator")
    rows = []
    for t in ind[(ind["kind"] == "target") & (ind["year"] == 2023)].itertuples():
        a = actual.loc[t.metric] if t.metric in actual.index else None
        value = float(a["value"]) if a is not None else math.nan
        same_unit = a is not None and a["unit"] == t.unit
        if a is None or not same_unit or not t.value:
            progress = math.nan
        elif t.unit == "rank":
            progress = float(t.value) / value if value else math.nan
        else:
            progress = value / float(t.value)
        met = target_met(progress, t.comparator, a["comparator"] if a is not None else "")
        if met is not True and progress >= 1:
            progress = 0.999  # e.g. 接近4% against 超4%: not known to be met, never a full bar
        l23 = later.loc[t.metric] if t.metric in later.index else None
        rows.append({
            "id": t.id, "metric": t.metric,
            "indicator": t.indicator_en if lang == "en" else t.indicator_zh,
            "section": t.section, "comparator": t.comparator, "target": t.value,
            "target_max": t.value_max, "unit": t.unit,
            "target_text": format_number(t.value, t.unit, comparator=t.comparator,
                                         value_max=t.value_max, lang=lang),
            "target_source": f"seed {t.section}",
            "actual_2022": value,
            "actual_2022_text": (format_number(value, a["unit"], comparator=a["comparator"], lang=lang)
                                 if a is not None else ("no 2022 figure" if lang == "en" else "无2022年数据")),
            "actual_2022_source": f"seed {a['section']}" if a is not None else "",
            "progress": progress, "met": met,
            "actual_2023": float(l23["value"]) if l23 is not None else math.nan,
            "actual_2023_source": str(l23["source"]) if l23 is not None else "",
            "notes": "; ".join(x for x in (t.notes or "", a["notes"] if a is not None else "") if x),
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- map


#: ``boards.polygon_status`` values saying a 板块 has no polygon of its own (it may still
#: name a county whose polygon belongs to another 板块: that polygon is never painted for it).
NO_OWN_POLYGON = frozenset({"", "none", "shared", "pending"})
_CHOROPLETH_COLUMNS = ("board", "board_en", "name", "adcode", "value", "value_max", "comparator",
                       "value_text", "unit", "year", "source", "notes")


def _owns_polygon(board: Mapping[str, Any], county_name: object) -> bool:
    """Whether ``board`` (a ``boards`` row) claims its ``county_adcode`` polygon as its own.

    A ``polygon_status`` outside :data:`NO_OWN_POLYGON` says so (``official_county`` for the
    counties and SND's 虎丘区, any status of a polygon added later); without a status only
    a county of the same name is the 板块's own.
    """
    status = board.get("polygon_status")
    status = status.strip().lower() if isinstance(status, str) else ""
    if status:
        return status not in NO_OWN_POLYGON
    return county_name == board.get("name_zh")


def board_polygons(boards: pd.DataFrame, boundaries: pd.DataFrame) -> dict[str, str]:
    """板块 → the adcode of the polygon that may be painted with its value.

    A polygon is painted only for the one 板块 that claims it as its own
    (:func:`_owns_polygon`); a polygon claimed by two or more 板块 is painted for none,
    and a 板块 that only points at another's county gets no polygon. A 板块 whose
    ``boards`` row names a polygon of its own (a ``boundaries`` row) gets it: in the shipped
    data 苏州工业园区 its schematic polygon ``board-sip`` and 吴中区 / 苏州高新区 their
    county polygons without it (``board-wuzhong``, ``board-snd``; ``level`` ``board``).

    >>> bounds = pd.DataFrame({"adcode": ["320506"], "name_zh": ["吴中区"]})
    >>> boards = pd.DataFrame({"name_zh": ["吴中区", "苏州工业园区"],
    ...                        "county_adcode": ["320506", "320506"],
    ...                        "polygon_status": ["official_county", "none"]})
    >>> board_polygons(boards, bounds)
    {'吴中区': '320506'}
    """
    names = dict(zip(boundaries["adcode"].astype(str), boundaries["name_zh"], strict=True))
    claims: dict[str, list[str]] = {}
    for row in boards.to_dict("records"):
        code = row.get("county_adcode")
        code = code.strip() if isinstance(code, str) else ""
        if code in names and _owns_polygon(row, names[code]):
            claims.setdefault(code, []).append(str(row["name_zh"]))
    return {owners[0]: code for code, owners in claims.items() if len(owners) == 1}


def _choropleth_rows(values: pd.DataFrame, polygons: Mapping[str, str], lang: str) -> pd.DataFrame:
    out = values.copy()
    out["board_en"] = [BOARDS[b][1] if b in BOARDS else b for b in out["board"]]
    out["name"] = out["board_en"] if lang == "en" else out["board"]
    out["adcode"] = [polygons.get(b, "") for b in out["board"]]
    out["value"] = out["value"].astype(float)
    out["value_max"] = out["value_max"].astype(float) if "value_max" in out else np.nan
    out["comparator"] = out["comparator"].fillna("=").astype(str) if "comparator" in out else "="
    for column in ("unit", "year", "source", "notes"):
        out[column] = out[column].fillna("").astype(str) if column in out else ""
    out["value_text"] = [format_number(v, u, comparator=c, value_max=vm, lang=lang)
                         for v, u, c, vm in zip(out["value"], out["unit"], out["comparator"],
                                                out["value_max"], strict=True)]
    return out[list(_CHOROPLETH_COLUMNS)].reset_index(drop=True)


def choropleth_gdf(data: CompareData, values: pd.DataFrame, *,
                   lang: str = "zh") -> gpd.GeoDataFrame:
    """The 板块 painted on the choropleth, each with its own polygon and value.

    Parameters
    ----------
    data
        The snapshot (``boards`` and ``boundaries``).
    values
        :func:`metric_values` of the metric shown (an optional ``comparator`` and
        ``value_max`` column qualify the values).
    lang
        Language of ``name`` (the 板块 as shown) and ``value_text``
        (:func:`format_number` with the comparator, ``无数据`` / ``no data`` for a gap).

    Returns
    -------
    GeoDataFrame
        ``board, board_en, name, adcode, value, value_max, comparator, value_text, unit,
        year, source, notes`` in WGS-84, one row per painted 板块 (the join of :func:`board_polygons`: SND with
        the 虎丘区 polygon; SIP, which has none, is left out and listed by
        :func:`boards_without_polygon`). No polygon ever carries another 板块's value.
    """
    polygons = board_polygons(data.boards, data.boundaries)
    rows = _choropleth_rows(values, polygons, lang)
    rows = rows[rows["adcode"] != ""].reset_index(drop=True)
    geoms = data.boundaries.set_index(data.boundaries["adcode"].astype(str)).geometry
    return gpd.GeoDataFrame(rows, geometry=[geoms[c] for c in rows["adcode"]], crs="EPSG:4326")


def boards_without_polygon(data: CompareData, values: pd.DataFrame, *,
                           lang: str = "zh") -> pd.DataFrame:
    """The 板块 of ``values`` that the choropleth cannot paint, with their values.

    Same columns as :func:`choropleth_gdf` (``adcode`` empty, no geometry) plus ``reason``:
    ``no_polygon`` (no polygon of its own, SIP today) or ``shared`` (it claims a polygon
    another 板块 claims too). They are listed beside the map, never painted with another
    板块's value.
    """
    rows = _choropleth_rows(values, board_polygons(data.boards, data.boundaries), lang)
    rows = rows[rows["adcode"] == ""].reset_index(drop=True)
    codes = set(data.boundaries["adcode"].astype(str))
    claims = {str(r["name_zh"]): str(r.get("county_adcode") or "") for r in data.boards.to_dict("records")
              if _owns_polygon(r, None)}
    rows["reason"] = ["shared" if claims.get(b, "") in codes else "no_polygon" for b in rows["board"]]
    return rows


# ----------------------------------------------------------------------------- export


def _neutralise(value: Any) -> Any:
    return neutralise(value) if isinstance(value, str) else value


def _text_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns
            if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))]


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells that a spreadsheet would run as a formula."""
    out = df.copy()
    for column in _text_columns(out):
        out[column] = out[column].astype(object).map(_neutralise)
    return out


def table_to_csv(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a BOM (Excel opens it as UTF-8), formulas neutralised, gaps empty."""
    out = neutralise_frame(df)
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = [("" if v is None or math.isnan(v) else _csv_number(float(v)))
                           for v in out[column]]
    text: str = out.to_csv(index=False, lineterminator="\n")
    return ("\ufeff" + text).encode("utf-8")


def _csv_number(v: float) -> str:
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def table_to_xlsx(df: pd.DataFrame, sheet: str = "compare") -> bytes:
    """Excel workbook of ``df`` (numbers stay numbers, gaps stay empty, formulas neutralised)."""
    out = neutralise_frame(df)
    for column in out.columns:
        if isinstance(out[column].dtype, pd.Int64Dtype):
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        out.to_excel(writer, sheet_name=sheet, index=False)
    return buf.getvalue()


def table_to_text(df: pd.DataFrame) -> str:
    """Plain-text table for a terminal; gaps shown as ``—``."""
    out = df.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = ["—" if math.isnan(v) else _plain_number(float(v)) for v in out[column]]
    text: str = out.astype(object).where(out.notna(), "—").to_string(index=False)
    return text + "\n"
