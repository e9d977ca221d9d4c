"""Sign-in end to end (issue 15): Chromium, the real app under ``streamlit run`` and a real
OpenID provider on localhost (``oidc-provider-mock``), both started and stopped here.

Nothing of Streamlit's auth is mocked: the app reads a temporary secrets file
(``--secrets.files``, never the repository's), redirects to the provider, the provider's
authorize form picks the subject, and Streamlit's ``/oauth2callback`` sets the identity
cookie. A viewer sees no write control, an editor imports through the upload widget and
the batch names their e-mail, signing out returns to read-only, an unlisted user is a viewer.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import oidc_provider_mock  # a missing test dependency fails the module, never skips it
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from benchmarks.bench_map import _free_port, chromium, streamlit_app
from geo_app import auth, build, cli, ingest
from geo_app.errors import NotAuthorisedError
from geo_app.settings import Settings
from tests.conftest import copy_sources

pytestmark = pytest.mark.browser

EDITOR = ("editor-sub", {"email": "editor@example.org", "email_verified": True, "name": "Ed Itor"})
VIEWER = ("viewer-sub", {"email": "viewer@example.org", "email_verified": True, "name": "Vi Ewer"})
TIMEOUT_MS = 60_000
CSV = ("id,name_zh,kind,level,status,board,lon,lat,location_precision,source,source_datum\n"
       "u-browser,浏览器导入,incubator,municipal,operating,昆山市,120.98,31.38,zone,"
       "browser test,wgs84\n")


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """A real OpenID provider on localhost, with the editor's and the viewer's claims."""
    with oidc_provider_mock.run_server_in_thread() as server:
        url = f"http://localhost:{server.server_port}"
        for sub, claims in (EDITOR, VIEWER):
            resp = httpx.put(f"{url}/users/{quote(sub)}", json=claims, timeout=10)
            assert resp.status_code == 204, resp.text
        yield url


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = copy_sources(tmp_path_factory.mktemp("auth"))
    build.build_database(s)
    return s


@pytest.fixture(scope="module")
def app_url(settings: Settings, provider: str) -> Iterator[str]:
    """``streamlit run`` with ``[auth]`` pointing at the provider and one editor listed."""
    port = _free_port()
    url = f"http://localhost:{port}"
    root = settings.data_dir.parent
    secrets_file = root / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "geo-app-test"\n'
        'client_secret = "geo-app-test-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
        "[editors]\n"
        f'emails = ["{EDITOR[1]["email"]}"]\n', encoding="utf-8")
    secrets_file.chmod(0o600)
    with streamlit_app(settings, root / "streamlit.log", port=port, host="localhost",
                       extra_args=["--secrets.files", str(secrets_file)]) as started:
        assert started == url
        yield url


@pytest.fixture(scope="module")
def browser(app_url: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _open_import(page: Any, app_url: str) -> None:
    page.goto(f"{app_url}/import?lang=en", timeout=TIMEOUT_MS)
    page.get_by_role("heading", name="Import your own entities").wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("Import batches").first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(1000)  # the run finishes drawing


def _write_controls(page: Any) -> int:
    """Upload inputs and import/removal buttons on the page."""
    return (page.locator('input[type="file"]').count()
            + page.get_by_role("button", name="Remove batch").count()
            + page.get_by_role("button", name="Import 1 rows").count())


def _sign_in(page: Any, app_url: str, subject: str) -> None:
    _open_import(page, app_url)
    page.get_by_role("button", name="Sign in (editors)").click()
    page.get_by_placeholder("sub").first.wait_for(timeout=TIMEOUT_MS)  # the provider's form
    page.get_by_placeholder("sub").first.fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{app_url}/**", timeout=TIMEOUT_MS)
    page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
    _open_import(page, app_url)


def _sign_out(page: Any, app_url: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    # the provider offers to end its session too (end_session_endpoint), then returns
    end = page.get_by_role("button", name="End session")
    try:
        end.wait_for(timeout=15_000)
        end.click()
    except PlaywrightTimeout:  # a provider without an end-session page: back already
        pass
    page.wait_for_url(f"{app_url}/**", timeout=TIMEOUT_MS)
    _open_import(page, app_url)


def test_visitor_is_read_only_and_cannot_write_through_the_core(
        browser: Any, app_url: str, settings: Settings) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_import(page, app_url)
        assert _write_controls(page) == 0
        page.get_by_role("button", name="Sign in (editors)").wait_for()
        page.get_by_text("Read-only: only signed-in editors").wait_for()
    finally:
        page.close()
    # a replayed import (a request that bypasses the page) reaches the same core check
    before = settings.db_path.read_bytes()
    report = ingest.check_upload(CSV.encode(), "replay.csv", settings.db_path)
    with pytest.raises(NotAuthorisedError):
        ingest.import_report(report, settings.db_path, actor=auth.ANONYMOUS)
    assert settings.db_path.read_bytes() == before


def test_editor_signs_in_imports_is_named_and_signs_out(
        browser: Any, app_url: str, settings: Settings, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        _sign_in(page, app_url, EDITOR[0])
        page.get_by_text("Signed in as editor@example.org (editor)").wait_for(timeout=TIMEOUT_MS)
        upload = tmp_path / "from-the-browser.csv"
        upload.write_text(CSV, encoding="utf-8")
        page.locator('input[type="file"]').first.set_input_files(str(upload))
        button = page.get_by_role("button", name="Import 1 rows")
        button.wait_for(timeout=TIMEOUT_MS)
        button.click()
        page.get_by_text("Imported 1 rows").wait_for(timeout=TIMEOUT_MS)
        batches = ingest.list_batches(settings.db_path)
        assert batches[["file_name", "made_by", "actor_subject", "actor_kind"]].values.tolist() \
            == [["from-the-browser.csv", "editor@example.org", EDITOR[0], "oidc"]]
        batch = str(batches["batch_id"].iloc[0])
        # the page names who made it (the batches table and the change log)
        page.wait_for_timeout(1500)
        grid_text = page.locator('[data-testid="stDataFrame"]').all_inner_texts()
        shown = page.get_by_text("editor@example.org").count()
        assert shown >= 2 or any("editor@example.org" in t for t in grid_text), grid_text
        # and so does geo-app batches
        for key, value in (("GEO_APP_DB", settings.db_path),
                           ("GEO_APP_DATA_DIR", settings.data_dir),
                           ("GEO_APP_LAYERS_DIR", settings.layers_dir)):
            monkeypatch.setenv(key, str(value))
        assert cli.main(["batches"]) == 0
        line = next(x for x in capsys.readouterr().out.splitlines() if batch in x)
        assert "by editor@example.org" in line and "from-the-browser.csv" in line

        _sign_out(page, app_url)
        assert _write_controls(page) == 0
        page.get_by_role("button", name="Sign in (editors)").wait_for(timeout=TIMEOUT_MS)
    finally:
        context.close()


def test_signed_in_user_not_listed_is_a_viewer(browser: Any, app_url: str) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        _sign_in(page, app_url, VIEWER[0])
        page.get_by_text("Signed in as viewer@example.org (read-only").wait_for(timeout=TIMEOUT_MS)
        assert _write_controls(page) == 0
        page.get_by_role("button", name="Sign out").wait_for()
    finally:
        context.close()
