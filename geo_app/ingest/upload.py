"""Read and validate one uploaded file into an :class:`ImportReport` (pure up to
:func:`check_upload`, which reads the ids already in the store)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geo_app import store
from geo_app.ingest._checks import (
    _cell,
    _check_ids,
    _check_row,
    _Context,
    _convert,
    parse_datum,
)
from geo_app.ingest._readers import _map_columns, _Raw, _read_delimited, _read_geojson, _read_xlsx
from geo_app.ingest.report import ImportReport, Problem, _Problems, _Rejected
from geo_app.ingest.schema import DERIVED_COLUMNS, MAX_ROWS, MAX_UPLOAD_BYTES, DatumKey
from geo_app.ingest.sniff import sniff_format
from geo_app.ingest.text import _UNPRINTABLE, _short, strip_text
from geo_app.vocab import REGISTRY_COLUMNS


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
                                           "bd09",
                                           f"未知的坐标系“{_short(datum)}”：请使用 wgs84、gcj02 "
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
                     "该文件含 source_lon/source_lat 列（本应用导出的文件），其 lon/lat 已是 "
                     "WGS-84；请不指定坐标系（或指定 wgs84）导入")
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
                         f"该行有 {len(values)} 个值，但表头只有 {len(raw.header)} "
                         "列（值中的逗号需要加引号）",
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
                     f"{name} 大小为 {more and '超过 '}{mb:.1f} MB，超过 "
                     f"{limit_mb:g} MB 上限，请拆分")


def check_upload(data: bytes, file_name: str, db_path: Path, *,
                 datum: str | None = None) -> ImportReport:
    """:func:`read_upload` against the ids already in the database at ``db_path`` (a dry run)."""
    return read_upload(data, file_name, datum=datum, existing_ids=store.entity_ids(db_path))
