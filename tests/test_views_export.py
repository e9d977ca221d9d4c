"""The export page (AppTest): its downloads are the CLI's files for the same filter."""

from __future__ import annotations

import io
import os
import shlex
import stat
import tempfile
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pyogrio
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from geo_app import cli, export, store
from geo_app.filters import make_filter
from geo_app.settings import Settings
from tests.helpers import run_apptest

TIMEOUT = 90


def _page() -> None:
    from geo_app.views import export as export_view

    export_view.render()


@pytest.fixture()
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A system temporary folder of the test's own, and no download folder made yet."""
    tmp = tmp_path / "system-tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(export, "_download_root", None)
    return tmp


@pytest.fixture()
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``st.download_button`` call of a run: label, data and keyword arguments."""
    calls: list[dict[str, Any]] = []
    real = st.download_button

    def record(label: str, data: Any, *args: Any, **kwargs: Any) -> bool:
        calls.append({"label": label, "data": data, **kwargs})
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", record)
    return calls


def run_page(**params: str) -> AppTest:
    return run_apptest(AppTest.from_function(_page, default_timeout=TIMEOUT), params)


def payload(call: dict[str, Any]) -> bytes:
    """The bytes a click on the button serves (the data is made on click)."""
    data = call["data"]
    assert callable(data), "deferred: nothing is exported until a click"
    result = data()
    assert isinstance(result, bytes)
    return result


def by_format(calls: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {export.format_from_path(c["file_name"]): c for c in calls}
    assert set(out) == set(export.FORMATS), "one button per format"
    return out


def cli_export(args: list[str], out: Path) -> bytes:
    assert cli.main([*args, "-o", str(out)]) == 0
    return out.read_bytes()


def xlsx_values(data: bytes) -> list[tuple[Any, ...]]:
    ws = openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return list(ws.iter_rows(values_only=True))


def gpkg_frame(data: bytes, tmp_path: Path, name: str) -> pd.DataFrame:
    path = tmp_path / f"{name}.gpkg"
    path.write_bytes(data)
    gdf = pyogrio.read_dataframe(path)
    return pd.DataFrame(gdf.drop(columns="geometry")).assign(wkt=gdf.geometry.to_wkt())


def test_downloads_are_the_cli_files_for_the_same_filter(
        env_settings: Settings, downloads: list[dict[str, Any]], tmp_path: Path) -> None:
    at = run_page(lang="en", kind="laboratory", status="operating")
    flt = make_filter(kinds=["laboratory"], statuses=["operating"])
    ids = list(store.query_entities(env_settings.db_path, flt)["id"])
    assert 0 < len(ids) < store.count_entities(env_settings.db_path)
    assert f"{len(ids)} features will be exported." in [m.value for m in at.markdown]
    buttons = by_format(downloads)
    # the command the page shows, run as printed (only the output file changes)
    shown = shlex.split(at.code[0].value)
    assert shown[:3] == ["geo-app", "export", "entities"]
    args = shown[1:shown.index("-o")]
    assert args == ["export", "entities", "--kind", "laboratory", "--status", "operating"]
    for fmt, call in buttons.items():
        assert call["file_name"] == f"suzhou-entities{export.EXTENSIONS[fmt]}"
        assert call["mime"] == export.MEDIA_TYPES[fmt] and not call.get("disabled")
        app = payload(call)
        cmd = cli_export(args, tmp_path / call["file_name"])
        if fmt in ("geojson", "csv"):
            assert app == cmd, fmt  # byte for byte
        elif fmt == "xlsx":
            assert xlsx_values(app) == xlsx_values(cmd)
            assert sorted(r[0] for r in xlsx_values(app)[1:]) == sorted(ids)
        else:
            got, want = gpkg_frame(app, tmp_path, "app"), gpkg_frame(cmd, tmp_path, "cli")
            pd.testing.assert_frame_equal(got, want)
            assert sorted(got["id"]) == sorted(ids)


def test_the_url_filter_reaches_the_downloads(env_settings: Settings, tmp_path: Path,
                                              downloads: list[dict[str, Any]]) -> None:
    at = run_page(board="苏州高新区", layer="taihu_science_city", q="苏州")
    flt = make_filter(boards=["苏州高新区"], layers=["taihu_science_city"], search="苏州")
    assert store.count_entities(env_settings.db_path, flt) > 0
    data = payload(by_format(downloads)["geojson"])
    assert data == export.export_bytes(env_settings.db_path, "entities", "geojson", flt=flt)
    shown = shlex.split(at.code[0].value)  # Chinese values are quoted for the shell
    assert cli_export(shown[1:shown.index("-o")], tmp_path / "cli.geojson") == data
    unfiltered = export.export_bytes(env_settings.db_path, "entities", "geojson")
    assert data != unfiltered, "the filter changes the file (so the test can fail)"


def test_other_collections_are_exported_whole(env_settings: Settings,
                                              downloads: list[dict[str, Any]]) -> None:
    at = run_page(lang="en", export="boards", kind="laboratory")
    assert any("apply to entities only" in i.value for i in at.info)
    assert "10 features will be exported." in [m.value for m in at.markdown]
    buttons = by_format(downloads)
    assert buttons["csv"]["file_name"] == "suzhou-boards.csv"
    assert payload(buttons["csv"]) == export.export_bytes(env_settings.db_path, "boards", "csv")
    assert at.code[0].value == "geo-app export boards -o suzhou-boards.geojson"


def test_chinese_page_counts_entities_without_a_point(env_settings: Settings,
                                                      downloads: list[dict[str, Any]]) -> None:
    at = run_page()
    total, no_point = export.count_features(env_settings.db_path, "entities")
    assert no_point > 0
    assert at.title[0].value == "导出数据"
    assert f"将导出 {total} 个要素。" in [m.value for m in at.markdown]
    assert any(f"其中 {no_point} 个主体没有来源坐标" in c.value for c in at.caption)
    assert len(downloads) == 4


def test_excel_button_is_disabled_above_the_sheet_limit(
        env_settings: Settings, downloads: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "XLSX_MAX_ROWS", 5)
    at = run_page(lang="en")
    buttons = by_format(downloads)
    assert buttons["xlsx"]["disabled"] is True
    assert not buttons["csv"]["disabled"]
    assert any("More rows than an Excel sheet holds" in c.value for c in at.caption)


def test_downloads_are_written_to_a_private_temp_file_that_never_accumulates(
        env_settings: Settings, downloads: list[dict[str, Any]], private_tmp: Path,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []
    real_export_file = export.export_file

    def spy(db: Path, collection: str, fmt: str, path: str | Path, **kwargs: Any) -> int:
        n = real_export_file(db, collection, fmt, path, **kwargs)
        written.append(Path(path))
        assert Path(path).is_file(), "the export is a file on disk while it is read"
        return n

    monkeypatch.setattr(export, "export_file", spy)
    db = env_settings.db_path
    runs = [{"lang": "en", "kind": "laboratory"}, {"lang": "en", "kind": "laboratory"},
            {"status": "planned"}, {"q": "苏州", "board": "苏州工业园区"}, {"export": "boards"}]
    for i, params in enumerate(runs):
        downloads.clear()
        at = run_page(**params)
        if i == 0:
            at.run()  # a plain rerun makes no file either
            assert not written and not list(private_tmp.iterdir()), "nothing before a click"
            downloads[:] = downloads[-4:]
        buttons = by_format(downloads)
        for fmt in export.FORMATS:
            payload(buttons[fmt])
        data = payload(buttons["geojson"])  # a second click on the same button
        shown = shlex.split(at.code[0].value)
        cmd = cli_export(shown[1:shown.index("-o")], tmp_path / f"cli-{i}.geojson")
        assert data == cmd, params  # byte for byte the CLI's file
        # one private folder per process, empty again after every click
        folder = export.download_dir()
        assert list(private_tmp.iterdir()) == [folder]
        assert list(folder.iterdir()) == [], "no download file outlives its click"
    folder = export.download_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, "private: only this user reads it"
    assert folder.name.startswith(f"{export.DOWNLOAD_DIR_PREFIX}{os.getpid()}-")
    app_files = [path for path in written if path.is_relative_to(private_tmp)]
    assert len(app_files) == 5 * len(runs), "every click went through a temporary file"
    for path in app_files:
        assert path.parent.parent == folder, "a folder of its own inside the private one"
        assert not path.exists()
    assert not [p for p in db.parent.iterdir() if p.name.startswith("suzhou-")], \
        "never beside the database"
