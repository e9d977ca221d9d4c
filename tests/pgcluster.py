"""Throwaway PostgreSQL 15 + PostGIS 3 servers for the PostGIS tests (real servers, no mocks).

:func:`start_cluster` runs ``initdb`` in a temporary folder and starts ``postgres`` on a
free port of 127.0.0.1 (its unix socket in the same folder); :meth:`Cluster.standby` makes
a streaming-replication standby of it with ``pg_basebackup -R``. Every database made by
:meth:`Cluster.create_database` has the ``postgis`` extension.

``initdb`` refuses to run as root (CI runs as root): then the server runs as the
``postgres`` system user (which the Debian package creates), through ``runuser``, in a
folder owned by it. Otherwise it runs as the current user.

A missing PostgreSQL or PostGIS is an error naming the packages to install, never a skip:
``apt-get install postgresql-15 postgresql-15-postgis-3`` (``.ci/run`` does it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: What a machine without PostgreSQL or PostGIS must install (Debian packages).
INSTALL_HINT = ("install the Debian packages: apt-get install -y postgresql-15 "
                "postgresql-15-postgis-3 (.ci/run does this on a fresh machine)")

#: Where Debian installs PostgreSQL's programs (15 first), as glob patterns.
DEFAULT_BIN_DIRS: tuple[str, ...] = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/*/bin")

#: The superuser of every throwaway cluster (trust authentication, localhost only).
SUPERUSER = "geo"


class ClusterError(RuntimeError):
    """PostgreSQL is missing or a throwaway server did not start (the message says why)."""


def find_bin_dir() -> Path:
    """The ``bin`` folder of PostgreSQL 15 (``GEO_APP_PG_BIN`` overrides it).

    Raises
    ------
    ClusterError
        When no ``initdb`` is found, naming the packages to install.
    """
    override = os.environ.get("GEO_APP_PG_BIN")
    candidates = [Path(override)] if override else []
    for pattern in DEFAULT_BIN_DIRS:
        candidates += [Path(p) for p in sorted(glob.glob(pattern), reverse=True)]
    for cand in candidates:
        if (cand / "initdb").is_file() and (cand / "pg_ctl").is_file():
            return cand
    msg = (f"PostgreSQL (initdb, pg_ctl) was not found in {[str(c) for c in candidates]}: "
           f"the PostGIS tests need a real server; {INSTALL_HINT}")
    raise ClusterError(msg)


def check_postgis(bin_dir: Path) -> None:
    """Raise :class:`ClusterError` when the PostGIS extension is not installed for ``bin_dir``."""
    share = subprocess.run([str(bin_dir / "pg_config"), "--sharedir"], capture_output=True,
                           text=True, check=False).stdout.strip()
    control = Path(share or "/usr/share/postgresql/15") / "extension" / "postgis.control"
    if not control.is_file():
        msg = f"PostGIS is not installed for PostgreSQL ({control} is missing): {INSTALL_HINT}"
        raise ClusterError(msg)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> tuple[list[str], int | None, int | None]:
    """The command prefix and uid/gid the server runs as: ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        msg = ("running as root, but there is no 'postgres' system user to run the server: "
               f"{INSTALL_HINT}")
        raise ClusterError(msg) from None
    return ["runuser", "-u", "postgres", "--"], pw.pw_uid, pw.pw_gid


@dataclass
class Cluster:
    """One running PostgreSQL server (a primary or a standby) in a folder of its own."""

    bin_dir: Path
    base: Path
    port: int
    prefix: list[str] = field(default_factory=list)
    standbys: list[Cluster] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        """The cluster's data folder."""
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        """The folder of the server's unix socket."""
        return self.base / "sock"

    def url(self, dbname: str = "postgres") -> str:
        """A ``postgresql://`` URL of database ``dbname`` over TCP on 127.0.0.1."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _cmd(self, name: str, *args: str) -> list[str]:
        return [*self.prefix, str(self.bin_dir / name), *args]

    def run(self, name: str, *args: str, timeout: float = 120) -> str:
        """Run a PostgreSQL program as the server's user; its stdout, or ClusterError."""
        proc = subprocess.run(self._cmd(name, *args), capture_output=True, text=True,
                              timeout=timeout, check=False, cwd="/")
        if proc.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            msg = (f"{name} {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}"
                   f"\n{proc.stdout.strip()}\nserver log:\n{tail}")
            raise ClusterError(msg)
        return proc.stdout

    def start(self) -> None:
        """Start the server on :attr:`port` and wait until it accepts connections."""
        opts = (f"-c port={self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.socket_dir} -c fsync=off "
                "-c full_page_writes=off -c max_connections=200 -c max_wal_senders=10 "
                "-c wal_level=replica -c hot_standby=on")
        self.run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.base / "server.log"),
                 "-o", opts, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server (fast shutdown); quiet when it is not running."""
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self.run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60",
                         "stop")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` through ``psql`` on the unix socket (stops at the first error)."""
        return self.run("psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h",
                        str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER,
                        "-d", dbname, "-c", sql)

    def create_database(self, name: str | None = None) -> str:
        """A new empty database with PostGIS (a copy of the cluster's template); its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}" TEMPLATE geo_template')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (closing what is still connected to it)."""
        name = url.rsplit("/", 1)[1]
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def standby(self) -> Cluster:
        """A streaming-replication standby of this server (``pg_basebackup -R``), started."""
        base = _make_base("geo-app-pg-standby-", self.prefix)
        replica = Cluster(self.bin_dir, base, free_port(), list(self.prefix))
        self.run("pg_basebackup", "-D", str(replica.data_dir), "-h", "127.0.0.1", "-p",
                 str(self.port), "-U", SUPERUSER, "-R", "-X", "stream", "-c", "fast",
                 timeout=300)
        replica.start()
        self.standbys.append(replica)
        return replica

    def wait_replayed(self, replica: Cluster, timeout: float = 30) -> None:
        """Wait until ``replica`` has replayed everything this server has written so far."""
        lsn = self.psql("SELECT pg_current_wal_lsn()").strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = replica.psql(
                f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn").strip()
            if done == "t":
                return
            time.sleep(0.05)
        msg = f"the standby on port {replica.port} did not replay up to {lsn} in {timeout} s"
        raise ClusterError(msg)

    def destroy(self) -> None:
        """Stop this server and its standbys and delete their folders."""
        for replica in self.standbys:
            replica.destroy()
        self.standbys.clear()
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


#: The file in a server's folder naming the process (a test session) it belongs to.
OWNER_FILE = "owner.pid"


def _make_base(prefix_name: str, prefix: Sequence[str]) -> Path:
    """A new temporary folder for a server, owned by the server's user (see :func:`_run_as`)."""
    base = Path(tempfile.mkdtemp(prefix=prefix_name))
    (base / "sock").mkdir()
    (base / OWNER_FILE).write_text(str(os.getpid()), encoding="ascii")
    _, uid, gid = _run_as()
    if prefix and uid is not None and gid is not None:
        for path in (base, base / "sock"):
            os.chown(path, uid, gid)
    return base


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_orphans(bin_dir: Path) -> list[Path]:
    """Stop and delete the servers of test sessions that died without stopping them (killed
    runs); a server whose session is alive is never touched. Returns the folders removed."""
    prefix, _, _ = _run_as()
    removed = []
    for base in sorted(Path(tempfile.gettempdir()).glob("geo-app-pg-*")):
        try:
            owner = int((base / OWNER_FILE).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue  # not one of ours, or not written yet
        if _alive(owner):
            continue
        orphan = Cluster(bin_dir, base, 0, list(prefix))
        if (orphan.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                orphan.run("pg_ctl", "-D", str(orphan.data_dir), "-m", "immediate", "-w",
                           "-t", "30", "stop")
        shutil.rmtree(base, ignore_errors=True)
        removed.append(base)
    return removed


def start_cluster() -> Cluster:
    """initdb and start a throwaway primary with a PostGIS template database.

    Raises
    ------
    ClusterError
        When PostgreSQL or PostGIS is missing, or the server does not start.
    """
    bin_dir = find_bin_dir()
    check_postgis(bin_dir)
    clear_orphans(bin_dir)
    prefix, _, _ = _run_as()
    base = _make_base("geo-app-pg-", prefix)
    cluster = Cluster(bin_dir, base, free_port(), prefix)
    try:
        cluster.run("initdb", "-D", str(cluster.data_dir), "-U", SUPERUSER, "--auth=trust",
                    "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        for _attempt in range(3):  # the port may have been taken since free_port()
            try:
                cluster.start()
                break
            except ClusterError:
                cluster.port = free_port()
        else:
            cluster.start()
        cluster.psql("CREATE DATABASE geo_template")
        cluster.psql("CREATE EXTENSION postgis", dbname="geo_template")
    except BaseException:
        cluster.destroy()
        raise
    return cluster


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    """:func:`start_cluster`, destroyed (stopped, folder deleted) afterwards."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()
