"""Hostile import files built in code: hand-zipped workbooks, odd text, oversized headers.

Shared by tests/test_ingest.py (the importer refuses each with a clear problem and writes
nothing) and tests/test_views_importer.py (the 导入 page shows each as an error, never a
traceback). Every workbook is zipped here from its XML so the tests control each byte.
"""

from __future__ import annotations

import codecs
import io
import json
import zipfile
from dataclasses import dataclass
from xml.sax.saxutils import escape

from openpyxl.utils import get_column_letter

HEADER = ["id", "name_zh", "name_en", "kind", "level", "status", "board", "lon", "lat",
          "location_precision", "location_source", "source_datum", "source", "notes"]
GOOD = {"id": "u-001", "name_zh": "测试实验室", "name_en": "Test lab", "kind": "laboratory",
        "level": "provincial", "status": "operating", "board": "昆山市", "lon": "120.95",
        "lat": "31.38", "location_precision": "district", "location_source": "AMap",
        "source_datum": "WGS84", "source": "user list", "notes": ""}

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
_ROOT_RELS = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL}">'
              f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
              '</Relationships>')
_WORKBOOK = (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_MAIN}" xmlns:r="{_REL}">'
             '<sheets><sheet name="registry" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WORKBOOK_RELS = (f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_REL}">'
                  f'<Relationship Id="rId1" Type="{_REL}/worksheet" '
                  'Target="worksheets/sheet1.xml"/><Relationship Id="rId2" '
                  f'Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>')


def row(**changes: str) -> list[str]:
    """A valid registry row (as a list in :data:`HEADER` order) with ``changes``."""
    values = {**GOOD, **changes}
    return [values[c] for c in HEADER]


def workbook(rows: list[list[str]], *, dimension: str | None = None, doctype: str = "",
             raw_strings: dict[str, str] | None = None, data_row: int = 2) -> bytes:
    """An .xlsx zipped by hand: every cell a shared string, one sheet.

    Parameters
    ----------
    rows
        The cells, row by row (row 1 is the header).
    dimension
        The ``<dimension ref>`` the sheet claims (absent when None).
    doctype
        Written before the root element of xl/sharedStrings.xml (a DTD, for XXE tests).
    raw_strings
        Cell text -> XML written verbatim in its ``<t>`` (to place an entity reference).
    data_row
        The sheet row number of ``rows[1]`` (rows below the header may start far down).
    """
    strings: list[str] = []
    body = []
    for i, values in enumerate(rows):
        r = 1 if i == 0 else data_row + i - 1
        cells = []
        for c, value in enumerate(values, start=1):
            strings.append(value)
            cells.append(f'<c r="{get_column_letter(c)}{r}" t="s"><v>{len(strings) - 1}</v></c>')
        body.append(f'<row r="{r}">{"".join(cells)}</row>')
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    sheet = (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}">{dim}'
             f'<sheetData>{"".join(body)}</sheetData></worksheet>')
    raw = raw_strings or {}
    shared = (f'<?xml version="1.0" encoding="UTF-8"?>{doctype}<sst xmlns="{_MAIN}" '
              f'count="{len(strings)}" uniqueCount="{len(strings)}">'
              + "".join(f"<si><t>{raw.get(s, escape(s))}</t></si>" for s in strings) + "</sst>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (("[Content_Types].xml", _TYPES), ("_rels/.rels", _ROOT_RELS),
                           ("xl/workbook.xml", _WORKBOOK),
                           ("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS),
                           ("xl/worksheets/sheet1.xml", sheet), ("xl/sharedStrings.xml", shared)):
            zf.writestr(name, text)
    return buf.getvalue()


def csv_bytes(rows: list[list[str]], *, newline: str = "\n") -> bytes:
    """Rows as UTF-8 CSV (no quoting needed by the values used here)."""
    return "".join(",".join(r) + newline for r in rows).encode("utf-8")


def geojson(*properties: dict[str, object]) -> bytes:
    """A FeatureCollection of null-geometry features with ``properties`` (ASCII JSON)."""
    base = {k: v for k, v in GOOD.items() if k not in ("lon", "lat", "source_datum")}
    base["location_precision"] = "unknown"
    features = [{"type": "Feature", "properties": {**base, **p}, "geometry": None}
                for p in properties]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode("ascii")


XXE_DOCTYPE = '<!DOCTYPE sst [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
LAUGHS_DOCTYPE = ("<!DOCTYPE sst [<!ENTITY a0 \"ha\">"
                  + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
                  + "]>")


@dataclass(frozen=True)
class Hostile:
    """A hostile file and what the importer must say about it."""

    name: str
    data: bytes
    expect: str  # a fragment of the English message
    row: int | None = None
    column: str = ""


def hostile_files() -> list[Hostile]:
    """Every hostile file the importer must refuse, with where and what it must say."""
    wide = 20_000
    return [
        # XML entities in a workbook: external (reads a local file) and exponential
        Hostile("xxe.xlsx", workbook([HEADER, row(name_zh="XXE")], doctype=XXE_DOCTYPE,
                                     raw_strings={"XXE": "&e;"}), "(DTD)"),
        Hostile("laughs.xlsx", workbook([HEADER, row(name_zh="LOL")], doctype=LAUGHS_DOCTYPE,
                                        raw_strings={"LOL": "&a9;"}), "(DTD)"),
        # too wide / too long headers
        Hostile("wide.csv", csv_bytes([[*HEADER, *(f"c{i}" for i in range(wide))], row()]),
                "at most 200 columns", row=1),
        Hostile("wide_short.csv", csv_bytes([[*HEADER, *("x" for _ in range(300))], row()]),
                "the file has 314 columns; at most 200"),
        Hostile("wide.xlsx", workbook([[*HEADER, *(f"c{i}" for i in range(16_384 - 14))],
                                       row()]), "at most 200 columns", row=1),
        Hostile("long_header.csv", csv_bytes([[*HEADER, "h" * 1_000_000], row()]),
                "characters long", row=1),
        Hostile("long_header.xlsx", workbook([[*HEADER, "h" * 1_000_000], row()]),
                "column names have at most 100", column="#15"),
        Hostile("many_keys.geojson", geojson(*({f"k{i}": "x"} for i in range(2000))),
                "the file has 2,011 columns"),
        # broken text
        Hostile("surrogate.geojson",
                geojson({"name_zh": "x"}).replace(b'"name_zh": "x"', b'"name_zh": "\\ud800"'),
                "broken character (U+D800", row=1, column="name_zh"),
        Hostile("surrogate_key.geojson",
                geojson({"x": "1"}).replace(b'"x": "1"', b'"\\udc00": "1"'),
                "broken character (U+DC00", column="#12"),
        Hostile("nul.geojson", geojson({"notes": "a\u0000b"}), "U+0000", row=1, column="notes"),
        Hostile("big_number.geojson", geojson({"notes": 1}).replace(b'"notes": 1', b'"notes": 1'
                                                                    + b"0" * 5000),
                "5,001 digits"),
        Hostile("c1_nel.csv", csv_bytes([HEADER, row(name_zh="实验\u0085室")]), "U+0085", row=2,
                column="name_zh"),
        Hostile("c1_csi.csv", csv_bytes([HEADER, row(notes="see \u009b31m")]), "U+009B", row=2,
                column="notes"),
        Hostile("line_separator.csv", csv_bytes([HEADER, row(notes="a\u2028b")]), "U+2028",
                row=2, column="notes"),
        Hostile("paragraph_separator.csv", csv_bytes([HEADER, row(name_en="a\u2029b")]),
                "U+2029", row=2, column="name_en"),
        Hostile("trailing_nel.csv", csv_bytes([HEADER, row(name_zh="实验室\u0085")]), "U+0085",
                row=2, column="name_zh"),
        Hostile("rlo_source.csv", csv_bytes([HEADER, row(source="list\u202egpj.exe")]),
                "U+202E", row=2, column="source"),
        Hostile("hangul_filler.csv", csv_bytes([HEADER, row(name_zh="\u3164")]), "U+3164",
                row=2, column="name_zh"),
        Hostile("braille_blank.csv", csv_bytes([HEADER, row(name_en="\u2800\u2800")]), "U+2800",
                row=2, column="name_en"),
        Hostile("choseong_filler.csv", csv_bytes([HEADER, row(name_zh="\u115f")]), "U+115F",
                row=2, column="name_zh"),
        Hostile("halfwidth_filler.csv", csv_bytes([HEADER, row(notes="\uffa0")]), "U+FFA0",
                row=2, column="notes"),
        Hostile("zero_width_notes.csv", csv_bytes([HEADER, row(notes="\u200b\u200c")]),
                "no visible character", row=2, column="notes"),
        Hostile("filler.xlsx", workbook([HEADER, row(name_zh="\u3164")]), "U+3164", row=2,
                column="name_zh"),
        Hostile("surrogate_ref.xlsx", workbook([HEADER, row(name_zh="S")],
                                               raw_strings={"S": "&#xD800;"}), "cannot be read"),
        Hostile("surrogate.txt", codecs.BOM_UTF16_LE + "\t".join(HEADER).encode("utf-16-le")
                + b"\n\x00" + b"\x00\xd8" + "\t".join(row()).encode("utf-16-le"),
                "byte-order mark"),
        Hostile("nul_line.csv", csv_bytes([HEADER, row(notes="a\u0000b")]),
                "NUL bytes (the first on line 2)"),
    ]
