"""DuckDB connections: the spatial extension, opening with retries, and the readers each
process keeps open (one read-only instance per database file).

How the file is shared (docs/scale.md, "Reading and writing the file at scale"):

- **Readers keep the file open.** Each process keeps one read-only DuckDB instance per
  database file (:func:`reader`) and gives every operation its own cursor on it, so a
  query runs on warm caches instead of paying ~12 ms to open the file and ~40 ms of cold
  reads. Before each operation the file's identity (inode, size, mtime, and its WAL if
  any) is checked; when the file was replaced the instance is re-opened.
- **Writers never touch the live file** (:mod:`geo_app.store.duckdb_files`).
"""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from geo_app.errors import DatabaseBusyError, DataError, GeoAppError


def _spatial_extension_path() -> Path:
    import duckdb_extension_spatial

    base = Path(next(iter(duckdb_extension_spatial.__path__)))
    path = base / "extensions" / f"v{duckdb.__version__}" / "spatial.duckdb_extension"
    if not path.exists():
        found = sorted(base.glob("extensions/*/spatial.duckdb_extension"))
        msg = (f"The DuckDB spatial extension for duckdb {duckdb.__version__} is not installed "
               f"(looked for {path}; found {[str(p) for p in found]}). Install the matching "
               f"'duckdb-extension-spatial' wheel: pip install -e .")
        raise DataError(msg)
    return path


_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}

#: The catalog name under which a reader instance attaches the database file.
_READ_ALIAS = "geo"


def _open(path: Path, read_only: bool, spatial: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only, config=_CONFIG)
    if spatial:
        try:
            ext = str(_spatial_extension_path()).replace("'", "''")
            con.execute(f"LOAD '{ext}'")
        except BaseException:
            con.close()
            raise
    return con


def _attach_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A new in-memory instance with ``path`` attached read-only as the default catalog.

    ATTACH, not ``duckdb.connect(path)``: the latter returns a cached instance for a path
    while one is alive, which would keep serving a file that has since been replaced.
    """
    con = duckdb.connect(":memory:", config=_CONFIG)
    try:
        quoted = str(path).replace("'", "''")
        con.execute(f"ATTACH '{quoted}' AS {_READ_ALIAS} (READ_ONLY)")
        con.execute(f"USE {_READ_ALIAS}")
    except BaseException:
        con.close()
        raise
    return con


def _retrying(path: Path, opener: Callable[[], duckdb.DuckDBPyConnection], retries: int,
              base_delay: float) -> duckdb.DuckDBPyConnection:
    """Call ``opener`` until the file's lock is free; :class:`DatabaseBusyError` after
    ``retries``."""
    attempt = 0
    while True:
        try:
            return opener()
        except (duckdb.IOException, duckdb.ConnectionException) as err:
            if "lock" not in str(err).lower() or attempt >= retries:
                if "lock" in str(err).lower():
                    msg = (f"The database {path} is busy (another process is writing to it). "
                           "Try again in a moment. / 数据库正忙，请稍后重试。")
                    raise DatabaseBusyError(msg) from err
                raise
            time.sleep(base_delay * (2**attempt) * (0.5 + random.random()))
            attempt += 1


def _require(path: Path) -> None:
    if not Path(path).exists():
        msg = f"Database {path} does not exist yet; run 'geo-app build' or start the app once."
        raise DataError(msg)


# ----------------------------------------------------------------------------- readers


#: Most database files a process keeps open for reading (the app uses one; tests many).
MAX_OPEN_READERS = 4

#: A :func:`database_version`.
Version = tuple[tuple[int, int, int, int] | None, ...]
_READERS: OrderedDict[str, tuple[Version, duckdb.DuckDBPyConnection]] = OrderedDict()
_READERS_LOCK = threading.Lock()


def file_stamp(path: Path | str) -> tuple[int, int, int, int] | None:
    """``(device, inode, size, mtime_ns)`` of ``path``, or None when there is no such file."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def database_version(path: Path | str) -> Version:
    """What changes whenever the database file or its write-ahead log is replaced or written
    (the one key of every per-version cache: readers here, the API, the pages)."""
    return (file_stamp(path), file_stamp(f"{path}.wal"))


def _identity(path: Path) -> Version:
    """:func:`database_version` of a file that must exist (FileNotFoundError otherwise)."""
    version = database_version(path)
    if version[0] is None:
        raise FileNotFoundError(errno.ENOENT, "No such file", str(path))
    return version


def _reader_instance(path: Path, retries: int, base_delay: float
                     ) -> tuple[Version, duckdb.DuckDBPyConnection]:
    """The process's read-only instance of ``path`` and the version of the file it reads."""
    key = os.path.realpath(path)
    while True:
        try:
            ident = _identity(Path(key))
        except FileNotFoundError:
            _require(Path(key))
            raise
        with _READERS_LOCK:
            cached = _READERS.get(key)
            if cached is not None and cached[0] == ident:
                _READERS.move_to_end(key)
                return cached
        con = _retrying(Path(key), lambda: _attach_read_only(Path(key)), retries, base_delay)
        if _identity(Path(key)) != ident:  # replaced while we opened it: open the new one
            con.close()
            continue
        with _READERS_LOCK:
            # an instance another thread is still using stays alive through its cursors
            _READERS[key] = (ident, con)
            _READERS.move_to_end(key)
            while len(_READERS) > MAX_OPEN_READERS:
                _READERS.popitem(last=False)
        return ident, con


def _forget_reader(path: Path) -> None:
    with _READERS_LOCK:
        _READERS.pop(os.path.realpath(path), None)


def forget_readers() -> None:
    """Drop every kept reader instance (tests; a process about to delete its files)."""
    with _READERS_LOCK:
        _READERS.clear()


@contextmanager
def reader(path: Path, *, retries: int = 8, base_delay: float = 0.05
           ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on the process's read-only instance of ``path``, for one operation.

    Raises
    ------
    DataError
        When the file does not exist.
    DatabaseBusyError
        When a process outside this app's write protocol holds the file read-write past
        ``retries`` attempts (this app's writers never open the live file).
    """
    with versioned_reader(path, retries=retries, base_delay=base_delay) as (_, cur):
        yield cur


@contextmanager
def versioned_reader(path: Path, *, retries: int = 8, base_delay: float = 0.05
                     ) -> Iterator[tuple[Version, duckdb.DuckDBPyConnection]]:
    """As :func:`reader`, with the :func:`database_version` of the file the cursor reads
    (the instance keeps reading that file, whatever replaces it on disk meanwhile)."""
    version, base = _reader_instance(Path(path), retries, base_delay)
    with _READERS_LOCK:
        cur = base.cursor()
    try:
        cur.execute(f"USE {_READ_ALIAS}")
        yield version, cur
    finally:
        cur.close()


#: Columns of ``entities`` :func:`warm_reader` reads: what every run of the map page scans
#: (the point summary and the filters). The rest of the table is read by the queries that
#: need it: warming it too would add ~0.36 s to each write at 1M entities (``geom`` ~0.17 s
#: of it) and took no more than the warm query's own spread off the next 板块 query
#: (docs/scale.md, fifth pass).
WARM_ENTITY_COLUMNS = ("lon", "lat", "kind", "location_precision", "level", "status", "board",
                       "origin", "layers")

#: Rows of the query with which :func:`warm_reader` ends (one DuckDB vector).
_FIRST_ROWS = 2048

#: What a head start on the reader (``duckdb_files._warm``, ``duckdb_stream.prepare_search``)
#: leaves to the next operation, which meets it again and says what is wrong: DuckDB's
#: errors, the file's, and the app's own (a missing file, a busy one).
HEAD_START_FAILURES: tuple[type[BaseException], ...] = (duckdb.Error, OSError, GeoAppError)


def warm_reader(path: Path, *, retries: int = 8, base_delay: float = 0.05) -> None:
    """Open this process's reader of ``path`` now and read into it what the next
    operation would read cold.

    The first operation after the file was replaced pays for a new read-only instance
    (ATTACH and its catalog) and for cold reads of the blocks it touches (~140 ms more
    than warm at 1M entities). :func:`geo_app.store.duckdb_files.rewrite` calls this
    right after its swap, so the next query of the process that wrote runs warm: every
    small table whole, :data:`WARM_ENTITY_COLUMNS` of ``entities``, then one vector of
    every column of ``entities`` returned as Arrow (the first such result of an instance
    pays a one-time cost of its own). Another process still pays at its next operation.
    """
    _, base = _reader_instance(Path(path), retries, base_delay)
    with _READERS_LOCK:
        cur = base.cursor()
    try:
        cur.execute(f"USE {_READ_ALIAS}")
        columns: dict[str, list[str]] = {}
        for table, column in cur.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_catalog = c.table_catalog "
                "AND t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE c.table_catalog = ? AND c.table_schema = 'main' "
                "AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position",
                [_READ_ALIAS]).fetchall():
            if table != "entities" or column in WARM_ENTITY_COLUMNS:
                columns.setdefault(table, []).append(column)
        for table, names in columns.items():
            # a hash of the columns reads each of their blocks into the instance
            items = ", ".join(_quoted(c) for c in names)
            cur.execute(f"SELECT count(hash({items})) FROM {_quoted(table)}").fetchall()  # noqa: S608 (catalog names, quoted)
        if "entities" in columns:
            # The first query of an instance that returns rows to Arrow paid ~15 ms once,
            # whatever its size, on top of the reads above (the 板块 query right after a
            # 1M write: a median of 51-56 ms without this, 36-40 ms with it; this query
            # costs ~20 ms of the write; docs/scale.md, sixth pass).
            cur.execute("SELECT * FROM entities LIMIT ?", [_FIRST_ROWS]).to_arrow_table()
    finally:
        cur.close()


def _quoted(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def private_reader(path: Path, *, retries: int = 8, base_delay: float = 0.05
                   ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only instance of ``path`` of its own, closed afterwards (settings of its own,
    e.g. ``SET threads``, which are global to an instance)."""
    _require(Path(path))
    con = _retrying(Path(path), lambda: _attach_read_only(Path(path)), retries, base_delay)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def connect(
    path: Path, *, read_only: bool = True, spatial: bool | None = None, retries: int = 8,
    base_delay: float = 0.05,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open ``path`` for one operation, retrying with backoff while another process holds it.

    Read-only without spatial (the default) is :func:`reader`. Read-write opens the file
    itself: for files that are not live yet (a build, the copy inside :func:`rewrite`).
    The spatial extension is loaded from the ``duckdb-extension-spatial`` wheel (never
    downloaded) when ``spatial`` is true; by default only for read-write connections,
    because reads return geometry as WKB without it and loading costs ~0.3 s.

    Raises
    ------
    DatabaseBusyError
        When the lock is still held after ``retries`` attempts (about 6 s in all).
    """
    want_spatial = (not read_only) if spatial is None else spatial
    if read_only and not want_spatial:
        with reader(path, retries=retries, base_delay=base_delay) as cur:
            yield cur
        return
    if read_only:
        _require(Path(path))
    else:
        # this process's reader of the same file would refuse a read-write open (DuckDB
        # allows one configuration per file and process): a new file read while built
        _forget_reader(Path(path))
    con = _retrying(Path(path), lambda: _open(Path(path), read_only, want_spatial), retries,
                    base_delay)
    try:
        yield con
    finally:
        con.close()


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> int:
    row = con.execute(sql, list(params)).fetchone()
    return int(row[0]) if row else 0
