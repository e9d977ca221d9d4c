"""Read, validate and normalise user files (CSV, Excel .xlsx, GeoJSON) into registry rows.

Everything up to :func:`read_upload` is pure: bytes in, an :class:`ImportReport` out, naming
the row (or feature) and the column of every problem in Chinese and English. Nothing is
guessed: an encoding that does not decode cleanly, a value outside its vocabulary, a
coordinate that is not a finite number in range is an error, and one error rejects the
whole file. Only :func:`import_report` and :func:`remove_batch` write, each as one DuckDB
transaction through :mod:`geo_app.store`, under :func:`geo_app.store.writer_lock`, so that
a rebuild of the shipped data cannot run between reading the store and writing to it; each
takes the acting :class:`~geo_app.auth.Actor` and refuses one who is not an editor.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import functools
import io
import json
import math
import os
import re
import stat
import time as time_mod
import unicodedata
import uuid
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

import defusedxml
import defusedxml.ElementTree as safe_xml
import geopandas as gpd
import pandas as pd
import shapely

from geo_app import datum as datum_mod
from geo_app import store
from geo_app.auth import Actor, require_editor
from geo_app.errors import DatabaseBusyError, GeoAppError, ImportValidationError
from geo_app.settings import PROJECT_ROOT
from geo_app.vocab import BOARDS, KINDS, LEVELS, PRECISIONS, REGISTRY_COLUMNS, STATUSES, Labels

__all__ = [
    "MAX_UPLOAD_BYTES", "MAX_ROWS", "REQUIRED_COLUMNS", "TEMPLATE_PATH", "Problem",
    "ImportReport", "BatchNotFoundError", "read_upload", "read_file", "check_upload",
    "import_report", "import_file", "remove_batch", "list_batches", "list_audit", "decode_text", "normalise",
    "text_problem", "printable", "MAX_COLUMNS", "MAX_HEADER_CHARS", "MAX_PROBLEMS",
]

#: Largest accepted file, the same as ``server.maxUploadSize = 20`` in .streamlit/config.toml.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Largest accepted number of data rows (or features).
MAX_ROWS = 100_000
#: Largest total unpacked size of an .xlsx (a guard against ZIP bombs).
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
#: At most this many problems are listed; the rest are counted ("and 19,950 more").
MAX_PROBLEMS = 100
#: Most columns a file may have (the registry has 14, an export of this app 20).
MAX_COLUMNS = 200
#: Longest column name, in characters.
MAX_HEADER_CHARS = 100
#: Longest cell of any column, in characters (``notes``; other columns have lower limits).
MAX_CELL_CHARS = 4000
#: A problem's English or Chinese text is cut to this many characters.
MAX_MESSAGE_CHARS = 400
#: How long an import keeps retrying while a process outside the app (the DuckDB CLI, say)
#: holds the database open read-write. Other imports and rebuilds are waited for in turn.
BUSY_TIMEOUT_SECONDS = 30.0

REQUIRED_COLUMNS = ("id", "name_zh", "kind", "level", "status", "location_precision", "source")
#: Columns the app derives itself; present in its own exports, recomputed on import.
DERIVED_COLUMNS = ("source_lon", "source_lat", "conversion", "origin", "batch_id", "layers")
TEMPLATE_PATH = PROJECT_ROOT / "data" / "import_template.csv"

#: Extension -> format. ``.txt``/``.tsv`` because Excel saves "Unicode text" as tab-separated .txt.
EXTENSIONS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx",
              ".geojson": "geojson", ".json": "geojson"}

#: Suzhou municipality (box around data/boundaries.geojson, rounded outwards) and its centre.
SUZHOU_BOX = (119.90, 30.74, 121.39, 32.07)
NEAR_SUZHOU_BOX = (118.90, 29.74, 122.39, 33.07)
SUZHOU_CENTRE = (120.585, 31.299)
CHINA_BOX = (73.0, 17.0, 136.0, 54.0)
#: Kinds whose entities may legitimately sit far from Suzhou (abroad or elsewhere in China).
ABROAD_KINDS = frozenset({"offshore_innovation_center", "international_cooperation"})

COLUMN_ZH = {
    "id": "编号", "name_zh": "中文名称", "name_en": "英文名称", "kind": "类型", "level": "级别",
    "status": "状态", "board": "板块", "lon": "经度", "lat": "纬度",
    "location_precision": "定位精度", "location_source": "坐标来源", "source_datum": "坐标系",
    "source": "来源", "notes": "备注",
}
#: Header aliases accepted besides the registry names (after NFKC and case folding).
HEADER_ALIASES = {
    **{zh: col for col, zh in COLUMN_ZH.items()},
    "名称": "name_zh", "longitude": "lon", "lng": "lon", "latitude": "lat",
    "datum": "source_datum", "坐标系统": "source_datum",
}
_MAX_LEN = {"id": 64, "name_zh": 200, "name_en": 300, "location_source": 1000,
            "source": 2000, "notes": 4000}
_VOCABS: dict[str, Labels] = {"kind": KINDS, "level": LEVELS, "status": STATUSES,
                              "board": BOARDS, "location_precision": PRECISIONS}
_VOCAB_ZH = {"kind": "类型", "level": "级别", "status": "状态", "board": "板块",
             "location_precision": "定位精度"}
#: Unambiguous short forms of the 板块 names people write.
_BOARD_SHORT = {"张家港": "张家港市", "常熟": "常熟市", "太仓": "太仓市", "昆山": "昆山市",
                "吴江": "吴江区", "吴中": "吴中区", "相城": "相城区", "姑苏": "姑苏区",
                "sip": "苏州工业园区", "snd": "苏州高新区"}

DatumKey = Literal["WGS84", "GCJ02", "BD09"]
_DATUM_ALIASES: dict[str, DatumKey] = {
    "wgs84": "WGS84", "gps": "WGS84", "epsg4326": "WGS84", "4326": "WGS84", "crs84": "WGS84",
    "gcj02": "GCJ02", "高德": "GCJ02", "amap": "GCJ02", "gaode": "GCJ02", "火星坐标": "GCJ02",
    "腾讯": "GCJ02", "tencent": "GCJ02", "bd09": "BD09", "bd09ll": "BD09", "百度": "BD09",
    "baidu": "BD09",
}
_CONVERSION = {
    "WGS84": "none (WGS-84 source)",
    "GCJ02": "GCJ-02 -> WGS-84 by geo_app.datum.gcj02_to_wgs84 (iterative inverse, < 1 mm)",
    "BD09": "BD-09 -> WGS-84 by geo_app.datum.bd09_to_wgs84 (via GCJ-02)",
}
_NOT_SHIFTED = "none (outside mainland China the {d} provider offset is not applied)"

_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ID = re.compile(r"[\w.\-]+")
_FORMULA = re.compile(r"^(?:[=+@]|-[^\d\s.\-])")
_MAGIC = ((b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"\xd0\xcf\x11\xe0", "ole"),
          (b"%PDF", "PDF"), (b"\x89PNG", "PNG image"), (b"\xff\xd8\xff", "JPEG image"),
          (b"GIF8", "GIF image"), (b"\x1f\x8b", "gzip archive"), (b"7z\xbc\xaf", "7-Zip archive"),
          (b"Rar!", "RAR archive"), (b"SQLite format 3", "SQLite database"),
          (b"\x7fELF", "program (ELF)"), (b"MZ", "Windows program"))


class BatchNotFoundError(GeoAppError, LookupError):
    """No import batch has the given id."""


# ----------------------------------------------------------------------------- text rule
# One rule for every text a user file brings in (entity import here, indicator import in
# geo_app.districts): one normaliser, one check, one way to show a bad value.

#: Stripped from both ends of a cell: spaces (Unicode Zs), tab, CR, LF and a stray BOM.
_EDGE_SPACE = (" \t\r\n\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
               "\u2009\u200a\u202f\u205f\u3000\ufeff")
#: Refused in every text: C0 controls but tab/LF/CR, DEL, C1 controls (U+0080-U+009F, e.g.
#: U+0085 NEL, U+009B CSI), line/paragraph separators, bidirectional controls (RLO...),
#: unpaired UTF-16 surrogates, and letters that draw nothing (Hangul fillers, blank Braille).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f"
                        "\u202a-\u202e\u2066-\u2069\ud800-\udfff\u115f\u1160\u3164\uffa0"
                        "\u2800\ufffe\uffff]")
#: Refused in one-line texts (ids, names...) besides: tab, line breaks, any format character.
_ONE_LINE = re.compile("[\t\n\r\u00ad\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u180e"
                       "\u200b-\u200f\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd"
                       "\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
                       "\U000e0001\U000e0020-\U000e007f]")
#: A text made only of these shows nothing at all.
_BLANK = re.compile("[\\s\u00ad\u034f\u180e\u200b-\u200d\u2060\ufeff]+")
#: Shown escaped in messages: everything :data:`_FORBIDDEN` or :data:`_ONE_LINE` refuses.
_UNPRINTABLE = re.compile(f"{_FORBIDDEN.pattern}|{_ONE_LINE.pattern}")


def normalise(text: str) -> str:
    """Unicode NFKC (full-width digits, letters, punctuation) without the spaces at either end.

    The one normaliser of both imports: headers, vocabulary values, numbers, ids.

    >>> normalise(" １２０．５\u3000")
    '120.5'
    """
    return unicodedata.normalize("NFKC", text).strip(_EDGE_SPACE)


def strip_text(text: str) -> str:
    """``text`` without spaces, tabs, line breaks and a stray BOM at either end (nothing else)."""
    return text.strip(_EDGE_SPACE)


def printable(text: str) -> str:
    r"""``text`` with every character :func:`text_problem` refuses written as an escape.

    For messages and reports: a NUL, an RLO or a lone surrogate from a file is shown as
    ``\x00``, ``\u202e``, ``\ud800`` rather than sent to a terminal or a browser.

    >>> printable("a\u202eb\x00")
    'a\\u202eb\\x00'
    """
    return _UNPRINTABLE.sub(lambda m: m.group(0).encode("unicode_escape", "backslashreplace")
                            .decode("ascii"), text)


def _char_name(char: str) -> str:
    if 0xD800 <= ord(char) <= 0xDFFF:
        return "an unpaired UTF-16 surrogate"
    return unicodedata.name(char, "a control character")


_LATIN1_LETTER = re.compile(r"[\u00c0-\u00ff]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _mojibake(text: str) -> str | None:
    """What ``text`` reads as if it is UTF-8 that was decoded as Latin-1/cp1252, else None."""
    if not _LATIN1_LETTER.search(text):
        return None
    raw = bytearray()
    for ch in text:
        try:
            raw += ch.encode("cp1252")
        except UnicodeEncodeError:
            if ord(ch) > 255:
                return None
            raw.append(ord(ch))
    try:
        fixed = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return fixed if _CJK.search(fixed) else None


def text_problem(text: str, *, multiline: bool = False,
                 max_len: int = MAX_CELL_CHARS) -> tuple[str, str] | None:
    """Why ``text`` cannot be stored, in English and Chinese; None when it can.

    The one text rule of both imports (entities and user indicators). Refused: more than
    ``max_len`` characters; UTF-8 text garbled by a Latin-1 reading; control characters (C0 but tab/LF/CR, DEL, C1 such as U+0085
    and U+009B); U+2028/U+2029; bidirectional controls (U+202E...); unpaired surrogates;
    letters that draw nothing (U+3164 HANGUL FILLER, U+2800 BRAILLE PATTERN BLANK, U+115F,
    U+1160, U+FFA0). A one-line text (not ``multiline``) may not hold tab, line breaks or
    any format character (zero-width space, soft hyphen...); a multi-line text may not be
    made only of spaces and zero-width characters.

    Parameters
    ----------
    text
        The value as read, its surrounding spaces stripped (:func:`strip_text`).
    multiline
        True for free text (sources, notes) that may hold line breaks.
    max_len
        The most characters the column takes.

    >>> text_problem("实验室\u202egnp.exe")[0]
    'contains the invisible or control character U+202E (RIGHT-TO-LEFT OVERRIDE); remove it'
    >>> text_problem("ok") is None
    True
    """
    if len(text) > max_len:
        return (f"the text is {len(text):,} characters long; the limit is {max_len:,}",
                f"文本长度 {len(text):,} 个字符，超过 {max_len:,} 的上限")
    if text.isascii() and text.isprintable() and not text.isspace():
        return None  # the common case, and nothing below can refuse it
    fixed = _mojibake(text)
    if fixed is not None:
        return (f"the text looks garbled (UTF-8 read as Latin-1: it should probably read "
                f"'{_short(fixed)}'); fix the file's encoding",
                f"文本疑似乱码（UTF-8 被按 Latin-1 读取，原文可能是“{_short(fixed)}”），请修正文件编码")
    bad = _FORBIDDEN.search(text) or (None if multiline else _ONE_LINE.search(text))
    if bad:
        char = bad.group(0)
        code = f"U+{ord(char):04X}"
        if 0xD800 <= ord(char) <= 0xDFFF:
            return (f"contains a broken character ({code}, {_char_name(char)}): the text was "
                    "damaged before it reached this file — retype it or save the file again as UTF-8",
                    f"包含损坏的字符（{code}，不成对的 UTF-16 代理项），请重新输入或将文件另存为 UTF-8")
        return (f"contains the invisible or control character {code} ({_char_name(char)}); remove it",
                f"包含不可见字符或控制字符 {code}，请删除")
    if text and _BLANK.fullmatch(text):
        return ("holds no visible character (only spaces or zero-width characters); write the text "
                "or leave the cell empty", "不含任何可见字符（只有空格或零宽字符），请填写内容或留空")
    return None


# ----------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One problem found in an import file, in English and Chinese.

    Attributes
    ----------
    en, zh
        What is wrong and what to do, without the location (see :meth:`where`).
    row
        Row number as a spreadsheet shows it (the header is row 1), or the 1-based feature
        number of a GeoJSON file; ``None`` for the whole file.
    column
        The registry column (``""`` for the whole row or file).
    value
        The offending value as read (shortened to 80 characters; control characters,
        bidirectional controls and broken characters shown as escapes such as ``\\u202e``).
    severity
        ``"error"`` rejects the file; ``"warning"`` is reported and imported.
    unit
        ``"row"`` or ``"feature"``.
    """

    en: str
    zh: str
    row: int | None = None
    column: str = ""
    value: str = ""
    severity: Literal["error", "warning"] = "error"
    unit: Literal["row", "feature"] = "row"

    def __post_init__(self) -> None:
        # whatever a problem quotes from a file, what it shows is printable and bounded
        object.__setattr__(self, "en", _short(self.en, MAX_MESSAGE_CHARS))
        object.__setattr__(self, "zh", _short(self.zh, MAX_MESSAGE_CHARS))
        object.__setattr__(self, "column", _short(self.column))
        object.__setattr__(self, "value", _short(self.value))

    def where(self, lang: str = "en") -> str:
        """``row 5`` / ``第 5 行``, ``feature 3`` / ``第 3 个要素``, or ``file`` / ``文件``."""
        if self.row is None:
            return "文件" if lang == "zh" else "file"
        if self.unit == "feature":
            return f"第 {self.row} 个要素" if lang == "zh" else f"feature {self.row}"
        return f"第 {self.row} 行" if lang == "zh" else f"row {self.row}"

    def describe(self, lang: str = "en") -> str:
        """One line: location, column and message."""
        col = f", column {self.column}" if lang != "zh" else f"，{self.column} 列"
        text = self.zh if lang == "zh" else self.en
        sep = "：" if lang == "zh" else ": "
        return f"{self.where(lang)}{col if self.column else ''}{sep}{text}"

    def as_dict(self) -> dict[str, str]:
        """Plain strings, for :class:`ImportValidationError` and JSON."""
        return {"severity": self.severity, "where": self.where("en"), "where_zh": self.where("zh"),
                "row": "" if self.row is None else str(self.row), "column": self.column,
                "value": self.value, "en": self.en, "zh": self.zh}


def _short(value: object, limit: int = 80) -> str:
    """``value`` as printable text (see :func:`printable`) of at most ``limit`` characters."""
    text = printable(str(value)[: limit * 8])
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Rejected(ImportValidationError):
    """A file-level problem that stops reading (internal; turned into a report)."""

    def __init__(self, en: str, zh: str, **kwargs: Any) -> None:
        problem = Problem(en, zh, **kwargs)
        super().__init__(f"{problem.en} / {problem.zh}")
        self.problem = problem


@dataclass
class ImportReport:
    """The outcome of reading and validating one file (nothing written yet).

    Attributes
    ----------
    file_name
        The name the file was uploaded under (no directories).
    file_format
        ``csv``, ``xlsx`` or ``geojson`` (empty when the content was not recognised).
    encoding, delimiter
        What was detected for delimited text.
    datum
        The source datum(s) of the coordinates, e.g. ``GCJ02`` or ``GCJ02,WGS84``.
    rows
        The normalised rows (WGS-84 points, registry columns, ``origin='user'``);
        empty when the file could not be read.
    problems
        Every error and warning, in file order.
    """

    file_name: str
    file_format: str = ""
    encoding: str = ""
    delimiter: str = ""
    datum: str = ""
    rows: gpd.GeoDataFrame = field(default_factory=lambda: store.entities_to_gdf(
        pd.DataFrame({c: pd.Series(dtype=object) for c in store.ENTITY_COLUMNS})))
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that reject the file."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems reported but not blocking."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when the file can be imported: no error and at least one row."""
        return not self.errors and len(self.rows) > 0

    def table(self) -> pd.DataFrame:
        """The problems as a bilingual table (one row per problem), for display."""
        return pd.DataFrame(
            [{"级别 severity": ("错误 error" if p.severity == "error" else "警告 warning"),
              "位置 where": f"{p.where('zh')} / {p.where('en')}", "列 column": p.column,
              "值 value": p.value, "问题": p.zh, "problem": p.en} for p in self.problems],
            columns=["级别 severity", "位置 where", "列 column", "值 value", "问题", "problem"])

    def summary(self, lang: str = "en", *, with_name: bool = True) -> str:
        """One sentence: rows read, errors and warnings (after the file name if ``with_name``).

        The page shows the name apart, as plain text, and this sentence without it.
        """
        n, e, w = len(self.rows), len(self.errors), len(self.warnings)
        if lang == "zh":
            verdict = "可以导入" if self.ok else "不能导入，未写入任何数据"
            name = f"{self.file_name}：" if with_name else ""
            return f"{name}{n} 行有效，{e} 个错误，{w} 个警告 — {verdict}。"
        verdict = "ready to import" if self.ok else "cannot be imported; nothing was written"
        name = f"{self.file_name}: " if with_name else ""
        return f"{name}{n} valid rows, {e} errors, {w} warnings — {verdict}."

    def to_error(self) -> ImportValidationError:
        """An :class:`ImportValidationError` carrying every problem."""
        first = self.errors[0] if self.errors else Problem("the file has no data rows",
                                                           "文件没有数据行")
        msg = (f"{self.summary('en')} First problem: {first.describe('en')} / "
               f"{self.summary('zh')} 第一个问题：{first.describe('zh')}")
        return ImportValidationError(msg, [p.as_dict() for p in self.problems])


class _Problems:
    """Collects problems up to :data:`MAX_PROBLEMS`, counting the rest."""

    def __init__(self, unit: Literal["row", "feature"] = "row") -> None:
        self.items: list[Problem] = []
        self.dropped = 0
        self.unit: Literal["row", "feature"] = unit

    def add(self, en: str, zh: str, *, row: int | None = None, column: str = "",
            value: object = "", severity: Literal["error", "warning"] = "error") -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.dropped += 1
            return
        self.items.append(Problem(en, zh, row=row, column=column, value=_short(value),
                                  severity=severity, unit=self.unit))

    def extend(self, problems: Iterable[Problem]) -> None:
        for p in problems:
            self.add(p.en, p.zh, row=p.row, column=p.column, value=p.value, severity=p.severity)

    def final(self) -> list[Problem]:
        if self.dropped:
            return [*self.items, Problem(f"and {self.dropped:,} more problems are not listed",
                                         f"另有 {self.dropped:,} 个问题未列出")]
        return list(self.items)


# ----------------------------------------------------------------------------- sniffing


def _magic(data: bytes) -> str | None:
    for prefix, name in _MAGIC:
        if data.startswith(prefix):
            return name
    return None


def sniff_format(data: bytes, file_name: str) -> str:
    """Check size and content against the extension; return ``csv``, ``xlsx`` or ``geojson``.

    Raises
    ------
    ImportValidationError
        For an empty or too large file, an unsupported extension, or content that is not
        what the extension says (a ``.csv`` that is a ZIP, an ``.xlsx`` that is not...).
    """
    if len(data) > MAX_UPLOAD_BYTES:
        mb = MAX_UPLOAD_BYTES // (1024 * 1024)
        raise _Rejected(f"the file is {len(data) / 1024 / 1024:.1f} MB; the limit is {mb} MB — "
                        "split it into several files",
                        f"文件大小 {len(data) / 1024 / 1024:.1f} MB，超过 {mb} MB 上限，请拆分后导入")
    if not data.strip(b" \t\r\n\x00") or data in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE,
                                                  codecs.BOM_UTF16_BE):
        raise _Rejected("the file is empty", "文件为空")
    ext = Path(file_name).suffix.lower()
    if ext not in EXTENSIONS:
        raise _Rejected(f"unsupported file type '{ext or file_name}': use .csv, .txt (tab-separated), "
                        ".xlsx, .geojson or .json",
                        f"不支持的文件类型“{ext or file_name}”：请使用 .csv、.txt（制表符分隔）、"
                        ".xlsx、.geojson 或 .json", value=file_name)
    fmt = EXTENSIONS[ext]
    kind = _magic(data)
    if fmt == "xlsx":
        if kind != "zip":
            what = {"ole": "a legacy .xls workbook or a password-protected file"}.get(
                kind or "", kind or "text")
            raise _Rejected(f"this .xlsx file is not an Excel workbook (an .xlsx is a ZIP container; "
                            f"this looks like {what}) — open it in Excel and save as .xlsx, "
                            "or export CSV UTF-8",
                            "该 .xlsx 文件不是 Excel 工作簿（.xlsx 应为 ZIP 容器），请在 Excel 中"
                            "另存为 .xlsx 或“CSV UTF-8”格式")
        _check_workbook_zip(data)
        return fmt
    if kind == "zip":
        raise _Rejected(f"this {ext} file is a ZIP container (an Excel .xlsx workbook or an archive), "
                        "not text — rename an Excel workbook to .xlsx, or save it as CSV UTF-8",
                        f"该 {ext} 文件实际上是 ZIP 容器（Excel .xlsx 工作簿或压缩包），不是文本；"
                        "若为 Excel 工作簿请改名为 .xlsx，或另存为“CSV UTF-8”")
    if kind == "ole":
        raise _Rejected("this file is a legacy Excel .xls (or another Office binary) workbook — "
                        "save it as .xlsx or CSV UTF-8",
                        "该文件是旧版 Excel .xls（或其他 Office 二进制）文件，请另存为 .xlsx 或“CSV UTF-8”")
    if kind is not None:
        raise _Rejected(f"this {ext} file is a {kind}, not text", f"该 {ext} 文件是 {kind}，不是文本文件")
    return fmt


def _check_workbook_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            names = {i.filename for i in infos}
            mimetype = zf.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as err:
        raise _Rejected(f"the .xlsx file is damaged (not a readable ZIP container: {err})",
                        "该 .xlsx 文件已损坏（无法作为 ZIP 读取）") from err
    if b"opendocument" in mimetype:
        raise _Rejected("this is an OpenDocument spreadsheet (.ods), not .xlsx — save it as .xlsx",
                        "这是 OpenDocument 表格（.ods），不是 .xlsx，请另存为 .xlsx")
    if "xl/workbook.xml" not in names:
        hint = " (it is a Word document)" if "word/document.xml" in names else ""
        raise _Rejected(f"this ZIP file is not an Excel workbook (no xl/workbook.xml){hint}",
                        "该 ZIP 文件不是 Excel 工作簿（缺少 xl/workbook.xml）")
    if any(i.flag_bits & 0x1 for i in infos):
        raise _Rejected("the workbook is encrypted; remove the password and save again",
                        "工作簿已加密，请取消密码后重新保存")
    if "xl/vbaProject.bin" in names:
        raise _Rejected("the workbook contains macros (xl/vbaProject.bin); macros are never run "
                        "here — save it as a plain .xlsx without macros",
                        "工作簿包含宏（xl/vbaProject.bin）；本应用不运行宏，请另存为不含宏的 .xlsx")
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_UNPACKED_BYTES:
        raise _Rejected(f"the workbook unpacks to {unpacked / 1024 / 1024:.0f} MB (limit "
                        f"{MAX_UNPACKED_BYTES // 1024 // 1024} MB); split it or save it as CSV",
                        f"工作簿解压后为 {unpacked / 1024 / 1024:.0f} MB，超过上限，请拆分或另存为 CSV")
    _refuse_xml_dtds(data, infos)


def _refuse_xml_dtds(data: bytes, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse a workbook any of whose parts declares an XML document type (DTD).

    Entities are how XML reads local files (``<!ENTITY e SYSTEM "file:///etc/passwd">``)
    and explodes in size ("billion laughs"); Excel never writes a DTD. Every part is parsed
    with :mod:`defusedxml` (``forbid_dtd``) up to its root element, where a DTD would have
    to be, before openpyxl reads anything. A part that is not XML (an image) is left to
    openpyxl, which never parses it as XML unless the workbook says it is one.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in infos:
            if info.is_dir():
                continue
            try:
                with zf.open(info) as part:
                    for _event in safe_xml.iterparse(part, events=("start",), forbid_dtd=True):
                        break  # the root element: the prologue, where a DTD goes, is behind us
            except defusedxml.DefusedXmlException as err:
                raise _Rejected(
                    f"the workbook part {_short(info.filename, 60)} declares an XML document type "
                    "(DTD) or entities; they can read files on this computer or expand without "
                    "end, so they are refused — open the file in Excel and save it again as .xlsx",
                    f"工作簿的部件 {_short(info.filename, 60)} 含有 XML 文档类型声明（DTD）或实体；"
                    "它们可能读取本机文件或无限膨胀，因此被拒绝。请在 Excel 中打开并重新另存为 .xlsx",
                    value=info.filename) from err
            except SyntaxError:  # xml.etree's ParseError: not XML, or damaged; openpyxl decides
                continue
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
                raise _Rejected(f"the .xlsx file is damaged ({_short(info.filename, 60)} cannot be "
                                "unpacked) — open it in Excel and save it again",
                                "该 .xlsx 文件已损坏（部分内容无法解压），请在 Excel 中打开并重新保存",
                                value=info.filename) from err


# ----------------------------------------------------------------------------- decoding

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
         (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
         (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 LE"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 BE"))


def _line_of(data: bytes, pos: int) -> int:
    return _one_newline(data[:pos]).count(b"\n") + 1


def _one_newline(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _normalise_newlines(text: str) -> str:
    """Windows (CR LF) and old Mac (CR) line ends as LF, so every reader sees one kind."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode text strictly: a BOM's encoding, else UTF-8, else GB18030 (GBK); never garbled.

    The one decoder of both imports (entities and user indicators). Line ends come out as
    LF whatever the file used (CR LF, or CR alone as old Mac files do).

    Returns
    -------
    tuple
        The text and the name of the encoding found.

    Raises
    ------
    ImportValidationError
        When no supported encoding decodes every byte, when lines are in different
        encodings, or when the file holds NUL bytes (binary).

    >>> decode_text("苏州".encode("gbk"))
    ('苏州', 'GBK/GB18030')
    """
    text, name = _decode(data)
    return _normalise_newlines(text), name


def _decode(data: bytes) -> tuple[str, str]:
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), name
            except UnicodeDecodeError as err:
                raise _Rejected(
                    f"the file starts with a {name} byte-order mark but byte {err.start} "
                    f"(line {_line_of(data, err.start)}) is not {name} — save it again as UTF-8",
                    f"文件以 {name} 字节顺序标记开头，但第 {_line_of(data, err.start)} 行含有"
                    f"非 {name} 字节，请重新保存为 UTF-8") from err
    if b"\x00" in data:
        utf16 = _utf16_without_bom(data)
        if utf16 is not None:
            return utf16
        line = _line_of(data, data.index(b"\x00"))
        raise _Rejected(f"the file contains NUL bytes (the first on line {line}): it is binary, "
                        "not text — remove them or save the file again as CSV UTF-8",
                        f"文件包含 NUL 字节（第一个在第 {line} 行）：这是二进制文件，不是文本；"
                        "请删除或重新另存为“CSV UTF-8”")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as err:
        bad_line = _line_of(data, err.start)
    _reject_mixed(data)
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as err:
        raise _Rejected(
            f"the encoding is not UTF-8, UTF-16 or GBK/GB18030 (undecodable byte on line "
            f"{bad_line}) — save the file as 'CSV UTF-8'",
            f"无法识别文件编码（不是 UTF-8、UTF-16 或 GBK/GB18030；第 {bad_line} 行有无法解码的字节），"
            "请另存为“CSV UTF-8”") from err
    odd = next((c for c in text if ord(c) > 127 and not _plausible_gb18030(c)), None)
    if odd is not None:
        raise _Rejected(
            f"the file is not UTF-8 and reading it as GB18030 gives unusual characters "
            f"(U+{ord(odd):04X}); the encoding could not be detected safely — save it as 'CSV UTF-8'",
            f"文件不是 UTF-8，按 GB18030 读取会出现异常字符（U+{ord(odd):04X}），无法安全识别编码，"
            "请另存为“CSV UTF-8”")
    return text, "GBK/GB18030"


def _plausible_gb18030(char: str) -> bool:
    """A GBK character or a CJK ideograph; anything else read as GB18030 hints at garbage."""
    if 0xE000 <= ord(char) <= 0xF8FF:  # private use: a sign of wrong decoding
        return False
    if unicodedata.name(char, "").startswith("CJK UNIFIED IDEOGRAPH"):
        return True  # GB18030's four-byte rare characters (extensions A, B...)
    try:
        char.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    sample = data[:4096]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    codec = "utf-16-le" if odd > 0.3 * half and even == 0 else (
        "utf-16-be" if even > 0.3 * half and odd == 0 else None)
    if codec is None:
        return None
    try:
        return data.decode(codec), f"UTF-16 {codec[-2:].upper()} (no BOM)"
    except UnicodeDecodeError:
        return None


def _reject_mixed(data: bytes) -> None:
    utf8_line = bad_line = None
    for i, line in enumerate(_one_newline(data).split(b"\n"), start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            bad_line = bad_line or i
            continue
        if utf8_line is None and any("\u4e00" <= c <= "\u9fff" for c in text):
            utf8_line = i
    if utf8_line is not None and bad_line is not None:
        raise _Rejected(
            f"the file mixes encodings: line {utf8_line} is UTF-8 but line {bad_line} is not "
            "(probably GBK) — save the whole file again as 'CSV UTF-8'",
            f"文件混用了多种编码：第 {utf8_line} 行是 UTF-8，第 {bad_line} 行不是（可能是 GBK），"
            "请将整个文件重新另存为“CSV UTF-8”")


# ----------------------------------------------------------------------------- readers


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
            raise _Rejected(f"the name of column {i} is {len(name):,} characters long; column names "
                            f"have at most {MAX_HEADER_CHARS} — is the first row really the header?",
                            f"第 {i} 列的列名长 {len(name):,} 个字符，列名最多 {MAX_HEADER_CHARS} 个字符"
                            "（第一行是否为表头？）", column=f"#{i}", value=name)
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
        raise _Rejected(f"the first line (the header) is {len(first_line):,} characters long; a header "
                        f"has at most {MAX_COLUMNS} columns of at most {MAX_HEADER_CHARS} characters — "
                        "is the first row really the header?",
                        f"第一行（表头）长 {len(first_line):,} 个字符；表头最多 {MAX_COLUMNS} 列、每列名最多 "
                        f"{MAX_HEADER_CHARS} 个字符（第一行是否为表头？）", row=1)
    delimiter = _sniff_delimiter(first_line)
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
        limit = csv.field_size_limit()
        return _Rejected(f"a value near row {row} is longer than {limit:,} characters (no cell may "
                         f"hold more than {MAX_CELL_CHARS:,}); is a quote left open before it?",
                         f"第 {row} 行附近有一个值超过 {limit:,} 个字符（单元格最多 {MAX_CELL_CHARS:,} 个"
                         "字符），是否有未闭合的引号？", row=row)
    return _Rejected(f"the CSV cannot be parsed near row {row} (line {line}): {err} — check the "
                     "quotes in that row",
                     f"CSV 在第 {row} 行（第 {line} 个物理行）附近无法解析：请检查该行的引号", row=row)


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
            problems.add(f"Excel turned this id into a date ({value}); format the id column as Text "
                         "and type the ids again",
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
                     "该编号是数字，Excel 可能已舍入（超过 15 位或含小数），请将编号列设为“文本”后重新输入",
                     row=row, column="id", value=value)
        return repr(value)
    text = str(int(value))
    if re.fullmatch(r"0+", fmt):
        return text.zfill(len(fmt))  # the zero-padded form Excel displayed (e.g. 000123)
    problems.add(f"id {text} is stored as a number in Excel: if it had leading zeros (like 000123) "
                 "they are lost — format the id column as Text in Excel to keep them",
                 f"编号 {text} 在 Excel 中是数字：如原有前导零（如 000123）已丢失，请将编号列设为“文本”格式",
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
                            "your data", f"第 {number} 行的单元格延伸到第 {len(cells):,} 列，最多接受 "
                            f"{MAX_COLUMNS} 列，请删除数据右侧的列", row=number)
        if number > MAX_ROWS + 1:
            raise _Rejected(f"the first sheet goes on below row {MAX_ROWS + 1:,}; at most {MAX_ROWS:,} "
                            "data rows are accepted — split the file or delete what lies below "
                            "your data", f"第一个工作表超过第 {MAX_ROWS + 1:,} 行，最多接受 {MAX_ROWS:,} "
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
                            f"某个 JSON 对象中键“{key}”出现了两次，含义不明确，请只保留一个", value=key)
        out[key] = value
    return out


def _read_geojson(data: bytes) -> _Raw:
    text, encoding = decode_text(data)
    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_int=_json_int,
                         object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as err:
        raise _Rejected(f"not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})",
                        f"不是合法的 JSON：第 {err.lineno} 行第 {err.colno} 列（{err.msg}）") from err
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
                            "longitude/latitude (RFC 7946) is accepted — reproject to EPSG:4326 first",
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
        problems.add("not a GeoJSON Feature (each element of 'features' needs \"type\": \"Feature\")",
                     "不是 GeoJSON Feature（features 中每个元素都需要 \"type\": \"Feature\"）", row=number)
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
                         "as entities", f"无效的 {gtype}：{reason}；此外，主体只能以 Point（点）要素导入",
                         row=number, column="geometry", value=gtype)
        else:
            problems.add(f"the geometry is a {gtype}; only Point features can be imported as entities "
                         "— give one point per entity (e.g. its centre, with location_precision 'zone')",
                         f"几何类型为 {gtype}；主体只能以 Point（点）要素导入，请为每个主体给出一个点"
                         "（如中心点，定位精度填 zone）", row=number, column="geometry", value=gtype)
        return
    if gtype != "Point":
        problems.add(f"the geometry type is '{_short(gtype)}'; only Point features (or null for an "
                     "unknown location) can be imported as entities",
                     f"几何类型为“{_short(gtype)}”；主体只能以 Point（点）要素导入（位置未知时为 null）",
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


# ----------------------------------------------------------------------------- columns


def _map_columns(raw: _Raw, problems: _Problems) -> dict[str, int]:
    """Registry column -> index in the rows; reports unknown, duplicate and missing columns."""
    index: dict[str, int] = {}
    for i, name in enumerate(raw.header):
        col = _canonical(name)
        if not name.strip():
            if any(i < len(v) and v[i].strip() for _, v in raw.rows):
                problems.add(f"column {i + 1} has values but no header", f"第 {i + 1} 列有数据但没有列名",
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
            problems.add(f"two columns map to '{col}' ('{raw.header[index[col]]}' and '{name}'); keep one",
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
        problems.add(f"there is a '{have}' column but no '{lack}' column", f"有“{have}”列但缺少“{lack}”列",
                     column=lack)
    return index


# ----------------------------------------------------------------------------- cells


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
        hint, hint_zh = f"did you mean '{suggestion}' ({zh} / {en})? ", f"是否应为“{suggestion}”（{zh}）？"
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
                     "这是模板中的示例行，请删除（或填写真实编号）", row=row, column="id", value=text)
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
    if _NUMBER.fullmatch(s):
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
                         "the latitude about 31-32", "经纬度疑似颠倒：苏州的经度约为 120–121，纬度约为 31–32",
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


def _check_cells(row: int, raw: dict[str, str], problems: _Problems) -> tuple[dict[str, str], set[str]]:
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
        problems.add(f"{lack} is empty while {'lon' if lack == 'lat' else 'lat'} is given: give both "
                     "or neither", f"{COLUMN_ZH[lack]}为空但另一坐标已填写：请两者都填或都不填",
                     row=row, column=lack)
        return out
    if (len(parsed) < 2 or not _check_point(parsed["lon"], parsed["lat"], kind, row, problems)
            or not datum_ok):
        return out
    if ctx.export_mode:
        return _export_coordinates(row, cells, parsed, datum, problems) or out
    if datum is None:
        problems.add("the coordinate system is unknown: give --datum wgs84|gcj02|bd09 (or choose it "
                     "on the page) or fill the source_datum column (WGS84, GCJ02 for AMap/Tencent, "
                     "BD09 for Baidu)",
                     "坐标系未知：请指定 --datum wgs84|gcj02|bd09（或在页面上选择），或填写 source_datum 列"
                     "（WGS84；高德/腾讯为 GCJ02；百度为 BD09）", row=row, column="source_datum")
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
                     f"未知的坐标系“{_short(text)}”：请使用 WGS84、GCJ02（高德/腾讯）或 BD09（百度）",
                     row=row, column="source_datum", value=text)
        return None, False
    if ctx.option is not None and datum != ctx.option and not ctx.export_mode:
        problems.add(f"the row says {datum} but the import was asked for {ctx.option}; make them agree",
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
        problems.add(f"lon/lat are {metres:.0f} m from source_lon/source_lat converted from {datum}; "
                     "if you edited lon/lat, clear source_lon and source_lat",
                     f"lon/lat 与由 {datum} 转换的 source_lon/source_lat 相差 {metres:.0f} 米；"
                     "如修改过 lon/lat，请清空 source_lon 与 source_lat", row=row, column="lon, lat",
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
                         f"编号“{rid}”重复（首次出现在第 {first[rid]} {'行' if problems.unit == 'row' else '个要素'}）",
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


# ----------------------------------------------------------------------------- public API


def _clean_file_name(file_name: str) -> str:
    """The name without directories, refused characters (controls, RLO...) or broken ones.

    Everything else is kept as the text it is (``{{7*7}}.csv``, ``<img src=x>.csv``): it is
    stored through a bound parameter and shown as plain text, never evaluated or rendered.
    """
    name = Path(str(file_name).replace("\\", "/")).name
    name = strip_text(_UNPRINTABLE.sub("", name))
    return name[:200] or "upload"


def read_upload(data: bytes, file_name: str, *, datum: str | None = None,
                existing_ids: Collection[str] = frozenset()) -> ImportReport:
    """Read and validate an uploaded file; pure (no database, no file system).

    Parameters
    ----------
    data
        The file's bytes.
    file_name
        Its name; the extension says which reader to use, the content must agree.
    datum
        ``wgs84``, ``gcj02`` or ``bd09`` for every row, or None to take each row's
        ``source_datum`` (GeoJSON defaults to WGS-84 as RFC 7946 says).
    existing_ids
        Ids already in the store (duplicates are rejected).

    Returns
    -------
    ImportReport
        Normalised rows and every problem; ``report.ok`` says whether it can be imported.
    """
    report = ImportReport(file_name=_clean_file_name(file_name))
    option = None
    if datum:
        option = parse_datum(datum)
        if option is None:
            report.problems.append(Problem(f"unknown datum '{_short(datum)}': use wgs84, gcj02 or "
                                           "bd09", f"未知的坐标系“{_short(datum)}”：请使用 wgs84、gcj02 "
                                           "或 bd09",
                                           value=_short(datum)))
            return report
    try:
        report.file_format = sniff_format(data, report.file_name)
        reader: Callable[[bytes], _Raw] = {"csv": _read_delimited, "xlsx": _read_xlsx,
                                           "geojson": _read_geojson}[report.file_format]
        raw = reader(data)
    except _Rejected as err:
        report.problems.append(err.problem)
        return report
    report.encoding, report.delimiter = raw.encoding, raw.delimiter
    _validate(raw, option, existing_ids, report)
    return report


def _validate(raw: _Raw, option: DatumKey | None, existing: Collection[str],
              report: ImportReport) -> None:
    problems = _Problems(unit=raw.unit)
    problems.extend(raw.problems)
    index = _map_columns(raw, problems)
    export_mode = "source_lon" in index or "source_lat" in index
    if export_mode and option not in (None, "WGS84"):
        problems.add("this file has source_lon/source_lat columns (an export of this app), so its "
                     "lon/lat are WGS-84 already; import it without a datum (or as wgs84)",
                     "该文件含 source_lon/source_lat 列（本应用导出的文件），其 lon/lat 已是 WGS-84；"
                     "请不指定坐标系（或指定 wgs84）导入")
    if not raw.rows:
        problems.add("the file has a header but no data rows", "文件只有表头，没有数据行")
    elif len(raw.rows) > MAX_ROWS:
        problems.add(f"the file has more than {MAX_ROWS} rows; split it",
                     f"文件超过 {MAX_ROWS} 行，请拆分")
    if problems.items and any(p.severity == "error" for p in problems.items):
        report.problems = problems.final()
        return
    ctx = _Context(raw.unit, option, raw.default_datum, export_mode)
    good: list[tuple[int, dict[str, Any]]] = []
    for row, values in raw.rows:
        if len(values) > len(raw.header) and any(v.strip() for v in values[len(raw.header):]):
            problems.add(f"the row has {len(values)} values but the header has {len(raw.header)} "
                         "columns (a comma inside a value needs quotes)",
                         f"该行有 {len(values)} 个值，但表头只有 {len(raw.header)} 列（值中的逗号需要加引号）",
                         row=row)
            continue
        cells = {c: _cell(values, index, c) for c in (*REGISTRY_COLUMNS, *DERIVED_COLUMNS)}
        rec = _check_row(row, cells, ctx, problems)
        if rec is not None:
            good.append((row, rec))
    bad = _check_ids(good, existing, problems)
    records = [rec for row, rec in good if row not in bad]
    _convert(records)
    report.problems = problems.final()
    report.datum = ",".join(sorted({r["source_datum"] for r in records if r["source_datum"]}))
    report.rows = _to_frame(records)


def _to_frame(records: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    df = pd.DataFrame(records, columns=list(store.ENTITY_COLUMNS))
    for column in ("lon", "lat", "source_lon", "source_lat"):
        df[column] = pd.to_numeric(df[column]).astype("float64")
    text = [c for c in store.ENTITY_COLUMNS
            if c not in ("lon", "lat", "source_lon", "source_lat", "batch_id")]
    df[text] = df[text].fillna("").astype(object)
    df["origin"] = "user"
    df["batch_id"] = None
    return store.entities_to_gdf(df)


def read_file(path: Path, *, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """Read a file for import: a regular file of at most ``limit`` bytes, never more.

    Symbolic links are followed, but what they lead to must be a regular file: a device
    (``/dev/zero``, ``/dev/urandom``), a FIFO, a socket or a directory is refused before a
    byte is read, and opening never waits for a FIFO's writer. At most ``limit + 1`` bytes
    are read, whatever size the file claims.

    Raises
    ------
    ImportValidationError
        For a missing, unreadable, non-regular or too large file.
    """
    path = Path(path)
    name = _short(path.name, 100)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        raise _Rejected(f"cannot read {name}: {err.strerror}",
                        f"无法读取文件 {name}：{err.strerror}") from err
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = ("a directory" if stat.S_ISDIR(info.st_mode) else
                    "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else
                    "a pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else "not a regular file")
            raise _Rejected(f"{name} is {what}, not a file: give the path of a .csv, .xlsx or "
                            ".geojson file", f"{name} 不是普通文件，请给出 .csv、.xlsx 或 .geojson "
                            "文件的路径", value=path.name)
        if info.st_size > limit:
            raise _too_large(name, info.st_size, limit)
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as err:
        raise _Rejected(f"cannot read {name}: {err.strerror}",
                        f"无法读取文件 {name}：{err.strerror}") from err
    finally:
        os.close(fd)
    if len(data) > limit:
        raise _too_large(name, len(data), limit)
    return data


def _too_large(name: str, size: int, limit: int) -> _Rejected:
    mb, limit_mb = size / 1024 / 1024, limit / 1024 / 1024
    more = "more than " if size == limit + 1 else ""
    return _Rejected(f"{name} is {more}{mb:.1f} MB; the limit is {limit_mb:g} MB — split it",
                     f"{name} 大小为 {more and '超过 '}{mb:.1f} MB，超过 {limit_mb:g} MB 上限，请拆分")


def check_upload(data: bytes, file_name: str, db_path: Path, *,
                 datum: str | None = None) -> ImportReport:
    """:func:`read_upload` against the ids already in the database at ``db_path`` (a dry run)."""
    return read_upload(data, file_name, datum=datum, existing_ids=store.entity_ids(db_path))


def import_report(report: ImportReport, db_path: Path, *, actor: Actor,
                  now: datetime | None = None,
                  busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> str:
    """Write a validated report as one import batch (one transaction); returns the batch id.

    The rows go to ``entities`` with ``origin='user'`` and the batch id, a row goes to
    ``import_batches``, and the layer memberships of the new points go to
    ``layer_members`` — all in one DuckDB transaction, so a crash leaves the database as
    it was before or fully after. The batch row and an ``audit`` row record ``actor`` (an
    editor: checked before anything else) and the time.

    Raises
    ------
    NotAuthorisedError
        If ``actor`` is not an editor (nothing is read or written).
    ImportValidationError
        If the report has errors, or an id arrived in the store meanwhile.
    DatabaseBusyError
        If a process outside the app holds the database read-write for ``busy_timeout``
        seconds (another import or a rebuild is waited for, not an error).
    """
    from geo_app.layers import compute_membership  # layers imports store only; no cycle

    require_editor(actor, "import entities")
    if not report.ok:
        raise report.to_error()
    now = now or datetime.now(UTC)
    batch_id = f"imp-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    frame = report.rows.copy()
    frame["batch_id"] = batch_id
    with store.writer_lock(Path(db_path)):  # no rebuild swaps the file between check and write
        taken = sorted(set(frame["id"]) & store.entity_ids(db_path))
        if taken:
            msg = (f"ids already in the database: {', '.join(taken[:10])}; nothing was imported / "
                   f"数据库中已有这些编号，未导入任何数据")
            raise ImportValidationError(msg)
        members = compute_membership(frame, store.read_geo_table(db_path, "layers"))
        joined = members.groupby("entity_id")["layer_id"].agg(lambda s: ",".join(sorted(s)))
        frame["layers"] = [joined.get(i, "") for i in frame["id"]]
        batch = {"batch_id": batch_id, "file_name": report.file_name,
                 "imported_at": now.astimezone(UTC).replace(tzinfo=None), "target": "entities",
                 "row_count": len(frame), "source_datum": report.datum}
        _write_batch(db_path, frame, batch, members, actor, busy_timeout)
    return batch_id


def _write_batch(db_path: Path, frame: gpd.GeoDataFrame, batch: dict[str, Any],
                 members: pd.DataFrame, actor: Actor, busy_timeout: float) -> None:
    """Short rounds of backoff (about 1.5 s each) until the time budget is spent.

    This app's readers never block a write (it goes to a copy); only a process outside
    the protocol holding the file read-write does, and short, jittered attempts find the
    moment it lets go far more surely than a few long sleeps.
    """
    deadline = time_mod.monotonic() + busy_timeout
    while True:
        try:
            store.import_entities(db_path, frame, batch, members, actor=actor, retries=4)
            return
        except DatabaseBusyError:
            if time_mod.monotonic() >= deadline:
                raise


def import_file(path: Path, db_path: Path, *, actor: Actor, datum: str | None = None,
                dry_run: bool = False) -> tuple[ImportReport, str | None]:
    """Check a file and, unless ``dry_run`` or it has errors, import it as ``actor``.

    A dry run writes nothing and is open to anyone; a write needs an editor
    (:func:`import_report`), refused before the file is read.

    Returns
    -------
    tuple
        The report and the batch id (None when nothing was written).
    """
    if not dry_run:
        require_editor(actor, "import entities")
    path = Path(path)
    try:
        data = read_file(path)
    except _Rejected as err:
        return ImportReport(file_name=_clean_file_name(path.name), problems=[err.problem]), None
    report = check_upload(data, path.name, db_path, datum=datum)
    if dry_run or not report.ok:
        return report, None
    return report, import_report(report, db_path, actor=actor)


def remove_batch(db_path: Path, batch_id: str, *, actor: Actor) -> int:
    """Delete one import batch, its rows and their layer memberships; returns the rows removed.

    The removal is recorded in the ``audit`` table with ``actor`` and the time.

    Raises
    ------
    NotAuthorisedError
        If ``actor`` is not an editor (nothing is written).
    BatchNotFoundError
        If there is no such batch.
    """
    require_editor(actor, "remove an import batch")
    removed = store.delete_batch(db_path, batch_id, actor=actor)  # under the writer lock
    if removed is None:
        msg = f"No import batch '{_short(batch_id)}' / 没有编号为“{_short(batch_id)}”的导入批次"
        raise BatchNotFoundError(msg)
    return removed


def list_batches(db_path: Path) -> pd.DataFrame:
    """The import batches, newest first, with the number of their rows still present and
    who made each (``made_by``)."""
    return store.list_batches(db_path)


def list_audit(db_path: Path) -> pd.DataFrame:
    """Every import and removal, newest first, with who made it and when (append-only)."""
    return store.list_audit(db_path)


def template_rows() -> pd.DataFrame:
    """The import template as a table (every cell text)."""
    return pd.read_csv(TEMPLATE_PATH, dtype=str, keep_default_na=False, encoding="utf-8")

