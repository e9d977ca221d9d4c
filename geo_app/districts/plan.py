"""The seed's per-板块 plan items and the city's 2023 targets, each with the registry's or
the 2022 figures' evidence of how far it is met."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from geo_app.districts.data import (
    PLAN_STATUSES,
    CompareData,
    current_figures,
    format_number,
)
from geo_app.vocab import BOARDS, CITY, LEVELS, STATUSES, label


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
    PlanItem("太仓市", "推动太仓高新区升级为国家高新区",
             "Upgrade 太仓高新区 to a national high-tech zone",
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
        return "qualitative", ("no measurable target in the seed" if en
                               else "种子文件未给出量化目标")
    if item.entity_id not in by_id.index:
        return "unknown", (f"registry has no {item.entity_id}" if en
                           else f"登记表无 {item.entity_id}")
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
        src = f"seed {item.section}" + (f"; registry {item.registry_id}"
                                        if item.registry_id else "")
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
            "actual_2022_text": (
                format_number(value, a["unit"], comparator=a["comparator"], lang=lang)
                if a is not None else ("no 2022 figure" if lang == "en" else "无2022年数据")),
            "actual_2022_source": f"seed {a['section']}" if a is not None else "",
            "progress": progress, "met": met,
            "actual_2023": float(l23["value"]) if l23 is not None else math.nan,
            "actual_2023_source": str(l23["source"]) if l23 is not None else "",
            "notes": "; ".join(x for x in (t.notes or "", a["notes"] if a is not None else "")
                               if x),
        })
    return pd.DataFrame(rows)
