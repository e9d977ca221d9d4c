"""The one text rule of every user file (entity import and indicator import): one
normaliser, one check, one way to show a bad value."""

from __future__ import annotations

import re
import unicodedata

from geo_app.ingest.schema import MAX_CELL_CHARS

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
    ``max_len`` characters; UTF-8 text garbled by a Latin-1 reading; control characters (C0
    but tab/LF/CR, DEL, C1 such as U+0085 and U+009B); U+2028/U+2029; bidirectional controls
    (U+202E...); unpaired surrogates;
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
                "文本疑似乱码（UTF-8 被按 Latin-1 读取，"
                f"原文可能是“{_short(fixed)}”），请修正文件编码")
    bad = _FORBIDDEN.search(text) or (None if multiline else _ONE_LINE.search(text))
    if bad:
        char = bad.group(0)
        code = f"U+{ord(char):04X}"
        if 0xD800 <= ord(char) <= 0xDFFF:
            return (f"contains a broken character ({code}, {_char_name(char)}): the text was "
                    "damaged before it reached this file — retype it or save the file "
                    "again as UTF-8",
                    f"包含损坏的字符（{code}，不成对的 UTF-16 代理项），"
                    "请重新输入或将文件另存为 UTF-8")
        return (f"contains the invisible or control character {code} "
                f"({_char_name(char)}); remove it",
                f"包含不可见字符或控制字符 {code}，请删除")
    if text and _BLANK.fullmatch(text):
        return ("holds no visible character (only spaces or zero-width characters); write the text "
                "or leave the cell empty",
                "不含任何可见字符（只有空格或零宽字符），请填写内容或留空")
    return None


def _short(value: object, limit: int = 80) -> str:
    """``value`` as printable text (see :func:`printable`) of at most ``limit`` characters."""
    text = printable(str(value)[: limit * 8])
    return text if len(text) <= limit else text[: limit - 3] + "..."
