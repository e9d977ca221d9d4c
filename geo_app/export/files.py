"""The entry points: :func:`write_export` to a stream, :func:`export_bytes`, and
:func:`export_file`, which writes a file atomically and never over the database."""

from __future__ import annotations

import glob
import io
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import IO

from geo_app import store
from geo_app.errors import ExportError
from geo_app.export.formats import (
    BATCH_SIZE,
    ID_COLUMNS,
    XLSX_MAX_ROWS,
    check_collection,
    check_format,
    file_name,
)
from geo_app.export.rows import _iter_rows, collection_gdf, count_features
from geo_app.export.writers import (
    _write_csv,
    _write_entities_geojson,
    _write_gpkg,
    _write_xlsx,
    write_geojson,
)
from geo_app.filters import EntityFilter

# ----------------------------------------------------------------------------- entry points


def _check_request(collection: str, fmt: str, flt: EntityFilter | None) -> None:
    check_collection(collection)
    check_format(fmt)
    if flt is not None and not flt.is_empty() and collection != "entities":
        msg = f"Filters apply to entities only, not to {collection!r}"
        raise ExportError(msg)


def _check_xlsx_rows(db_path: Path, flt: EntityFilter | None) -> None:
    count, _ = count_features(db_path, "entities", flt)
    if count > XLSX_MAX_ROWS:
        msg = (f"{count:,} entities match, but an Excel sheet holds at most {XLSX_MAX_ROWS:,} "
               f"rows: use CSV or GeoPackage, or filter further. / 匹配 {count:,} 个主体，超过 "
               "Excel 的行数上限，请改用 CSV 或 GeoPackage，或缩小筛选范围。")
        raise ExportError(msg)


def write_export(db_path: Path, collection: str, fmt: str, out: IO[bytes], *,
                 flt: EntityFilter | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Write ``collection`` (entities filtered by ``flt``) as ``fmt`` to the binary stream ``out``.

    This is the one function behind the app's downloads and ``geo-app export``.

    Returns
    -------
    int
        The number of features written.

    Raises
    ------
    ExportError
        For an unknown format or collection, a filter on a collection other than
        entities, more rows than an Excel sheet holds, or ``out`` open on the database.
    """
    _check_request(collection, fmt, flt)
    _check_stream(out, db_path)
    if fmt == "gpkg":  # GDAL writes files, not streams
        with tempfile.TemporaryDirectory(prefix="geo-app-export-") as tmp:
            path = Path(tmp) / file_name(collection, fmt)
            n = _write_gpkg(_iter_rows(db_path, collection, flt, batch_size), collection, path)
            with open(path, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
        return n
    if fmt == "geojson":
        if collection == "entities":
            return _write_entities_geojson(db_path, flt, out, batch_size)
        return write_geojson(collection_gdf(db_path, collection), out,
                             id_column=ID_COLUMNS[collection])
    if fmt == "xlsx" and collection == "entities":
        _check_xlsx_rows(db_path, flt)
    rows = _iter_rows(db_path, collection, flt, batch_size)
    writer = _write_csv if fmt == "csv" else _write_xlsx
    return writer(rows, collection, out)


def export_bytes(db_path: Path, collection: str, fmt: str, *,
                 flt: EntityFilter | None = None) -> bytes:
    """The bytes of an export, held in memory (for tests and small collections).

    The app serves its downloads from disk instead (:func:`prepare_download`).
    """
    buf = io.BytesIO()
    write_export(db_path, collection, fmt, buf, flt=flt)
    return buf.getvalue()


def check_output_path(path: str | Path, db_path: Path) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if an export may write it.

    Refused: an empty path, a folder, a path whose folder does not exist, and the database
    ``db_path`` itself or any file the store keeps beside it (its WAL, lock, write copies,
    build files), whether named directly, through a symlink, with ``..`` or as a hard
    link: writing one would destroy the database and every import batch in it.

    Raises
    ------
    ExportError
        Saying which of these the path is and what to give instead.
    """
    if not str(path).strip():
        msg = "The output path is empty: give a file name, e.g. entities.geojson"
        raise ExportError(msg)
    path = Path(path)
    if store.is_database_file(path, db_path):
        msg = (f"Refusing to export to {path}: it is the app's database {db_path} or one of "
               "its files, and writing it would destroy every import. Choose another file. "
               "/ 不能导出到数据库文件，请换一个文件名。")
        raise ExportError(msg)
    if path.is_dir():
        msg = f"Cannot write {path}: it is a folder; give a file name inside it"
        raise ExportError(msg)
    if not path.parent.is_dir():
        msg = f"Cannot write {path}: the folder {path.parent} does not exist"
        raise ExportError(msg)
    return path


def _check_stream(out: IO[bytes], db_path: Path) -> None:
    """Refuse a stream open on the database or one of its files (``-o - >> geo_app.duckdb``)."""
    try:
        st = os.fstat(out.fileno())
    except (AttributeError, OSError, ValueError):  # an in-memory stream has no file
        return
    for path in store.database_files(db_path):
        try:
            other = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino):
            msg = (f"Refusing to export into the app's database {db_path} (the output stream "
                   "is that file): it would destroy every import. Redirect to another file.")
            raise ExportError(msg)


#: Name of the hidden file an export writes before moving it over its target: the
#: target's stem, the writer's process id and a random token, the target's suffix.
_TEMP = r"\.{stem}\.tmp(?P<pid>\d+)(?:-[0-9a-f]+)?{suffix}"


def _temp_path(path: Path) -> Path:
    """A new hidden file beside ``path`` for an export to write (GDAL wants the suffix).

    The token keeps two exports of one process (threads) or a reused process id apart.
    """
    return path.with_name(f".{path.stem}.tmp{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def clear_stale_temps(path: Path) -> list[Path]:
    """Delete the temporary files of exports to ``path`` whose process is gone.

    An export killed mid-write leaves ``.<stem>.tmp<pid><suffix>`` beside its target;
    a temporary file of a live process (another export running now) is kept.

    Returns
    -------
    list of Path
        The files deleted.
    """
    path = Path(path)
    pattern = re.compile(_TEMP.format(stem=re.escape(path.stem), suffix=re.escape(path.suffix)))
    gone = []
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.tmp*"):
        match = pattern.fullmatch(stale.name)
        if match and stale.is_file() and not store.process_alive(int(match["pid"])):
            stale.unlink(missing_ok=True)
            gone.append(stale)
    return gone


def export_file(db_path: Path, collection: str, fmt: str, path: str | Path, *,
                flt: EntityFilter | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Write an export to ``path``, streaming, atomically: a failed export leaves no file.

    The path is checked first (:func:`check_output_path`: never the database); stale
    temporary files of killed exports to the same path are removed.

    Returns
    -------
    int
        The number of features written.

    Raises
    ------
    ExportError
        For a refused path, a bad request, or when the file cannot be written (the
        operating system's reason is in the message).
    """
    path = check_output_path(path, db_path)
    _check_request(collection, fmt, flt)
    clear_stale_temps(path)
    tmp = _temp_path(path)
    try:
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            if fmt == "gpkg":
                tmp.unlink()  # GDAL creates its own file
                n = _write_gpkg(_iter_rows(db_path, collection, flt, batch_size), collection, tmp)
            else:
                with open(tmp, "wb") as fh:
                    n = write_export(db_path, collection, fmt, fh, flt=flt, batch_size=batch_size)
            os.replace(tmp, path)
        except OSError as err:
            reason = err.strerror or str(err)
            if err.filename == str(tmp):  # the temporary file beside it
                reason = f"cannot create a new file in {path.parent} ({reason})"
            elif err.filename not in (None, str(path)):
                reason = f"{reason}: {err.filename}"
            msg = f"Cannot write {path}: {reason}"
            raise ExportError(msg) from err
    finally:
        tmp.unlink(missing_ok=True)
    return n
