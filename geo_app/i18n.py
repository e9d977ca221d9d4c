"""User-interface strings in Chinese (default) and English (pure; no framework imports)."""

from __future__ import annotations

LANGS = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    "app_title": ("苏州科创地图", "Suzhou Innovation Map"),
    "page_map": ("地图", "Map"),
    "page_compare": ("板块对比", "板块 comparison"),
    "page_export": ("导出", "Export"),
    "page_import": ("导入", "Import"),
    "page_sources": ("数据与来源", "Data & sources"),
    "language": ("语言 / Language", "语言 / Language"),
    "filters": ("筛选", "Filters"),
    "kind": ("类型", "Kind"),
    "level": ("级别", "Level"),
    "status": ("状态", "Status"),
    "board": ("板块", "板块 (district)"),
    "layer": ("战略图层", "Strategy layer"),
    "search": ("名称搜索（中文或英文）", "Name search (Chinese or English)"),
    "shown": ("显示 {n} / {total} 个主体", "Showing {n} of {total} entities"),
    "no_point": ("无坐标的主体（未在地图上显示）", "Entities without a location (not on the map)"),
    "schematic": ("示意范围，按规则生成，非官方边界", "Schematic area built by rule, not an official boundary"),
    "sip_no_polygon": ("苏州工业园区在边界数据中没有官方多边形，地图不绘制其边界。",
                       "Suzhou Industrial Park has no official polygon in the boundary data; no border is drawn for it."),
    "unknown": ("未知", "Unknown"),
}


def t(key: str, lang: str, **kwargs: object) -> str:
    """Translate ``key`` into ``lang``, formatting ``kwargs``; unknown keys return the key.

    >>> t("shown", "en", n=3, total=5)
    'Showing 3 of 5 entities'
    """
    pair = STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**kwargs) if kwargs else text
