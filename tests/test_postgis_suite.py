"""The existing store, export, API and comparison checks, run again on PostGIS.

Every test function of those modules whose arguments are only the session's read-only
database (``db``), an API client on it (``client``) and a temporary folder (``tmp_path``),
and that is not parametrised, runs here against the same data on the session's PostGIS
server (``GEO_APP_DATABASE_URL`` set). Checks that write the DuckDB file directly (the
tests' own SQL through ``tests.helpers``) cannot run on a server and are listed in
:data:`DUCKDB_ONLY`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from geo_app.settings import Settings
from tests import test_api, test_districts, test_export, test_store

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODULES = (test_store, test_export, test_api, test_districts)
SUPPLIED = {"db", "client", "tmp_path"}
#: Checks of the DuckDB file itself, not of the store's behaviour on any backend: a path that
#: does not exist (on PostGIS the path names nothing), the file lock between threads (PostGIS
#: imports share their lock and a rebuild takes it alone), the tests' own SQL on the file.
DUCKDB_ONLY = {
    "tests.test_store.test_missing_database_has_a_clear_error",
    "tests.test_export.test_missing_database_is_a_clear_error",
    "tests.test_api.test_a_missing_database_is_503_without_the_path",
    "tests.test_store.test_writer_lock_is_reentrant_and_excludes_other_threads",
    "tests.test_export.test_entities_without_a_point_have_null_geometry_and_unknown_coordinates",
}


def _checks() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for module in MODULES:
        for name, fn in vars(module).items():
            if not name.startswith("test_") or not inspect.isfunction(fn):
                continue
            if fn.__module__ != module.__name__ or hasattr(fn, "pytestmark"):
                continue
            params = set(inspect.signature(fn).parameters)
            if params and params <= SUPPLIED and f"{module.__name__}.{name}" not in DUCKDB_ONLY:
                found.append((f"{module.__name__.removeprefix('tests.')}.{name}", fn))
    return found


CHECKS = _checks()


def test_enough_checks_are_found() -> None:
    assert len(CHECKS) >= 30, [name for name, _ in CHECKS]


@pytest.mark.parametrize(("name", "check"), CHECKS, ids=[name for name, _ in CHECKS])
def test_check_holds_on_postgis(name: str, check: Callable[..., Any], pg_settings: Settings,
                                tmp_path: Path) -> None:
    db = pg_settings.db_path
    args: dict[str, Any] = {"db": db, "tmp_path": tmp_path}
    params = inspect.signature(check).parameters
    if "client" in params:
        args["client"] = test_api.make_client(db)
    check(**{k: v for k, v in args.items() if k in params})
