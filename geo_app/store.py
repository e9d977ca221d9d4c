"""The only module that imports duckdb: open, schema, writes and queries -> (Geo)DataFrames.

How the file is shared (docs/scale.md, "Reading and writing the file at scale"):

- **Readers keep the file open.** Each process keeps one read-only DuckDB instance per
  database file (:func:`reader`) and gives every operation its own cursor on it, so a
  query runs on warm caches instead of paying ~12 ms to open the file and ~40 ms of cold
  reads. Before each operation the file's identity (inode, size, mtime, and its WAL if
  any) is checked; when the file was replaced the instance is re-opened.
- **Writers never touch the live file.** A write (:func:`rewrite`) holds the writer lock,
  copies the file, changes the copy in one transaction, checkpoints it, and swaps it in
  with :func:`os.replace`. Readers see the old file or the new one, never half a write;
  a crash leaves the live file as it was; and readers never block a writer or the reverse.
- **Entities are stored grouped by 板块** within the shipped registry and within each
  import, so a 板块 filter reads a few contiguous blocks (DuckDB skips the rest by their
  min/max statistics) instead of decompressing every column of every row group.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import re
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_app.auth import Actor, require_editor
from geo_app.errors import DatabaseBusyError, DataError
from geo_app.filters import EntityFilter

SCHEMA_VERSION = "4"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS boards (
    id VARCHAR PRIMARY KEY, name_zh VARCHAR NOT NULL UNIQUE, name_en VARCHAR NOT NULL,
    land_area_km2 DOUBLE, area_year VARCHAR, area_source VARCHAR,
    county_adcode VARCHAR, polygon_status VARCHAR, notes VARCHAR);
CREATE TABLE IF NOT EXISTS boundaries (
    adcode VARCHAR PRIMARY KEY, name_zh VARCHAR, name_en VARCHAR, level VARCHAR,
    source VARCHAR, source_datum VARCHAR, conversion VARCHAR, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS water (
    id VARCHAR PRIMARY KEY, name_zh VARCHAR, name_en VARCHAR, kind VARCHAR,
    source VARCHAR, source_datum VARCHAR, conversion VARCHAR, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS import_batches (
    batch_id VARCHAR PRIMARY KEY, file_name VARCHAR, imported_at TIMESTAMP,
    target VARCHAR, row_count INTEGER, source_datum VARCHAR,
    actor_subject VARCHAR, actor_email VARCHAR, actor_name VARCHAR, actor_kind VARCHAR);
CREATE TABLE IF NOT EXISTS audit (
    changed_at TIMESTAMP NOT NULL, action VARCHAR NOT NULL, batch_id VARCHAR, target VARCHAR,
    file_name VARCHAR, row_count INTEGER, actor_subject VARCHAR NOT NULL,
    actor_email VARCHAR, actor_name VARCHAR, actor_kind VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
    id VARCHAR PRIMARY KEY, name_zh VARCHAR NOT NULL, name_en VARCHAR,
    kind VARCHAR NOT NULL, level VARCHAR NOT NULL, status VARCHAR NOT NULL, board VARCHAR,
    lon DOUBLE, lat DOUBLE, location_precision VARCHAR NOT NULL, location_source VARCHAR,
    source_datum VARCHAR, source_lon DOUBLE, source_lat DOUBLE, conversion VARCHAR,
    source VARCHAR NOT NULL, notes VARCHAR,
    origin VARCHAR NOT NULL DEFAULT 'shipped', batch_id VARCHAR,
    layers VARCHAR NOT NULL DEFAULT '', geom GEOMETRY);
CREATE TABLE IF NOT EXISTS indicators (
    id VARCHAR PRIMARY KEY, metric VARCHAR, indicator_zh VARCHAR, indicator_en VARCHAR,
    year INTEGER, kind VARCHAR, comparator VARCHAR, value DOUBLE, value_max DOUBLE,
    unit VARCHAR, section VARCHAR, notes VARCHAR);
CREATE TABLE IF NOT EXISTS board_indicators (
    board VARCHAR NOT NULL, indicator VARCHAR NOT NULL, year VARCHAR NOT NULL, value DOUBLE,
    unit VARCHAR, source VARCHAR NOT NULL, notes VARCHAR, comparator VARCHAR NOT NULL DEFAULT '=',
    origin VARCHAR NOT NULL DEFAULT 'shipped', batch_id VARCHAR);
CREATE TABLE IF NOT EXISTS layers (
    id VARCHAR PRIMARY KEY, name_zh VARCHAR, name_en VARCHAR, color VARCHAR,
    schematic BOOLEAN NOT NULL DEFAULT TRUE, area_km2 DOUBLE, method VARCHAR,
    facts VARCHAR, spec_file VARCHAR, spec_json VARCHAR, geom GEOMETRY);
CREATE TABLE IF NOT EXISTS layer_members (entity_id VARCHAR, layer_id VARCHAR);
"""

#: Tables that hold user data which must survive every rebuild of the shipped data
#: (``audit`` is append-only: no function of this package updates or deletes a row of it).
USER_TABLES = ("import_batches", "audit")

ENTITY_COLUMNS = (
    "id", "name_zh", "name_en", "kind", "level", "status", "board", "lon", "lat",
    "location_precision", "location_source", "source_datum", "source_lon", "source_lat",
    "conversion", "source", "notes", "origin", "batch_id",
)


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
    """Call ``opener`` until the file's lock is free; :class:`DatabaseBusyError` after ``retries``."""
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


def _reader_instance(path: Path, retries: int, base_delay: float) -> duckdb.DuckDBPyConnection:
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
                return cached[1]
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
        return con


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
    base = _reader_instance(Path(path), retries, base_delay)
    with _READERS_LOCK:
        cur = base.cursor()
    try:
        cur.execute(f"USE {_READ_ALIAS}")
        yield cur
    finally:
        cur.close()


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


# ----------------------------------------------------------------------------- the writer protocol

_LOCAL_LOCKS: dict[str, threading.RLock] = {}
_LOCAL_DEPTH: dict[str, int] = {}
_LOCAL_GUARD = threading.Lock()


@contextmanager
def writer_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive writer lock of ``path`` (a file beside it): builds, imports and
    removals never interleave, across processes and threads.

    Re-entrant within a thread, so a function that holds it may call one that takes it.
    """
    path = Path(os.path.realpath(path))
    key = str(path)
    with _LOCAL_GUARD:
        local = _LOCAL_LOCKS.setdefault(key, threading.RLock())
    with local:
        depth = _LOCAL_DEPTH.get(key, 0)
        _LOCAL_DEPTH[key] = depth + 1
        try:
            if depth:
                yield
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_name(path.name + ".lock"), "w") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        finally:
            _LOCAL_DEPTH[key] = depth


#: Files the store keeps beside a database ``<db>``, as regular expressions of their names
#: (``{db}`` is the escaped database name): its WAL; the writer lock; the copy a
#: :func:`rewrite` writes (``<db>.write-<pid>-<thread>``) and the new file of a build
#: (``<db>.tmp<pid>``), each with its WAL; DuckDB's spill folder (``<db>.tmp``); and an
#: unreadable file a build kept aside for recovery (``<db>.unreadable-<time>``).
SIDECARS = (r"{db}\.wal", r"{db}\.lock", r"{db}\.write-\d+-\d+(?:\.wal)?",
            r"{db}\.tmp\d*(?:\.wal)?", r"{db}\.unreadable-.+")

#: The sidecars a killed writer leaves behind, with the process id that wrote them.
_LEFTOVER = r"{db}\.(?:write-(?P<write_pid>\d+)-\d+|tmp(?P<tmp_pid>\d+))(?:\.wal)?"


def process_alive(pid: int) -> bool:
    """True when a process ``pid`` exists (even one of another user); False when it is gone.

    >>> process_alive(os.getpid())
    True
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but not ours to signal
        return True
    return True


def database_files(path: Path) -> list[Path]:
    """The database ``path`` (symlinks resolved) and every sidecar of it that exists now."""
    live = Path(os.path.realpath(path))
    pattern = re.compile("|".join(s.format(db=re.escape(live.name)) for s in SIDECARS))
    found = [live]
    try:
        names = os.listdir(live.parent)
    except (FileNotFoundError, NotADirectoryError):
        return found
    return found + sorted(live.parent / n for n in names if pattern.fullmatch(n))


def is_database_file(candidate: Path, db: Path) -> bool:
    """Whether writing ``candidate`` would write the database ``db`` or one of its sidecars.

    Compares real paths (symlinks and ``..`` resolved) against the database's name and the
    :data:`SIDECARS` patterns, and, when ``candidate`` exists, its device and inode
    against each existing database file (hard links).
    """
    real = Path(os.path.realpath(candidate))
    live = Path(os.path.realpath(db))
    if real.parent == live.parent:
        names = (s.format(db=re.escape(live.name)) for s in ("{db}", *SIDECARS))
        if any(re.fullmatch(n, real.name) for n in names):
            return True
    try:
        st = os.stat(real)
    except OSError:
        return False
    for path in database_files(live):
        try:
            other = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino):
            return True
    return False


def clear_leftovers(path: Path) -> list[Path]:
    """Delete the copies killed writers left beside ``path``; call only under :func:`writer_lock`.

    Only ``<db>.write-<pid>-<n>`` and ``<db>.tmp<pid>`` files (and their WALs) whose
    process is gone: a live process's copy is never touched.

    Returns
    -------
    list of Path
        The files deleted.
    """
    path = Path(os.path.realpath(path))
    pattern = re.compile(_LEFTOVER.format(db=re.escape(path.name)))
    gone = []
    for leftover in database_files(path)[1:]:
        match = pattern.fullmatch(leftover.name)
        if match is None or not leftover.is_file():
            continue
        if process_alive(int(match["write_pid"] or match["tmp_pid"])):
            continue
        leftover.unlink(missing_ok=True)
        gone.append(leftover)
    return gone


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def rewrite(path: Path, *, retries: int = 8, base_delay: float = 0.05
            ) -> Iterator[duckdb.DuckDBPyConnection]:
    """Change the live database by copy, write, swap: yields a read-write connection to a copy.

    Under :func:`writer_lock`: the file is copied while a read-only DuckDB lock on it keeps
    any outside writer out; the body changes the copy (in a transaction of its own); on
    success the copy is checkpointed, flushed
    and moved over the live file with :func:`os.replace`. When the body raises, the copy is
    deleted and the live file was never touched.

    Raises
    ------
    DatabaseBusyError
        When a process outside the protocol holds the file read-write past ``retries``.
    """
    path = Path(os.path.realpath(path))  # a symlinked GEO_APP_DB: write the file it names
    _require(path)
    with writer_lock(path):
        clear_leftovers(path)
        copy = path.with_name(f"{path.name}.write-{os.getpid()}-{threading.get_ident()}")
        try:
            # the read-only lock keeps outside writers out from the copy to the swap
            with private_reader(path, retries=retries, base_delay=base_delay):
                shutil.copyfile(path, copy)
                wal = Path(f"{path}.wal")
                if wal.exists():  # left by a process outside the protocol: fold it in
                    shutil.copyfile(wal, f"{copy}.wal")
                with connect(copy, read_only=False) as con:
                    yield con
                    con.execute("CHECKPOINT")
                _fsync(copy)
                swap_in(copy, path)
        finally:
            for leftover in (copy, Path(f"{copy}.wal")):
                leftover.unlink(missing_ok=True)


def swap_in(new: Path, live: Path) -> None:
    """Move the checkpointed file ``new`` over ``live`` (under :func:`writer_lock`).

    A WAL beside ``live`` belongs to the old file (its changes are in ``new``, which was
    made from both): it is removed first, or readers would replay it onto the new file
    and see its rows twice. Between the two steps a reader sees the old file without its
    WAL — older, never doubled.
    """
    Path(f"{live}.wal").unlink(missing_ok=True)
    os.replace(new, live)
    _fsync(Path(live).parent)


def _by_board(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by 板块, in their own order within each (a stable sort); rows without
    a 板块 (mostly without a point either) last, so a table's first rows have coordinates
    (GDAL guesses column types and spreadsheet headers from the first rows)."""
    if "board" not in frame.columns or len(frame) < 2:
        return frame
    board = frame["board"].fillna("").astype(str)
    key = np.where(board == "", "\uffff", board.to_numpy())
    return frame.iloc[np.argsort(key, kind="stable")]


# ----------------------------------------------------------------------------- writing


def _geoms_to_wkb(geoms: Sequence[Any] | gpd.GeoSeries) -> list[bytes | None]:
    arr = np.asarray(geoms, dtype=object)
    out: list[bytes | None] = []
    for g in arr:
        out.append(None if g is None or shapely.is_empty(g) else shapely.to_wkb(g))
    return out


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> int:
    """Insert a (Geo)DataFrame into ``table`` by column name; geometry goes to ``geom``.

    ``table`` must be one of the schema's tables (it is not user input).
    """
    if table not in _TABLES:
        msg = f"Unknown table {table!r}"
        raise ValueError(msg)
    df = pd.DataFrame(frame).copy()
    geom_sql = ""
    if isinstance(frame, gpd.GeoDataFrame):
        df = df.drop(columns=[frame.geometry.name])
        df["__wkb"] = _geoms_to_wkb(frame.geometry.values)
        geom_sql = ", geom"
    cols = [c for c in df.columns if c != "__wkb"]
    col_sql = ", ".join(f'"{c}"' for c in cols)
    select = ", ".join(f'"{c}"' for c in cols)
    if geom_sql:
        select += ", CASE WHEN __wkb IS NULL THEN NULL ELSE ST_GeomFromWKB(__wkb) END"
    con.register("__frame", df)
    try:
        con.execute(f"INSERT INTO {table} ({col_sql}{geom_sql}) SELECT {select} FROM __frame")  # noqa: S608 (names from the schema)
    finally:
        con.unregister("__frame")
    return len(df)


_TABLES = frozenset({
    "meta", "boards", "boundaries", "water", "import_batches", "entities", "indicators",
    "board_indicators", "layers", "layer_members", "audit",
})


def write_database(path: Path, tables: Mapping[str, pd.DataFrame], meta: Mapping[str, str]) -> None:
    """Create a new database file at ``path`` holding ``tables`` (one transaction)."""
    path = Path(path)
    if path.exists():
        path.unlink()
    with connect(path, read_only=False) as con:
        con.execute("BEGIN")
        con.execute(SCHEMA)
        for name, frame in tables.items():
            insert_frame(con, name, _by_board(frame) if name == "entities" else frame)
        con.executemany("INSERT INTO meta VALUES (?, ?)",
                        [[k, v] for k, v in {**meta, "schema_version": SCHEMA_VERSION}.items()])
        con.execute("COMMIT")
        con.execute("CHECKPOINT")


def copy_user_data(old: Path, new: Path) -> int:
    """Copy every user-imported row from ``old`` into ``new``; returns the rows copied.

    Runs in one transaction on ``new``; ``old`` is attached read-only.
    """
    if not Path(old).exists():
        return 0
    with connect(new, read_only=False) as con:
        oldq = str(old).replace("'", "''")
        try:
            con.execute(f"ATTACH '{oldq}' AS old (READ_ONLY)")
        except duckdb.Error as err:
            msg = f"Cannot read the previous database {old} to carry user imports over: {err}"
            raise DataError(msg) from err
        try:
            tables = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'old'"
            ).fetchall()}
            con.execute("BEGIN")
            copied = 0
            for table in USER_TABLES:
                if table in tables:
                    copied += _copy(con, table, "TRUE")
            for table in ("entities", "board_indicators"):
                if table in tables:
                    copied += _copy(con, table, "origin = 'user'")
            con.execute("COMMIT")
        finally:
            con.execute("DETACH old")
        con.execute("CHECKPOINT")
    return copied


def _copy(con: duckdb.DuckDBPyConnection, table: str, where: str) -> int:
    new_cols = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_name = ? ORDER BY ordinal_position",
        [table]).fetchall()]
    old_cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_catalog = 'old' AND table_name = ?", [table]).fetchall()}
    shared = [c for c in new_cols if c in old_cols]
    cols = ", ".join(f'"{c}"' for c in shared)
    n = _scalar(con, f"SELECT count(*) FROM old.{table} WHERE {where}")  # noqa: S608 (package SQL)
    if table != "entities":
        con.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM old.{table} WHERE {where}")  # noqa: S608
        return n
    # A user row whose id a newer shipped registry now uses is never dropped: the shipped
    # row keeps the id, the user row is kept as '<id>@<batch>' with a note saying why.
    clash = "id IN (SELECT id FROM main.entities WHERE origin = 'shipped')"
    renamed = [
        "o.id || '@' || coalesce(o.batch_id, 'user')" if c == "id" else
        "concat_ws('; ', nullif(o.notes, ''), 'id ' || o.id || ' was taken by the shipped registry "
        "in a later release; kept under this id')" if c == "notes" else f'o."{c}"'
        for c in shared
    ]
    con.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM old.{table} "  # noqa: S608
                f"WHERE {where} AND NOT {clash}")
    con.execute(f"INSERT INTO main.{table} ({cols}) SELECT {', '.join(renamed)} "  # noqa: S608
                f"FROM old.{table} o WHERE {where} AND {clash}")
    return n


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> int:
    row = con.execute(sql, list(params)).fetchone()
    return int(row[0]) if row else 0


# ----------------------------------------------------------------------------- reading


def read_meta(path: Path) -> dict[str, str]:
    """Return the key/value metadata of the database (data hash, build time…).

    Raises
    ------
    DataError
        If the file is not a database of this app (or is damaged).
    """
    try:
        with connect(path) as con:
            return dict(con.execute("SELECT key, value FROM meta").fetchall())
    except DatabaseBusyError:
        raise
    except duckdb.Error as err:
        msg = f"{path} is not a readable geo-app database ({err}); it will be rebuilt."
        raise DataError(msg) from err


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    return con.execute(sql, list(params)).df()


def _arrow_frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
                 ) -> pd.DataFrame:
    """As :func:`_frame` through Arrow: ~40 % faster for many text cells (all ``str`` dtype)."""
    return con.execute(sql, list(params)).to_arrow_table().to_pandas()


def _plain_columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The quoted non-geometry columns of ``table``, in table order, for a SELECT list."""
    cols = [r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
        "AND data_type <> 'GEOMETRY' ORDER BY ordinal_position", [table]).fetchall()]
    return ", ".join(f'"{c}"' for c in cols)


def read_table(path: Path, table: str, *, order_by: str = "1") -> pd.DataFrame:
    """Read a non-spatial table (``boards``, ``indicators``, ``board_indicators``...)."""
    if table not in _TABLES:
        msg = f"Unknown table {table!r}"
        raise ValueError(msg)
    with connect(path) as con:
        sel = _plain_columns(con, table)
        return _frame(con, f"SELECT {sel} FROM {table} ORDER BY {order_by}")  # noqa: S608


def read_geo_table(path: Path, table: str) -> gpd.GeoDataFrame:
    """Read ``boundaries``, ``water`` or ``layers`` as a WGS-84 GeoDataFrame."""
    if table not in {"boundaries", "water", "layers"}:
        msg = f"Not a spatial table: {table!r}"
        raise ValueError(msg)
    with connect(path) as con:
        sel = _plain_columns(con, table)
        df = _frame(con, f"SELECT {sel}, geom AS __wkb FROM {table} ORDER BY 1")  # noqa: S608 (geometry comes back as WKB)
    geoms = shapely.from_wkb([bytes(b) if b is not None else None for b in df.pop("__wkb")])
    return gpd.GeoDataFrame(df, geometry=geoms, crs="EPSG:4326")


def _entity_where(flt: EntityFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, values in (("kind", flt.kinds), ("level", flt.levels),
                           ("status", flt.statuses), ("board", flt.boards)):
        if values:
            clauses.append(f"e.{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    if flt.layers:
        clauses.append("e.id IN (SELECT entity_id FROM layer_members "
                       "WHERE list_contains(?::VARCHAR[], layer_id))")
        params.append(list(flt.layers))
    if flt.search:
        clauses.append("(contains(lower(e.name_zh), lower(?)) OR "
                       "contains(lower(coalesce(e.name_en, '')), lower(?)) OR e.id = ?)")
        params.extend([flt.search, flt.search, flt.search])
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def query_entities(path: Path, flt: EntityFilter | None = None) -> gpd.GeoDataFrame:
    """Entities matching ``flt`` with their layer ids, as a WGS-84 point GeoDataFrame.

    Entities without coordinates are included with an empty (None) geometry.
    """
    flt = flt or EntityFilter()
    where, params = _entity_where(flt)
    cols = ", ".join(f"e.{c}" for c in ENTITY_COLUMNS)
    sql = f"SELECT {cols}, e.layers FROM entities e{where}"  # noqa: S608 (where holds only placeholders)
    with connect(path) as con:
        table = con.execute(sql, params).to_arrow_table()
    # ordered by id in Arrow (byte order of UTF-8, as DuckDB's ORDER BY): ~4 ms less for
    # 10k rows than sorting in the query, which carries every column through the sort
    return entities_to_gdf(table.sort_by("id").to_pandas())


def count_entities(path: Path, flt: EntityFilter | None = None) -> int:
    """Number of entities matching ``flt``."""
    where, params = _entity_where(flt or EntityFilter())
    with connect(path) as con:
        return _scalar(con, f"SELECT count(*) FROM entities e{where}", params)  # noqa: S608


def entities_to_gdf(df: pd.DataFrame) -> gpd.GeoDataFrame:
    """Turn entity rows with ``lon``/``lat`` into a GeoDataFrame (None where unknown)."""
    lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(lon) & np.isfinite(lat)
    geoms = np.full(len(df), None, dtype=object)
    geoms[ok] = shapely.points(lon[ok], lat[ok])
    return gpd.GeoDataFrame(df, geometry=gpd.array.from_shapely(geoms, crs="EPSG:4326"),
                            copy=False)


_COUNT_COLUMNS = frozenset({"kind", "level", "status", "board", "location_precision", "origin"})


def entity_counts(path: Path, column: str) -> list[tuple[str, int]]:
    """``(value, count)`` of entities grouped by ``column`` (one of a fixed allow-list)."""
    if column not in _COUNT_COLUMNS:
        msg = f"Cannot count entities by {column!r}"
        raise ValueError(msg)
    sql = (f"SELECT coalesce(nullif({column}, ''), '(none)') AS v, count(*) AS n "  # noqa: S608 (allow-listed name)
           "FROM entities GROUP BY 1 ORDER BY 2 DESC, 1")
    with connect(path) as con:
        return [(str(v), int(n)) for v, n in con.execute(sql).fetchall()]


def located_counts(path: Path) -> tuple[int, int]:
    """``(entities with a point, all entities)`` in the database."""
    sql = "SELECT count(*) FILTER (WHERE lon IS NOT NULL), count(*) FROM entities"
    with connect(path) as con:
        row = con.execute(sql).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def shared_points(path: Path, *, limit: int = 5) -> pd.DataFrame:
    """The largest groups of entities that share one coordinate, largest first.

    Parameters
    ----------
    path
        The database file.
    limit
        How many groups to return (groups of one entity are never returned).

    Returns
    -------
    pandas.DataFrame
        ``lon, lat, n, precisions, ids`` per shared point: ``n`` entities, their distinct
        location precisions and their ids (both comma-separated, sorted).
    """
    sql = ("SELECT lon, lat, count(*) AS n, "
           "string_agg(DISTINCT location_precision, ',' ORDER BY location_precision) AS precisions, "
           "string_agg(id, ',' ORDER BY id) AS ids FROM entities WHERE lon IS NOT NULL "
           "GROUP BY lon, lat HAVING count(*) > 1 ORDER BY n DESC, lon, lat LIMIT ?")
    with connect(path) as con:
        return _frame(con, sql, [int(limit)])


def layer_ids(path: Path) -> list[str]:
    """Ids of the strategy layers in the database, in id order."""
    with connect(path) as con:
        return [r[0] for r in con.execute("SELECT id FROM layers ORDER BY id").fetchall()]


def query_sql(path: Path, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Run a fixed, package-internal read query with bound parameters."""
    with connect(path) as con:
        return _frame(con, sql, params)


def execute_write(path: Path, statements: Sequence[tuple[str, Sequence[Any]]],
                  frames: Mapping[str, pd.DataFrame] | None = None,
                  after: Sequence[tuple[str, Sequence[Any]]] = (), *,
                  in_place: bool = False) -> None:
    """Run package-internal write statements, frame inserts, then ``after``, as one transaction.

    Through :func:`rewrite` (copy, write, swap); ``in_place`` writes the file itself, only
    for a file that is not live yet (the build's new file).
    """
    opened = connect(path, read_only=False) if in_place else rewrite(path)
    with opened as con:
        con.execute("BEGIN")
        try:
            for sql, params in statements:
                con.execute(sql, list(params))
            for table, frame in (frames or {}).items():
                insert_frame(con, table, frame)
            for sql, params in after:
                con.execute(sql, list(params))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


# ----------------------------------------------------------------------------- user indicators
# (per-板块 figures imported by a user; see docs/indicators.md)


def import_board_indicators(path: Path, frame: pd.DataFrame, *, file_name: str,
                            actor: Actor) -> str:
    """Load validated user figures into ``board_indicators`` as one batch; returns its id.

    One transaction: the ``import_batches`` row (target ``board_indicators``, with who made
    it), its ``audit`` row and every figure (``origin='user'``) are written together or
    not at all.

    Raises
    ------
    NotAuthorisedError
        When ``actor`` is not an editor (nothing is written).
    """
    import uuid

    require_editor(actor, "import indicators")
    batch_id = f"ind-{uuid.uuid4().hex[:12]}"
    rows = pd.DataFrame(frame).copy()
    rows["origin"] = "user"
    rows["batch_id"] = batch_id
    batch = {"batch_id": batch_id, "file_name": file_name, "imported_at": utc_now(),
             "target": "board_indicators", "row_count": len(rows), "source_datum": None}
    execute_write(path, [_batch_insert(batch, actor), _audit_insert("import", batch, actor)],
                  {"board_indicators": rows})
    return batch_id


# ----------------------------------------------------------------------------- attribution
# (every change says who made it and when; see docs/deploy.md)

#: The columns of ``import_batches`` and ``audit`` that say who acted.
ACTOR_COLUMNS = ("actor_subject", "actor_email", "actor_name", "actor_kind")


def utc_now() -> Any:
    """The current time in UTC without a time zone, as every TIMESTAMP column holds it."""
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(tzinfo=None)


def _actor_values(actor: Actor) -> list[str]:
    return [actor.subject, actor.email, actor.name, actor.kind]


def _batch_insert(batch: Mapping[str, Any], actor: Actor) -> tuple[str, list[Any]]:
    """The INSERT of one ``import_batches`` row attributed to ``actor``."""
    return ("INSERT INTO import_batches (batch_id, file_name, imported_at, target, row_count, "
            "source_datum, actor_subject, actor_email, actor_name, actor_kind) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [batch["batch_id"], batch["file_name"], batch["imported_at"], batch["target"],
             int(batch["row_count"]), batch["source_datum"], *_actor_values(actor)])


def _audit_insert(action: str, batch: Mapping[str, Any], actor: Actor,
                  at: Any = None) -> tuple[str, list[Any]]:
    """The INSERT of one ``audit`` row: ``action`` on ``batch`` by ``actor``."""
    return ("INSERT INTO audit (changed_at, action, batch_id, target, file_name, row_count, "
            "actor_subject, actor_email, actor_name, actor_kind) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [at if at is not None else batch.get("imported_at") or utc_now(), action,
             batch["batch_id"], batch.get("target"), batch.get("file_name"),
             None if batch.get("row_count") is None else int(batch["row_count"]),
             *_actor_values(actor)])


def list_audit(path: Path) -> pd.DataFrame:
    """The audit trail, newest first: ``changed_at, action, batch_id, target, file_name, row_count,
    made_by`` and the actor columns (:data:`ACTOR_COLUMNS`)."""
    return query_sql(path, (
        "SELECT changed_at, action, batch_id, target, file_name, row_count, "
        "CASE WHEN actor_kind = 'local' THEN 'local:' || actor_subject "
        "ELSE coalesce(nullif(actor_email, ''), actor_subject) END AS made_by, "
        "actor_subject, actor_email, actor_name, actor_kind "
        "FROM audit ORDER BY changed_at DESC, action DESC, batch_id"))


# ----------------------------------------------------------------------------- API paging
# (OGC API – Features serves entities a page at a time; see docs/api.md)


def query_entities_page(
    path: Path,
    flt: EntityFilter | None = None,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int | None = None,
    offset: int = 0,
    entity_id: str | None = None,
) -> tuple[gpd.GeoDataFrame, int]:
    """One page of the entities (columns of :func:`query_entities`) and the number matched.

    Rows come in storage order, as :func:`iter_entity_batches` streams them to the export
    (the registry, then imports; grouped by 板块 within each), so pages join up to exactly
    the export.

    Parameters
    ----------
    flt
        The entity filter (as for the map, the export and the CLI).
    bbox
        ``(min_lon, min_lat, max_lon, max_lat)`` in WGS-84, edges included; entities
        without a point never match. ``min_lon > max_lon`` spans the antimeridian.
    limit, offset
        The page: at most ``limit`` rows (all when None) after skipping ``offset``.
    entity_id
        Keep only the entity with this id.

    Returns
    -------
    tuple of GeoDataFrame and int
        The page and the number of entities matching before paging.
    """
    where, params = _entity_where(flt or EntityFilter())
    clauses = [where.removeprefix(" WHERE ")] if where else []
    if bbox is not None:
        min_lon, min_lat, max_lon, max_lat = bbox
        joint = "AND" if min_lon <= max_lon else "OR"
        clauses.append(f"(e.lon >= ? {joint} e.lon <= ?) AND e.lat >= ? AND e.lat <= ?")
        params += [float(min_lon), float(max_lon), float(min_lat), float(max_lat)]
    if entity_id is not None:
        clauses.append("e.id = ?")
        params.append(entity_id)
    where_sql = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    cols = ", ".join(f"e.{c}" for c in ENTITY_COLUMNS)
    page_sql = f"SELECT {cols}, e.layers FROM entities e{where_sql} ORDER BY e.rowid"  # noqa: S608 (placeholders only)
    with connect(path) as con:
        row = con.execute(f"SELECT count(*) FROM entities e{where_sql}", params).fetchone()  # noqa: S608
        matched = int(row[0]) if row else 0
        page_params = list(params)
        if limit is not None:
            page_sql += " LIMIT ? OFFSET ?"
            page_params += [max(int(limit), 0), min(max(int(offset), 0), matched)]
        elif offset:
            page_sql += " OFFSET ?"
            page_params.append(min(max(int(offset), 0), matched))
        df = _arrow_frame(con, page_sql, page_params)
    return entities_to_gdf(df), matched


# ----------------------------------------------------------------------------- user entity imports
# (import batches of user entities; validation lives in geo_app/ingest.py, docs/import.md)

def entity_ids(path: Path) -> frozenset[str]:
    """Every entity id in the database (shipped and user)."""
    with connect(path) as con:
        return frozenset(r[0] for r in con.execute("SELECT id FROM entities").fetchall())


def import_entities(path: Path, frame: gpd.GeoDataFrame, batch: Mapping[str, Any],
                    members: pd.DataFrame, *, actor: Actor, retries: int = 8) -> int:
    """Write one batch of user entities as ONE transaction; returns the rows written.

    Parameters
    ----------
    frame
        Validated rows (``ENTITY_COLUMNS``, optionally ``layers``, WGS-84 point geometry)
        with ``origin='user'`` and ``batch_id`` set.
    batch
        The ``import_batches`` row: batch_id, file_name, imported_at, target, row_count,
        source_datum.
    members
        ``(entity_id, layer_id)`` pairs of the new rows, written in the same transaction.
    actor
        Who imports: recorded on the batch and in ``audit``; must be an editor.

    Raises
    ------
    NotAuthorisedError
        When ``actor`` is not an editor (the file is not even copied).
    ImportValidationError
        When an id is already taken (the transaction is rolled back; nothing is written).
    DatabaseBusyError
        When another process holds the file past the retry budget.
    """
    from geo_app.errors import ImportValidationError

    require_editor(actor, "import entities")
    with rewrite(path, retries=retries) as con:
        con.execute("BEGIN")
        try:
            con.execute(*_batch_insert(batch, actor))
            con.execute(*_audit_insert("import", batch, actor))
            n = insert_frame(con, "entities", _by_board(frame))
            insert_frame(con, "layer_members", members)
            con.execute("COMMIT")
        except duckdb.ConstraintException as err:
            con.execute("ROLLBACK")
            msg = (f"An id of this file is already in the database ({err}); nothing was imported. "
                   "/ 文件中的编号已存在于数据库中，未导入任何数据。")
            raise ImportValidationError(msg) from err
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return n


def delete_batch(path: Path, batch_id: str, *, actor: Actor) -> int | None:
    """Delete an import batch and its rows (entities, memberships, figures) in one transaction.

    The removal is recorded in ``audit`` (who, when, the batch's file and the rows removed)
    in the same transaction. Returns the number of data rows removed, or None when there
    is no such batch.

    Raises
    ------
    NotAuthorisedError
        When ``actor`` is not an editor (nothing is written).
    """
    require_editor(actor, "remove an import batch")
    with writer_lock(path):
        found = query_sql(path, "SELECT batch_id, file_name, target FROM import_batches "
                          "WHERE batch_id = ?", [batch_id])
        if found.empty:
            return None
        return _delete_batch(path, found.iloc[0].to_dict(), actor)


def _delete_batch(path: Path, batch: Mapping[str, Any], actor: Actor) -> int:
    batch_id = str(batch["batch_id"])
    with rewrite(path) as con:
        con.execute("BEGIN")
        try:
            n = (con.execute("SELECT (SELECT count(*) FROM entities WHERE batch_id = ? AND "
                             "origin = 'user') + (SELECT count(*) FROM board_indicators WHERE "
                             "batch_id = ? AND origin = 'user')",
                             [batch_id, batch_id]).fetchone() or (0,))[0]
            con.execute(*_audit_insert("remove", {**batch, "row_count": int(n)}, actor,
                                       at=utc_now()))
            con.execute("DELETE FROM layer_members WHERE entity_id IN (SELECT id FROM entities "
                        "WHERE batch_id = ? AND origin = 'user')", [batch_id])
            con.execute("DELETE FROM entities WHERE batch_id = ? AND origin = 'user'", [batch_id])
            con.execute("DELETE FROM board_indicators WHERE batch_id = ? AND origin = 'user'",
                        [batch_id])
            con.execute("DELETE FROM import_batches WHERE batch_id = ?", [batch_id])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return int(n)


def list_batches(path: Path) -> pd.DataFrame:
    """Every import batch, newest first, with ``rows_present`` (its rows still in the tables)
    and ``made_by`` (``local:<user>`` for the CLI, else the e-mail or the OIDC subject; empty
    for a batch made before imports were attributed) beside the actor columns."""
    return query_sql(path, (
        "SELECT b.batch_id, b.file_name, b.imported_at, b.target, b.row_count, b.source_datum, "
        "CASE WHEN b.actor_subject IS NULL THEN '' WHEN b.actor_kind = 'local' "
        "THEN 'local:' || b.actor_subject "
        "ELSE coalesce(nullif(b.actor_email, ''), b.actor_subject) END AS made_by, "
        "b.actor_subject, b.actor_email, b.actor_kind, "
        "(SELECT count(*) FROM entities e WHERE e.batch_id = b.batch_id AND e.origin = 'user') + "
        "(SELECT count(*) FROM board_indicators i WHERE i.batch_id = b.batch_id "
        "AND i.origin = 'user') AS rows_present "
        "FROM import_batches b ORDER BY b.imported_at DESC, b.batch_id"))


# ----------------------------------------------------------------------------- streaming export
# (exports of any size read entities in batches; see docs/export.md)


def iter_entity_batches(
    path: Path,
    flt: EntityFilter | None = None,
    *,
    batch_size: int = 10_000,
    select: Sequence[str] | None = None,
) -> Iterator[Any]:
    """Stream the entities matching ``flt`` as Arrow record batches of ``batch_size`` rows.

    A read-only instance of its own and one streaming query (no ``ORDER BY``): rows come
    in the table's storage order (the registry, then imports in the order they were made,
    grouped by 板块 within each) and memory does not grow with the number of rows.

    Parameters
    ----------
    flt
        The entity filter (as for the map, the API and the CLI).
    select
        Package-internal SQL select items over the ``entities`` columns (alias ``e``),
        e.g. ``["e.id", "round(e.lon, 7) AS lon"]``; never user input. Default: the
        columns of :func:`query_entities` (``ENTITY_COLUMNS`` and ``layers``).

    Yields
    ------
    pyarrow.RecordBatch
        The next rows; nothing when no entity matches.
    """
    where, params = _entity_where(flt or EntityFilter())
    items = list(select) if select else [f"e.{c}" for c in (*ENTITY_COLUMNS, "layers")]
    sql = f"SELECT {', '.join(items)} FROM entities e{where}"  # noqa: S608 (package SQL, placeholders only)
    with private_reader(path) as con:
        # One scan thread: a streaming export is bound by JSON/CSV writing, not by the scan,
        # and each extra DuckDB thread holds its own buffers (1M rows: +117 → +88 MiB peak,
        # and faster on 2 cores; see benchmarks/bench_export.py).
        con.execute("SET threads = 1")
        yield from con.execute(sql, params).to_arrow_reader(max(int(batch_size), 1))
