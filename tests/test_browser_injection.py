"""The template-injection corpus through the real app: ``geo-app import`` of a file (itself
named like a template) whose every text field holds a Jinja payload, then ``streamlit run``
in Debian's Chromium in each map mode. Nothing may run on the server (the code-running
payload would create a directory), the server log holds no traceback, and each payload
shows in the browser as the same characters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.bench_map import chromium, streamlit_app
from geo_app import build, store
from geo_app.filters import make_filter
from geo_app.i18n import t
from tests.conftest import copy_sources
from tests.test_template_injection import PROBE_ENV, TEMPLATE_PAYLOADS, write_payload_import

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
#: Rows per payload: with the name search ``q`` the page shows a few (markers mode),
#: hundreds (compact mode) or thousands (the view mode's cells) of them.
ROWS_PER_PAYLOAD = 160


@dataclass
class App:
    url: str
    db: Path
    log: Path
    probe: Path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    root = tmp_path_factory.mktemp("injection")
    settings = copy_sources(root)
    build.build_database(settings)
    probe = root / "payload-ran"
    env = {"GEO_APP_DB": str(settings.db_path), "GEO_APP_DATA_DIR": str(settings.data_dir),
           "GEO_APP_LAYERS_DIR": str(settings.layers_dir), PROBE_ENV: str(probe)}
    source = write_payload_import(root / "{{7*7}}{% raw %}.csv", ROWS_PER_PAYLOAD)
    done = subprocess.run([sys.executable, "-m", "geo_app.cli", "import", str(source)],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    log = root / "streamlit.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PROBE_ENV, str(probe))
        with streamlit_app(settings, log) as url:
            yield App(url=url, db=settings.db_path, log=log, probe=probe)


@pytest.fixture(scope="module")
def browser(app: App) -> Iterator[object]:
    with chromium() as launched:
        yield launched


#: Every popup and tooltip of the entity markers drawn, as the browser shows them (text, not HTML).
SHOWN_JS = """() => {
    const out = [];
    const parser = new DOMParser();  // inert: parsing runs no script and loads nothing
    const text = h => parser.parseFromString(h, 'text/html').body.textContent;
    window.map.eachLayer(l => {
        if (!(l instanceof L.MarkerClusterGroup)) return;
        l.getLayers().forEach(m => {
            if (m.getPopup && m.getPopup()) out.push(text(m.getPopup().getContent()));
            if (m.getTooltip && m.getTooltip()) out.push(text(m.getTooltip().getContent()));
        });
    });
    return out;
}"""

CELLS_JS = """() => { let n = 0; window.map.eachLayer(l => { if (l.options && l.options.simCount)
    n += l.options.simCount; }); return n; }"""


def _visit(app: App, browser: object, query: str) -> tuple[object, object, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append(f"dialog {d.message}"), d.dismiss()))
    page.goto(f"{app.url}/{query}")
    page.frame_locator(MAP_FRAME).locator("path.leaflet-interactive").first.wait_for(
        state="attached", timeout=60_000)
    frame = next(f for f in page.frames if "st_folium" in f.url)
    frame.wait_for_function("() => window.map && window.L", timeout=20_000)
    return page, frame, errors


def _assert_server_clean(app: App) -> None:
    assert not app.probe.exists(), "a payload ran on the server"
    log = app.log.read_text(errors="replace")
    assert "Traceback" not in log and "TemplateSyntaxError" not in log, log[-3000:]


def _markers_shown(page: object, search: str, n: int, timeout_s: float = 30.0) -> list[str]:
    """The popups and tooltips of the map's markers once it shows the ``n`` entities of the
    name ``search`` (the map of the previous search may still be on screen)."""
    deadline = time.monotonic() + timeout_s
    shown: list[str] = []
    while time.monotonic() < deadline:
        for frame in page.frames:  # type: ignore[attr-defined]
            if "st_folium" not in frame.url:
                continue
            try:
                shown = frame.evaluate(f"() => window.map && window.L ? ({SHOWN_JS})() : []")
            except Exception:  # noqa: BLE001 (a frame replaced while it was read: read again)
                shown = []
            if len(shown) == 2 * n and all(search in text for text in shown[::2]):
                return shown
        page.wait_for_timeout(100)  # type: ignore[attr-defined]
    raise AssertionError(f"no map of the {n} entities of {search!r}; last seen: {shown[:2]}")


def test_markers_mode_shows_each_payload_literally(app: App, browser: object) -> None:
    """Ten rows of each payload (a name search ``模板PP00``): folium markers. The first
    search comes in the address, the others are typed in the sidebar, one page for all."""
    page, _, errors = _visit(app, browser, "?q=模板0000&lang=en")
    try:
        box = page.get_by_label(t("search", "en"))  # type: ignore[attr-defined]
        for p, payload in enumerate(TEMPLATE_PAYLOADS):
            search = f"模板{p:02d}00"
            n = store.count_entities(app.db, make_filter(search=search))
            assert n == 10
            if p:
                box.fill(search)
                box.press("Enter")
            shown = _markers_shown(page, search, n)
            popups = shown[::2]
            # name_zh, name_en, source, location source and notes all show the payload as typed
            assert all(text.count(payload) >= 5 for text in popups), (payload, popups[:1])
            assert all(payload in tip for tip in shown[1::2]), payload
        assert errors == []
    finally:
        page.close()  # type: ignore[attr-defined]
    _assert_server_clean(app)


def test_compact_mode_shows_payloads_literally(app: App, browser: object) -> None:
    # "模板0" matches the rows of payloads 0-9: 1,600 rows, the compact marker mode
    page, frame, errors = _visit(app, browser, "?q=模板0&lang=en")
    try:
        frame.wait_for_function("() => { let n = 0; window.map.eachLayer(l => {"
                                " if (l instanceof L.MarkerClusterGroup) n += "
                                "l.getLayers().length; }); return n > 1000; }", timeout=30_000)
        shown = frame.evaluate(SHOWN_JS)  # type: ignore[attr-defined]
        assert len(shown) == 2 * 10 * ROWS_PER_PAYLOAD
        for payload in TEMPLATE_PAYLOADS[:10]:
            assert sum(payload in text for text in shown[::2]) >= ROWS_PER_PAYLOAD, payload
        assert errors == []
    finally:
        page.close()  # type: ignore[attr-defined]
    _assert_server_clean(app)


def test_view_mode_draws_cells_without_running_anything(app: App, browser: object) -> None:
    # every payload row: over the compact limit, so the page draws the view's cells
    page, frame, errors = _visit(app, browser, "?q=模板&lang=en&basemap=none")
    try:
        frame.wait_for_function(f"() => ({CELLS_JS})() > 0", timeout=30_000)
        assert frame.evaluate(CELLS_JS) == len(TEMPLATE_PAYLOADS) * ROWS_PER_PAYLOAD  # type: ignore[attr-defined]
        assert errors == []
    finally:
        page.close()  # type: ignore[attr-defined]
    _assert_server_clean(app)
