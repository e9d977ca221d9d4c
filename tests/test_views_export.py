"""The export page: a click on "prepare" writes the CLI's file under ``static/downloads/``,
and the page links to it; the link is served from disk by a real ``streamlit run``."""

from __future__ import annotations

import io
import os
import re
import shlex
import time
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pandas as pd
import pyogrio
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.bench_map import chromium, streamlit_app
from geo_app import assets, build, cli, export, store
from geo_app.filters import make_filter
from geo_app.settings import Settings
from tests.conftest import copy_sources
from tests.helpers import run_apptest

TIMEOUT = 90
#: The link the page shows: the href under the served downloads folder, and the file name.
LINK = re.compile(r'<a href="(?P<href>[^"]+)" download="(?P<name>[^"]+)">⬇ (?P<label>[^<]+)</a>')


def _page() -> None:
    from geo_app.views import export as export_view

    export_view.render()


@pytest.fixture()
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The downloads folder the page writes to, a fresh one of the test's own."""
    root = tmp_path / "static" / "downloads"
    monkeypatch.setattr(assets, "DOWNLOADS_DIR", root)
    return root


def run_page(**params: str) -> AppTest:
    return run_apptest(AppTest.from_function(_page, default_timeout=TIMEOUT), params)


def links(at: AppTest) -> list[re.Match[str]]:
    return [m for md in at.markdown if (m := LINK.fullmatch(md.value))]


def prepare(at: AppTest, fmt: str, root: Path) -> tuple[Path, re.Match[str]]:
    """Click the format's "prepare" button; the file the page's one link points to."""
    at.button(key=f"export_{fmt}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [link] = links(at)
    prefix = assets.downloads_url("") + "/"
    assert link["href"].startswith(prefix)
    path = root / link["href"].removeprefix(prefix)
    assert path.is_file() and path.name == link["name"]
    return path, link


def files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.*")) if root.exists() else []


def cli_export(args: list[str], out: Path) -> bytes:
    assert cli.main([*args, "-o", str(out)]) == 0
    return out.read_bytes()


def shown_args(at: AppTest) -> list[str]:
    shown = shlex.split(at.code[0].value)
    return shown[1:shown.index("-o")]


def xlsx_values(data: bytes) -> list[tuple[Any, ...]]:
    ws = openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return list(ws.iter_rows(values_only=True))


def gpkg_frame(path: Path) -> pd.DataFrame:
    gdf = pyogrio.read_dataframe(path)
    return pd.DataFrame(gdf.drop(columns="geometry")).assign(wkt=gdf.geometry.to_wkt())


def test_prepared_files_are_the_cli_files_for_the_same_filter(
        env_settings: Settings, served: Path, tmp_path: Path) -> None:
    at = run_page(lang="en", kind="laboratory", status="operating")
    flt = make_filter(kinds=["laboratory"], statuses=["operating"])
    ids = list(store.query_entities(env_settings.db_path, flt)["id"])
    assert 0 < len(ids) < store.count_entities(env_settings.db_path)
    assert f"{len(ids)} features will be exported." in [m.value for m in at.markdown]
    args = shown_args(at)  # the command the page shows, run as printed
    assert args == ["export", "entities", "--kind", "laboratory", "--status", "operating"]
    for fmt in export.FORMATS:
        path, link = prepare(at, fmt, served)
        assert link["name"] == f"suzhou-entities{export.EXTENSIONS[fmt]}"
        assert link["label"].startswith(f"Save {link['name']} (")
        cmd_path = tmp_path / f"cli-{link['name']}"
        cmd = cli_export(args, cmd_path)
        if fmt in ("geojson", "csv"):
            assert path.read_bytes() == cmd, fmt  # byte for byte
        elif fmt == "xlsx":  # openpyxl stamps the time into a workbook
            assert xlsx_values(path.read_bytes()) == xlsx_values(cmd)
            assert sorted(r[0] for r in xlsx_values(cmd)[1:]) == sorted(ids)
        else:  # and GDAL into a GeoPackage
            pd.testing.assert_frame_equal(gpkg_frame(path), gpkg_frame(cmd_path))
    assert len(files(served)) == 4, "one folder per click"


def test_the_url_filter_reaches_the_file(env_settings: Settings, served: Path,
                                         tmp_path: Path) -> None:
    at = run_page(board="苏州高新区", layer="taihu_science_city", q="苏州")
    flt = make_filter(boards=["苏州高新区"], layers=["taihu_science_city"], search="苏州")
    assert store.count_entities(env_settings.db_path, flt) > 0
    path, _ = prepare(at, "geojson", served)
    data = path.read_bytes()
    assert data == export.export_bytes(env_settings.db_path, "entities", "geojson", flt=flt)
    assert cli_export(shown_args(at), tmp_path / "cli.geojson") == data  # quoted Chinese
    unfiltered = export.export_bytes(env_settings.db_path, "entities", "geojson")
    assert data != unfiltered, "the filter changes the file (so the test can fail)"


def test_other_collections_are_exported_whole(env_settings: Settings, served: Path) -> None:
    at = run_page(lang="en", export="boards", kind="laboratory")
    assert any("apply to entities only" in i.value for i in at.info)
    assert "10 features will be exported." in [m.value for m in at.markdown]
    path, link = prepare(at, "csv", served)
    assert link["name"] == "suzhou-boards.csv"
    assert path.read_bytes() == export.export_bytes(env_settings.db_path, "boards", "csv")
    assert at.code[0].value == "geo-app export boards -o suzhou-boards.geojson"


def test_chinese_page_counts_entities_and_exports_nothing_before_a_click(
        env_settings: Settings, served: Path) -> None:
    at = run_page()
    total, no_point = export.count_features(env_settings.db_path, "entities")
    assert no_point > 0
    assert at.title[0].value == "导出数据"
    assert f"将导出 {total} 个要素。" in [m.value for m in at.markdown]
    assert any(f"其中 {no_point} 个主体没有来源坐标" in c.value for c in at.caption)
    assert [b.label for b in at.button] == [f"准备下载 {label}" for label in
                                            ("GeoJSON", "CSV", "Excel (.xlsx)", "GeoPackage")]
    at.run()
    at.run()
    assert files(served) == [] and links(at) == [], "reruns write nothing"
    path, link = prepare(at, "geojson", served)
    assert link["label"].startswith("保存 suzhou-entities.geojson（")
    assert any("15 分钟内有效" in c.value for c in at.caption)


def test_excel_button_is_disabled_above_the_sheet_limit(
        env_settings: Settings, served: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", 5)
    at = run_page(lang="en")
    assert at.button(key="export_xlsx").disabled
    assert not at.button(key="export_csv").disabled
    assert any("More rows than an Excel sheet holds" in c.value for c in at.caption)


def test_the_link_follows_the_choice_and_old_files_are_removed(
        env_settings: Settings, served: Path) -> None:
    at = run_page(lang="en", kind="laboratory")
    first, _ = prepare(at, "csv", served)
    at.run()
    assert len(links(at)) == 1, "the link stays across reruns"
    at.radio(key="export_collection").set_value("water").run()
    assert links(at) == [], "no link to a file of another choice"
    at.radio(key="export_collection").set_value("entities").run()
    assert len(links(at)) == 1, "back to the choice the file answers"
    old = time.time() - export.DOWNLOAD_MAX_AGE_S - 60
    os.utime(first.parent, (old, old))
    second, _ = prepare(at, "geojson", served)
    assert not first.parent.exists(), "a folder past its age is removed at the next export"
    assert files(served) == [second]
    assert len(second.parent.name) == 32 and second.parent.parent == served
    second.unlink()
    at.run()
    assert links(at) == [] and any("expired" in c.value for c in at.caption)


def test_the_link_is_a_fixed_template_with_escaped_values() -> None:
    from geo_app.views import export as export_view

    d = export.Download(Path("x"), 'tok"><script>/suzhou-water.csv', "a\"b<c>.csv", 1, 1)
    got = export_view.download_link(d, "geo/", "<img src=x onerror=alert(1)>")
    assert got == ('<a href="/geo/app/static/downloads/'
                   'tok&quot;&gt;&lt;script&gt;/suzhou-water.csv"'
                   ' download="a&quot;b&lt;c&gt;.csv">⬇ &lt;img src=x onerror=alert(1)&gt;</a>')


# ----------------------------------------------------------------------------- real server


@pytest.mark.browser
def test_a_real_server_streams_the_prepared_file_from_disk(tmp_path: Path) -> None:
    """``streamlit run`` in Chromium: click prepare, save the link, fetch it with httpx."""
    settings = copy_sources(tmp_path / "app")
    build.build_database(settings)
    flt_args = ["--kind", "laboratory"]
    want = cli_export(["export", "entities", *flt_args], tmp_path / "cli.geojson")
    made: list[Path] = []
    try:
        with streamlit_app(settings, tmp_path / "streamlit.log") as url, chromium() as browser:
            page = browser.new_page()
            page.goto(f"{url}/export?lang=en&kind=laboratory")
            page.get_by_role("button", name="Prepare download: GeoJSON").click()
            link = page.locator("a[download]")
            link.wait_for(timeout=60_000)
            href, name = link.get_attribute("href"), link.get_attribute("download")
            assert href and name == "suzhou-entities.geojson"
            folder = assets.DOWNLOADS_DIR / href.removeprefix(assets.DOWNLOADS_URL + "/")
            folder = folder.parent
            made.append(folder)
            with page.expect_download() as saved:
                link.click()  # the browser saves it, under the given name
            assert saved.value.suggested_filename == name
            assert Path(saved.value.path()).read_bytes() == want
            response = httpx.get(f"{url}{href}", timeout=60)
            assert response.status_code == 200
            assert response.content == want, "byte for byte the CLI's file"
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["content-type"].startswith("application/geo+json")
            # above Streamlit's 200 MiB default cap for static files (sparse: no disk used)
            big = assets.DOWNLOADS_DIR / ("b" * 32)
            made.append(big)
            big.mkdir(parents=True)
            with open(big / "suzhou-entities.geojson", "wb") as fh:
                fh.truncate(201 * 2**20)
            with httpx.stream("GET", f"{url}{assets.DOWNLOADS_URL}/{big.name}/"
                              "suzhou-entities.geojson", timeout=60,
                              headers={"accept-encoding": "identity"}) as big_response:
                assert big_response.status_code == 200
                assert int(big_response.headers["content-length"]) == 201 * 2**20
                assert next(big_response.iter_raw()).startswith(b"\0")
            # a folder past its age is removed at the next export
            old = time.time() - export.DOWNLOAD_MAX_AGE_S - 60
            os.utime(folder, (old, old))
            page.get_by_role("button", name="Prepare download: CSV").click()
            page.locator('a[download="suzhou-entities.csv"]').wait_for(timeout=60_000)
            assert not folder.exists()
            csv_href = page.locator("a[download]").get_attribute("href")
            assert csv_href
            csv_folder = (assets.DOWNLOADS_DIR / csv_href.removeprefix(
                assets.DOWNLOADS_URL + "/")).parent
            made.append(csv_folder)
            assert csv_folder.is_dir()
            assert httpx.get(f"{url}{csv_href}", timeout=60).content == cli_export(
                ["export", "entities", *flt_args], tmp_path / "cli.csv")
        assert not csv_folder.exists(), "the server removes its folders when it exits"
    finally:
        for path in made:
            if path.is_dir():
                for f in path.iterdir():
                    f.unlink()
                path.rmdir()
