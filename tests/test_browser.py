"""End to end: ``streamlit run streamlit_app.py`` in Debian's headless Chromium, localhost only.

The app runs on a free localhost port against a database built in a temporary folder
whose registry has extra entities named like script injections. Every request that does
not go to the app is blocked and recorded; the test then checks that Leaflet drew the
markers and the layer paths inside the streamlit-folium iframe, that a filter in the URL
changes what is drawn, and that the injected names stay inert text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from benchmarks.bench_map import CHROMIUM, chromium, streamlit_app
from geo_app import build, store
from geo_app.filters import make_filter
from geo_app.settings import PROJECT_ROOT, Settings
from geo_app.vocab import REGISTRY_COLUMNS
from tests.conftest import copy_sources

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'

#: Registry rows whose names and sources try to inject markup or script.
XSS_ROWS = [
    {"id": "xss-img", "name_zh": "<img src=x onerror=alert(1)>",
     "name_en": "<script>alert(2)</script>",
     "lon": "120.30", "lat": "31.10", "location_precision": "site"},
    {"id": "xss-template", "name_zh": "${alert(1)}", "name_en": "${alert(document.domain)}",
     "lon": "121.20", "lat": "31.70", "location_precision": "campus"},
    {"id": "xss-backtick", "name_zh": "名`字`alert(1)`", "name_en": "back`tick",
     "lon": "120.40", "lat": "31.85", "location_precision": "town"},
    {"id": "xss-backslash", "name_zh": "C:\\users\\new", "name_en": "C:\\new\\table",
     "lon": "120.90", "lat": "31.00", "location_precision": "district"},
]


def _append_xss_rows(settings: Settings) -> None:
    path = settings.data_dir / "registry.csv"
    with open(path, "a", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(REGISTRY_COLUMNS))
        for row in XSS_ROWS:
            writer.writerow({
                "kind": "laboratory", "level": "national", "status": "operating", "board": "吴中区",
                "location_source": "test <b>source</b> ${x}", "source_datum": "WGS84",
                "source": "test `source` C:\\src\\x", "notes": "<i>note</i>", **row,
            })


@dataclass
class App:
    """The running app and what the browser attempted."""

    url: str
    db: Path
    blocked: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package "
                    "(apt-get install chromium); the end-to-end test needs it.")
    settings = copy_sources(tmp_path_factory.mktemp("browser"))
    _append_xss_rows(settings)
    build.build_database(settings)
    with _streamlit(settings) as app:
        yield app


@contextmanager
def _streamlit(settings: Settings) -> Iterator[App]:
    """``streamlit run streamlit_app.py`` on a free localhost port against ``settings``
    (started as the map benchmark starts it)."""
    with streamlit_app(settings, settings.data_dir.parent / "streamlit.log") as url:
        yield App(url=url, db=settings.db_path)


@pytest.fixture(scope="module")
def browser(app: App) -> Iterator[object]:
    with chromium() as launched:  # Debian's Chromium, launched as the map benchmark does
        yield launched


@dataclass
class Visit:
    """One page load: the map frame and what happened."""

    frame: object
    dialogs: list[str]
    errors: list[str]
    page: object


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in ("127.0.0.1", "localhost")


def visit(app: App, browser: object, query: str = "") -> Visit:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    dialogs: list[str] = []
    errors: list[str] = []

    def route(r: object) -> None:
        url = r.request.url  # type: ignore[attr-defined]
        if _is_local(url):
            r.continue_()  # type: ignore[attr-defined]
        else:
            app.blocked.append(url)
            r.abort()  # type: ignore[attr-defined]

    def on_dialog(d: object) -> None:
        dialogs.append(d.message)  # type: ignore[attr-defined]
        d.dismiss()  # type: ignore[attr-defined]

    page.route("**/*", route)
    page.on("dialog", on_dialog)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{app.url}/{query}")
    paths = page.frame_locator(MAP_FRAME).locator("path.leaflet-interactive")
    paths.first.wait_for(state="attached", timeout=30_000)
    frame = next(f for f in page.frames if "st_folium" in f.url)
    frame.wait_for_function("() => window.map && window.L && window.L.MarkerClusterGroup",
                            timeout=10_000)
    return Visit(frame=frame, dialogs=dialogs, errors=errors, page=page)


MARKERS_JS = """() => {
    let n = 0, groups = 0;
    window.map.eachLayer(l => {
        if (l instanceof L.MarkerClusterGroup) { groups++; n += l.getLayers().length; }
    });
    return {markers: n, groups: groups,
            icons: document.querySelectorAll('.sim-marker, .marker-cluster').length,
            paths: document.querySelectorAll('path.leaflet-interactive').length,
            legend: document.querySelectorAll('.sim-legend').length,
            injected: document.querySelectorAll(
                'img[src="x"], [onerror], .leaflet-container script').length};
}"""

OPEN_POPUP_JS = """async (id) => {
    let group = null;
    window.map.eachLayer(l => { if (l instanceof L.MarkerClusterGroup) group = l; });
    const parser = new DOMParser();  // inert: parsing runs no script and loads nothing
    const marker = group.getLayers().find(m => {
        const doc = parser.parseFromString(m.getPopup().getContent(), 'text/html');
        const el = doc.querySelector('.sim-popup-id');
        return el && el.textContent === id;
    });
    if (!marker) return null;
    await new Promise(resolve => group.zoomToShowLayer(marker, resolve));
    marker.openPopup();
    const box = marker.getPopup().getElement().querySelector('.leaflet-popup-content .sim-popup');
    const out = {zh: box.querySelector('.sim-popup-zh').textContent,
                 en: box.querySelector('.sim-popup-en').textContent,
                 text: box.innerText};
    marker.closePopup();
    return out;
}"""


def expected_points(db: Path, **kw: object) -> int:
    ents = store.query_entities(db, make_filter(**kw))  # type: ignore[arg-type]
    return int(ents.geometry.notna().sum())


def test_map_draws_offline_and_names_stay_inert(app: App, browser: object) -> None:
    v = visit(app, browser)
    try:
        drawn = v.frame.evaluate(MARKERS_JS)  # type: ignore[attr-defined]
        assert drawn["groups"] == 1 and drawn["legend"] == 1
        assert drawn["markers"] == expected_points(app.db) > len(XSS_ROWS)
        assert drawn["icons"] > 0
        assert drawn["paths"] >= 5 + 10 + 4  # strategy layers, county boundaries, water
        for row in XSS_ROWS:
            shown = v.frame.evaluate(OPEN_POPUP_JS, row["id"])  # type: ignore[attr-defined]
            assert shown is not None, row["id"]
            assert shown["zh"] == row["name_zh"] and shown["en"] == row["name_en"]
            assert "${x}" in shown["text"] and "C:\\src\\x" in shown["text"]
            assert "<b>source</b>" in shown["text"] and "<i>note</i>" in shown["text"]
        assert v.frame.evaluate(MARKERS_JS)["injected"] == 0  # type: ignore[attr-defined]
        v.page.wait_for_timeout(300)  # type: ignore[attr-defined]
        assert v.dialogs == []
        assert v.errors == []
    finally:
        v.page.close()  # type: ignore[attr-defined]
    assert app.blocked == [], f"requests outside localhost: {app.blocked}"


@pytest.mark.parametrize(("query", "flt"), [
    ("?board=昆山市", {"boards": ["昆山市"]}),
    ("?kind=laboratory&lang=en", {"kinds": ["laboratory"]}),
])
def test_url_filter_changes_drawn_markers(app: App, browser: object, query: str,
                                          flt: dict[str, list[str]]) -> None:
    v = visit(app, browser, query)
    try:
        drawn = v.frame.evaluate(MARKERS_JS)  # type: ignore[attr-defined]
        want = expected_points(app.db, **flt)
        assert 0 < want < expected_points(app.db)
        assert drawn["markers"] == want
        assert drawn["paths"] >= 5 + 10 + 4  # the overlays stay whatever the filter
        assert v.errors == [] and v.dialogs == []
        if "lang=en" in query:
            v.frame.locator(".sim-legend summary").click()  # type: ignore[attr-defined]
            legend = v.frame.locator(".sim-legend").inner_text()  # type: ignore[attr-defined]
            assert "Legend" in legend and "Laboratory" in legend
    finally:
        v.page.close()  # type: ignore[attr-defined]
    assert app.blocked == [], f"requests outside localhost: {app.blocked}"


def test_a_new_visitor_gets_the_widgets_after_the_map_without_a_second_map(
        app: App, browser: object) -> None:
    """The first run leaves the sidebar's widgets to the next, which the browser's timer
    asks for (the shipped registry's markers never report a view): they come by
    themselves, with the URL's filter, and the map's frame is not loaded again."""
    v = visit(app, browser, "?kind=laboratory&lang=en")
    try:
        v.frame.evaluate("() => { window.__firstDocument = true; }")  # type: ignore[attr-defined]
        before = v.frame.evaluate(MARKERS_JS)  # type: ignore[attr-defined]
        sidebar = v.page.locator('[data-testid="stSidebar"]')  # type: ignore[attr-defined]
        sidebar.locator('[data-testid="stMultiSelect"]').first.wait_for(timeout=20_000)
        sidebar.get_by_text("Laboratory", exact=True).wait_for(timeout=5_000)
        assert sidebar.get_by_text("Loading the filters …").count() == 0
        v.page.wait_for_timeout(500)  # type: ignore[attr-defined]
        assert v.frame.evaluate("() => window.__firstDocument === true")  # type: ignore[attr-defined]
        assert v.frame.evaluate(MARKERS_JS)["markers"] == before["markers"]  # type: ignore[attr-defined]
        assert before["markers"] == expected_points(app.db, kinds=["laboratory"])
        assert v.errors == [] and v.dialogs == []
    finally:
        v.page.close()  # type: ignore[attr-defined]


def test_language_and_filters_survive_page_switches(app: App, browser: object) -> None:
    v = visit(app, browser, "?kind=laboratory&lang=en")
    page = v.page
    try:
        want = expected_points(app.db, kinds=["laboratory"])
        page.get_by_role("link", name="Data & sources").click()  # type: ignore[attr-defined]
        page.get_by_role("heading", name="Data & sources", exact=True).wait_for(timeout=20_000)  # type: ignore[attr-defined]
        assert "lang=en" in page.url  # type: ignore[attr-defined]
        page.get_by_role("link", name="Map", exact=True).click()  # type: ignore[attr-defined]
        page.wait_for_url("**/?*kind=laboratory*", timeout=20_000)  # type: ignore[attr-defined]
        frame = page.frame_locator(MAP_FRAME)  # type: ignore[attr-defined]
        frame.locator("path.leaflet-interactive").first.wait_for(state="attached", timeout=20_000)
        live = next(f for f in page.frames if "st_folium" in f.url)  # type: ignore[attr-defined]
        live.wait_for_function("() => window.map && window.L && window.L.MarkerClusterGroup")
        assert live.evaluate(MARKERS_JS)["markers"] == want
        page.get_by_text("中文", exact=True).click()  # type: ignore[attr-defined]
        page.get_by_role("heading", name="苏州科创地图").wait_for(timeout=20_000)  # type: ignore[attr-defined]
        page.wait_for_url("**lang=zh**", timeout=10_000)  # type: ignore[attr-defined]
        assert "kind=laboratory" in page.url  # type: ignore[attr-defined]
        assert v.errors == [] and v.dialogs == []
    finally:
        page.close()  # type: ignore[attr-defined]
    assert app.blocked == [], f"requests outside localhost: {app.blocked}"


# ----------------------------------------------------------------------- large registries (issue 9)

N_LARGE = 5_000

LAYERS_JS = """() => {
    let cells = 0, counted = 0, markers = 0, groups = 0;
    window.map.eachLayer(l => {
        if (l.options && l.options.simCount) { cells++; counted += l.options.simCount; }
        if (l instanceof L.MarkerClusterGroup) { groups++; markers += l.getLayers().length; }
    });
    return {cells, counted, markers, groups, zoom: window.map.getZoom(),
            swaps: (window.feature_group || []).length};
}"""

PICK_CELL_JS = """() => {
    const cells = [];
    window.map.eachLayer(l => { if (l.options && l.options.simCount) cells.push(l); });
    const inView = cells.filter(c => window.map.getBounds().contains(c.getLatLng()));
    inView.sort((a, b) => a.options.simCount - b.options.simCount);
    const pick = inView[Math.floor(inView.length / 2)];
    document.querySelectorAll('[data-pick]').forEach(e => e.removeAttribute('data-pick'));
    pick.getElement().setAttribute('data-pick', '1');
    return pick.options.simCount;
}"""

MARKER_POPUP_JS = """async (id) => {
    let found = null, group = null;
    window.map.eachLayer(l => { if (l instanceof L.MarkerClusterGroup) group = l; });
    const parser = new DOMParser();  // inert: parsing runs no script and loads nothing
    const markers = group ? group.getLayers() : [];
    for (const m of markers) {
        const doc = parser.parseFromString(m.getPopup().getContent(), 'text/html');
        const el = doc.querySelector('.sim-popup-id');
        if (el && (id === null || el.textContent === id)) { found = m; break; }
    }
    if (!found) return null;
    const content = found.getPopup().getContent();
    await new Promise(resolve => group.zoomToShowLayer(found, resolve));
    found.openPopup();
    const box = found.getPopup().getElement().querySelector('.leaflet-popup-content .sim-popup');
    const out = {content: content, id: box.querySelector('.sim-popup-id').textContent,
                 zh: box.querySelector('.sim-popup-zh').textContent,
                 en: box.querySelector('.sim-popup-en').textContent, text: box.innerText,
                 tooltip: found.getTooltip().getContent()};
    found.closePopup();
    return out;
}"""


@pytest.fixture(scope="module")
def large_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The app on the shipped data, the injection rows and 5,000 synthetic entities."""
    import shutil

    from benchmarks.synthetic import write_synthetic_data_dir

    root = tmp_path_factory.mktemp("browser-large")
    data = write_synthetic_data_dir(root / "data", N_LARGE)
    shutil.copytree(PROJECT_ROOT / "layers", root / "layers")
    settings = Settings(db_path=data / "geo_app.duckdb", data_dir=data, layers_dir=root / "layers")
    _append_xss_rows(settings)
    build.build_database(settings)
    with _streamlit(settings) as app:
        yield app


def _wait_swap(frame: object, before: int) -> dict[str, object]:
    """Wait until the app has sent a new layer for the view (after a rerun)."""
    frame.wait_for_function(  # type: ignore[attr-defined]
        "(n) => (window.feature_group || []).length > n", arg=before, timeout=30_000)
    return frame.evaluate(LAYERS_JS)  # type: ignore[attr-defined,no-any-return]


def _settle(page: object, frame: object) -> dict[str, object]:
    """Wait for a new visitor's start-up runs to end: the sidebar's widgets drawn (they come
    one run after the map), then no new layer for a whole second. A bubble picked before
    that can be replaced under the mouse by the layer of the view the map reported."""
    page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').first.wait_for(  # type: ignore[attr-defined]
        timeout=60_000)
    swaps = -1
    for _ in range(30):
        now = int(frame.evaluate(LAYERS_JS)["swaps"])  # type: ignore[attr-defined]
        if now == swaps:
            break
        swaps = now
        page.wait_for_timeout(1000)  # type: ignore[attr-defined]
    else:
        pytest.fail("the map kept receiving new layers for 30 s after the widgets came")
    return frame.evaluate(LAYERS_JS)  # type: ignore[attr-defined,no-any-return]


def test_large_registry_cells_click_through_to_markers(large_app: App, browser: object) -> None:
    from geo_app import maps

    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    errors: list[str] = []
    dialogs: list[str] = []

    def route(r: object) -> None:
        url = r.request.url  # type: ignore[attr-defined]
        if _is_local(url):
            r.continue_()  # type: ignore[attr-defined]
        else:
            large_app.blocked.append(url)
            r.abort()  # type: ignore[attr-defined]

    page.route("**/*", route)  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: errors.append(str(e)))  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    try:
        page.goto(large_app.url)  # type: ignore[attr-defined]
        page.frame_locator(MAP_FRAME).locator(".sim-cell").first.wait_for(  # type: ignore[attr-defined]
            state="attached", timeout=60_000)
        frame = next(f for f in page.frames if "st_folium" in f.url)  # type: ignore[attr-defined]
        frame.wait_for_function("() => window.map && window.L && window.L.MarkerClusterGroup")
        located = expected_points(large_app.db)
        drawn = _settle(page, frame)
        assert drawn["markers"] == 0 and drawn["cells"] > 0
        assert drawn["counted"] == located > 2_000  # every entity is in some bubble
        assert frame.locator("path.leaflet-interactive").count() >= 5 + 10 + 4  # overlays stay
        tip = frame.evaluate("""() => { let t = null; window.map.eachLayer(l => {
            if (!t && l.options && l.options.simCount)
                t = {n: l.options.simCount, text: l.getTooltip().getContent()}; }); return t; }""")
        assert f"<b>{tip['n']:,} 个主体</b>" in tip["text"] and "点击放大查看" in tip["text"]
        assert "{n}" not in tip["text"]

        # clicking bubbles (real mouse clicks) zooms in until the view's entities come one by one
        for _ in range(5):
            if drawn["markers"]:
                break
            frame.evaluate(PICK_CELL_JS)
            frame.locator('[data-pick="1"]').click()
            drawn = _wait_swap(frame, int(drawn["swaps"]))  # type: ignore[arg-type]
        assert 0 < drawn["markers"] <= 2_000 and drawn["cells"] == 0, drawn

        # a marker's popup is exactly the popup of that entity in the small-registry map
        shown = frame.evaluate(MARKER_POPUP_JS, None)
        assert shown is not None
        row, _ = store.query_entities_page(large_app.db, entity_id=shown["id"])
        lyr = store.read_geo_table(large_app.db, "layers")
        record = row.to_dict("records")[0]
        assert shown["content"] == maps.popup_html(record, "zh", maps.layer_name_map(lyr, "zh"))
        assert shown["tooltip"] == maps.tooltip_html(record, "zh")

        # names that try to inject stay text in the zoomed-in markers too
        for xss in XSS_ROWS:
            before = int(frame.evaluate(LAYERS_JS)["swaps"])
            frame.evaluate(f"() => window.map.setView([{xss['lat']}, {xss['lon']}], 16)")
            _wait_swap(frame, before)
            shown = frame.evaluate(MARKER_POPUP_JS, xss["id"])
            assert shown is not None, xss["id"]
            assert shown["zh"] == xss["name_zh"] and shown["en"] == xss["name_en"]
            assert "${x}" in shown["text"] and "<b>source</b>" in shown["text"]
        assert frame.evaluate(MARKERS_JS)["injected"] == 0

        # zooming out brings the bubbles back
        before = int(frame.evaluate(LAYERS_JS)["swaps"])
        frame.evaluate("() => window.map.setZoom(9)")
        drawn = _wait_swap(frame, before)
        assert drawn["cells"] > 0 and drawn["markers"] == 0
        page.wait_for_timeout(300)  # type: ignore[attr-defined]
        assert errors == [] and dialogs == []
    finally:
        page.close()  # type: ignore[attr-defined]
    assert large_app.blocked == [], f"requests outside localhost: {large_app.blocked}"
