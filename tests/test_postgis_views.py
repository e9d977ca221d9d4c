"""The Streamlit pages' AppTest checks — map, compare, export and import — run again on PostGIS.

Every test function of :data:`MODULES` (each combination of a parametrised one) that asks
only for fixtures this module can give on PostGIS (:data:`SUPPLIED`: the session's database
``db`` and its settings ``env_settings``, a fresh database of its own ``writable_settings``,
the comparison page's ``data``, the export page's ``served`` folder, and pytest's own
``tmp_path``, ``monkeypatch``) runs here with ``GEO_APP_DATABASE_URL`` pointing at the
session's PostGIS server, through :func:`tests.test_postgis_suite.run_on_postgis`. The pages
read the store through the environment, as a deployed app does. Checks that are not about
the store are listed in :data:`LEFT_OUT`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from geo_app import assets, districts
from geo_app.settings import Settings
from tests import test_views_compare, test_views_export, test_views_importer, test_views_map
from tests.test_postgis_suite import find_checks, run_on_postgis

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODULES = (test_views_map, test_views_compare, test_views_export, test_views_importer)
SUPPLIED = {"db", "env_settings", "writable_settings", "data", "served", "tmp_path",
            "monkeypatch"}
#: Not about the store: a real Streamlit server and browser serving a file from disk (the
#: file is the export's, compared byte for byte in tests/test_postgis_same.py).
LEFT_OUT = {"tests.test_views_export.test_a_real_server_streams_the_prepared_file_from_disk"}

CHECKS = find_checks(MODULES, SUPPLIED, LEFT_OUT, parametrised=True)


def test_every_page_has_checks_here() -> None:
    for module in MODULES:
        label = module.__name__.removeprefix("tests.")
        assert sum(1 for name, _, _ in CHECKS if name.startswith(f"{label}.")) >= 4, label


@pytest.mark.parametrize(("name", "check", "fixed"), CHECKS, ids=[c[0] for c in CHECKS])
def test_page_check_holds_on_postgis(name: str, check: Callable[..., Any],
                                     fixed: dict[str, Any], request: pytest.FixtureRequest,
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def served(_: Settings) -> Path:  # as tests/test_views_export.py's fixture
        root = tmp_path / "static" / "downloads"
        monkeypatch.setattr(assets, "DOWNLOADS_DIR", root)
        return root

    run_on_postgis(check, fixed, request, extra={
        "data": lambda settings: districts.load_compare_data(settings.db_path),
        "served": served})
