"""The one text decoder of every user file: a BOM's encoding, else UTF-8, else GB18030;
never a guess that garbles a character."""

from __future__ import annotations

import codecs
import unicodedata

from geo_app.ingest.report import _Rejected

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
            f"无法识别文件编码（不是 UTF-8、UTF-16 或 GBK/GB18030；第 {bad_line} "
            "行有无法解码的字节），请另存为“CSV UTF-8”") from err
    odd = next((c for c in text if ord(c) > 127 and not _plausible_gb18030(c)), None)
    if odd is not None:
        raise _Rejected(
            f"the file is not UTF-8 and reading it as GB18030 gives unusual characters "
            f"(U+{ord(odd):04X}); the encoding could not be detected safely — save it "
            "as 'CSV UTF-8'",
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
