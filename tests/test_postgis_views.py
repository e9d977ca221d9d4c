"""The Streamlit pages' AppTest checks — map, compare, export and import — run again on PostGIS.

Every test function of :data:`MODULES` (each combination of a parametrised one) that asks
only for fixtures this module can give on PostGIS (:data:`SUPPLIED`: the session's database
``db`` and its settings ``env_settings``/``built_settings``, a fresh database of its own
``writable_settings``, the comparison page's ``data``, the export page's ``served`` folder,
the map's large synthetic database ``large``/``large_built`` (built on PostGIS by the
fixture's own code), and pytest's own ``tmp_path``, ``monkeypatch``) runs here with
``GEO_APP_DATABASE_URL`` pointing at the session's PostGIS server, through
:func:`tests.test_postgis_suite.run_on_postgis`. The pages read the store through the
environment, as a deployed app does. Checks that are not about the store, or cannot be
made on one PostGIS database, are listed in :data:`LEFT_OUT`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from geo_app import assets, districts
from geo_app.settings import Settings
from tests import (
    pgcluster,
    test_views_compare,
    test_views_export,
    test_views_importer,
    test_views_map,
)
from tests.conftest import PgDatabase, point_env_at, use_postgis
from tests.test_postgis_suite import find_checks, fixture_body, run_on_postgis

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODULES = (test_views_map, test_views_compare, test_views_export, test_views_importer)
SUPPLIED = {"db", "env_settings", "built_settings", "writable_settings", "data", "served",
            "large", "large_built", "tmp_path", "monkeypatch"}
#: Not about the store: a real Streamlit server and browser serving a file from disk (the
#: file is the export's, compared byte for byte in tests/test_postgis_same.py).
LEFT_OUT = {"tests.test_views_export.test_a_real_server_streams_the_prepared_file_from_disk",
            # reads the shipped database and the large one by their paths in one check: on
            # PostGIS one URL names one database at a time (each is read by other checks here)
            "tests.test_views_map.test_the_map_is_rendered_once_for_the_same_component_arguments",
            # the DuckDB reader's copy of the names for the search (store.prepare_search
            # does nothing on PostGIS, whose server searches its own table)
            "tests.test_views_map.test_the_run_that_draws_the_search_box_makes_the_search_copy_ahead"}

CHECKS = find_checks(MODULES, SUPPLIED, LEFT_OUT, parametrised=True)


def test_every_page_has_checks_here() -> None:
    for module in MODULES:
        label = module.__name__.removeprefix("tests.")
        assert sum(1 for name, _, _ in CHECKS if name.startswith(f"{label}.")) >= 4, label


@pytest.fixture(scope="module")
def pg_large(pg_cluster: pgcluster.Cluster,
             tmp_path_factory: pytest.TempPathFactory) -> PgDatabase:
    """test_views_map's ``large_built`` (the shipped data and 5000 synthetic entities) on
    PostGIS, built by the fixture's own code."""
    url = pg_cluster.create_database()
    with pytest.MonkeyPatch.context() as mp:
        use_postgis(url, mp)
        settings: Settings = fixture_body(test_views_map.large_built)(tmp_path_factory)
    return PgDatabase(settings, url)


@pytest.mark.parametrize(("name", "check", "fixed"), CHECKS, ids=[c[0] for c in CHECKS])
def test_page_check_holds_on_postgis(name: str, check: Callable[..., Any],
                                     fixed: dict[str, Any], request: pytest.FixtureRequest,
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def served(_: Settings) -> Path:  # as tests/test_views_export.py's fixture
        root = tmp_path / "static" / "downloads"
        monkeypatch.setattr(assets, "DOWNLOADS_DIR", root)
        return root

    def large_built(_: Settings) -> Settings:  # the store on it, as the path names it there
        pg: PgDatabase = request.getfixturevalue("pg_large")
        use_postgis(pg.url, monkeypatch)
        return pg.settings

    run_on_postgis(check, fixed, request, extra={
        "data": lambda settings: districts.load_compare_data(settings.db_path),
        "served": served, "large_built": large_built,
        "large": lambda settings: point_env_at(large_built(settings), monkeypatch)})
