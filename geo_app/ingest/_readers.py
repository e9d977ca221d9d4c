"""The readers of entity files: delimited text, Excel .xlsx and GeoJSON, each into a header
and text rows (:class:`_Raw`), and the header mapped onto the registry's columns."""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Literal

import shapely

from geo_app.ingest._checks import _parse_number
from geo_app.ingest.decoding import decode_text
from geo_app.ingest.report import Problem, _Problems, _Rejected
from geo_app.ingest.schema import (
    COLUMN_ZH,
    CSV_FIELD_LIMIT,
    DERIVED_COLUMNS,
    HEADER_ALIASES,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_HEADER_CHARS,
    MAX_ROWS,
    REQUIRED_COLUMNS,
    DatumKey,
)
from geo_app.ingest.text import _short, normalise, strip_text, text_problem
from geo_app.vocab import REGISTRY_COLUMNS


@dataclass
class _Raw:
    """A file read into a header and text rows, before validation."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    problems: list[Problem] = field(default_factory=list)
    encoding: str = ""
    delimiter: str = ""
    unit: Literal["row", "feature"] = "row"
    default_datum: DatumKey | None = None


def _header_key(name: str) -> str:
    return re.sub(r"\s+", "_", normalise(name).casefold())


def _canonical(name: str) -> str | None:
    key = _header_key(name)
    if key in REGISTRY_COLUMNS or key in DERIVED_COLUMNS:
        return key
    return HEADER_ALIASES.get(key)


def _check_header(header: list[str]) -> None:
    """Refuse a header with more than :data:`MAX_COLUMNS` columns, an over-long or unreadable name.

    Every reader checks its header with this before it reads the rows, so no file makes
    the checks below it walk 20,000 columns or quote a name a million characters long.
    """
    if len(header) > MAX_COLUMNS:
        raise _Rejected(f"the file has {len(header):,} columns; at most {MAX_COLUMNS} are accepted "
                        "— keep only the registry's columns (see the template, "
                        "data/import_template.csv)",
                        f"文件有 {len(header):,} 列，最多接受 {MAX_COLUMNS} 列，请只保留登记表的列"
                        "（见模板 data/import_template.csv）")
    for i, name in enumerate(header, start=1):
        if len(name) > MAX_HEADER_CHARS:
            raise _Rejected(f"the name of column {i} is {len(name):,} characters long; column "
                            f"names have at most {MAX_HEADER_CHARS} — is the first row "
                            "really the header?",
                            f"第 {i} 列的列名长 {len(name):,} 个字符，列名最多 {MAX_HEADER_CHARS} "
                            "个字符（第一行是否为表头？）", column=f"#{i}", value=name)
        bad = text_problem(strip_text(name))
        if bad is not None:
            raise _Rejected(f"the name of column {i} {bad[0]}", f"第 {i} 列的列名{bad[1]}",
                            column=f"#{i}", value=name)


def _sniff_delimiter(first_line: str) -> str:
    best, best_score = ",", (-1, -1)
    for delim in (",", "\t", ";", "|"):
        try:
            fields = next(csv.reader([first_line], delimiter=delim), [])
        except csv.Error:  # the header line cannot be split this way
            continue
        score = (sum(_canonical(f) is not None for f in fields[: MAX_COLUMNS + 1]), len(fields))
        if score > best_score:
            best, best_score = delim, score
    return best


#: The longest header line :func:`_check_header` can accept (quotes and separators included).
_MAX_HEADER_LINE = MAX_COLUMNS * (MAX_HEADER_CHARS + 3)


def _read_delimited(data: bytes) -> _Raw:
    text, encoding = decode_text(data)
    head = text.lstrip()[:200].casefold()
    if head.startswith(("<!doctype html", "<html", "<?xml")):
        raise _Rejected("this is an HTML/XML page, not a CSV table (a web page saved by mistake?)",
                        "这是 HTML/XML 网页，不是 CSV 表格（是否误存了网页？）")
    if head.startswith(("{", "[")):
        raise _Rejected("this looks like JSON; if it is GeoJSON, name the file .geojson",
                        "内容看起来是 JSON；如果是 GeoJSON，请将文件扩展名改为 .geojson")
    first_line = text.split("\n", 1)[0]
    if len(first_line) > _MAX_HEADER_LINE:
        raise _Rejected(f"the first line (the header) is {len(first_line):,} characters long; a "
                        f"header has at most {MAX_COLUMNS} columns of at most {MAX_HEADER_CHARS} "
                        "characters — is the first row really the header?",
                        f"第一行（表头）长 {len(first_line):,} 个字符；表头最多 {MAX_COLUMNS} 列、"
                        f"每列名最多 {MAX_HEADER_CHARS} 个字符（第一行是否为表头？）", row=1)
    delimiter = _sniff_delimiter(first_line)
    csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, list[str]]] = []
    record = 0
    try:
        header = next(reader, [])
        _check_header(header)
        for values in reader:
            record += 1
            if any(strip_text(v) for v in values):
                rows.append((record + 1, values))
            if len(rows) > MAX_ROWS:
                break
    except csv.Error as err:
        raise _csv_error(err, record + 2, reader.line_num) from err
    return _Raw(header=header, rows=rows, encoding=encoding, delimiter=delimiter)


def _csv_error(err: csv.Error, row: int, line: int) -> _Rejected:
    if "field larger than field limit" in str(err):
        limit = CSV_FIELD_LIMIT
        return _Rejected(f"a value near row {row} is longer than {limit:,} characters (no cell may "
                         f"hold more than {MAX_CELL_CHARS:,}); is a quote left open before it?",
                         f"第 {row} 行附近有一个值超过 {limit:,} 个字符（单元格最多 "
                         f"{MAX_CELL_CHARS:,} 个字符），是否有未闭合的引号？", row=row)
    return _Rejected(f"the CSV cannot be parsed near row {row} (line {line}): {err} — check the "
                     "quotes in that row",
                     f"CSV 在第 {row} 行（第 {line} 个物理行）"
                     "附近无法解析：请检查该行的引号", row=row)


def _xlsx_text(cell: Any, column: str | None, row: int, problems: _Problems) -> str:
    value = cell.value
    if value is None:
        return ""
    kind = getattr(cell, "data_type", "")
    if kind == "f":
        problems.add(f"the cell holds a formula ({value}); formulas are not evaluated here — "
                     "copy the column and paste it as values",
                     f"单元格包含公式（{value}），本应用不计算公式，请复制该列并“粘贴为数值”",
                     row=row, column=column or "", value=value)
        return ""
    if kind == "e":
        problems.add(f"the cell holds the Excel error {value}", f"单元格包含 Excel 错误值 {value}",
                     row=row, column=column or "", value=value)
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (datetime, date, time)):
        if column == "id":
            problems.add(f"Excel turned this id into a date ({value}); format the id column as "
                         "Text and type the ids again",
                         f"Excel 把编号转换成了日期（{value}），请将编号列设为“文本”格式后重新输入",
                         row=row, column="id", value=value)
        return value.isoformat()
    if isinstance(value, (int, float)):
        return _xlsx_number(value, getattr(cell, "number_format", "General") or "General",
                            column, row, problems)
    return str(value)


def _xlsx_number(value: float, fmt: str, column: str | None, row: int, problems: _Problems) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    integral = isinstance(value, int) or value.is_integer()
    if column != "id":
        return str(int(value)) if isinstance(value, int) else repr(float(value))
    if not integral or abs(value) >= 1e15:
        problems.add("this id is a number Excel may have rounded (more than 15 digits or a "
                     "fraction); format the id column as Text and type the ids again",
                     "该编号是数字，Excel 可能已舍入（超过 15 位或含小数），"
                     "请将编号列设为“文本”后重新输入",
                     row=row, column="id", value=value)
        return repr(value)
    text = str(int(value))
    if re.fullmatch(r"0+", fmt):
        return text.zfill(len(fmt))  # the zero-padded form Excel displayed (e.g. 000123)
    problems.add(f"id {text} is stored as a number in Excel: if it had leading zeros (like 000123) "
                 "they are lost — format the id column as Text in Excel to keep them",
                 f"编号 {text} 在 Excel 中是数字：如原有前导零（如 000123）已丢失，"
                 "请将编号列设为“文本”格式",
                 row=row, column="id", value=text, severity="warning")
    return text


def _read_xlsx(data: bytes) -> _Raw:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    # A crafted workbook can make openpyxl fail in many ways (bad numbers, dates out of range,
    # broken XML, missing parts); each is a file that cannot be read, never a traceback.
    unreadable = (InvalidFileException, zipfile.BadZipFile, zlib.error, KeyError, ValueError,
                  TypeError, IndexError, AttributeError, OverflowError, SyntaxError, EOFError,
                  OSError, RecursionError)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except unreadable as err:
        raise _unreadable_workbook(err) from err
    try:
        return _read_first_sheet(wb)
    except _Rejected:
        raise
    except unreadable as err:
        raise _unreadable_workbook(err) from err
    finally:
        wb.close()


def _unreadable_workbook(err: BaseException) -> _Rejected:
    return _Rejected(f"the workbook cannot be read ({type(err).__name__}: {err}) — open it in "
                     "Excel and save it again as .xlsx",
                     "无法读取该工作簿，请在 Excel 中打开并重新另存为 .xlsx")


def _read_first_sheet(wb: Any) -> _Raw:
    """The header and rows of the first sheet, reading only the cells the sheet holds.

    The ``<dimension>`` a file declares is ignored (``A1:XFD1048576`` would make openpyxl pad
    every row to 16,384 cells); a row wider than :data:`MAX_COLUMNS` or a sheet reaching
    below row ``MAX_ROWS + 1`` is refused as soon as it is met.
    """
    if not wb.worksheets:
        raise _Rejected("the workbook has no worksheet", "工作簿中没有工作表")
    ws = wb.worksheets[0]
    ws.reset_dimensions()
    problems = _Problems()
    if len(wb.worksheets) > 1:
        others = ", ".join(_short(s.title, 40) for s in wb.worksheets[1:6])
        more = f" and {len(wb.worksheets) - 6:,} more" if len(wb.worksheets) > 6 else ""
        problems.add(f"only the first sheet '{_short(ws.title, 40)}' is read; other sheets "
                     f"({others}{more}) are ignored",
                     f"只读取第一个工作表“{_short(ws.title, 40)}”；其他工作表（{others}）未读取",
                     severity="warning")
    header: list[str] = []
    columns: list[str | None] = []
    rows: list[tuple[int, list[str]]] = []
    for number, cells in enumerate(ws.iter_rows(max_row=MAX_ROWS + 2), start=1):
        if len(cells) > MAX_COLUMNS:
            raise _Rejected(f"row {number} has cells up to column {len(cells):,}; at most "
                            f"{MAX_COLUMNS} columns are accepted — delete the columns right of "
                            "your data",
                            f"第 {number} 行的单元格延伸到第 {len(cells):,} 列，最多接受 "
                            f"{MAX_COLUMNS} 列，请删除数据右侧的列", row=number)
        if number > MAX_ROWS + 1:
            raise _Rejected(f"the first sheet goes on below row {MAX_ROWS + 1:,}; at most "
                            f"{MAX_ROWS:,} data rows are accepted — split the file or delete what "
                            "lies below your data",
                            f"第一个工作表超过第 {MAX_ROWS + 1:,} 行，最多接受 {MAX_ROWS:,} "
                            "行数据，请拆分文件或删除数据下方的内容")
        if number == 1:
            header = [_xlsx_text(c, None, 1, problems) for c in cells]
            _check_header(header)
            columns = [_canonical(h) for h in header]
            continue
        values = [_xlsx_text(c, columns[i] if i < len(columns) else None, number, problems)
                  for i, c in enumerate(cells)]
        if any(strip_text(v) for v in values):
            rows.append((number, values))
    return _Raw(header=header, rows=rows, problems=problems.final(), encoding="xlsx")


def _reject_constant(name: str) -> float:
    raise _Rejected(f"the file contains {name}, which is not valid JSON (RFC 8259): use null "
                    "for an unknown value",
                    f"文件包含 {name}，这不是合法的 JSON：未知值请用 null")


#: Most digits of a JSON integer: more cannot be a coordinate and overflow a float.
_MAX_JSON_DIGITS = 300


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_DIGITS:
        raise _Rejected(f"the file holds a number with {len(text):,} digits; no value here needs "
                        f"more than {_MAX_JSON_DIGITS}", f"文件中有一个 {len(text):,} 位的数字，"
                        f"任何值都不需要超过 {_MAX_JSON_DIGITS} 位", value=text)
    return int(text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Rejected(f"a JSON object has the key '{key}' twice; which value is meant is "
                            "ambiguous — keep one",
                            f"某个 JSON 对象中键“{key}”出现了两次，含义不明确，请只保留一个",
                            value=key)
        out[key] = value
    return out


def _read_geojson(data: bytes) -> _Raw:
    text, encoding = decode_text(data)
    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_int=_json_int,
                         object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as err:
        raise _Rejected(f"not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})",
                        f"不是合法的 JSON：第 {err.lineno} 行第 {err.colno} "
                        f"列（{err.msg}）") from err
    except RecursionError as err:
        raise _Rejected("the JSON is nested too deeply", "JSON 嵌套层级过深") from err
    features = _feature_list(obj)
    problems = _Problems(unit="feature")
    records: list[tuple[int, dict[str, str]]] = []
    for number, feature in enumerate(features, start=1):
        record = _read_feature(number, feature, problems)
        if record is not None:
            records.append((number, record))
    header: list[str] = list(dict.fromkeys(k for _, rec in records for k in rec))
    _check_header(header)  # before the table is built: features x distinct keys cells
    rows = [(n, [rec.get(k, "") for k in header]) for n, rec in records]
    return _Raw(header=header, rows=rows, problems=problems.final(), encoding=encoding,
                unit="feature", default_datum="WGS84")


def _feature_list(obj: Any) -> list[Any]:
    if not isinstance(obj, dict):
        raise _Rejected(f"a GeoJSON FeatureCollection (a JSON object) is expected, not a JSON "
                        f"{type(obj).__name__}", "应为 GeoJSON FeatureCollection（JSON 对象）")
    crs = obj.get("crs")
    if crs is not None:
        name = json.dumps(crs, ensure_ascii=False)
        if not re.search(r"CRS84|EPSG::?4326\b|\b4326\b", name):
            raise _Rejected(f"the file declares the coordinate system {_short(name)}; only WGS-84 "
                            "longitude/latitude (RFC 7946) is accepted — reproject to "
                            "EPSG:4326 first",
                            f"文件声明的坐标系为 {_short(name)}；只接受 WGS-84 经纬度（RFC 7946），"
                            "请先转换为 EPSG:4326", value=name)
    gtype = obj.get("type")
    if gtype == "Feature":
        return [obj]
    if gtype != "FeatureCollection":
        raise _Rejected(f"a GeoJSON FeatureCollection is expected, got type '{_short(gtype)}'",
                        f"应为 GeoJSON FeatureCollection，实际类型为“{_short(gtype)}”", value=gtype)
    features = obj.get("features")
    if not isinstance(features, list):
        raise _Rejected("the FeatureCollection has no 'features' list",
                        "FeatureCollection 缺少 features 列表")
    if len(features) > MAX_ROWS:
        raise _Rejected(f"the file has {len(features)} features; the limit is {MAX_ROWS}",
                        f"文件含 {len(features)} 个要素，超过 {MAX_ROWS} 个的上限")
    return features


def _json_text(value: Any) -> str | None:
    """A JSON property value as text; None for nested objects and arrays."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    return None


def _read_feature(number: int, feature: Any, problems: _Problems) -> dict[str, str] | None:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        problems.add("not a GeoJSON Feature (each element of 'features' needs \"type\": "
                     "\"Feature\")",
                     "不是 GeoJSON Feature（features 中每个元素都需要 \"type\": \"Feature\"）",
                     row=number)
        return None
    props = feature.get("properties")
    if props is not None and not isinstance(props, dict):
        problems.add("'properties' must be an object or null", "properties 必须是对象或 null",
                     row=number, value=props)
        return None
    record: dict[str, str] = {}
    for key, value in (props or {}).items():
        text = _json_text(value)
        if text is None:
            problems.add("a nested object or list cannot go into a registry column; give text",
                         "嵌套的对象或数组无法写入登记表的列，请填写文本", row=number,
                         column=_canonical(key) or key, value=json.dumps(value, ensure_ascii=False))
            text = ""
        record[key] = text
    if "id" in feature:
        fid = _json_text(feature["id"]) or ""
        if record.get("id", "") not in ("", fid):
            problems.add(f"the feature id '{fid}' differs from properties.id '{record['id']}'",
                         f"要素 id“{fid}”与 properties.id“{record['id']}”不一致",
                         row=number, column="id", value=fid)
        record["id"] = record.get("id") or fid
    if "geometry" not in feature:
        problems.add("the feature has no 'geometry' member (use null for an unknown location)",
                     "要素缺少 geometry（位置未知时请写 null）", row=number)
        return record
    _read_geometry(number, feature["geometry"], record, problems)
    return record


def _read_geometry(number: int, geom: Any, record: dict[str, str], problems: _Problems) -> None:
    if geom is None:
        return
    gtype = geom.get("type") if isinstance(geom, dict) else None
    if gtype in ("Polygon", "MultiPolygon"):
        reason = _polygon_problem(gtype, geom.get("coordinates"))
        if reason:
            problems.add(f"invalid {gtype}: {reason}; besides, only Point features can be imported "
                         "as entities",
                         f"无效的 {gtype}：{reason}；此外，主体只能以 Point（点）要素导入",
                         row=number, column="geometry", value=gtype)
        else:
            problems.add(f"the geometry is a {gtype}; only Point features can be imported as "
                         "entities — give one point per entity (e.g. its centre, with "
                         "location_precision 'zone')",
                         f"几何类型为 {gtype}；主体只能以 Point（点）要素导入，"
                         "请为每个主体给出一个点（如中心点，定位精度填 "
                         "zone）", row=number, column="geometry", value=gtype)
        return
    if gtype != "Point":
        problems.add(f"the geometry type is '{_short(gtype)}'; only Point features (or null for an "
                     "unknown location) can be imported as entities",
                     f"几何类型为“{_short(gtype)}”；主体只能以 Point（点）"
                     "要素导入（位置未知时为 null）",
                     row=number, column="geometry", value=gtype)
        return
    coords = geom.get("coordinates")
    if not _is_position(coords):
        problems.add("Point coordinates must be [longitude, latitude] numbers",
                     "Point 坐标必须是 [经度, 纬度] 数值", row=number, column="geometry",
                     value=json.dumps(coords))
        return
    lon, lat = repr(float(coords[0])), repr(float(coords[1]))
    for key, value in (("lon", lon), ("lat", lat)):
        given = record.get(key, "")
        if given and _parse_number(given)[0] != float(value):
            problems.add(f"properties.{key} ({given}) differs from the Point geometry ({value})",
                         f"properties.{key}（{given}）与 Point 几何（{value}）不一致",
                         row=number, column=key, value=given)
        record[key] = value


def _is_position(coords: Any) -> bool:
    return (isinstance(coords, list) and len(coords) in (2, 3)
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in coords))


def _polygon_problem(gtype: str, coords: Any) -> str | None:
    """Why a (Multi)Polygon is invalid, or None when it is valid."""
    polys = coords if gtype == "MultiPolygon" else [coords]
    if not isinstance(polys, list) or not polys:
        return "no coordinates"
    shapes = []
    for rings in polys:
        if not isinstance(rings, list) or not rings:
            return "a polygon has no rings"
        for ring in rings:
            if not isinstance(ring, list) or not all(_is_position(p) for p in ring):
                return "a ring is not a list of [lon, lat] positions"
            if len(ring) < 4:
                return f"a ring has {len(ring)} positions; at least 4 are needed"
            if ring[0][:2] != ring[-1][:2]:
                return "a ring is not closed (its first and last positions differ)"
            if not all(math.isfinite(c) for p in ring for c in p):
                return "a ring has a coordinate that is not a finite number"
        shapes.append(shapely.Polygon(rings[0], rings[1:]))
    geom = shapes[0] if gtype == "Polygon" else shapely.MultiPolygon(shapes)
    reason = shapely.is_valid_reason(geom)
    return None if reason == "Valid Geometry" else reason


def _map_columns(raw: _Raw, problems: _Problems) -> dict[str, int]:
    """Registry column -> index in the rows; reports unknown, duplicate and missing columns."""
    index: dict[str, int] = {}
    for i, name in enumerate(raw.header):
        col = _canonical(name)
        if not name.strip():
            if any(i < len(v) and v[i].strip() for _, v in raw.rows):
                problems.add(f"column {i + 1} has values but no header",
                             f"第 {i + 1} 列有数据但没有列名",
                             column=f"#{i + 1}")
            continue
        if col is None:
            known = [*REGISTRY_COLUMNS, *HEADER_ALIASES]
            near = difflib.get_close_matches(_header_key(name), known, n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'? " if near else ""
            hint_zh = f"是否应为“{near[0]}”？" if near else ""
            problems.add(f"unknown column '{name}': {hint}the registry has no place for it — "
                         f"rename or remove it (columns: {', '.join(REGISTRY_COLUMNS)})",
                         f"未知的列“{name}”：{hint_zh}登记表没有对应字段，请改名或删除该列",
                         column=name, value=name)
        elif col in index:
            problems.add(f"two columns map to '{col}' ('{raw.header[index[col]]}' and "
                         f"'{name}'); keep one",
                         f"有两列都对应“{col}”（“{raw.header[index[col]]}”和“{name}”），请只保留一列",
                         column=col, value=name)
        else:
            index[col] = i
    for col in REQUIRED_COLUMNS:
        if col not in index:
            problems.add(f"the required column '{col}' ({COLUMN_ZH[col]}) is missing",
                         f"缺少必填列“{col}”（{COLUMN_ZH[col]}）", column=col)
    if ("lon" in index) != ("lat" in index):
        have, lack = ("lon", "lat") if "lon" in index else ("lat", "lon")
        problems.add(f"there is a '{have}' column but no '{lack}' column",
                     f"有“{have}”列但缺少“{lack}”列",
                     column=lack)
    return index
