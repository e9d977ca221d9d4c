"""The comparison tables as files: CSV (UTF-8 with BOM), an Excel workbook and terminal
text; text a spreadsheet would run as a formula is neutralised."""

from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd

from geo_app.districts.data import _plain_number
from geo_app.export import neutralise


def _neutralise(value: Any) -> Any:
    return neutralise(value) if isinstance(value, str) else value


def _text_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns
            if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))]


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells that a spreadsheet would run as a formula."""
    out = df.copy()
    for column in _text_columns(out):
        out[column] = out[column].astype(object).map(_neutralise)
    return out


def table_to_csv(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a BOM (Excel opens it as UTF-8), formulas neutralised, gaps empty."""
    out = neutralise_frame(df)
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = [("" if v is None or math.isnan(v) else _csv_number(float(v)))
                           for v in out[column]]
    text: str = out.to_csv(index=False, lineterminator="\n")
    return ("\ufeff" + text).encode("utf-8")


def _csv_number(v: float) -> str:
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def table_to_xlsx(df: pd.DataFrame, sheet: str = "compare") -> bytes:
    """Excel workbook of ``df`` (numbers stay numbers, gaps stay empty, formulas neutralised)."""
    out = neutralise_frame(df)
    for column in out.columns:
        if isinstance(out[column].dtype, pd.Int64Dtype):
            out[column] = out[column].astype(object).where(out[column].notna(), None)
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        out.to_excel(writer, sheet_name=sheet, index=False)
    return buf.getvalue()


def table_to_text(df: pd.DataFrame) -> str:
    """Plain-text table for a terminal; gaps shown as ``—``."""
    out = df.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = ["—" if math.isnan(v) else _plain_number(float(v)) for v in out[column]]
    text: str = out.astype(object).where(out.notna(), "—").to_string(index=False)
    return text + "\n"
