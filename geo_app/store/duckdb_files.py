"""The DuckDB file protocol: the writer lock, the files kept beside a database, and the
copy-write-swap by which every change reaches the live file.

- **Writers never touch the live file.** A write (:func:`rewrite`) holds the writer lock,
  copies the file, changes the copy in one transaction, checkpoints it, and swaps it in
  with :func:`os.replace`. Readers see the old file or the new one, never half a write;
  a crash leaves the live file as it was; and readers never block a writer or the reverse.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from geo_app.store.duckdb_connect import (
    HEAD_START_FAILURES,
    _require,
    connect,
    private_reader,
    warm_reader,
)

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
    swapped = False
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
                swapped = True
        finally:
            for leftover in (copy, Path(f"{copy}.wal")):
                leftover.unlink(missing_ok=True)
    if swapped:
        _warm(path)


def _warm(path: Path) -> None:
    """Open and warm this process's reader of the file just swapped in
    (:func:`~geo_app.store.duckdb_connect.warm_reader`), after the writer lock is released.

    Only a head start: the write is done whatever happens here, so a failure (another
    process holding the file, a newer swap) is left to the next query, which opens the
    reader itself and says what is wrong.
    """
    try:
        warm_reader(path, retries=0)
    except HEAD_START_FAILURES:
        pass


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
