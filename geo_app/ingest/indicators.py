"""Read, validate and load the per-板块 figures a user brings (the board-indicators CSV of
docs/indicators.md): decoded and checked by the same rule as the entity import, all rows
or none."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from geo_app import store
from geo_app.auth import Actor, require_editor
from geo_app.errors import ImportValidationError
from geo_app.ingest.decoding import decode_text
from geo_app.ingest.schema import MAX_PROBLEMS
from geo_app.ingest.text import normalise, printable, strip_text, text_problem
from geo_app.numbers import is_decimal
from geo_app.vocab import BOARDS, CITY

USER_COLUMNS = ("board", "indicator", "year", "value", "unit", "source", "notes")
_HEADER_ALIASES: Mapping[str, str] = {
    "板块": "board", "board": "board", "指标": "indicator", "indicator": "indicator",
    "年份": "year", "year": "year", "数值": "value", "value": "value", "单位": "unit",
    "unit": "unit", "来源": "source", "source": "source", "备注": "notes", "说明": "notes",
    "notes": "notes",
}
#: A template with two shipped, sourced figures (see docs/indicators.md).
USER_TEMPLATE = (
    "板块,indicator,year,value,unit,source,notes\n"
    "张家港市,rd_share_gdp,2021,3.45,%,\"M: 张家港市发改委 plan report, 2022-01-07\",\n"
    "太仓市,gdp,2022,1653.57,亿元,M: 2022 太仓 statistical bulletin,\n"
)
#: Most data rows and bytes of one file.
_MAX_IMPORT_ROWS = 5000
_MAX_IMPORT_BYTES = 2 * 1024 * 1024
#: Longest text per column; the text rule (:func:`geo_app.ingest.text_problem`) checks each.
_MAX_CHARS: Mapping[str, int] = {"board": 20, "indicator": 100, "year": 20, "value": 100,
                                 "unit": 30, "source": 2000, "notes": 4000}
#: Free-text columns, which may hold line breaks.
_MULTILINE = frozenset({"source", "notes"})


def _quote(value: str) -> str:
    """A cell for a message: quoted, printable, at most 80 characters."""
    text = repr(printable(value[:200]))
    return text if len(text) <= 80 else text[:76] + "...'"


def parse_user_indicators(raw: bytes, existing: pd.DataFrame | None = None) -> pd.DataFrame:
    """Validate a user-indicator CSV (layout in docs/indicators.md); all rows or none.

    The file is decoded by :func:`geo_app.ingest.decode_text` and every cell checked by
    :func:`geo_app.ingest.text_problem`: the decoder and the text rule of the entity import;
    a value must be a plain decimal (:func:`geo_app.numbers.is_decimal`) after NFKC and
    without thousands separators.

    Parameters
    ----------
    raw
        The file's bytes.
    existing
        Figures already loaded (``indicator, unit``): an imported figure must use the
        unit the indicator already has.

    Returns
    -------
    DataFrame
        ``board, indicator, year, value, unit, source, notes`` ready to load.

    Raises
    ------
    ImportValidationError
        With ``problems`` = ``[{"row", "column", "problem"}]``; row numbers count the
        header as row 1, as a spreadsheet shows them. At most
        :data:`geo_app.ingest.MAX_PROBLEMS` are listed, then one saying how many more.
    """
    if len(raw) > _MAX_IMPORT_BYTES:
        msg = (f"The file is {len(raw) // 1024} KiB; at most {_MAX_IMPORT_BYTES // 1024} KiB. / "
               "文件过大。")
        raise ImportValidationError(msg)
    text, _enc = decode_text(raw)
    records = _read_records(text)
    if not records:
        raise ImportValidationError("The file is empty. / 文件为空。")
    head_line, head = records[0]
    columns = _check_header(head_line, head)
    data_rows = records[1:]
    if len(data_rows) > _MAX_IMPORT_ROWS:
        msg = f"Too many rows ({len(data_rows)}); at most {_MAX_IMPORT_ROWS} per file."
        raise ImportValidationError(msg)
    if not data_rows:
        raise ImportValidationError("The file has a header but no rows. / "
                                    "文件只有表头，没有数据行。")
    units = _known_units(existing)
    seen: dict[tuple[str, str, str], int] = {}
    problems: list[dict[str, str]] = []
    out = []
    for line, cells in data_rows:
        if len(cells) != len(columns):
            problems.append({"row": str(line), "column": "",
                             "problem": f"{len(cells)} cells, the header has {len(columns)}"})
            continue
        rec = dict(zip(columns, cells, strict=True))
        row, row_problems = _check_row(rec, units)
        for column, problem in row_problems:
            problems.append({"row": str(line), "column": column, "problem": problem})
        if row_problems:
            continue
        key = (row["board"], row["indicator"], row["year"])
        if key in seen:
            problems.append({"row": str(line), "column": "year",
                             "problem": f"same 板块, indicator and year as row {seen[key]}"})
            continue
        seen[key] = line
        units.setdefault(row["indicator"], row["unit"])
        out.append(row)
    if problems:
        raise _rejected(problems)
    return pd.DataFrame(out, columns=list(USER_COLUMNS)).astype({"value": float})


def _check_header(line: int, head: list[str]) -> list[str]:
    """The header's columns (aliases resolved); :class:`ImportValidationError` if it is wrong."""
    names = [normalise(h[:200]) for h in head]
    columns = [_HEADER_ALIASES.get(n.lower(), n) for n in names]
    missing = [c for c in USER_COLUMNS[:-1] if c not in columns]
    extra = [_quote(h) for h, c in zip(head, columns, strict=True) if c not in USER_COLUMNS]
    if missing or extra or len(set(columns)) != len(columns):
        more = f" and {len(extra) - 5:,} more" if len(extra) > 5 else ""
        problem = (f"header must be 板块,indicator,year,value,unit,source(,notes); "
                   f"missing {missing}, unknown [{', '.join(extra[:5])}{more}]")
        raise _rejected([{"row": str(line), "column": "header", "problem": problem}])
    return columns


def _rejected(problems: list[dict[str, str]]) -> ImportValidationError:
    """The error for a refused file, listing at most :data:`geo_app.ingest.MAX_PROBLEMS`."""
    listed = problems[:MAX_PROBLEMS]
    if len(problems) > len(listed):
        listed.append({"row": "", "column": "", "problem": f"and {len(problems) - len(listed):,} "
                       "more problems are not listed"})
    return ImportValidationError(_summary(problems), listed)


def _read_records(text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    records, start = [], 1
    try:
        for cells in reader:
            if any(strip_text(c) for c in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as err:
        problem = printable(str(err))[:200]
        msg = f"Row {start}: the CSV cannot be read ({problem}). / 第{start}行无法解析。"
        raise ImportValidationError(
            msg, [{"row": str(start), "column": "", "problem": problem}]) from err
    return records


def _known_units(existing: pd.DataFrame | None) -> dict[str, str]:
    if existing is None or existing.empty:
        return {}
    pairs = existing[["indicator", "unit"]].dropna().drop_duplicates("indicator", keep="first")
    return {normalise(str(i)): str(u) for i, u in pairs.itertuples(index=False)}


def _check_text(rec: Mapping[str, str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Every cell through the one text rule; the cells without surrounding spaces."""
    cells: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for column in USER_COLUMNS:
        text = strip_text(rec.get(column) or "")
        bad = text_problem(text, multiline=column in _MULTILINE,
                                  max_len=_MAX_CHARS[column]) if text else None
        if bad is not None:
            problems.append(("板块" if column == "board" else column, f"{_quote(text)} {bad[0]}"))
        cells[column] = text
    return cells, problems


def _check_row(rec: Mapping[str, str], units: Mapping[str, str]
               ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    cells, problems = _check_text(rec)
    if problems:
        return cells, problems
    board = normalise(cells["board"])
    if board not in BOARDS and board != CITY:
        problems.append(("板块",
                         f"{_quote(cells['board'])} is not 全市 or one of {', '.join(BOARDS)}"))
    indicator = normalise(cells["indicator"])
    if not indicator:
        problems.append(("indicator", "empty: give the indicator's code (e.g. gdp)"))
    year = normalise(cells["year"])
    if not re.fullmatch(r"\d{4}", year) or not 1900 <= int(year) <= 2100:
        problems.append(("year", f"{_quote(cells['year'])} is not a four-digit year (1900–2100)"))
    value = _parse_value(cells["value"])
    if isinstance(value, str):
        problems.append(("value", value))
    unit = cells["unit"]
    if not unit:
        problems.append(("unit", "empty: give the unit (e.g. 亿元, %)"))
    known = units.get(indicator)
    if unit and known is not None:
        if normalise(unit) != normalise(known):
            problems.append(("unit", f"{_quote(unit)} differs from the unit {_quote(known)} "
                                     f"already used for {_quote(indicator)}"))
        unit = known
    source = cells["source"]
    if not source:
        problems.append(("source", "empty: every figure needs its source"))
    notes = cells["notes"] or None
    return ({"board": board, "indicator": indicator, "year": year, "value": value, "unit": unit,
             "source": source, "notes": notes}, problems)


def _parse_value(cell: str) -> float | str:
    text = normalise(cell).replace(",", "").replace(" ", "")
    if not text:
        return "empty: leave the row out when no figure is known (a gap is not a zero)"
    if not is_decimal(text):
        return f"{_quote(cell)} is not a number (write % and units in the unit column)"
    number = float(text)
    if not math.isfinite(number):
        return f"{_quote(cell)} is out of range"
    return number


def _summary(problems: list[dict[str, str]]) -> str:
    head = "; ".join(f"row {p['row']} {p['column']}: {p['problem']}" for p in problems[:5])
    more = f" (and {len(problems) - 5:,} more)" if len(problems) > 5 else ""
    return (f"Nothing was imported: {len(problems):,} problem(s). {head}{more} / "
            f"未导入任何数据：共{len(problems):,}处问题。")


def import_user_indicators(db_path: Path, raw: bytes, file_name: str, *, actor: Actor,
                           dry_run: bool = False) -> tuple[pd.DataFrame, str | None]:
    """Validate ``raw`` and, unless ``dry_run``, load it as one batch (all rows or none).

    Returns the validated rows and the batch id (``None`` for a dry run). The batch records
    ``actor``, who must be an editor unless this is a dry run.

    Raises
    ------
    NotAuthorisedError
        If this is not a dry run and ``actor`` is not an editor (checked first; nothing
        is written).
    ImportValidationError
        If the file has problems (nothing is written).
    """
    if not dry_run:
        require_editor(actor, "import indicators")
    existing = store.read_table(db_path, "board_indicators")
    frame = parse_user_indicators(raw, existing)
    if dry_run:
        return frame, None
    return frame, store.import_board_indicators(db_path, frame, file_name=file_name, actor=actor)
