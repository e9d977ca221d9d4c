"""The existing store, export, API, import, CLI, layer and comparison checks, run again on PostGIS.

Every test function of :data:`MODULES` (each combination of a parametrised one) that asks
for a database fixture (:data:`DB_FIXTURES`) or builds a database from copies of the
sources runs here against the same data on the
session's PostGIS server (``GEO_APP_DATABASE_URL`` set), each fixture made on PostGIS the
way its DuckDB namesake is made (:func:`run_on_postgis`): the session's read-only database
``db`` (``env_settings``, ``built_settings``, an API ``client``, the map's ``static``
overlays, the comparison's ``data``, the ``exported`` files), a fresh database of its own
where the DuckDB fixture writes (``writable_settings``; test_ingest's ``user_db``; test_export's
``user_db``, a copy of a database holding one user import), and one database per module
fixture (test_export's ``awkward_db``, test_ingest's ``corpus_db``), built by the DuckDB
fixture's own code on the server. Checks that ask for no database and build none are pure
functions of their arguments, or checks of DuckDB files of their own in ``tmp_path``
(``store.reader``/``store.connect`` on a path, DuckDB whatever the environment): they
would run here exactly as there, so they run once, in their own module.

The tests' own SQL (``tests.helpers.query_sql``/``execute_sql``) runs on the server
(:func:`tests.conftest.pg_query_sql`, :func:`tests.conftest.pg_execute_sql`: a write is one
transaction that changes ``data_version``, as every store write), and "the store is
byte-identical" (test_ingest's ``_digest`` of the file) means every table's rows and
``data_version`` unchanged (:func:`tests.conftest.pg_snapshot`).

Checks of the DuckDB file itself cannot run on a server and are listed in
:data:`DUCKDB_ONLY`, each with its reason; :func:`test_every_store_check_runs_here_or_says_why`
fails when a check that asks for a database fixture is neither run here nor listed.
Backend differences a check finds are listed in :data:`KNOWN_DIFFERENCES`.

A check that makes a database of its own from copies of the sources in ``tmp_path``
(``copy_sources``) gets an empty PostGIS database of its own: on PostGIS the path it builds
names the server's live schema, so on the session's database it would rebuild what every
other test reads (a spec edited to 6 km once made ``test_postgis_same`` fail).
"""

from __future__ import annotations

import inspect
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import geopandas as gpd
import psycopg
import pytest

from geo_app import districts, store
from geo_app.settings import DATABASE_URL_VAR, Settings
from geo_app.store import postgis
from tests import (
    pgcluster,
    test_api,
    test_cli,
    test_districts,
    test_export,
    test_ingest,
    test_layers,
    test_store,
)
from tests.conftest import (
    PgDatabase,
    pg_execute_sql,
    pg_query_sql,
    pg_snapshot,
    point_env_at,
    use_postgis,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: The Streamlit pages' AppTest checks are in tests/test_postgis_views.py.
MODULES = (test_store, test_export, test_api, test_districts, test_ingest, test_cli, test_layers)
#: The fixtures that give a check a database (or something read from one).
DB_FIXTURES = {"db", "client", "env_settings", "writable_settings", "built_settings", "static",
               "data", "exported", "user_db", "awkward_db", "corpus_db"}
SUPPLIED = DB_FIXTURES | {"tmp_path", "capsys", "capsysbinary", "monkeypatch", "caplog",
                          "default_hosts"}
#: Checks of the DuckDB file itself, not of the store's behaviour on any backend, each with
#: its reason. Their PostGIS counterparts are in tests/test_postgis_writes.py.
DUCKDB_ONLY = {
    # a path that does not exist: on PostGIS the path names nothing
    "tests.test_store.test_missing_database_has_a_clear_error",
    "tests.test_export.test_missing_database_is_a_clear_error",
    "tests.test_api.test_a_missing_database_is_503_without_the_path",
    # the file lock between threads (PostGIS imports share their lock, a rebuild takes it
    # alone: test_postgis_writes), and an outside DuckDB process holding the file
    "tests.test_store.test_writer_lock_is_reentrant_and_excludes_other_threads",
    "tests.test_ingest.test_busy_database_raises_clear_error_and_writes_nothing",
    # DuckDB's spatial extension wheel; the file protocol: copy, write, swap; the file's
    # bytes; leftovers of killed writers; the readers a process keeps open on the file
    "tests.test_store.test_spatial_extension_loads_from_the_wheel_without_network",
    "tests.test_store.test_readers_never_block_writers",
    "tests.test_store.test_failed_write_leaves_the_live_file_byte_identical",
    "tests.test_store.test_leftovers_of_killed_writers_are_cleared",
    "tests.test_store.test_the_map_points_stream_on_the_kept_reader",
    "tests.test_store.test_the_reader_of_the_app_database_is_warmed_without_error",
    # the map search's copy of the names belongs to the DuckDB reader of one file, renewed
    # when a write swaps the file in (the test writes through that protocol); on PostGIS
    # the server searches its own table (the search itself is checked on both backends)
    "tests.test_store.test_the_maps_search_reads_the_names_of_the_file_it_reads",
    "tests.test_layers.test_invalid_spec_stops_the_build_and_keeps_the_old_database",
    # an export aimed at the database file, its links, its sidecars or an open handle on it:
    # on PostGIS there is no file to protect
    "tests.test_export.test_export_never_writes_the_database_or_its_files",
    "tests.test_export.test_a_stream_open_on_the_database_is_refused",
    "tests.test_cli.test_cli_never_writes_over_the_database",
    # a GEO_APP_DB path that cannot hold the file or its lock (/proc/version): on PostGIS
    # the path names nothing and the command runs
    "tests.test_cli.test_an_unusable_database_path_is_one_line",
    # the tests' own SQL in DuckDB's dialect (SELECT * … ORDER BY ALL: PostgreSQL has no
    # ORDER BY ALL, and its tables have a rowid column); the PostGIS counterpart is
    # test_postgis_writes.test_a_rebuild_keeps_user_imports_and_recomputes_memberships
    "tests.test_ingest.test_import_writes_rows_batch_and_memberships",
}
#: Checks that fail on PostGIS for a difference between the backends (reported, not hidden).
KNOWN_DIFFERENCES: set[str] = set()


#: One check: its name, the test function, and the arguments its parametrisation fixes.
Check = tuple[str, Callable[..., Any], dict[str, Any]]


def _marks(fn: Callable[..., Any]) -> list[Any]:
    return list(getattr(fn, "pytestmark", []))


def used_fixtures(fn: Callable[..., Any]) -> set[str]:
    """The fixtures ``fn`` asks for by its ``usefixtures`` marks."""
    return {name for mark in _marks(fn) if mark.name == "usefixtures" for name in mark.args}


def _parametrisations(fn: Callable[..., Any]) -> list[tuple[str, dict[str, Any]]] | None:
    """Every combination of ``fn``'s ``parametrize`` marks (id, arguments); None when it has
    a mark other than those and ``usefixtures`` (which this runner cannot honour)."""
    combos: list[tuple[str, dict[str, Any]]] = [("", {})]
    for mark in _marks(fn):
        if mark.name == "usefixtures":
            continue
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


def fixtures_of(fn: Callable[..., Any]) -> set[str]:
    """The fixtures ``fn`` asks for: its arguments that no ``parametrize`` mark fixes, and
    its ``usefixtures``."""
    fixed = {n.strip() for mark in _marks(fn) if mark.name == "parametrize"
             for n in (mark.args[0].split(",") if isinstance(mark.args[0], str) else mark.args[0])}
    return (set(inspect.signature(fn).parameters) - fixed) | used_fixtures(fn)


def module_tests(modules: Sequence[ModuleType]) -> Iterator[tuple[str, Callable[..., Any]]]:
    """Each test function defined in ``modules`` (``module.name``, the function)."""
    for module in modules:
        for name, fn in vars(module).items():
            if name.startswith("test_") and inspect.isfunction(fn) \
                    and fn.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", fn


def find_checks(modules: Sequence[ModuleType], supplied: set[str], left_out: set[str], *,
                parametrised: bool = False) -> list[Check]:
    """The test functions of ``modules`` that ask only for fixtures in ``supplied`` and are
    not in ``left_out`` (``module.name``); with ``parametrised``, each combination of a
    parametrised one too (others are left out)."""
    found: list[Check] = []
    for qualname, fn in module_tests(modules):
        if qualname in left_out:
            continue
        label = qualname.removeprefix("tests.")
        combos = _parametrisations(fn) if parametrised else (
            None if hasattr(fn, "pytestmark") else [("", {})])
        for cid, fixed in combos or []:
            params = (set(inspect.signature(fn).parameters) - set(fixed)) | used_fixtures(fn)
            if (params or fixed) and params <= supplied:
                found.append((f"{label}[{cid}]" if cid else label, fn, fixed))
    return found


def touches_the_store(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` asks for a database fixture or builds a database of its own from copies
    of the sources (``copy_sources``)."""
    return bool(fixtures_of(fn) & DB_FIXTURES) or "copy_sources" in fn.__code__.co_names


#: Checks that ask for no database and build none are pure functions of their arguments or
#: checks of DuckDB files of their own (store.reader, store.connect on a file in tmp_path):
#: they would run here exactly as in their own module, so they run once, there.
CHECKS = [check for check in find_checks(MODULES, SUPPLIED, DUCKDB_ONLY | KNOWN_DIFFERENCES,
                                         parametrised=True)
          if touches_the_store(check[1])]


def test_enough_checks_are_found() -> None:
    assert len(CHECKS) >= 400, [name for name, _, _ in CHECKS]


def test_every_store_check_runs_here_or_says_why() -> None:
    """A check that asks for a database fixture runs on PostGIS here, or is listed with its
    reason in DUCKDB_ONLY or KNOWN_DIFFERENCES (and a listed name still exists)."""
    run = {name.split("[")[0] for name, _, _ in CHECKS}
    listed = DUCKDB_ONLY | KNOWN_DIFFERENCES
    everything = dict(module_tests(MODULES))
    missing = [name for name, fn in everything.items()
               if touches_the_store(fn) and name.removeprefix("tests.") not in run
               and name not in listed]
    assert missing == [], "neither run on PostGIS nor listed with a reason"
    assert sorted(listed - set(everything)) == [], "listed but gone"
    assert not DUCKDB_ONLY & KNOWN_DIFFERENCES


def test_fixtures_are_told_from_parametrised_arguments() -> None:
    assert fixtures_of(test_api.test_a_foreign_host_gets_400_and_no_link_to_it) == {
        "db", "default_hosts"}
    assert fixtures_of(test_cli.test_an_unusable_database_path_is_one_line) == {
        "env_settings", "tmp_path", "monkeypatch", "capsys"}  # its "db" is an argument
    assert fixtures_of(test_ingest.test_corpus_case_leaves_store_byte_identical) == {
        "corpus_db"}


@pytest.mark.parametrize(("name", "check", "fixed"), CHECKS, ids=[c[0] for c in CHECKS])
def test_check_holds_on_postgis(name: str, check: Callable[..., Any], fixed: dict[str, Any],
                                request: pytest.FixtureRequest) -> None:
    run_on_postgis(check, fixed, request)


# ----------------------------------------------------------------------------- fixtures
# The databases of the test modules' own fixtures, made on PostGIS by those fixtures' code.


def fixture_body(fixture: Callable[..., Any]) -> Callable[..., Any]:
    """The code of a test module's fixture (the function under pytest's decorator)."""
    body: Callable[..., Any] = inspect.unwrap(fixture)
    return body


def _on_postgis(name: str, fixture: Callable[..., Any], module: ModuleType) -> Any:
    """A module-scoped fixture ``name``: the database ``module``'s DuckDB fixture ``fixture``
    makes (its own code copies the sources and builds), made with the store on a new PostGIS
    database, and the tests' own SQL of ``module`` on it too."""

    def made(pg_cluster: pgcluster.Cluster,
             tmp_path_factory: pytest.TempPathFactory) -> PgDatabase:
        url = pg_cluster.create_database()
        with pytest.MonkeyPatch.context() as mp:
            use_postgis(url, mp)
            if hasattr(module, "execute_sql"):
                mp.setattr(module, "execute_sql", pg_execute_sql)
            path: Path = fixture_body(fixture)(tmp_path_factory)
        data = path.parent
        return PgDatabase(Settings(db_path=path, data_dir=data,
                                   layers_dir=data.parent / "layers"), url)

    made.__doc__ = f"{module.__name__}'s ``{fixture.__name__}`` on PostGIS."
    return pytest.fixture(scope="module", name=name)(made)


#: test_export's ``awkward_db``; its ``imported_source`` (the shipped data and one user
#: import); test_ingest's ``corpus_db`` (every bad file is thrown at it).
pg_awkward = _on_postgis("pg_awkward", test_export.awkward_db, test_export)
pg_imported = _on_postgis("pg_imported", test_export.imported_source, test_export)
pg_corpus = _on_postgis("pg_corpus", test_ingest.corpus_db, test_ingest)


@pytest.fixture(scope="module")
def pg_exported(pg_built: PgDatabase, tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, gpd.GeoDataFrame]:
    """test_districts' ``exported``: what ``geo-app export`` writes on PostGIS."""
    with pytest.MonkeyPatch.context() as mp:
        use_postgis(pg_built.url, mp)
        frames: dict[str, gpd.GeoDataFrame] = fixture_body(test_districts.exported)(
            pg_built.settings, tmp_path_factory)
    return frames


@pytest.fixture()
def pg_copy_of_imported(pg_cluster: pgcluster.Cluster, pg_imported: PgDatabase,
                        tmp_path: Path) -> Iterator[PgDatabase]:
    """test_export's ``user_db`` on PostGIS: a copy of :func:`pg_imported` of this test's own
    (``CREATE DATABASE … TEMPLATE``, the server's file copy), its path
    ``tmp_path/data/geo_app.duckdb`` as the DuckDB fixture's."""
    postgis.close_pools()  # a template must have no other connection
    source, name = pg_imported.url.rsplit("/", 1)[1], f"t_{uuid.uuid4().hex[:12]}"
    pg_cluster.psql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    url = pg_cluster.url(name)
    (tmp_path / "data").mkdir()
    settings = Settings(db_path=tmp_path / "data" / "geo_app.duckdb",
                        data_dir=pg_imported.settings.data_dir,
                        layers_dir=pg_imported.settings.layers_dir)
    try:
        yield PgDatabase(settings, url)
    finally:
        postgis.close_pools()
        pg_cluster.drop_database(url)


# ----------------------------------------------------------------------------- the runner


def run_on_postgis(check: Callable[..., Any], fixed: dict[str, Any],
                   request: pytest.FixtureRequest,
                   extra: Mapping[str, Callable[[Settings], Any]] | None = None) -> None:
    """Run ``check`` with ``fixed`` arguments on PostGIS, each fixture it asks for made as
    the DuckDB run would make it (``extra``: more fixtures, each made from the settings):
    the session's shared database, or a database of its own where the DuckDB fixture
    writes (see the module docstring); then check that the shared one was not written."""
    wanted = fixtures_of(check)
    module = inspect.getmodule(check)
    mp: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    shared: PgDatabase = request.getfixturevalue("pg_built")
    before = _version(shared.url)
    own: PgDatabase | None = None
    if "writable_settings" in wanted or (module is test_ingest and "user_db" in wanted):
        own = request.getfixturevalue("pg_writable")
    elif "user_db" in wanted:  # test_export's: a copy of a database with a user import
        own = request.getfixturevalue("pg_copy_of_imported")
    elif "awkward_db" in wanted:
        own = request.getfixturevalue("pg_awkward")
    elif "corpus_db" in wanted:
        own = request.getfixturevalue("pg_corpus")
    if own is None:
        settings: Settings = request.getfixturevalue("pg_settings")
    else:
        use_postgis(own.url, mp)
        settings = point_env_at(own.settings, mp) if "writable_settings" in wanted \
            or "user_db" in wanted else own.settings
    if "copy_sources" in check.__code__.co_names:  # it builds: an empty database of its own
        use_postgis(request.getfixturevalue("pg_url"), mp)
    if module is not None and wanted & DB_FIXTURES:  # the tests' own SQL and digests of
        # the database, on the server (a check of files of its own keeps them on its files)
        for name_, pg in (("query_sql", pg_query_sql), ("execute_sql", pg_execute_sql),
                          ("_digest", lambda _path: pg_snapshot())):
            if hasattr(module, name_):
                mp.setattr(module, name_, pg)
    db = settings.db_path
    makers: dict[str, Callable[[], Any]] = {
        "db": lambda: db, "user_db": lambda: db, "awkward_db": lambda: db,
        "corpus_db": lambda: db, "env_settings": lambda: settings,
        "writable_settings": lambda: settings, "built_settings": lambda: settings,
        "client": lambda: test_api.make_client(db),
        "static": lambda: {"layers": store.read_geo_table(db, "layers"),
                           "boundaries": store.read_geo_table(db, "boundaries"),
                           "water": store.read_geo_table(db, "water"),
                           "boards": store.read_table(db, "boards")},
        "data": lambda: districts.load_compare_data(db),
        "exported": lambda: request.getfixturevalue("pg_exported"),
        "default_hosts": lambda: mp.delenv("GEO_APP_API_HOSTS", raising=False),
    }
    for name_ in ("tmp_path", "capsys", "capsysbinary", "caplog"):
        makers[name_] = lambda name_=name_: request.getfixturevalue(name_)  # type: ignore[misc]
    makers["monkeypatch"] = lambda: mp
    for name_, make in (extra or {}).items():
        makers[name_] = lambda make=make: make(settings)  # type: ignore[misc]
    args = {name_: makers[name_]() for name_ in sorted(wanted)}
    assert os.environ.get(DATABASE_URL_VAR), "the check runs on PostGIS"
    params = inspect.signature(check).parameters
    check(**{k: v for k, v in args.items() if k in params}, **fixed)
    assert _version(shared.url) == before, "the check wrote the session's shared database"


def _version(url: str) -> str:
    """The ``data_version`` of the database ``url`` (changes with every write)."""
    with psycopg.connect(url) as con:
        row = con.execute("SELECT value FROM geo_app.data_version").fetchone()
    assert row is not None
    return str(row[0])


def test_the_snapshot_sees_every_write(pg_writable: PgDatabase) -> None:
    """What "byte-identical" means here can fail: a changed row, a write that changed no row
    (its data_version), a row of the tests' own SQL."""
    db, url = pg_writable.settings.db_path, pg_writable.url
    first = pg_snapshot(url)
    assert pg_snapshot(url) == first
    with psycopg.connect(url) as con:
        con.execute("UPDATE geo_app.entities SET notes = coalesce(notes, '') || ' ' "
                    "WHERE id = (SELECT min(id) FROM geo_app.entities)")
    second = pg_snapshot(url)
    assert second != first
    pg_execute_sql(db, [("UPDATE entities SET notes = notes WHERE id = ?", ["no such id"])])
    third = pg_snapshot(url)
    assert third != second, "a write changes data_version"
    pg_execute_sql(db, [("UPDATE entities SET source_lon = 'NaN'::DOUBLE WHERE id = ?",
                         [pg_query_sql(db, "SELECT min(id) FROM entities").iloc[0, 0]])])
    assert pg_snapshot(url) != third
