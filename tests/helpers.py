"""Small helpers shared by tests (and the benchmarks): synthetic import files, process stop,
SQL of the tests' own on a database file (the package's SQL lives in :mod:`geo_app.store`)."""

from __future__ import annotations

import csv
import random
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from streamlit.testing.v1 import AppTest

IMPORT_HEADER = ["id", "name_zh", "kind", "level", "status", "location_precision", "source",
                 "lon", "lat", "source_datum"]


def write_import_csv(path: Path, *, prefix: str, rows: int, seed: int, datum: str,
                     name: str, source: str) -> Path:
    """A valid import CSV of ``rows`` incubators at random points around Suzhou."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(IMPORT_HEADER)
        for i in range(rows):
            w.writerow([f"{prefix}-{i:05d}", name, "incubator", "municipal", "operating",
                        "site", source, f"{rng.uniform(120.40, 121.00):.6f}",
                        f"{rng.uniform(31.05, 31.60):.6f}", datum])
    return path


def run_apptest(at: AppTest, params: Mapping[str, str] | None = None, *,
                errors_allowed: bool = False, new_visitor: bool = False) -> AppTest:
    """Run a page under ``AppTest`` with ``params`` in the URL; fail on any exception, and on
    any ``st.error`` unless ``errors_allowed`` (pages that show errors as their result).

    The session is one whose browser already has the sidebar's widgets, unless
    ``new_visitor``: a new visitor's first run of the map page leaves them to the next run
    (``geo_app.views.map.render``), which a browser asks for and ``AppTest`` does not.
    """
    from geo_app.views.common import WIDGETS_SHOWN_KEY

    if not new_visitor:
        at.session_state[WIDGETS_SHOWN_KEY] = True
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if not errors_allowed:
        assert not at.error, [e.value for e in at.error]
    return at


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate ``proc``, killing it if it does not exit within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def query_sql(path: Path, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Run a test's read query on the database file ``path`` (through the store's reader)."""
    from geo_app import store

    with store.reader(path) as cur:
        return cur.execute(sql, list(params)).df()


def execute_sql(path: Path, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Run a test's write statements on the database file ``path`` as one change, through
    the store's writer protocol (copy, write, swap: readers see all of it or none)."""
    from geo_app import store

    with store.rewrite(path) as con:
        for sql, params in statements:
            con.execute(sql, list(params))


def wait_for_log(log: Path, text: str, proc: subprocess.Popen[bytes],
                 timeout: float = 120) -> None:
    """Wait until ``text`` appears in the stderr file ``log`` of the importer ``proc``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(encoding="utf-8", errors="replace"):
            return
        assert proc.poll() is None, f"import ended before '{text}': {log.read_text()}"
        time.sleep(0.01)
    raise AssertionError(f"'{text}' never appeared in {log}")
