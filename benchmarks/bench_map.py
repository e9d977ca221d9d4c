"""Map rows of ``python -m benchmarks.run`` (by hand): page payload, server build, first frame.

For the N synthetic entities of the database ``run.py`` built:

map page payload
    The standalone HTML page of the map exactly as the app builds it for the unfiltered
    registry (:func:`geo_app.views.map.plan_map`: the base map plus the layer of its first
    view), in MB. Baseline: the same page setup (overlays, Leaflet served locally) with
    folium's ``FastMarkerCluster`` holding all N points (the issue's baseline).
map server build
    Database → that HTML: the entity query, aggregation, Folium and rendering. The
    overlays (layers, boundaries, water) are read once per database version by the app,
    so they are read once here too and not counted. Baseline: query the N coordinates,
    ``FastMarkerCluster``, render.
first frame (page)
    Headless Chromium (``/usr/bin/chromium``) opens the page from a local ``http.server``
    in a fresh browser context; measured from navigation start to the first animation
    frame in which Leaflet has the entities (cells, markers or clusters) in the DOM.
    Requests beyond localhost are blocked. Baseline: the ``FastMarkerCluster`` page.
filter change → first frame (page)
    Server build of the page for another filter (``status=operating``, about 58 % of the
    synthetic registry) plus the first frame of that page.
filter change → first frame (app)
    ``streamlit run streamlit_app.py`` on the database; a new name search is typed into
    the sidebar (each a different filter, so no cache helps) and timed from pressing
    Enter to the animation frame in which the new map shows its entities. The budget of
    issue 9 (≤ 0.5× the ``FastMarkerCluster`` first frame at N = 100k) applies here.
app first load
    The first visitor of the app's new server (a new tab, cold caches) to the map's first
    frame. The goal of issue 18 (≤ 1.5× a bare Streamlit page) is for a new tab on a warm
    server: ``--first-sight`` (:func:`first_sight`).

Every time is the median of several runs (the machine is shared; see docs/scale.md).
``quick=True`` (the test-suite smoke run) measures payload and server build only; the
browser path of the large-registry map is exercised by ``tests/test_browser.py``.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from geo_app import assets, maps, store
from geo_app.filters import EntityFilter, make_filter
from geo_app.i18n import t
from geo_app.settings import PROJECT_ROOT, Settings
from geo_app.views import map as map_view

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
#: The filter of the page-level "filter change" (a large share, so the map stays aggregated).
FILTER = make_filter(statuses=["operating"])
#: Any of these in the DOM means Leaflet has drawn entities (ours or the baseline's).
DRAWN = ".sim-cell, .sim-marker, .marker-cluster, .leaflet-marker-icon"
PAGE_TIMEOUT_S = 180
MB = 1_000_000

_FIRST_FRAME_JS = """(selector) => document.querySelector(selector) ? performance.now() : false"""
_APP_FRAME_JS = """(selector) => {
    for (const f of document.querySelectorAll('iframe[title="streamlit_folium.st_folium"]')) {
        const w = f.contentWindow;
        if (!w || w.__stale || !w.document) continue;
        if (w.document.querySelector(selector)) return performance.now();
    }
    return false;
}"""
_MARK_STALE_JS = """() => document.querySelectorAll('iframe[title="streamlit_folium.st_folium"]')
    .forEach(f => { if (f.contentWindow) f.contentWindow.__stale = true; })"""
#: After a filter change: a new map drawn (another iframe), or the same map with a new
#: layer drawn (a large filter: the base map stays and only its layer is swapped).
_APP_CHANGED_JS = """([selector, swaps]) => {
    for (const f of document.querySelectorAll('iframe[title="streamlit_folium.st_folium"]')) {
        const w = f.contentWindow;
        if (!w || !w.document) continue;
        if (w.__stale && !((w.feature_group || []).length > swaps)) continue;
        if (w.document.querySelector(selector)) return performance.now();
    }
    return false;
}"""


# ----------------------------------------------------------------------------- pages


def static_inputs(db: Path) -> maps.MapInputs:
    """The overlays of the page (read once per database version, as the app does)."""
    empty = store.entities_to_gdf(store.query_entities_page(db, limit=0)[0])
    return maps.MapInputs(entities=empty, layers=store.read_geo_table(db, "layers"),
                          boundaries=store.read_geo_table(db, "boundaries"),
                          water=store.read_geo_table(db, "water"),
                          boards=store.read_table(db, "boards"))


def app_page(db: Path, flt: EntityFilter, static: maps.MapInputs, *, asset_base: str,
             lang: str = "zh") -> tuple[str, str]:
    """The map page the app builds for ``flt`` at its first drawing, and its mode."""
    summary = map_view.load_summary(str(db), "bench", flt)
    page = map_view.MapPage(db=str(db), version="bench", flt=flt, lang=lang, basemap="none",
                            summary=summary, inputs=static, asset_base=asset_base,
                            layer_names=maps.layer_name_map(static.layers, lang))
    plan = map_view.plan_map(page, None, loaders=map_view.DIRECT)
    if plan.layer is not None:  # st_folium sends it beside the page; a standalone page holds it
        plan.layer.add_to(plan.fmap)
    return maps.render_html(plan.fmap), plan.mode


def fmc_page(db: Path, static: maps.MapInputs, *, asset_base: str) -> str:
    """The baseline: the same page setup with folium FastMarkerCluster holding every point."""
    import folium.plugins

    lat, lon = [], []
    for batch in store.iter_entity_batches(db, columns=["lat", "lon"],
                                           batch_size=262_144):
        lat.append(batch.column("lat").to_numpy(zero_copy_only=False))
        lon.append(batch.column("lon").to_numpy(zero_copy_only=False))
    y = np.concatenate(lat).astype(float) if lat else np.empty(0)
    x = np.concatenate(lon).astype(float) if lon else np.empty(0)
    ok = np.isfinite(x) & np.isfinite(y)
    m = maps.build_map(static, asset_base=asset_base)
    urls = assets.asset_urls(asset_base)
    # Leaflet's own marker (the default callback needs awesome-markers from a CDN)
    fmc = folium.plugins.FastMarkerCluster(
        np.column_stack([y[ok], x[ok]]).tolist(),
        callback="function (row) { return L.marker(new L.LatLng(row[0], row[1])); }",
        control=False)  # added after the page's layer control, which must not list it
    fmc.default_js = [("markerclusterjs", urls["markercluster_js"])]
    fmc.default_css = [("markerclustercss", urls["markercluster_css"]),
                       ("markerclusterdefaultcss", urls["markercluster_default_css"])]
    fmc.add_to(m)
    return maps.render_html(m)


def timed(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time (seconds) of ``repeat`` runs and the last result."""
    times: list[float] = []
    result: Any = None
    for _ in range(max(repeat, 1)):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


# ----------------------------------------------------------------------------- browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"server for {url} exited with {proc.returncode}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (localhost)
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    msg = f"{url} did not answer within {timeout} s"
    raise RuntimeError(msg)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def static_site(root: Path) -> Iterator[str]:
    """Serve ``root`` (pages plus ``vendor/``) from ``python -m http.server``; yields the URL."""
    assets.ensure_assets(root / "vendor")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/vendor/leaflet/leaflet.js", proc)
        yield url
    finally:
        _stop(proc)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: apt-get install chromium (the browser rows need it)"
        raise RuntimeError(msg)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _local_only(page: Any) -> None:
    def route(r: Any) -> None:
        parts = urlsplit(r.request.url)
        if (parts.scheme in ("data", "blob", "about")
                or parts.hostname in ("127.0.0.1", "localhost")):
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)


def first_frame(browser: Any, url: str) -> float:
    """Seconds from navigation start to the first frame with entities drawn (fresh context)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        _local_only(page)
        page.goto(url, wait_until="commit", timeout=PAGE_TIMEOUT_S * 1000)
        ms = page.wait_for_function(_FIRST_FRAME_JS, arg=DRAWN, polling="raf",
                                    timeout=PAGE_TIMEOUT_S * 1000).json_value()
        return float(ms) / 1000
    finally:
        context.close()


@contextmanager
def streamlit_app(settings: Settings, log: Path, *, script: Path | None = None,
                  port: int | None = None, host: str = "127.0.0.1",
                  extra_args: Sequence[str] = ()) -> Iterator[str]:
    """``streamlit run streamlit_app.py`` on ``settings``' database; yields its URL.

    ``script`` runs another page instead (the bare reference of :func:`bare_first_heading`);
    ``port`` (a free one by default), ``host`` and ``extra_args`` (more ``streamlit run``
    options, e.g. ``--secrets.files``) are for callers that must know the URL beforehand.
    """
    port = port or _free_port()
    env = {**os.environ, "GEO_APP_DB": str(settings.db_path),
           "GEO_APP_DATA_DIR": str(settings.data_dir),
           "GEO_APP_LAYERS_DIR": str(settings.layers_dir)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run",
             str(script or PROJECT_ROOT / "streamlit_app.py"),
             "--server.port", str(port), "--server.address", host,
             "--server.headless", "true", "--browser.gatherUsageStats", "false", *extra_args],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://{host}:{port}"
        try:
            try:
                _wait_http(f"{url}/_stcore/health", proc)
            except RuntimeError as err:
                msg = f"{err}; streamlit said:\n{log.read_text(errors='replace')}"
                raise RuntimeError(msg) from err
            yield url
        finally:
            _stop(proc)


_BARE_PAGE = 'import streamlit as st\n\nst.title("bare")\n'


#: ``streamlit run`` options of the first-sight rows: no file watcher, so an edit of the
#: work tree while the benchmark runs cannot make the app re-import its modules mid-run.
QUIET = ("--server.fileWatcherType", "none")


@contextmanager
def bare_server(browser: Any, settings: Settings, work: Path) -> Iterator[str]:
    """A running Streamlit page holding one ``st.title`` (what any Streamlit page costs
    here, the reference of the app's first load); yields its URL, visited once already
    (the first visit compiles the script, so it is not a reference)."""
    script = work / "bare_page.py"
    script.write_text(_BARE_PAGE, encoding="utf-8")
    with streamlit_app(settings, work / "bare.log", script=script, extra_args=QUIET) as url:
        bare_heading(browser, url)
        yield url


def bare_heading(browser: Any, url: str) -> float:
    """Seconds from navigation to the heading of the bare page at ``url``, in a new tab."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _local_only(page)
        t0 = time.perf_counter()
        page.goto(url, timeout=PAGE_TIMEOUT_S * 1000)
        page.get_by_role("heading", name="bare").wait_for(timeout=PAGE_TIMEOUT_S * 1000)
        return time.perf_counter() - t0
    finally:
        page.close()


def bare_first_heading(browser: Any, settings: Settings, work: Path, repeat: int) -> float:
    """Median seconds of ``repeat`` new tabs to the heading of the bare page."""
    with bare_server(browser, settings, work) as url:
        return statistics.median(bare_heading(browser, url) for _ in range(repeat))


_CELLS_SWAPS_JS = """() => { const w = [...document.querySelectorAll(
    'iframe[title="streamlit_folium.st_folium"]')].map(f => f.contentWindow).find(w => w && w.map);
    return w ? (w.feature_group || []).length : -1; }"""
#: The moves of :func:`pan_times`, in turn: each leaves the layer's window (the view plus
#: half a view on each side), so each needs a new layer (a short pan needs none).
_MOVES_JS = """(i) => { const w = [...document.querySelectorAll(
    'iframe[title="streamlit_folium.st_folium"]')].map(f => f.contentWindow).find(w => w && w.map);
    const size = w.map.getSize();
    const moves = [() => w.map.panBy([size.x, size.y * 0.6], {animate: false}),
                   () => w.map.zoomIn(1, {animate: false}),
                   () => w.map.zoomOut(1, {animate: false}),
                   () => w.map.panBy([-size.x, -size.y * 0.6], {animate: false})];
    moves[i % moves.length](); }"""


def pan_times(browser: Any, url: str, repeat: int) -> list[float]:
    """Seconds from a pan or zoom of the map to the view's new layer drawn (filters over
    ``MARKER_LIMIT`` only: then the page sends the view's cells or markers after each move).
    The moves take turns: a pan of one view, a zoom in, a zoom out, a pan back."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _local_only(page)
        page.goto(url, timeout=PAGE_TIMEOUT_S * 1000)
        page.wait_for_function(_APP_FRAME_JS, arg=DRAWN, polling="raf",
                               timeout=PAGE_TIMEOUT_S * 1000)
        page.wait_for_timeout(2500)
        times: list[float] = []
        for i in range(repeat):
            before = page.evaluate(_CELLS_SWAPS_JS)
            t0 = time.perf_counter()
            page.evaluate(_MOVES_JS, i)
            page.wait_for_function(f"() => ({_CELLS_SWAPS_JS})() > {before}", polling="raf",
                                   timeout=PAGE_TIMEOUT_S * 1000)
            times.append(time.perf_counter() - t0)
            page.wait_for_timeout(1500)
        return times
    finally:
        page.close()


def app_times(browser: Any, url: str, repeat: int) -> tuple[float, list[float]]:
    """First load of the app, then ``repeat`` filter changes (new name searches)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _local_only(page)
        t0 = time.perf_counter()
        page.goto(url, timeout=PAGE_TIMEOUT_S * 1000)
        page.wait_for_function(_APP_FRAME_JS, arg=DRAWN, polling="raf",
                               timeout=PAGE_TIMEOUT_S * 1000)
        first = time.perf_counter() - t0
        page.wait_for_timeout(2500)  # the map reports its view; the follow-up run settles
        box = page.get_by_label(t("search", "zh"))
        changes: list[float] = []
        for i in range(repeat):
            page.evaluate(_MARK_STALE_JS)
            swaps = page.evaluate(_CELLS_SWAPS_JS)
            box.fill(f"合成主体{i + 1}")
            t0 = time.perf_counter()
            box.press("Enter")
            page.wait_for_function(_APP_CHANGED_JS, arg=[DRAWN, swaps], polling="raf",
                                   timeout=PAGE_TIMEOUT_S * 1000)
            changes.append(time.perf_counter() - t0)
            page.wait_for_timeout(2500)
        return first, changes
    finally:
        page.close()


# ----------------------------------------------------------------------------- profile

#: The page script of the profiled app: the app's own script, run by :func:`profiled_run`.
_PROFILE_PAGE = """import sys
import time
_t0 = time.perf_counter()
_first = "geo_app.views.map" not in sys.modules
if {root!r} not in sys.path:
    sys.path.insert(0, {root!r})
from benchmarks import bench_map
bench_map.profiled_run({app!r}, {log!r}, _t0, _first)
"""
#: Timed sections of a run of the map page (``module:attribute``), in page order.
PROFILED = ("geo_app.views.map:db_path", "geo_app.views.map:data_version",
            "geo_app.views.map:_static", "geo_app.views.map:layer_choices",
            "geo_app.views.map:seed_filter", "geo_app.views.map:seed_basemap",
            "summary", "geo_app.views.map:_point_index", "geo_app.store:match_rowids",
            "geo_app.store:iter_point_batches", "geo_app.views.map:_display_overlays",
            "geo_app.views.map:_display_points",
            "located", "window_rows", "geo_app.views.map:_base_map", "geo_app.maps:build_map",
            "geo_app.aggregate:plan_view", "geo_app.maps:view_layer",
            "streamlit_folium:_get_html", "streamlit_folium:_get_header",
            "streamlit_folium:_get_map_string", "streamlit_folium:_get_feature_group_string",
            "streamlit_folium:_component_func", "geo_app.views.map:_whole_map",
            "geo_app.views.map:_view_component",
            "geo_app.views.map:_draw_sidebar",
            "geo_app.views.map:_draw_no_point")
_SECTIONS: dict[str, float] = {}


def patched_steps() -> list[tuple[str, str]]:
    """The ``(module, attribute)`` of each section of :data:`PROFILED` that
    :func:`_install_timers` wraps in place (the others are the page's loaders, timed
    through ``CACHED``)."""
    steps = []
    for entry in PROFILED:
        module_name, _, attr = entry.partition(":")
        if attr:
            steps.append((module_name, attr))
    return steps


def _timer(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def timed_call(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            _SECTIONS[name] = _SECTIONS.get(name, 0.0) + time.perf_counter() - t0

    timed_call.__wrapped__ = func  # type: ignore[attr-defined]
    return timed_call


def _install_timers() -> None:
    """Wrap the page's steps in timers (once per server process; the benchmark's app only)."""
    import importlib

    map_mod: Any = importlib.import_module("geo_app.views.map")  # patched below
    if getattr(map_mod, "_bench_timed", False):
        return
    for module_name, attr in patched_steps():
        module = importlib.import_module(module_name)
        setattr(module, attr, _timer(attr, getattr(module, attr)))
    cached = map_mod.CACHED
    timed = map_mod.Loaders(_timer("summary", cached.summary), _timer("located", cached.located),
                            _timer("window_rows", cached.window_rows))
    map_mod.CACHED = timed
    plan = map_mod.plan_map
    map_mod.plan_map = lambda page, view=None, *, loaders=timed: plan(page, view, loaders=loaders)
    map_mod._bench_timed = True  # noqa: SLF001


def profiled_run(app: str, log: str, t0: float, first: bool) -> None:
    """Run the app's script with the map page's steps timed; appends one JSON line to ``log``
    per run: ``total``, ``import`` (the page modules, first run of the process only) and each
    section of :data:`PROFILED` that ran (seconds). ``t0`` is when the run started."""
    import json

    _install_timers()
    t_import = time.perf_counter() - t0
    _SECTIONS.clear()
    source = Path(app).read_text(encoding="utf-8")
    try:
        exec(compile(source, app, "exec"), {"__name__": "__main__", "__file__": app})  # noqa: S102
    finally:
        record = {"start": time.time() - (time.perf_counter() - t0),
                  "total": time.perf_counter() - t0, "first": first,
                  "import": t_import if first else 0.0, **_SECTIONS}
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")


#: Milestones of the first load, each the first animation frame in which it holds
#: (``performance.now()`` of the page, ms from navigation start).
_MILESTONES_JS = """([selector, timeoutMs]) => new Promise((resolve, reject) => {
    const seen = {};
    const give_up = performance.now() + timeoutMs;
    const frame = () => [...document.querySelectorAll(
        'iframe[title="streamlit_folium.st_folium"]')].find(f => f.contentWindow);
    const checks = {
        app: () => document.querySelector('[data-testid="stApp"]'),
        heading: () => document.querySelector('h1'),
        iframe: () => frame(),
        iframe_loaded: () => { const f = frame(); return f && f.contentDocument
            && f.contentDocument.readyState === 'complete'
            && f.contentDocument.getElementById('root'); },
        leaflet: () => { const f = frame(); return f && f.contentWindow.L; },
        map: () => { const f = frame(); return f && f.contentWindow.map; },
        overlays: () => { const f = frame(); return f && f.contentDocument.querySelector(
            'path.leaflet-interactive'); },
        drawn: () => { const f = frame(); return f && f.contentDocument.querySelector(selector); },
    };
    const tick = () => {
        const now = performance.now();
        for (const [k, check] of Object.entries(checks)) {
            try { if (!(k in seen) && check()) seen[k] = now; } catch (e) {}
        }
        if ('drawn' in seen) { seen.origin = performance.timeOrigin; resolve(seen); }
        else if (now > give_up) reject(new Error('no entities drawn; milestones seen: '
                                                 + JSON.stringify(seen)));
        else requestAnimationFrame(tick);
    };
    tick();
})"""
#: The browser milestones, in order, with what each marks.
MILESTONES = {
    "app": "Streamlit's app shell in the DOM",
    "heading": "the page's title (the script ran up to st.title)",
    "iframe": "the st_folium iframe in the DOM",
    "iframe_loaded": "the component's document loaded",
    "leaflet": "Leaflet loaded in the iframe",
    "map": "the map script ran (window.map)",
    "overlays": "an overlay path drawn",
    "drawn": "entities drawn (bubbles or markers)",
}


def visit_milestones(browser: Any, url: str) -> tuple[float, dict[str, Any]]:
    """A new tab on the app: seconds to the first frame with entities, and every milestone (s)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _local_only(page)
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=PAGE_TIMEOUT_S * 1000)
        seen = page.evaluate(_MILESTONES_JS, [DRAWN, PAGE_TIMEOUT_S * 1000])
        total = time.perf_counter() - t0
        return total, {k: float(v) / 1000 for k, v in seen.items()}  # origin: epoch s
    finally:
        page.close()


def _read_runs(log: Path, start: int = 0) -> list[dict[str, Any]]:
    import json

    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()[start:]
    return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Profile:
    """Where the first load goes: server start, the runs of the page script, browser milestones."""

    n: int
    server_start: float
    cold_visit: float
    cold_runs: list[dict[str, Any]]
    visits: list[float]
    milestones: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    pan_runs: list[dict[str, Any]]
    bare: float
    pans: list[float]

    def lines(self) -> list[str]:
        """The profile as text (medians over the warm visits; ms)."""
        def med(values: list[float]) -> float:
            return statistics.median(values) if values else float("nan")

        out = [f"N = {self.n:,}: server start (process → health) {self.server_start:.2f} s; "
               f"first visitor {self.cold_visit:.2f} s; new tab on the warm server "
               f"{med(self.visits):.2f} s (median of {len(self.visits)}); bare page heading "
               f"{self.bare:.2f} s"
               + (f"; pan → redrawn {med(self.pans):.2f} s" if self.pans else ""),
               "browser milestones, new tab (s from navigation, median):"]
        for key, what in MILESTONES.items():
            out.append(f"  {key:<14} "
                       f"{med([m[key] for m in self.milestones if key in m]):6.2f}  {what}")
        for i, m in enumerate(self.milestones):
            out.append(f"  tab {i + 1}: script runs (start s from navigation, length s): "
                       f"{m.get('run_times')}")
        for title, runs in (("first visitor's runs", self.cold_runs),
                            ("runs of a new tab (median per run)", self.runs),
                            ("pan reruns (median)", self.pan_runs)):
            if not runs:
                continue
            out.append(f"page script, {title} (ms):")
            keys = ["total", "import", *(k.split(":")[-1] for k in PROFILED)]
            for key in dict.fromkeys(keys):
                vals = [r[key] for r in runs if key in r]
                if vals and max(vals) >= 0.0005:
                    shown = (" ".join(f"{v * 1000:7.1f}" for v in vals) if title.startswith("first")
                             else f"{med(vals) * 1000:7.1f}")
                    out.append(f"  {key:<26} {shown}")
        return out


def profile_first_load(n: int, settings: Settings, work: Path, browser: Any, *,
                       visits: int = 4, pans: int = 3) -> Profile:
    """Profile the app's first frame (see :class:`Profile`): the app under :func:`profiled_run`."""
    log = work / "profile.jsonl"
    log.unlink(missing_ok=True)
    script = work / "profiled_app.py"
    static = work / "static"  # Streamlit serves static/ beside the script: the app's assets
    if not static.exists():
        static.symlink_to(PROJECT_ROOT / "static", target_is_directory=True)
    script.write_text(_PROFILE_PAGE.format(root=str(PROJECT_ROOT),
                                           app=str(PROJECT_ROOT / "streamlit_app.py"),
                                           log=str(log)), encoding="utf-8")
    t0 = time.perf_counter()
    with streamlit_app(settings, work / "profile.log", script=script, extra_args=QUIET) as url:
        server_start = time.perf_counter() - t0
        cold, _ = visit_milestones(browser, url)
        time.sleep(2.5)  # the map reports its view: the follow-up runs settle
        cold_runs = _read_runs(log)
        totals, marks, runs, bares = [], [], [], []
        # the bare page's tabs alternate with the app's: whatever else loads the machine
        # meanwhile weighs on both sides of the ratio alike
        with bare_server(browser, settings, work) as bare_url:
            for _ in range(visits):
                start = len(_read_runs(log))
                total, seen = visit_milestones(browser, url)
                time.sleep(2.5)
                totals.append(total)
                marks.append(seen)
                visit_runs = _read_runs(log, start)
                for run in visit_runs:  # when each run started and ended, from navigation start
                    run["at"] = run["start"] - seen["origin"]
                runs += visit_runs[:1]
                seen["runs"] = len(visit_runs)
                seen["run_times"] = [(round(r["at"], 2), round(r["total"], 2)) for r in visit_runs]
                bares.append(bare_heading(browser, bare_url))
        start = len(_read_runs(log))
        pan_secs = pan_times(browser, url, pans) if n > aggregate_marker_limit() else []
        pan_runs = _read_runs(log, start)
    return Profile(n, server_start, cold, cold_runs, totals, marks, runs, pan_runs,
                   statistics.median(bares), pan_secs)


def aggregate_marker_limit() -> int:
    from geo_app import aggregate

    return aggregate.MARKER_LIMIT


# ----------------------------------------------------------------------------- rows


def bench(n: int, settings: Settings, work: Path, *, quick: bool = False) -> list[Any]:
    """The map rows of the table for one N (see the module docstring)."""
    from benchmarks.run import Row

    db = settings.db_path
    repeat = 1 if quick else 3
    big = n >= 100_000
    site = work / "site"
    site.mkdir(parents=True, exist_ok=True)
    static = static_inputs(db)
    s_ours, (html, mode) = timed(lambda: app_page(db, EntityFilter(), static,
                                                  asset_base="/vendor"), repeat)
    s_filt, (html_f, _) = timed(lambda: app_page(db, FILTER, static, asset_base="/vendor"), repeat)
    s_base, base_html = timed(lambda: fmc_page(db, static, asset_base="/vendor"), repeat)
    size, base_size = len(html.encode()) / MB, len(base_html.encode()) / MB
    fmc = "folium FastMarkerCluster"
    rows = [
        Row(n, f"map page payload ({mode})", size, "MB", base_size, fmc, "≤ 1 MB from 100k",
            (size <= 1.0) if big else None),
        Row(n, "map server build (query → HTML)", s_ours, "s", s_base, fmc),
    ]
    if quick:
        return rows
    (site / "ours.html").write_text(html, encoding="utf-8")
    (site / "filtered.html").write_text(html_f, encoding="utf-8")
    (site / "fmc.html").write_text(base_html, encoding="utf-8")
    del base_html
    with static_site(site) as url, chromium() as browser:
        f_ours = statistics.median(first_frame(browser, f"{url}/ours.html") for _ in range(5))
        f_filt = statistics.median(first_frame(browser, f"{url}/filtered.html") for _ in range(5))
        f_base = statistics.median(first_frame(browser, f"{url}/fmc.html") for _ in range(3))
        with streamlit_app(settings, work / "streamlit.log") as app_url:
            app_first, changes = app_times(browser, app_url, 5)
            pans = pan_times(browser, app_url, 4) if n > 2_000 else []
        bare = bare_first_heading(browser, settings, work, 4)
    change = statistics.median(changes)
    page_change = s_filt + f_filt
    if pans:
        rows.append(Row(n, "pan → the view's layer drawn (app)", statistics.median(pans), "s",
                        budget="≤ 0.5 s at 1M",
                        ok=statistics.median(pans) <= 0.5 if n >= 1_000_000 else None))
    return rows + [
        Row(n, "first frame, Chromium (page)", f_ours, "s", f_base, fmc),
        Row(n, "filter change → first frame (page)", page_change, "s", f_base, fmc,
            "≤ 0.5× from 100k", (page_change <= 0.5 * f_base) if big else None),
        Row(n, "filter change → first frame (app)", change, "s", f_base, fmc,
            "≤ 0.5× from 100k", (change <= 0.5 * f_base) if big else None),
        # the first visitor of a new server (cold caches): no budget; issue 18's goal is
        # the new tab's first marker (first_sight, --first-sight)
        Row(n, "app first load → first frame (first visitor)", app_first, "s", bare,
            "bare Streamlit page heading"),
    ]


def first_sight(n: int, settings: Settings, work: Path, *,
                repeat: int = 6) -> tuple[list[Any], Profile]:
    """The rows of "Fast at first sight" for one N, and the profile of the first load.

    One ``streamlit run`` of the app (its page steps timed by :func:`profiled_run`) serves
    the first visitor, ``repeat`` new tabs, the pans (N > ``MARKER_LIMIT``: cells mode) and
    the filter changes; the bare Streamlit page's new tabs alternate with the app's, in
    the same run (:func:`profile_first_load`).
    """
    from benchmarks.run import Row

    with chromium() as browser:
        prof = profile_first_load(n, settings, work, browser, visits=repeat, pans=repeat)
        with streamlit_app(settings, work / "streamlit.log", extra_args=QUIET) as app_url:
            _, changes = app_times(browser, app_url, repeat + 1)
    first = statistics.median(prof.visits)
    change = statistics.median(changes)
    at_1m = n >= 1_000_000
    rows = [
        Row(n, "app first load → first marker (new tab)", first, "s", prof.bare,
            "bare Streamlit page heading", "≤ 1.5× bare Streamlit", first <= 1.5 * prof.bare),
        Row(n, "  first visitor after the server started", prof.cold_visit, "s", prof.bare,
            "bare Streamlit page heading"),
        Row(n, "filter change → first frame (app)", change, "s", budget="≤ 0.5 s at 1M",
            ok=(change <= 0.5) if at_1m else None),
    ]
    if n > aggregate_marker_limit():
        pans = statistics.median(prof.pans)
        rows.append(Row(n, "pan → the view's layer drawn (app, cells)", pans, "s",
                        budget="≤ 0.5 s at 1M", ok=(pans <= 0.5) if at_1m else None))
    return rows, prof


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.bench_map [--sizes ...] [--quick]``: only the map rows."""
    import argparse

    from benchmarks.run import bench_build, print_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--first-sight", action="store_true",
                        help="only the rows of 'Fast at first sight', with the profile")
    args = parser.parse_args(argv)
    rows: list[Any] = []
    profiles: list[Profile] = []
    for n in args.sizes:
        work = Path(tempfile.mkdtemp(prefix=f"geo-bench-map-{n}-"))
        try:
            settings, _ = bench_build(n, work)
            if args.first_sight:
                got, prof = first_sight(n, settings, work)
                rows += got
                profiles.append(prof)
            else:
                rows += bench(n, settings, work, quick=args.quick)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    for prof in profiles:
        print("\n" + "\n".join(prof.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
