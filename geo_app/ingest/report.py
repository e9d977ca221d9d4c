"""Problems found in an import file and the report of one file read: :class:`Problem`,
:class:`ImportReport`, and the collector that caps the list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import pandas as pd

from geo_app import store
from geo_app.errors import GeoAppError, ImportValidationError
from geo_app.ingest.schema import MAX_MESSAGE_CHARS, MAX_PROBLEMS
from geo_app.ingest.text import _short


class BatchNotFoundError(GeoAppError, LookupError):
    """No import batch has the given id."""


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
