"""Controlled vocabularies of the registry, with Chinese and English labels."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

Labels = Mapping[str, tuple[str, str]]  # value -> (zh, en)

KINDS: Labels = MappingProxyType({
    "high_tech_zone": ("高新区", "High-tech zone"),
    "laboratory": ("实验室", "Laboratory"),
    "technology_innovation_center": ("技术创新中心", "Technology innovation centre"),
    "research_institute": ("科研院所", "Research institute"),
    "university": ("高校", "University"),
    "incubator": ("孵化器/科技园", "Incubator / science park"),
    "offshore_innovation_center": ("离岸创新中心", "Offshore innovation centre"),
    "international_cooperation": ("国际合作平台", "International cooperation platform"),
    "enterprise": ("领军企业", "Leading firm"),
    "major_facility": ("重大科研设施", "Major research facility"),
    "innovation_platform": ("创新平台", "Innovation platform"),
    "core_area": ("创新核心区", "Core innovation area"),
})

LEVELS: Labels = MappingProxyType({
    "national": ("国家级", "National"),
    "provincial": ("省级", "Provincial"),
    "municipal": ("市级", "Municipal"),
    "international": ("国际", "International"),
    "none": ("无", "None"),
    "unknown": ("未知", "Unknown"),
})

STATUSES: Labels = MappingProxyType({
    "operating": ("运行中", "Operating"),
    "approved": ("获批建设", "Approved"),
    "under_construction": ("在建", "Under construction"),
    "preparatory": ("筹建", "Preparatory (筹)"),
    "planned": ("计划", "Planned"),
    "unknown": ("未知", "Unknown"),
})

PRECISIONS: Labels = MappingProxyType({
    "site": ("具体地址", "Site"),
    "campus": ("园区/校区", "Campus"),
    "zone": ("功能区", "Zone"),
    "town": ("镇/街道", "Town"),
    "district": ("区县", "District"),
    "city": ("城市", "City"),
    "country": ("国家", "Country"),
    "unknown": ("未知", "Unknown"),
})
#: Precisions that place a point at a named site; anything else is approximate.
EXACT_PRECISIONS = frozenset({"site", "campus"})

BOARDS: Labels = MappingProxyType({
    "张家港市": ("张家港市", "Zhangjiagang"),
    "常熟市": ("常熟市", "Changshu"),
    "太仓市": ("太仓市", "Taicang"),
    "昆山市": ("昆山市", "Kunshan"),
    "吴江区": ("吴江区", "Wujiang"),
    "吴中区": ("吴中区", "Wuzhong"),
    "相城区": ("相城区", "Xiangcheng"),
    "姑苏区": ("姑苏区", "Gusu"),
    "苏州工业园区": ("苏州工业园区", "Suzhou Industrial Park"),
    "苏州高新区": ("苏州高新区", "Suzhou New District"),
})
#: The 板块 column's value of a figure for the whole city rather than one of the ten.
CITY = "全市"

DATUMS: Labels = MappingProxyType({
    "WGS84": ("WGS-84", "WGS-84"),
    "GCJ02": ("GCJ-02（高德/腾讯）", "GCJ-02 (AMap/Tencent)"),
    "BD09": ("BD-09（百度）", "BD-09 (Baidu)"),
})

#: Qualifiers of an indicator value (the ``comparator`` column of ``indicators.csv`` and
#: ``board_indicators.csv``): exact, more than, about, less than, at least, at most, a range
#: from ``value`` to ``value_max``. Source wording: 超/突破/多 → ``>``, 近/接近/约 → ``≈``, 以上 →
#: ``>=``.
COMPARATORS: Labels = MappingProxyType({
    "=": ("等于", "exactly"),
    ">": ("超过", "more than"),
    "≈": ("约/近", "about"),
    "<": ("不足", "less than"),
    ">=": ("以上", "at least"),
    "<=": ("以下", "at most"),
    "range": ("区间", "range"),
})

#: Registry columns, in file order.
REGISTRY_COLUMNS: tuple[str, ...] = (
    "id", "name_zh", "name_en", "kind", "level", "status", "board", "lon", "lat",
    "location_precision", "location_source", "source_datum", "source", "notes",
)

VOCABULARIES: Mapping[str, Labels] = MappingProxyType({
    "kind": KINDS, "level": LEVELS, "status": STATUSES, "board": BOARDS,
    "location_precision": PRECISIONS,
})


def label(vocab: Labels, value: str | None, lang: str) -> str:
    """Return the label of ``value`` in ``lang`` ('zh' or 'en'); unknown values pass through.

    >>> label(KINDS, "laboratory", "en")
    'Laboratory'
    >>> label(KINDS, None, "zh")
    '未知'
    """
    if value is None or value == "":
        return "未知" if lang == "zh" else "Unknown"
    pair = vocab.get(value)
    if pair is None:
        return value
    return pair[0] if lang == "zh" else pair[1]
