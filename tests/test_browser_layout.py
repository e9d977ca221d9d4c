"""What a user sees, in Debian's Chromium with a CJK font, at a laptop, a desktop and a phone
viewport: the map fills the main area, Chinese text renders as glyphs (not tofu boxes), no
map control covers a marker at the default view, the first view holds all of Suzhou and
Taihu, and entities sharing a stand-in point fan out and say what the point stands for."""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from benchmarks.bench_map import chromium, streamlit_app
from geo_app import build, ingest, store
from geo_app.auth import local_actor
from geo_app.filters import make_filter
from geo_app.settings import Settings
from tests.conftest import copy_sources

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
VIEWPORTS = [(1280, 800), (1920, 1080), (390, 844)]
#: Entities the fixture places on one shared town point.
STACK = 5


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True,
                           check=False).stdout
    if not fonts.strip():
        pytest.fail("No CJK font is installed: apt-get install fonts-noto-cjk (users in "
                    "Suzhou have one, and the layout must be tested with one)")
    root = tmp_path_factory.mktemp("layout")
    s = copy_sources(root)
    build.build_database(s)
    # five entities on one town point, as a gazetteer-placed import records them
    stack = root / "stack.csv"
    with open(stack, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name_zh", "kind", "level", "status", "board", "lon", "lat",
                    "location_precision", "location_source", "source_datum", "source"])
        for i in range(STACK):
            w.writerow([f"stack-{i}", f"共点孵化器{i}", "incubator", "municipal", "operating",
                        "苏州高新区", "120.4425", "31.3391", "town",
                        "GeoNames cities1000: Tong'an (通安 town point)", "wgs84", "test"])
    ingest.import_file(stack, s.db_path, actor=local_actor())
    return s


@pytest.fixture(scope="module")
def app_url(settings: Settings) -> Iterator[str]:
    with streamlit_app(settings, settings.data_dir.parent / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(app_url: str) -> Iterator[object]:
    with chromium() as launched:
        yield launched


def open_map(browser: object, url: str, size: tuple[int, int]) -> tuple[object, object]:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})  # type: ignore[attr-defined]
    page.goto(url)
    page.frame_locator(MAP_FRAME).locator("path.leaflet-interactive").first.wait_for(
        state="attached", timeout=60_000)
    frame = next(f for f in page.frames if "st_folium" in f.url)
    frame.wait_for_function("() => window.map && window.L && window.L.MarkerClusterGroup",
                            timeout=20_000)
    page.wait_for_timeout(800)  # fitBounds and the cluster icons settle
    return page, frame


#: True when ``text`` draws as real glyphs: each character's pixels differ from those of a
#: character no font has (the "tofu" box or blank a missing glyph draws).
GLYPHS_JS = """(text) => {
    const font = getComputedStyle(document.body).fontFamily;
    const draw = (ch) => {
        const c = document.createElement('canvas'); c.width = 40; c.height = 40;
        const g = c.getContext('2d'); g.font = '28px ' + font; g.fillText(ch, 4, 32);
        return Array.from(g.getImageData(0, 0, 40, 40).data).join(',');
    };
    const tofu = draw('\\u{10FFFD}');
    return Array.from(text).filter(ch => ch.trim()).every(ch => draw(ch) !== tofu);
}"""

#: Markers and cluster icons whose centre is covered by something else (a control).
COVERED_JS = """() => {
    const out = [];
    document.querySelectorAll('.sim-marker, .marker-cluster').forEach(el => {
        const r = el.getBoundingClientRect();
        const x = r.left + r.width / 2, y = r.top + r.height / 2;
        if (x < 0 || y < 0 || x > innerWidth || y > innerHeight) return;  // off screen
        const top = document.elementFromPoint(x, y);
        if (!top || !el.contains(top) && top !== el) out.push(top ? top.className : 'none');
    });
    return out;
}"""


@pytest.mark.parametrize("size", VIEWPORTS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_map_fills_the_main_area_and_nothing_covers_a_marker(browser: object, app_url: str,
                                                            settings: Settings,
                                                            size: tuple[int, int]) -> None:
    page, frame = open_map(browser, app_url, size)
    try:
        box = page.locator(MAP_FRAME).bounding_box()  # type: ignore[attr-defined]
        main = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()  # type: ignore[attr-defined]
        assert box["height"] >= 0.7 * size[1], box
        assert box["width"] >= 0.9 * main["width"], (box, main)
        # the unlocated entities are below the map, folded, with their count
        expander = page.get_by_text("无坐标的主体")  # type: ignore[attr-defined]
        assert expander.bounding_box()["y"] > box["y"] + box["height"]
        entities = store.query_entities(settings.db_path, make_filter())
        assert f"({int(entities.geometry.isna().sum()):,})" in expander.inner_text()
        # Chinese renders as glyphs in the page and inside the map's frame
        assert page.evaluate(GLYPHS_JS, "苏州科创地图")  # type: ignore[attr-defined]
        assert not page.evaluate(GLYPHS_JS, "\U0010FFFC")  # the check can tell  # type: ignore[attr-defined]
        assert frame.evaluate(GLYPHS_JS, "图例")  # type: ignore[attr-defined]
        # no control covers a marker or cluster that can be clicked at the default view
        icons = frame.locator(".sim-marker, .marker-cluster").count()  # type: ignore[attr-defined]
        assert icons >= 5
        assert frame.evaluate(COVERED_JS) == []  # type: ignore[attr-defined]
        # the legend starts folded into a small control
        legend = frame.locator(".sim-legend").bounding_box()  # type: ignore[attr-defined]
        map_box = frame.locator("#map_div").bounding_box()  # type: ignore[attr-defined]
        assert legend["width"] * legend["height"] < 0.02 * map_box["width"] * map_box["height"]
        # the first view holds the whole city and all of Taihu
        city = store.read_geo_table(settings.db_path, "boundaries")
        water = store.read_geo_table(settings.db_path, "water")
        west, south, east, north = city[city["level"] == "city"].total_bounds
        w2, s2, e2, n2 = water.total_bounds
        inside = frame.evaluate(  # type: ignore[attr-defined]
            "(b) => window.map.getBounds().contains(L.latLngBounds([b[1], b[0]], [b[3], b[2]]))",
            [min(west, w2), min(south, s2), max(east, e2), max(north, n2)])
        assert inside
    finally:
        page.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_open_legend_never_stays_over_the_map(browser: object, app_url: str,
                                              size: tuple[int, int]) -> None:
    page, frame = open_map(browser, app_url, size)
    try:
        frame.locator(".sim-legend summary").click()  # type: ignore[attr-defined]
        legend = frame.locator(".sim-legend").bounding_box()  # type: ignore[attr-defined]
        map_box = frame.locator("#map_div").bounding_box()  # type: ignore[attr-defined]
        share = legend["width"] * legend["height"] / (map_box["width"] * map_box["height"])
        assert 0.02 < share < 0.5, share
        assert "高校" in frame.locator(".sim-legend").inner_text()  # type: ignore[attr-defined]
        # a click on the map closes it again
        frame.locator("#map_div").click(position={"x": map_box["width"] - 60,  # type: ignore[attr-defined]
                                                  "y": map_box["height"] / 2})
        frame.wait_for_function(  # type: ignore[attr-defined]
            "() => !document.querySelector('.sim-legend details').open", timeout=5_000)
    finally:
        page.close()  # type: ignore[attr-defined]


SHARED_POPUP_JS = """() => {
    const icons = document.querySelectorAll('.sim-marker');
    const popup = document.querySelector('.leaflet-popup-content');
    return {icons: icons.length, popup: popup ? popup.innerText : null};
}"""


def test_entities_sharing_a_stand_in_point_fan_out_and_say_so(browser: object,
                                                              app_url: str) -> None:
    page, frame = open_map(browser, app_url + "/?q=共点孵化器", (1280, 800))
    try:
        # the entities on one town point are one cluster; a click fans them out
        cluster = frame.locator(".marker-cluster")  # type: ignore[attr-defined]
        assert cluster.count() == 1 and cluster.inner_text().strip() == str(STACK)
        cluster.click()
        frame.wait_for_function(  # type: ignore[attr-defined]
            f"() => document.querySelectorAll('.sim-marker').length == {STACK}", timeout=10_000)
        frame.locator(".sim-marker").first.click()  # type: ignore[attr-defined]
        frame.locator(".leaflet-popup-content").wait_for(timeout=5_000)  # type: ignore[attr-defined]
        text = frame.evaluate(SHARED_POPUP_JS)["popup"]  # type: ignore[attr-defined]
        assert "镇/街道代表点：通安" in text and f"{STACK} 个主体共用此点" in text, text
    finally:
        page.close()  # type: ignore[attr-defined]


def test_source_links_open_safely(tmp_path: Path) -> None:
    from geo_app import maps

    cell = maps.linkify("见 https://www.suzhou.gov.cn/a?b=1&c=2；javascript:alert(1) "
                        "data:text/html,x")
    assert cell.count("<a ") == 1
    assert 'href="https://www.suzhou.gov.cn/a?b=1&amp;c=2"' in cell
    assert 'rel="noopener noreferrer"' in cell and 'target="_blank"' in cell
    assert "javascript:alert(1)" in cell and 'href="javascript' not in cell


def test_first_start_shows_the_build_steps(browser: object, tmp_path: Path) -> None:
    # a fresh machine: no database yet; the first visitor sees what is happening while the
    # database builds, step by step, then the map (how soon: see the note, not a timed test)
    fresh = copy_sources(tmp_path)
    assert not fresh.db_path.exists()
    with streamlit_app(fresh, tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
        try:
            page.goto(url, wait_until="commit")
            page.get_by_text("首次启动：正在由 data/ 建立数据库").wait_for(timeout=60_000)  # type: ignore[attr-defined]
            page.get_by_text("① 读取主体登记表").wait_for(timeout=10_000)  # type: ignore[attr-defined]
            # the steps show while the map does not exist yet: the build is under way
            assert page.locator(MAP_FRAME).count() == 0  # type: ignore[attr-defined]
            page.frame_locator(MAP_FRAME).locator("path.leaflet-interactive").first.wait_for(  # type: ignore[attr-defined]
                state="attached", timeout=120_000)
            assert page.get_by_text("数据库已建立").count() == 1  # type: ignore[attr-defined]
            for step in ("③ 按规则生成战略图层", "⑤ 计算主体所属图层"):
                assert page.get_by_text(step).count() == 1, step  # type: ignore[attr-defined]
            # the page's next run (which brings the sidebar's widgets) keeps the finished box
            page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').first.wait_for(  # type: ignore[attr-defined]
                timeout=30_000)
            assert page.get_by_text("数据库已建立").count() == 1  # type: ignore[attr-defined]
            assert page.get_by_text("⑤ 计算主体所属图层").count() == 1  # type: ignore[attr-defined]
        finally:
            page.close()  # type: ignore[attr-defined]
    assert fresh.db_path.exists()


def test_back_and_forward_step_through_filter_states(browser: object, app_url: str) -> None:
    page, _frame = open_map(browser, app_url + "/?lang=zh", (1280, 800))
    try:
        box = page.get_by_label("名称搜索（中文或英文）")  # type: ignore[attr-defined]
        counts = page.get_by_text("个符合筛选")  # type: ignore[attr-defined]
        shown: list[str] = [counts.inner_text()]
        for term in ("实验室", "大学"):
            box.fill(term)
            box.press("Enter")
            page.wait_for_url(lambda u, term=term: f"q={term}" in unquote(u), timeout=20_000)  # type: ignore[attr-defined]
            page.wait_for_function(  # type: ignore[attr-defined]
                "(old) => !document.body.innerText.includes(old)", arg=shown[-1], timeout=20_000)
            shown.append(counts.inner_text())
        assert len(set(shown)) == 3, shown
        page.go_back()  # type: ignore[attr-defined]
        page.wait_for_url(lambda u: "q=实验室" in unquote(u), timeout=20_000)  # type: ignore[attr-defined]
        page.get_by_text(shown[1]).wait_for(timeout=20_000)  # type: ignore[attr-defined]
        # the sidebar is drawn after the map in the same run: its box follows the counts
        expect(box).to_have_value("实验室", timeout=20_000)
        page.go_back()  # type: ignore[attr-defined]
        page.get_by_text(shown[0]).wait_for(timeout=20_000)  # type: ignore[attr-defined]
        expect(box).to_have_value("", timeout=20_000)
        assert "q=" not in page.url  # type: ignore[attr-defined]
        page.go_forward()  # type: ignore[attr-defined]
        page.wait_for_url(lambda u: "q=实验室" in unquote(u), timeout=20_000)  # type: ignore[attr-defined]
        page.get_by_text(shown[1]).wait_for(timeout=20_000)  # type: ignore[attr-defined]
        expect(box).to_have_value("实验室", timeout=20_000)
    finally:
        page.close()  # type: ignore[attr-defined]
