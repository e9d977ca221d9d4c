"""Which format a file is, from its extension and its first bytes; an .xlsx is checked as a
ZIP container (size, encryption, macros, XML document types) before anything parses it."""

from __future__ import annotations

import codecs
import io
import zipfile
import zlib
from pathlib import Path

import defusedxml
import defusedxml.ElementTree as safe_xml

from geo_app.ingest.report import _Rejected
from geo_app.ingest.schema import EXTENSIONS, MAX_UNPACKED_BYTES, MAX_UPLOAD_BYTES
from geo_app.ingest.text import _short

_MAGIC = ((b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"\xd0\xcf\x11\xe0", "ole"),
          (b"%PDF", "PDF"), (b"\x89PNG", "PNG image"), (b"\xff\xd8\xff", "JPEG image"),
          (b"GIF8", "GIF image"), (b"\x1f\x8b", "gzip archive"), (b"7z\xbc\xaf", "7-Zip archive"),
          (b"Rar!", "RAR archive"), (b"SQLite format 3", "SQLite database"),
          (b"\x7fELF", "program (ELF)"), (b"MZ", "Windows program"))


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
                        f"文件大小 {len(data) / 1024 / 1024:.1f} MB，超过 {mb} "
                        "MB 上限，请拆分后导入")
    if not data.strip(b" \t\r\n\x00") or data in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE,
                                                  codecs.BOM_UTF16_BE):
        raise _Rejected("the file is empty", "文件为空")
    ext = Path(file_name).suffix.lower()
    if ext not in EXTENSIONS:
        raise _Rejected(f"unsupported file type '{ext or file_name}': use .csv, .txt "
                        "(tab-separated), .xlsx, .geojson or .json",
                        f"不支持的文件类型“{ext or file_name}”：请使用 .csv、.txt（制表符分隔）、"
                        ".xlsx、.geojson 或 .json", value=file_name)
    fmt = EXTENSIONS[ext]
    kind = _magic(data)
    if fmt == "xlsx":
        if kind != "zip":
            what = {"ole": "a legacy .xls workbook or a password-protected file"}.get(
                kind or "", kind or "text")
            raise _Rejected("this .xlsx file is not an Excel workbook (an .xlsx is a ZIP "
                            f"container; this looks like {what}) — open it in Excel and save as "
                            ".xlsx, or export CSV UTF-8",
                            "该 .xlsx 文件不是 Excel 工作簿（.xlsx 应为 ZIP 容器），请在 Excel 中"
                            "另存为 .xlsx 或“CSV UTF-8”格式")
        _check_workbook_zip(data)
        return fmt
    if kind == "zip":
        raise _Rejected(f"this {ext} file is a ZIP container (an Excel .xlsx workbook or an "
                        "archive), not text — rename an Excel workbook to .xlsx, or save it "
                        "as CSV UTF-8",
                        f"该 {ext} 文件实际上是 ZIP 容器（Excel .xlsx 工作簿或压缩包），不是文本；"
                        "若为 Excel 工作簿请改名为 .xlsx，或另存为“CSV UTF-8”")
    if kind == "ole":
        raise _Rejected("this file is a legacy Excel .xls (or another Office binary) workbook — "
                        "save it as .xlsx or CSV UTF-8",
                        "该文件是旧版 Excel .xls（或其他 Office 二进制）文件，请另存为 .xlsx "
                        "或“CSV UTF-8”")
    if kind is not None:
        raise _Rejected(f"this {ext} file is a {kind}, not text",
                        f"该 {ext} 文件是 {kind}，不是文本文件")
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
                        f"工作簿解压后为 {unpacked / 1024 / 1024:.0f} MB，"
                        "超过上限，请拆分或另存为 CSV")
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
                    "它们可能读取本机文件或无限膨胀，因此被拒绝。请在 Excel "
                    "中打开并重新另存为 .xlsx",
                    value=info.filename) from err
            except SyntaxError:  # xml.etree's ParseError: not XML, or damaged; openpyxl decides
                continue
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
                raise _Rejected(f"the .xlsx file is damaged ({_short(info.filename, 60)} cannot be "
                                "unpacked) — open it in Excel and save it again",
                                "该 .xlsx 文件已损坏（部分内容无法解压），请在 "
                                "Excel 中打开并重新保存",
                                value=info.filename) from err
