"""Write the bad-input corpus (files + cases.json): ``python tests/bad_inputs/make_corpus.py``.

Every file is small and generated here, so the corpus can be re-made and reviewed as code.
Each case names the file, the --datum used, the expected English and Chinese message
fragments, and the row (or feature) and column the problem must be reported at.
"""

from __future__ import annotations

import codecs
import io
import json
import zipfile
from pathlib import Path

from openpyxl import Workbook

HERE = Path(__file__).resolve().parent
COLUMNS = ["id", "name_zh", "name_en", "kind", "level", "status", "board", "lon", "lat",
           "location_precision", "location_source", "source_datum", "source", "notes"]
GOOD = {"id": "u-001", "name_zh": "测试实验室", "name_en": "Test lab", "kind": "laboratory",
        "level": "provincial", "status": "operating", "board": "昆山市", "lon": "120.95",
        "lat": "31.38", "location_precision": "district", "location_source": "AMap search",
        "source_datum": "GCJ02", "source": "user list 2024", "notes": ""}


def row(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


def csv_text(rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> str:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([r.get(c, "") for c in columns])
    return buf.getvalue()


def csv_bytes(rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> bytes:
    return csv_text(rows, columns).encode("utf-8")


def xlsx_bytes(build) -> bytes:  # type: ignore[no-untyped-def]
    wb = Workbook()
    ws = wb.active
    ws.title = "registry"
    ws.append(COLUMNS)
    build(ws)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def good_xlsx_row(ws, **changes: object) -> None:  # type: ignore[no-untyped-def]
    r = {**GOOD, **changes}
    ws.append([r[c] for c in COLUMNS])


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def feature(props: dict[str, object] | None = None, geometry: object = "point",
            **extra: object) -> dict[str, object]:
    p = {k: v for k, v in GOOD.items() if k not in ("lon", "lat", "source_datum")}
    p.update(props or {})
    if geometry == "point":
        geometry = {"type": "Point", "coordinates": [120.95, 31.38]}
    return {"type": "Feature", "properties": p, "geometry": geometry, **extra}


def fc(*features: dict[str, object], **extra: object) -> bytes:
    return json.dumps({"type": "FeatureCollection", **extra, "features": list(features)},
                      ensure_ascii=False).encode("utf-8")


def with_macro() -> bytes:
    base = xlsx_bytes(lambda ws: good_xlsx_row(ws))
    src = zipfile.ZipFile(io.BytesIO(base))
    members = {i.filename: src.read(i.filename) for i in src.infolist()}
    members["xl/vbaProject.bin"] = b"\xd0\xcf\x11\xe0 fake vba project"
    return zip_bytes(members)


SQUARE = [[120.9, 31.3], [121.0, 31.3], [121.0, 31.4], [120.9, 31.4], [120.9, 31.3]]
BOWTIE = [[120.9, 31.3], [121.0, 31.4], [121.0, 31.3], [120.9, 31.4], [120.9, 31.3]]

# (file name, content, datum, [en fragment, zh fragment], row, column, why)
CASES: list[tuple[str, bytes, str | None, list[str], int | None, str, str]] = [
    # --- file level: size, type, content sniffing
    ("empty.csv", b"", None, ["the file is empty", "文件为空"], None, "", "0 bytes"),
    ("header_only.csv", csv_bytes([]), None, ["no data rows", "没有数据行"], None, "",
     "a header and nothing else"),
    ("report.docx", b"id,name\n1,x\n", None, ["unsupported file type '.docx'", "不支持的文件类型"],
     None, "", "extension outside csv/txt/xlsx/geojson/json"),
    ("workbook_renamed.csv", xlsx_bytes(lambda ws: good_xlsx_row(ws)), None,
     ["ZIP container", "ZIP 容器"], None, "", "an .xlsx renamed .csv"),
    ("legacy.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, None,
     ["legacy .xls", "不是 Excel 工作簿"], None, "", "an OLE2 .xls saved with the .xlsx extension"),
    ("legacy_as_csv.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, None,
     ["legacy Excel .xls", "旧版 Excel"], None, "", "an OLE2 .xls named .csv"),
    ("text_renamed.xlsx", csv_bytes([row()]), None, ["not an Excel workbook", "不是 Excel 工作簿"],
     None, "", "a CSV renamed .xlsx"),
    ("archive.xlsx", zip_bytes({"notes.txt": b"hello"}), None,
     ["no xl/workbook.xml", "缺少 xl/workbook.xml"], None, "", "a ZIP that is no workbook"),
    ("word.xlsx", zip_bytes({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<x/>"}), None,
     ["Word document", "不是 Excel 工作簿"], None, "", "a .docx renamed .xlsx"),
    ("calc.xlsx", zip_bytes({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet",
                             "content.xml": b"<x/>"}), None,
     ["OpenDocument spreadsheet", "OpenDocument 表格"], None, "", "an .ods renamed .xlsx"),
    ("truncated.xlsx", xlsx_bytes(lambda ws: good_xlsx_row(ws))[:300], None,
     ["damaged", "已损坏"], None, "", "a workbook cut off mid-download"),
    ("macros.xlsx", with_macro(), None, ["contains macros", "包含宏"], None, "",
     "xl/vbaProject.bin inside"),
    ("scan.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", None, ["is a PDF", "PDF"], None, "",
     "a PDF named .csv"),
    ("page.csv", b"<!DOCTYPE html><html><body>404</body></html>", None,
     ["HTML/XML page", "HTML/XML 网页"], None, "", "a saved web page"),
    ("points.csv", fc(feature()), None, ["looks like JSON", "JSON"], None, "",
     "GeoJSON named .csv"),
    ("binary.csv", bytes(range(256)) * 4, None, ["NUL bytes", "NUL 字节"], None, "",
     "binary bytes with NULs"),
    # --- encodings
    ("latin1.csv",
     csv_text([row(name_zh="Café", name_en="Zürich, café", board="")]).encode("cp1252"),
     None, ["not UTF-8, UTF-16 or GBK/GB18030", "无法识别文件编码"], None, "",
     "cp1252 bytes that no supported encoding decodes"),
    ("mixed_encoding.csv", csv_bytes([row()]) + "u-002,无锡实验室,,laboratory,provincial,operating,"
     ",,,unknown,,,list,\n".encode("gbk"), None, ["mixes encodings", "混用了多种编码"], None, "",
     "a GBK row appended to a UTF-8 file"),
    ("bom_then_gbk.csv", codecs.BOM_UTF8 + csv_text([row()]).encode("gbk"), None,
     ["byte-order mark", "字节顺序标记"], None, "", "a UTF-8 BOM in front of GBK text"),
    ("utf16_truncated.txt", codecs.BOM_UTF16_LE + csv_text([row()]).encode("utf-16-le")[:-1], None,
     ["UTF-16 LE", "UTF-16 LE"], None, "", "UTF-16 with an odd byte count"),
    ("mojibake.csv", csv_bytes([row(name_zh="苏州实验室".encode().decode("latin-1"))]), None,
     ["looks garbled", "疑似乱码"], 2, "name_zh", "UTF-8 already garbled as Latin-1 in the cells"),
    # --- structure
    ("missing_column.csv", csv_bytes([row()], [c for c in COLUMNS if c != "source"]), None,
     ["required column 'source'", "缺少必填列“source”"], None, "source", "no source column"),
    ("unknown_column.csv", csv_bytes([row()], ["nmae_zh" if c == "name_zh" else c
                                               for c in COLUMNS]), None,
     ["did you mean 'name_zh'", "是否应为“name_zh”"], None, "nmae_zh", "a typo in a header"),
    ("duplicate_column.csv", csv_bytes([row()], [*COLUMNS, "经度"]), None,
     ["two columns map to 'lon'", "有两列都对应“lon”"], None, "lon", "lon and 经度 together"),
    ("lon_without_lat.csv", csv_bytes([row()], [c for c in COLUMNS if c != "lat"]), None,
     ["'lon' column but no 'lat'", "缺少“lat”列"], None, "lat",
     "half a coordinate pair of columns"),
    ("unnamed_column.csv", csv_text([row()]).replace("\n", ",\n", 1).replace(
        "list 2024,\n", "list 2024,,surprise\n").encode(), None,
     ["has values but no header", "有数据但没有列名"], None, "#15", "data under an empty header"),
    ("extra_field.csv", csv_bytes([row()]).replace(b"list 2024,", b"list 2024,a, b,"), None,
     ["the header has 14 columns", "表头只有 14 列"], 2, "", "an unquoted comma in notes"),
    ("open_quote.csv", csv_bytes([row()]) + b'u-002,"unclosed,x,laboratory\n', None,
     ["cannot be parsed", "无法解析"], 3, "", "a quote never closed"),
    # --- required values and vocabularies
    ("missing_name.csv", csv_bytes([row(), row(id="u-002", name_zh="")]), None,
     ["required field 'name_zh'", "必填字段“name_zh”"], 3, "name_zh", "empty required cell"),
    ("kind_typo.csv", csv_bytes([row(kind="labratory")]), None,
     ["did you mean 'laboratory'", "是否应为“laboratory”"], 2, "kind", "nearest kind suggested"),
    ("level_typo.csv", csv_bytes([row(level="nationl")]), None,
     ["did you mean 'national'", "是否应为“national”"], 2, "level", "nearest level suggested"),
    ("status_unknown.csv", csv_bytes([row(status="closed")]), None,
     ["unknown status 'closed'", "未知的状态“closed”"], 2, "status", "not a status"),
    ("board_unknown.csv", csv_bytes([row(board="无锡市")]), None,
     ["unknown board '无锡市'", "未知的板块“无锡市”"], 2, "board", "not one of the ten 板块"),
    ("precision_unknown.csv", csv_bytes([row(location_precision="exact")]), None,
     ["unknown location_precision 'exact'", "未知的定位精度"], 2, "location_precision",
     "not a precision"),
    # --- ids
    ("duplicate_id.csv", csv_bytes([row(), row(name_zh="另一个")]), None,
     ["duplicate id 'u-001' (first used on row 2)", "编号“u-001”重复"], 3, "id",
     "the same id twice in the file"),
    ("id_in_store.csv", csv_bytes([row(id="hz-sip")]), None,
     ["already in the database", "已存在于数据库中"], 2, "id", "an id the shipped registry uses"),
    ("id_space.csv", csv_bytes([row(id="u 001")]), None,
     ["letters, digits", "编号只能包含"], 2, "id", "a space inside an id"),
    ("id_zero_width.csv", csv_bytes([row(id="u-\u200b001")]), None,
     ["U+200B", "U+200B"], 2, "id", "an invisible zero-width space in an id"),
    ("example_row.csv", csv_bytes([row(id="example-001")]), None,
     ["template's example row", "示例行"], 2, "id", "the template imported unchanged"),
    # --- text safety
    ("formula.csv", csv_bytes([row(name_zh='=HYPERLINK("http://x.example","点我")')]), None,
     ["run as a formula", "作为公式执行"], 2, "name_zh", "CSV formula injection"),
    ("control_char.csv", csv_bytes([row(name_en="Lab\x07")]), None,
     ["U+0007", "U+0007"], 2, "name_en", "a BEL control character"),
    ("bidi.csv", csv_bytes([row(name_zh="实验室\u202egnp.exe")]), None,
     ["U+202E", "U+202E"], 2, "name_zh", "a right-to-left override (spoofing)"),
    ("long_name.csv", csv_bytes([row(name_zh="长" * 201)]), None,
     ["the limit is 200", "上限"], 2, "name_zh", "a 201-character name"),
    # --- coordinates
    ("lon_nan.csv", csv_bytes([row(lon="nan")]), None, ["not a finite number", "不是有限数值"], 2,
     "lon", "float('nan') would accept it"),
    ("lat_1e400.csv", csv_bytes([row(lat="1e400")]), None, ["not a finite number", "不是有限数值"],
     2, "lat", "overflows to inf"),
    ("lat_inf.csv", csv_bytes([row(lat="-Infinity")]), None,
     ["not a finite number", "不是有限数值"],
     2, "lat", "an infinity spelled out"),
    ("lat_range.csv", csv_bytes([row(lon="10", lat="95")]), None,
     ["lat is out of range", "纬度超出范围"], 2, "lat", "latitude above 90"),
    ("swapped.csv", csv_bytes([row(lon="31.38", lat="120.95")]), None,
     ["look swapped", "经纬度疑似颠倒"], 2, "lon, lat", "lat/lon in the wrong columns"),
    ("far_away.csv", csv_bytes([row(lon="116.40", lat="39.90")]), None,
     ["far outside Suzhou", "远离苏州"], 2, "lon, lat", "a Beijing point for a Suzhou lab"),
    ("null_island.csv", csv_bytes([row(lon="0", lat="0")]), None,
     ["0, 0 is a placeholder", "0, 0 是占位值"], 2, "lon, lat", "0,0 as 'unknown'"),
    ("half_point.csv", csv_bytes([row(lat="")]), None, ["lat is empty while lon is given",
                                                        "纬度为空"], 2, "lat", "lon without lat"),
    ("comma_decimal.csv", csv_bytes([row(lon="120,95")]), None, ["uses a comma", "使用了逗号"], 2,
     "lon", "a decimal comma"),
    ("dms.csv", csv_bytes([row(lon="120°57′E")]), None,
     ["degrees/minutes/seconds", "度分秒"], 2, "lon", "degrees and minutes"),
    ("placeholder.csv", csv_bytes([row(lon="N/A", lat="N/A")]), None,
     ["is a placeholder", "是占位符"], 2, "lon", "N/A instead of an empty cell"),
    ("fullwidth_letters.csv", csv_bytes([row(lon="１２０．９５ｘ")]), None,
     ["is not a number", "不是数字"],
     2, "lon", "full-width digits are fine, a stray letter is not"),
    # --- datums
    ("no_datum.csv", csv_bytes([row(source_datum="")]), None,
     ["coordinate system is unknown", "坐标系未知"], 2, "source_datum",
     "coordinates without any datum"),
    ("datum_conflict.csv", csv_bytes([row(source_datum="GCJ02")]), "bd09",
     ["make them agree", "请保持一致"], 2, "source_datum", "the row and --datum disagree"),
    ("datum_unknown.csv", csv_bytes([row(source_datum="UTM51N")]), None,
     ["unknown coordinate system 'UTM51N'", "未知的坐标系"], 2, "source_datum", "not a datum"),
    ("baidu_mercator.csv", csv_bytes([row(source_datum="BD09MC")]), None,
     ["BD-09 Mercator", "百度墨卡托"], 2, "source_datum", "Baidu metres, not degrees"),
    ("export_edited.csv", csv_bytes([row(source_datum="GCJ02", source_lon="120.95",
                                         source_lat="31.38")],
                                    [*COLUMNS, "source_lon", "source_lat"]), None,
     ["m from source_lon/source_lat", "相差"], 2, "lon, lat",
     "an app export whose lon/lat no longer match the kept original"),
    # --- Excel
    ("formula_cell.xlsx", xlsx_bytes(lambda ws: good_xlsx_row(ws, name_zh="=A1&\"x\"")), None,
     ["holds a formula", "包含公式"], 2, "name_zh", "a live formula cell"),
    ("error_cell.xlsx", xlsx_bytes(lambda ws: good_xlsx_row(ws, lon="#N/A")), None,
     ["Excel error #N/A", "Excel 错误值"], 2, "lon", "an error value cell"),
    ("date_id.xlsx", xlsx_bytes(lambda ws: good_xlsx_row(
        ws, id=__import__("datetime").datetime(2023, 1, 1))), None,
     ["turned this id into a date", "转换成了日期"], 2, "id", "Excel auto-formatted 2023-01"),
    ("fraction_id.xlsx", xlsx_bytes(lambda ws: good_xlsx_row(ws, id=12.5)), None,
     ["may have rounded", "可能已舍入"], 2, "id", "a non-integer numeric id"),
    ("kind_typo.xlsx", xlsx_bytes(lambda ws: (good_xlsx_row(ws),
                                              good_xlsx_row(ws, id="u-002", kind="lab"))), None,
     ["unknown kind 'lab'", "未知的类型“lab”"], 3, "kind", "sheet row numbers are reported"),
    # --- GeoJSON
    ("polygon.geojson", fc(feature(geometry={"type": "Polygon", "coordinates": [SQUARE]})), None,
     ["only Point features", "只能以 Point"], 1, "geometry",
     "a valid polygon is still not a point"),
    ("bowtie.geojson", fc(feature(geometry={"type": "Polygon", "coordinates": [BOWTIE]})), None,
     ["invalid Polygon: Self-intersection", "无效的 Polygon"], 1, "geometry",
     "a self-intersecting ring"),
    ("open_ring.geojson", fc(feature(geometry={"type": "Polygon", "coordinates": [SQUARE[:-1]]})),
     None, ["not closed", "无效的 Polygon"], 1, "geometry", "first and last positions differ"),
    ("multipoint.geojson", fc(feature(geometry={"type": "MultiPoint",
                                                "coordinates": [[120.9, 31.3]]})), None,
     ["only Point features", "只能以 Point"], 1, "geometry", "one entity, several points"),
    ("bad_point.geojson", fc(feature(geometry={"type": "Point", "coordinates": [120.9]})), None,
     ["[longitude, latitude]", "[经度, 纬度]"], 1, "geometry", "a point with one number"),
    ("duplicate_feature_id.geojson", fc(feature(id="f1", props={"id": None}),
                                        feature(id="f1", props={"id": None})), None,
     ["duplicate id 'f1'", "编号“f1”重复"], 2, "id", "GDAL would silently renumber these"),
    ("nan.geojson", b'{"type":"FeatureCollection","features":[{"type":"Feature","properties":'
     b'{"id":"u-1"},"geometry":{"type":"Point","coordinates":[NaN,31.3]}}]}', None,
     ["NaN, which is not valid JSON", "NaN"], None, "", "bare NaN as written by naive dumpers"),
    ("truncated.geojson", fc(feature())[:-10], None, ["not valid JSON", "不是合法的 JSON"], None,
     "", "cut off mid-file"),
    ("crs_3857.geojson", fc(feature(), crs={"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG::3857"}}), None,
     ["declares the coordinate system", "坐标系"], None, "", "a projected CRS member"),
    ("bare_geometry.geojson", b'{"type": "Point", "coordinates": [120.9, 31.3]}', None,
     ["got type 'Point'", "FeatureCollection"], None, "", "a geometry, not a collection"),
    ("duplicate_key.geojson", b'{"type":"FeatureCollection","features":[{"type":"Feature",'
     b'"properties":{"id":"u-1","id":"u-2"},"geometry":null}]}', None,
     ["the key 'id' twice", "出现了两次"], None, "", "which id is meant?"),
    ("id_mismatch.geojson", fc(feature(id="f-9")), None,
     ["differs from properties.id", "不一致"], 1, "id", "feature.id and properties.id disagree"),
    ("nested.geojson", fc(feature(props={"notes": {"a": 1}})), None,
     ["nested object", "嵌套的对象"], 1, "notes", "an object where text belongs"),
    ("lon_mismatch.geojson", fc(feature(props={"lon": 121.5})), None,
     ["differs from the Point geometry", "不一致"], 1, "lon", "properties and geometry disagree"),
    ("huge_coordinate.geojson", b'{"type":"FeatureCollection","features":[{"type":"Feature",'
     b'"properties":{"id":"u-1","name_zh":"x","kind":"laboratory","level":"national",'
     b'"status":"operating","location_precision":"site","source":"s"},'
     b'"geometry":{"type":"Point","coordinates":[1e400,31.3]}}]}', None,
     ["not a finite number", "不是有限数值"], 1, "lon", "1e400 parses to inf in Python's json"),
]


def main() -> None:
    cases = []
    for name, content, datum, expect, row_no, column, why in CASES:
        (HERE / name).write_bytes(content)
        cases.append({"file": name, "datum": datum, "expect": expect, "row": row_no,
                      "column": column, "why": why})
    (HERE / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n",
                                     encoding="utf-8")
    print(f"wrote {len(cases)} cases to {HERE}")


if __name__ == "__main__":
    main()
