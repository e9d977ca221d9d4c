"""The checks of an entity file's cells and rows: vocabularies, ids, formulas, coordinates
and their datum, duplicate ids; then the conversion of every point to WGS-84."""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from geo_app import datum as datum_mod
from geo_app.ingest.report import _Problems
from geo_app.ingest.schema import (
    _BOARD_SHORT,
    _CONVERSION,
    _DATUM_ALIASES,
    _MAX_LEN,
    _NOT_SHIFTED,
    _VOCAB_ZH,
    _VOCABS,
    ABROAD_KINDS,
    CHINA_BOX,
    COLUMN_ZH,
    MAX_CELL_CHARS,
    NEAR_SUZHOU_BOX,
    REQUIRED_COLUMNS,
    SUZHOU_BOX,
    SUZHOU_CENTRE,
    DatumKey,
)
from geo_app.ingest.text import _short, normalise, strip_text, text_problem
from geo_app.numbers import is_decimal

_ID = re.compile(r"[\w.\-]+")
_FORMULA = re.compile(r"^(?:[=+@]|-[^\d\s.\-])")


def _vocab_keys(column: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for value, (zh, en) in _VOCABS[column].items():
        for text in (value, zh, en):
            keys[_vocab_key(text)] = value
    if column == "board":
        keys.update({_vocab_key(k): v for k, v in _BOARD_SHORT.items()})
    return keys


@functools.lru_cache(maxsize=4096)
def _vocab_key(text: str) -> str:
    return re.sub(r"[\s\-_]+", "_", normalise(text).casefold())


_VOCAB_KEYS = {column: _vocab_keys(column) for column in _VOCABS}


def _match_vocab(column: str, text: str) -> tuple[str | None, str | None]:
    """(value, None) when ``text`` is a value or a zh/en label; else (None, suggestion)."""
    keys = _VOCAB_KEYS[column]
    key = _vocab_key(text)
    if key in keys:
        return keys[key], None
    near = difflib.get_close_matches(key, list(keys), n=1, cutoff=0.5)
    return None, (keys[near[0]] if near else None)


def _check_vocab(column: str, text: str, row: int, problems: _Problems) -> str:
    value, suggestion = _match_vocab(column, text)
    if value is not None:
        return value
    vocab = _VOCABS[column]
    valid = ", ".join(vocab)
    if suggestion is not None:
        zh, en = vocab[suggestion]
        hint = f"did you mean '{suggestion}' ({zh} / {en})? "
        hint_zh = f"是否应为“{suggestion}”（{zh}）？"
    else:
        hint = hint_zh = ""
    problems.add(f"unknown {column} '{_short(text)}': {hint}valid values: {valid}",
                 f"未知的{_VOCAB_ZH[column]}“{_short(text)}”：{hint_zh}可选值：{valid}",
                 row=row, column=column, value=text)
    return ""


def _check_text(column: str, text: str, row: int, problems: _Problems) -> None:
    """What the text rule leaves to free text: formulas."""
    if _FORMULA.match(text):
        problems.add(f"starts with '{text[0]}', which a spreadsheet would run as a formula; "
                     "remove the leading character",
                     f"以“{text[0]}”开头，电子表格会将其作为公式执行，请删除开头的字符",
                     row=row, column=column, value=text)


def _check_id(text: str, row: int, problems: _Problems) -> None:
    if text.casefold().startswith("example-"):
        problems.add("this is the template's example row; delete it (or give a real id)",
                     "这是模板中的示例行，请删除（或填写真实编号）", row=row, column="id",
                     value=text)
    elif not _ID.fullmatch(text):
        bad = next((c for c in text if not _ID.fullmatch(c)), " ")
        problems.add(f"an id may hold letters, digits, '-', '_' and '.' only; found '{bad}' "
                     f"(U+{ord(bad):04X})",
                     f"编号只能包含字母、数字、“-”、“_”和“.”；发现“{bad}”（U+{ord(bad):04X}）",
                     row=row, column="id", value=text)


def _parse_number(text: str) -> tuple[float | None, str]:
    """Parse a decimal degree after NFKC (full-width digits); (value, '') or (None, reason)."""
    s = normalise(text)
    s = s[:-1].strip() if s.endswith("°") else s
    if is_decimal(s):
        value = float(s)
        return (value, "") if math.isfinite(value) else (None, "not_finite")
    low = s.casefold().lstrip("+-")
    if low in ("nan", "inf", "infinity"):
        return None, "not_finite"
    if low in ("null", "none", "n/a", "na", "#n/a", "-", "?", "未知", "无"):
        return None, "placeholder"
    if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", s):
        return None, "comma"
    if re.search(r"[°′″'\"度分秒]", s):
        return None, "dms"
    return None, "not_number"


_NUMBER_MSG = {
    "not_finite": ("is not a finite number", "不是有限数值"),
    "placeholder": ("is a placeholder, not a coordinate: leave the cell empty when the location "
                    "is unknown", "是占位符而不是坐标：位置未知时请留空"),
    "comma": ("uses a comma; write decimal degrees with a point (120.585)",
              "使用了逗号；十进制度数请用小数点（如 120.585）"),
    "dms": ("looks like degrees/minutes/seconds; give decimal degrees (120.585)",
            "看起来是度分秒格式；请填写十进制度数（如 120.585）"),
    "not_number": ("is not a number", "不是数字"),
}


def _in_box(lon: float, lat: float, box: tuple[float, float, float, float]) -> bool:
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def _km_from_suzhou(lon: float, lat: float) -> float:
    lon0, lat0 = SUZHOU_CENTRE
    p1, p2 = math.radians(lat0), math.radians(lat)
    dphi, dlmb = p2 - p1, math.radians(lon - lon0)
    a = math.sin(dphi / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlmb / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))


def _check_point(lon: float, lat: float, kind: str, row: int, problems: _Problems) -> bool:
    """Range, swapped axes and distance from Suzhou; True when the point is acceptable."""
    value = f"{lon}, {lat}"
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        if _in_box(lat, lon, CHINA_BOX):
            problems.add("lon and lat look swapped: in Suzhou the longitude is about 120-121 and "
                         "the latitude about 31-32",
                         "经纬度疑似颠倒：苏州的经度约为 120–121，纬度约为 31–32",
                         row=row, column="lon, lat", value=value)
        else:
            col = "lat" if not -90 <= lat <= 90 else "lon"
            limit = "-90..90" if col == "lat" else "-180..180"
            problems.add(f"{col} is out of range ({limit})", f"{COLUMN_ZH[col]}超出范围（{limit}）",
                         row=row, column=col, value=value)
        return False
    if _in_box(lon, lat, SUZHOU_BOX):
        return True
    km = _km_from_suzhou(lon, lat)
    if _in_box(lon, lat, NEAR_SUZHOU_BOX):
        problems.add(f"the point is outside Suzhou municipality ({km:.0f} km from the centre); "
                     "check it", f"该点位于苏州市域以外（距市中心 {km:.0f} 公里），请核对",
                     row=row, column="lon, lat", value=value, severity="warning")
        return True
    if kind in ABROAD_KINDS:
        problems.add(f"the point is {km:.0f} km from Suzhou; accepted because the kind is '{kind}'",
                     f"该点距苏州 {km:.0f} 公里；因类型为“{kind}”而接受", row=row,
                     column="lon, lat", value=value, severity="warning")
        return True
    hint = (" (0, 0 is a placeholder: leave lon and lat empty when the location is unknown)"
            if lon == 0 and lat == 0 else "")
    hint_zh = "（0, 0 是占位值：位置未知时请将经纬度留空）" if lon == 0 and lat == 0 else ""
    problems.add(f"the point is far outside Suzhou ({km:.0f} km from the centre){hint}; check the "
                 "coordinates and the column order",
                 f"该点远离苏州（距市中心 {km:.0f} 公里）{hint_zh}，请核对坐标及列的顺序", row=row,
                 column="lon, lat", value=value)
    return False


@functools.lru_cache(maxsize=256)
def parse_datum(text: str) -> DatumKey | None:
    """The datum key (``WGS84``, ``GCJ02``, ``BD09``) of a name or alias; None if unknown.

    >>> parse_datum("GCJ-02"), parse_datum("百度"), parse_datum("wgs_84")
    ('GCJ02', 'BD09', 'WGS84')
    """
    key = re.sub(r"[\s\-_:]+", "", normalise(text).casefold())
    return _DATUM_ALIASES.get(key)


# ----------------------------------------------------------------------------- rows


@dataclass
class _Context:
    unit: Literal["row", "feature"]
    option: DatumKey | None
    default: DatumKey | None
    export_mode: bool


#: Columns normalised with NFKC (full-width digits, letters and punctuation) before checks.
_NFKC_COLUMNS = frozenset({"id", "lon", "lat", "source_lon", "source_lat", "source_datum",
                           *_VOCABS})
#: Free-text columns, which may hold line breaks; every other column is one line.
_MULTILINE_COLUMNS = frozenset({"location_source", "source", "notes"})
_COORDINATE_COLUMNS = frozenset({"lon", "lat", "source_lon", "source_lat", "source_datum"})


def _cell(record: list[str], index: dict[str, int], column: str) -> str:
    i = index.get(column)
    if i is None or i >= len(record):
        return ""
    return strip_text(record[i])


def _check_cells(row: int, raw: dict[str, str],
                 problems: _Problems) -> tuple[dict[str, str], set[str]]:
    """Apply the text rule to every cell; return the cells (NFKC where due) and the bad columns."""
    cells: dict[str, str] = {}
    bad: set[str] = set()
    for column, text in raw.items():
        problem = text_problem(text, multiline=column in _MULTILINE_COLUMNS,
                               max_len=_MAX_LEN.get(column, MAX_CELL_CHARS)) if text else None
        if problem is not None:
            problems.add(*problem, row=row, column=column, value=text)
            bad.add(column)
        cells[column] = normalise(text) if text and column in _NFKC_COLUMNS else text
    return cells, bad


def _check_row(row: int, raw: dict[str, str], ctx: _Context,
               problems: _Problems) -> dict[str, Any] | None:
    before = len(problems.items) + problems.dropped
    cells, bad = _check_cells(row, raw, problems)
    for column in REQUIRED_COLUMNS:
        if not cells[column] and column not in bad:
            problems.add(f"the required field '{column}' ({COLUMN_ZH[column]}) is empty",
                         f"必填字段“{column}”（{COLUMN_ZH[column]}）为空", row=row, column=column)
    out: dict[str, Any] = dict(cells)
    if cells["id"] and "id" not in bad:
        _check_id(cells["id"], row, problems)
    for column in _VOCABS:
        if cells[column] and column not in bad:
            out[column] = _check_vocab(column, cells[column], row, problems)
    for column in ("name_zh", "name_en", "location_source", "source", "notes"):
        if cells[column] and column not in bad:
            _check_text(column, cells[column], row, problems)
    if not bad & _COORDINATE_COLUMNS:
        out.update(_check_coordinates(row, cells, out.get("kind", ""), ctx, problems))
    errors = sum(1 for p in problems.items[before:] if p.severity == "error")
    return out if errors == 0 and problems.dropped == 0 and not bad else None


def _check_coordinates(row: int, cells: dict[str, str], kind: str, ctx: _Context,
                       problems: _Problems) -> dict[str, Any]:
    out: dict[str, Any] = {"lon": None, "lat": None, "source_lon": None, "source_lat": None,
                           "source_datum": "", "conversion": ""}
    datum, datum_ok = _row_datum(row, cells["source_datum"], ctx, problems)
    parsed: dict[str, float] = {}
    for column in ("lon", "lat"):
        text = cells[column]
        if not text:
            continue
        value, reason = _parse_number(text)
        if value is None:
            en, zh = _NUMBER_MSG[reason]
            problems.add(f"'{_short(text)}' {en}", f"“{_short(text)}”{zh}", row=row,
                         column=column, value=text)
        else:
            parsed[column] = value
    if bool(cells["lon"]) != bool(cells["lat"]):
        lack = "lat" if cells["lon"] else "lon"
        problems.add(f"{lack} is empty while {'lon' if lack == 'lat' else 'lat'} is given: give "
                     "both or neither",
                     f"{COLUMN_ZH[lack]}为空但另一坐标已填写：请两者都填或都不填",
                     row=row, column=lack)
        return out
    if (len(parsed) < 2 or not _check_point(parsed["lon"], parsed["lat"], kind, row, problems)
            or not datum_ok):
        return out
    if ctx.export_mode:
        return _export_coordinates(row, cells, parsed, datum, problems) or out
    if datum is None:
        problems.add("the coordinate system is unknown: give --datum wgs84|gcj02|bd09 (or choose "
                     "it on the page) or fill the source_datum column (WGS84, GCJ02 for "
                     "AMap/Tencent, BD09 for Baidu)",
                     "坐标系未知：请指定 --datum wgs84|gcj02|bd09（或在页面上选择），或填写 "
                     "source_datum 列（WGS84；高德/腾讯为 "
                     "GCJ02；百度为 BD09）", row=row, column="source_datum")
        return out
    out.update(source_lon=parsed["lon"], source_lat=parsed["lat"], source_datum=datum)
    return out


def _row_datum(row: int, text: str, ctx: _Context,
               problems: _Problems) -> tuple[DatumKey | None, bool]:
    """The datum of a row and whether it is free of problems (a None datum may be fine)."""
    if not text:
        return ctx.option or ctx.default, True
    if re.sub(r"[\s\-_]", "", text.casefold()) in ("bd09mc", "bdmc"):
        problems.add("BD-09 Mercator (metres) is not supported; export Baidu longitude/latitude "
                     "(BD09) instead", "不支持百度墨卡托（米制）坐标，请导出百度经纬度（BD09）",
                     row=row, column="source_datum", value=text)
        return None, False
    datum = parse_datum(text)
    if datum is None:
        problems.add(f"unknown coordinate system '{_short(text)}': use WGS84, GCJ02 (AMap/Tencent) "
                     "or BD09 (Baidu)",
                     f"未知的坐标系“{_short(text)}”：请使用 WGS84、"
                     "GCJ02（高德/腾讯）或 BD09（百度）",
                     row=row, column="source_datum", value=text)
        return None, False
    if ctx.option is not None and datum != ctx.option and not ctx.export_mode:
        problems.add(f"the row says {datum} but the import was asked for {ctx.option}; "
                     "make them agree",
                     f"该行坐标系为 {datum}，但导入时指定了 {ctx.option}，请保持一致",
                     row=row, column="source_datum", value=text)
        return None, False
    return datum, True


def _export_coordinates(row: int, cells: dict[str, str], parsed: dict[str, float],
                        datum: DatumKey | None, problems: _Problems) -> dict[str, Any] | None:
    """A file exported by this app: lon/lat are WGS-84; source_* keep the original."""
    wgs = {"lon": parsed["lon"], "lat": parsed["lat"]}
    if not cells["source_lon"] and not cells["source_lat"]:
        return {**wgs, "source_lon": wgs["lon"], "source_lat": wgs["lat"], "source_datum": "WGS84",
                "conversion": _CONVERSION["WGS84"]}
    src = [_parse_number(cells[c])[0] for c in ("source_lon", "source_lat")]
    if src[0] is None or src[1] is None or datum is None:
        problems.add("source_lon/source_lat need two numbers and a source_datum; or clear both",
                     "source_lon/source_lat 需要两个数值及 source_datum；或将两者清空",
                     row=row, column="source_lon, source_lat",
                     value=f"{cells['source_lon']}, {cells['source_lat']}")
        return None
    x, y = datum_mod.to_wgs84([src[0]], [src[1]], datum.lower())
    metres = math.hypot(
        (float(x[0]) - wgs["lon"]) * 111_320 * math.cos(math.radians(wgs["lat"])),
        (float(y[0]) - wgs["lat"]) * 110_570)
    if metres > 1.0:
        problems.add(f"lon/lat are {metres:.0f} m from source_lon/source_lat converted from "
                     f"{datum}; if you edited lon/lat, clear source_lon and source_lat",
                     f"lon/lat 与由 {datum} 转换的 source_lon/source_lat 相差 {metres:.0f} 米；"
                     "如修改过 lon/lat，请清空 source_lon 与 source_lat", row=row,
                     column="lon, lat",
                     value=f"{wgs['lon']}, {wgs['lat']}")
        return None
    return {**wgs, "source_lon": src[0], "source_lat": src[1], "source_datum": datum,
            "conversion": _conversion(datum, src[0], src[1])}


def _conversion(datum: str, lon: float, lat: float) -> str:
    if datum != "WGS84" and not bool(datum_mod.in_mainland_china(lon, lat)):
        return _NOT_SHIFTED.format(d=datum)
    return _CONVERSION[datum]


def _convert(rows: list[dict[str, Any]]) -> None:
    """Fill WGS-84 lon/lat from source_lon/source_lat, vectorised per datum (in place)."""
    for datum in ("WGS84", "GCJ02", "BD09"):
        sel = [r for r in rows if r["source_datum"] == datum and r["lon"] is None
               and r["source_lon"] is not None]
        if not sel:
            continue
        sx, sy = [r["source_lon"] for r in sel], [r["source_lat"] for r in sel]
        x, y = datum_mod.to_wgs84(sx, sy, datum.lower())
        shifted = datum_mod.in_mainland_china(sx, sy) | (datum == "WGS84")
        for r, lon, lat, inside in zip(sel, x, y, shifted, strict=True):
            r["lon"], r["lat"] = float(lon), float(lat)
            r["conversion"] = _CONVERSION[datum] if inside else _NOT_SHIFTED.format(d=datum)


def _check_ids(rows: list[tuple[int, dict[str, Any]]], existing: Collection[str],
               problems: _Problems) -> set[int]:
    """Duplicate ids in the file or already in the store; returns the rows to drop."""
    first: dict[str, int] = {}
    bad: set[int] = set()
    for row, rec in rows:
        rid = rec["id"]
        if rid in first:
            problems.add(f"duplicate id '{rid}' (first used on {problems.unit} {first[rid]})",
                         f"编号“{rid}”重复（首次出现在第 {first[rid]} "
                         f"{'行' if problems.unit == 'row' else '个要素'}）",
                         row=row, column="id", value=rid)
            bad.add(row)
        else:
            first[rid] = row
        if rid in existing:
            problems.add(f"id '{rid}' is already in the database; ids must be unique (remove the "
                         "earlier import batch first to replace it)",
                         f"编号“{rid}”已存在于数据库中；编号必须唯一（如需替换，请先删除先前的导入批次）",
                         row=row, column="id", value=rid)
            bad.add(row)
    return bad
