"""The existing store, export, API, import, CLI, layer and comparison checks, run again on PostGIS.

Every test function of :data:`MODULES` that is not parametrised and asks only for fixtures
this module can give on PostGIS (:data:`SUPPLIED`: the session's read-only database ``db``
and its settings ``env_settings``, an API ``client``, a fresh database of its own
``writable_settings``, the map's ``static`` overlays, and pytest's own ``tmp_path``,
``capsys``, ``capsysbinary``, ``monkeypatch``) runs here against the same data on the
session's PostGIS server (``GEO_APP_DATABASE_URL`` set). Checks of the DuckDB file itself
cannot run on a server and are listed in :data:`DUCKDB_ONLY`.

A check that makes a database of its own from copies of the sources in ``tmp_path``
(``copy_sources``) gets an empty PostGIS database of its own: on PostGIS the path it builds
names the server's live schema, so on the session's database it would rebuild what every
other test reads (a spec edited to 6 km once made ``test_postgis_same`` fail).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import psycopg
import pytest

from geo_app import store
from geo_app.settings import Settings
from tests import (
    test_api,
    test_cli,
    test_districts,
    test_export,
    test_ingest,
    test_layers,
    test_store,
)
from tests.conftest import PgDatabase, use_postgis

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: The Streamlit pages' AppTest checks are left out for the suite's time (their store calls
#: are these modules'; tests/test_postgis_replica.py runs the map page on a standby).
MODULES = (test_store, test_export, test_api, test_districts, test_ingest, test_cli, test_layers)
SUPPLIED = {"db", "client", "env_settings", "writable_settings", "static", "tmp_path", "capsys",
            "capsysbinary", "monkeypatch"}
#: Checks of the DuckDB file itself, not of the store's behaviour on any backend: a path that
#: does not exist (on PostGIS the path names nothing), the file lock between threads (PostGIS
#: imports share their lock and a rebuild takes it alone), the file protocol, and the tests'
#: own SQL on the file. Their PostGIS counterparts are in tests/test_postgis_writes.py.
DUCKDB_ONLY = {
    "tests.test_store.test_missing_database_has_a_clear_error",
    "tests.test_export.test_missing_database_is_a_clear_error",
    "tests.test_api.test_a_missing_database_is_503_without_the_path",
    "tests.test_store.test_writer_lock_is_reentrant_and_excludes_other_threads",
    "tests.test_export.test_entities_without_a_point_have_null_geometry_and_unknown_coordinates",
    # DuckDB's spatial extension wheel; the file protocol: copy, write, swap; the file's
    # bytes; leftovers of killed writers
    "tests.test_store.test_spatial_extension_loads_from_the_wheel_without_network",
    "tests.test_store.test_readers_never_block_writers",
    "tests.test_store.test_failed_write_leaves_the_live_file_byte_identical",
    "tests.test_store.test_leftovers_of_killed_writers_are_cleared",
    "tests.test_store.test_the_map_points_stream_on_the_kept_reader",  # DuckDB reader opens
    "tests.test_layers.test_invalid_spec_stops_the_build_and_keeps_the_old_database",
    "tests.test_ingest.test_cli_import_dry_run_batches_and_remove",
    # rows written or read with the tests' own SQL on the file (tests.helpers)
    "tests.test_api.test_html_escapes_every_value",
    "tests.test_api.test_new_rows_are_seen_without_restart",
    "tests.test_layers.test_layer_filter_matches_membership_table",
}


#: One check: its name, the test function, and the arguments its parametrisation fixes.
Check = tuple[str, Callable[..., Any], dict[str, Any]]


def _parametrisations(fn: Callable[..., Any]) -> list[tuple[str, dict[str, Any]]] | None:
    """Every combination of ``fn``'s ``parametrize`` marks (id, arguments); None when it has
    another mark (which this runner cannot honour)."""
    combos: list[tuple[str, dict[str, Any]]] = [("", {})]
    for mark in getattr(fn, "pytestmark", []):
        if mark.name != "parametrize":
            return None
        names = mark.args[0]
        names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        rows = []
        for value in mark.args[1]:
            if hasattr(value, "marks") and hasattr(value, "id"):  # pytest.param(...)
                rows.append(tuple(value.values))
            else:
                rows.append((value,) if len(names) == 1 else tuple(value))
        combos = [(f"{cid}-{i}" if cid else str(i), {**args, **dict(zip(names, row, strict=True))})
                  for cid, args in combos for i, row in enumerate(rows)]
    return combos


def find_checks(modules: Sequence[ModuleType], supplied: set[str], left_out: set[str], *,
                parametrised: bool = False) -> list[Check]:
    """The test functions of ``modules`` that ask only for fixtures in ``supplied`` and are
    not in ``left_out`` (``module.name``); with ``parametrised``, each combination of a
    parametrised one too (others are left out)."""
    found: list[Check] = []
    for module in modules:
        for name, fn in vars(module).items():
            if not name.startswith("test_") or not inspect.isfunction(fn):
                continue
            if fn.__module__ != module.__name__ or f"{module.__name__}.{name}" in left_out:
                continue
            label = f"{module.__name__.removeprefix('tests.')}.{name}"
            combos = _parametrisations(fn) if parametrised else (
                None if hasattr(fn, "pytestmark") else [("", {})])
            for cid, fixed in combos or []:
                params = set(inspect.signature(fn).parameters) - set(fixed)
                if (params or fixed) and params <= supplied:
                    found.append((f"{label}[{cid}]" if cid else label, fn, fixed))
    return found


CHECKS = find_checks(MODULES, SUPPLIED, DUCKDB_ONLY)


def test_enough_checks_are_found() -> None:
    assert len(CHECKS) >= 60, [name for name, _, _ in CHECKS]


@pytest.mark.parametrize(("name", "check", "fixed"), CHECKS, ids=[c[0] for c in CHECKS])
def test_check_holds_on_postgis(name: str, check: Callable[..., Any], fixed: dict[str, Any],
                                request: pytest.FixtureRequest) -> None:
    run_on_postgis(check, fixed, request)


def run_on_postgis(check: Callable[..., Any], fixed: dict[str, Any],
                   request: pytest.FixtureRequest,
                   extra: Mapping[str, Callable[[Settings], Any]] | None = None) -> None:
    """Run ``check`` with ``fixed`` arguments on the session's PostGIS database (a fresh one
    of its own when it asks for ``writable_settings``; an empty one when it builds from
    copies itself), each other fixture it asks for as the DuckDB run would give it
    (``extra``: more fixtures, each made from the settings); then check that the session's
    shared database was not written."""
    params = inspect.signature(check).parameters
    settings: Settings = request.getfixturevalue(
        "pg_writable" if "writable_settings" in params else "pg_settings")
    shared: PgDatabase = request.getfixturevalue("pg_built")
    before = _version(shared.url)
    if "copy_sources" in check.__code__.co_names:  # it builds: an empty database of its own
        use_postgis(request.getfixturevalue("pg_url"), request.getfixturevalue("monkeypatch"))
    if not isinstance(settings, Settings):  # pg_writable: a PgDatabase
        settings = settings.settings
    db = settings.db_path
    args: dict[str, Any] = {"db": db, "env_settings": settings, "writable_settings": settings}
    if "client" in params:
        args["client"] = test_api.make_client(db)
    if "static" in params:
        args["static"] = {"layers": store.read_geo_table(db, "layers"),
                          "boundaries": store.read_geo_table(db, "boundaries"),
                          "water": store.read_geo_table(db, "water"),
                          "boards": store.read_table(db, "boards")}
    for name_ in ("tmp_path", "capsys", "capsysbinary", "monkeypatch"):
        if name_ in params:
            args[name_] = request.getfixturevalue(name_)
    for name_, make in (extra or {}).items():
        if name_ in params:
            args[name_] = make(settings)
    check(**{k: v for k, v in args.items() if k in params}, **fixed)
    assert _version(shared.url) == before, "the check wrote the session's shared database"


def _version(url: str) -> str:
    """The ``data_version`` of the database ``url`` (changes with every write)."""
    with psycopg.connect(url) as con:
        row = con.execute("SELECT value FROM geo_app.data_version").fetchone()
    assert row is not None
    return str(row[0])
