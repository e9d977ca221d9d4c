"""Exports checked by independent readers: GDAL (pyogrio), geojson-validator, csv, openpyxl."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import geojson_validator
import jsonschema
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely.geometry import shape

from geo_app import build, cli, export, store
from geo_app.errors import ExportError
from geo_app.filters import EntityFilter, make_filter
from geo_app.settings import PROJECT_ROOT, Settings
from tests.conftest import copy_sources
from tests.helpers import execute_sql, query_sql

geojson_validator.configure_logging(enabled=False)

COLLECTIONS = export.COLLECTIONS
FORMATS = export.FORMATS
#: geojson-validator's "problematic" findings that are facts of the data, not RFC 7946
#: errors: lakes with islands have holes, county outlines have > 999 vertices, and we keep
#: 7 decimals (~1 cm) where the validator suggests 6.
ALLOWED_PROBLEMATIC = {"holes", "excessive_vertices", "excessive_coordinate_precision"}

AWKWARD = [
    'a "quoted" name',
    "two\nlines",
    "emoji 🧪🚀 and 中文",
    "<script>alert(1)</script>",
    '=HYPERLINK("http://example.invalid","x")',
    "${alert(1)}",
    "C:\\users\\new",
    "+86 512 0000",
    "-1",
    "@SUM(A1:A2)",
    "\ttab first",
    "\rcarriage return first",
    "'already quoted",
    "comma, and ; semicolon",
]


def strict_json(data: bytes) -> Any:
    """Parse ``data`` as UTF-8 JSON without BOM, refusing NaN and Infinity."""
    assert not data.startswith(b"\xef\xbb\xbf"), "GeoJSON must not start with a BOM"

    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def positions(geometry: dict[str, Any]) -> list[list[float]]:
    """Every [lon, lat] position of a GeoJSON geometry, as written."""
    coords = geometry["coordinates"]
    if not isinstance(coords[0], list):
        return [coords]
    while isinstance(coords[0][0], list):
        coords = [p for part in coords for p in part]
    return coords


def export_to(tmp_path: Path, db: Path, collection: str, fmt: str,
              flt: EntityFilter | None = None) -> tuple[Path, int]:
    path = tmp_path / export.file_name(collection, fmt)
    n = export.export_file(db, collection, fmt, path, flt=flt)
    return path, n


def expected_features(db: Path, collection: str, flt: EntityFilter | None = None) -> list[dict]:
    """The features of the Python path (what the HTTP API serves), sorted by id."""
    gdf = export.collection_gdf(db, collection, flt)
    feats = list(export.iter_features(gdf, id_column=export.ID_COLUMNS[collection]))
    return sorted(feats, key=lambda f: str(f.get("id")))


def by_id(rows: list[dict], key: str) -> dict[str, dict]:
    out = {str(r[key]): r for r in rows}
    assert len(out) == len(rows), "ids are unique"
    return out


def gdal_count(path: Path) -> int:
    # no HEADERS option: GDAL guesses whether the first .xlsx row is a header, as QGIS does
    return int(pyogrio.read_info(path)["features"])


def gdal_rows(path: Path) -> list[dict[str, Any]]:
    df = pyogrio.read_dataframe(path)
    df = pd.DataFrame(df).drop(columns=["geometry"], errors="ignore")
    return [{k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in r.items()}
            for r in df.to_dict("records")]


def spreadsheet_text(value: Any) -> Any:
    """What a CSV/Excel cell of ``value`` must hold."""
    return export.neutralise(value) if isinstance(value, str) else value


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def awkward_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with awkward names, some entities located and some not, one NaN coordinate."""
    settings = copy_sources(tmp_path_factory.mktemp("awkward"))
    registry = settings.data_dir / "registry.csv"
    with open(registry, "a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        for i, name in enumerate(AWKWARD):
            located = i % 3 != 2
            writer.writerow([
                f"awk-{i:02d}", name, name, "incubator", "unknown", "unknown", "吴中区",
                f"120.{600000 + i:06d}" if located else "", "31.2712345" if located else "",
                "site" if located else "unknown", f"test: {name}", "WGS84" if located else "",
                f"test fixture {name}", name])
    build.build_database(settings)
    # a NaN that slipped into the database must still come out as strict JSON (null)
    execute_sql(settings.db_path, [
        ("UPDATE entities SET source_lon = 'NaN'::DOUBLE, source_lat = 'Infinity'::DOUBLE "
         "WHERE id = ?", ["awk-00"])])
    return settings.db_path


# ----------------------------------------------------------------------------- GeoJSON


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_geojson_follows_rfc7946(db: Path, collection: str) -> None:
    data = export.export_bytes(db, collection, "geojson")
    doc = strict_json(data)
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert geojson_validator.validate_structure(doc, check_crs=True) == {}
    found = geojson_validator.validate_geometries(doc)
    assert found["invalid"] == {}, found
    assert set(found["problematic"]) <= ALLOWED_PROBLEMATIC, found["problematic"]
    n, no_geometry = export.count_features(db, collection)
    assert len(doc["features"]) == n > 0
    assert sum(f["geometry"] is None for f in doc["features"]) == no_geometry
    minx, miny, maxx, maxy = doc["bbox"]
    for feature in doc["features"]:
        assert feature["type"] == "Feature"
        assert feature["id"] == feature["properties"][export.ID_COLUMNS[collection]]
        if feature["geometry"] is None:
            continue
        for lon, lat in positions(feature["geometry"]):
            assert minx <= lon <= maxx and miny <= lat <= maxy, "bbox holds every position"
            assert 119 < lon < 122 and 30 < lat < 33, "[lon, lat] order, in Suzhou"
            assert round(lon, 7) == lon and round(lat, 7) == lat, "at most 7 decimals"
        geom = shape(feature["geometry"])
        assert geom.is_valid, (feature["id"], shapely.is_valid_reason(geom))
        for poly in getattr(geom, "geoms", [geom]):
            if poly.geom_type == "Polygon":
                assert poly.exterior.is_ccw, "exterior rings counter-clockwise"
                assert not any(r.is_ccw for r in poly.interiors), "holes clockwise"
    # the bbox is tight: each side is touched by some position
    all_pos = np.array([p for f in doc["features"] if f["geometry"]
                        for p in positions(f["geometry"])])
    assert doc["bbox"] == [*all_pos.min(axis=0).tolist(), *all_pos.max(axis=0).tolist()]


def test_water_has_holes_that_run_clockwise(db: Path) -> None:
    doc = strict_json(export.export_bytes(db, "water", "geojson"))
    holes = [ring for f in doc["features"] if f["geometry"]["type"] == "Polygon"
             for ring in f["geometry"]["coordinates"][1:]]
    assert holes, "the fixture has a lake with an island (so the hole test can fail)"
    assert all(not shapely.LinearRing(r).is_ccw for r in holes)


def test_entities_without_a_point_have_null_geometry_and_unknown_coordinates(db: Path) -> None:
    doc = strict_json(export.export_bytes(db, "entities", "geojson"))
    located = query_sql(db, "SELECT id, lon, lat FROM entities")
    unknown = set(located.loc[located["lon"].isna(), "id"])
    assert unknown, "the shipped registry has entities without coordinates"
    for f in doc["features"]:
        if f["id"] in unknown:
            assert f["geometry"] is None
            assert f["properties"]["lon"] is None and f["properties"]["lat"] is None
        else:
            assert f["geometry"]["type"] == "Point"
            assert f["geometry"]["coordinates"] == [f["properties"]["lon"], f["properties"]["lat"]]


def test_streamed_entities_equal_the_api_features(db: Path) -> None:
    # DuckDB renders the streamed features; the API renders them in Python: same content
    doc = strict_json(export.export_bytes(db, "entities", "geojson"))
    streamed = sorted(doc["features"], key=lambda f: f["id"])
    assert streamed == expected_features(db, "entities")


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_properties_carry_provenance(db: Path, collection: str) -> None:
    doc = strict_json(export.export_bytes(db, collection, "geojson"))
    for f in doc["features"]:
        props = f["properties"]
        assert list(props) == list(export.PROPERTIES[collection]), "documented order"
        if collection == "entities":
            assert props["source"] and props["location_precision"]
            if f["geometry"] is not None:
                assert props["source_datum"] and props["conversion"] and props["location_source"]
        elif f["geometry"] is not None:
            assert props["source"] and props["source_datum"] and props["conversion"], f["id"]
    if collection == "boards":
        # SIP is in no boundary source: its polygon is schematic, and says so
        sip = next(f for f in doc["features"] if f["properties"]["name_zh"] == "苏州工业园区")
        assert sip["geometry"] is not None and sip["properties"]["polygon_status"] == "schematic"
        assert sip["properties"]["source"].startswith("schematic")
    if collection == "layers":
        assert all("spec_json" not in f["properties"] for f in doc["features"])
        assert all(f["properties"]["schematic"] is True for f in doc["features"])


def test_entity_properties_follow_the_published_schema(awkward_db: Path) -> None:
    schema = json.loads((PROJECT_ROOT / "schemas" / "entities.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert list(schema["properties"]) == list(export.PROPERTIES["entities"])
    validator = jsonschema.Draft202012Validator(schema)
    doc = strict_json(export.export_bytes(awkward_db, "entities", "geojson"))
    errors = [(f["id"], e.message) for f in doc["features"]
              for e in validator.iter_errors(f["properties"])]
    assert errors == []
    bad = dict(doc["features"][0]["properties"], kind="spaceship")
    assert list(validator.iter_errors(bad)), "the schema can fail"


def test_non_finite_numbers_become_null(awkward_db: Path) -> None:
    data = export.export_bytes(awkward_db, "entities", "geojson")
    assert b"NaN" not in data and b"Infinity" not in data
    doc = strict_json(data)
    props = next(f for f in doc["features"] if f["id"] == "awk-00")["properties"]
    assert props["source_lon"] is None and props["source_lat"] is None
    assert props["lon"] == 120.6


def test_batches_do_not_change_the_bytes(db: Path) -> None:
    # batch edges are where a streamed writer slips (the first separator, the bbox)
    for fmt in ("geojson", "csv"):
        small, big = io.BytesIO(), io.BytesIO()
        assert export.write_export(db, "entities", fmt, small, batch_size=7) == \
            export.write_export(db, "entities", fmt, big, batch_size=100_000)
        assert small.getvalue() == big.getvalue()


# -------------------------------------------------------------------------- GDAL reads every format


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_gdal_reads_back_the_same_features_and_attributes(db: Path, tmp_path: Path,
                                                          collection: str, fmt: str) -> None:
    path, n = export_to(tmp_path, db, collection, fmt)
    expected = expected_features(db, collection)
    assert n == len(expected)
    assert gdal_count(path) == n
    key = export.ID_COLUMNS[collection]
    got = by_id(gdal_rows(path), key)
    assert set(got) == {str(f["id"]) for f in expected}
    for feature in expected:
        row = got[str(feature["id"])]
        for name, value in feature["properties"].items():
            cell = row[name]
            if fmt in ("csv", "xlsx"):
                value = spreadsheet_text(value)
            if fmt == "csv":  # GDAL reads CSV cells as text
                if isinstance(value, bool):
                    assert cell == ("true" if value else "false")
                elif isinstance(value, float):
                    assert float(cell) == value, (name, cell, value)
                else:
                    assert (cell or None) == (value or None), (name, cell, value)
            elif isinstance(value, float):
                assert cell == value, (name, cell, value)
            elif value is None or value == "":
                assert cell in (None, ""), (name, cell)
            else:
                assert cell == value, (feature["id"], name, cell, value)
        if fmt in ("csv", "xlsx") and collection != "entities" and feature["geometry"]:
            label = shapely.Point(float(row["label_lon"]), float(row["label_lat"]))
            assert shape(feature["geometry"]).buffer(1e-6).contains(label), "label point inside"


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_geopackage_keeps_geometries_and_null_geometry_rows(db: Path, tmp_path: Path,
                                                           collection: str) -> None:
    path, _ = export_to(tmp_path, db, collection, "gpkg")
    assert pyogrio.read_info(path)["crs"] == "EPSG:4326"
    gdf = pyogrio.read_dataframe(path)
    expected = {str(f["id"]): f["geometry"] for f in expected_features(db, collection)}
    key = export.ID_COLUMNS[collection]
    for fid, geom in zip(gdf[key], gdf.geometry, strict=True):
        want = expected[str(fid)]
        if want is None:
            assert geom is None or geom.is_empty
        else:
            want = shape(want)
            if want.geom_type == "Polygon" and geom.geom_type == "MultiPolygon":
                want = shapely.MultiPolygon([want])  # one geometry type per GPKG layer
            assert shapely.equals_exact(shapely.normalize(geom), shapely.normalize(want),
                                        tolerance=2e-7), fid


# ----------------------------------------------------------------------------- spreadsheets


def read_csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM"
    assert b"\r\n" in data
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def read_xlsx_rows(data: bytes) -> list[dict[str, Any]]:
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_awkward_names_round_trip_in_geojson_and_geopackage(awkward_db: Path,
                                                           tmp_path: Path) -> None:
    doc = strict_json(export.export_bytes(awkward_db, "entities", "geojson"))
    feats = {f["id"]: f["properties"] for f in doc["features"]}
    path, _ = export_to(tmp_path, awkward_db, "entities", "gpkg")
    gpkg = by_id(gdal_rows(path), "id")
    for i, name in enumerate(AWKWARD):
        for props in (feats[f"awk-{i:02d}"], gpkg[f"awk-{i:02d}"]):
            assert props["name_zh"] == name and props["name_en"] == name and props["notes"] == name
            assert props["source"] == f"test fixture {name}"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_awkward_names_are_neutralised_in_spreadsheets(awkward_db: Path, fmt: str) -> None:
    data = export.export_bytes(awkward_db, "entities", fmt)
    rows = read_csv_rows(data) if fmt == "csv" else read_xlsx_rows(data)
    assert list(rows[0]) == export.table_columns("entities")
    got = by_id(rows, "id")
    for i, name in enumerate(AWKWARD):
        row = got[f"awk-{i:02d}"]
        want = ("'" + name) if name[0] in "=+-@\t\r" else name
        assert row["name_zh"] == want and row["name_en"] == want and row["notes"] == want, row
        if i % 3 != 2:
            lon = row["lon"] if fmt == "xlsx" else float(row["lon"])
            assert isinstance(lon, float) and math.isclose(lon, 120.6 + i / 1e6), "a number"
        else:
            assert row["lon"] in (None, ""), "unknown stays empty, never 0"
    formulas = [v for r in rows for v in r.values()
                if isinstance(v, str) and v.startswith(export.FORMULA_START)]
    assert formulas == []


def test_excel_cells_hold_no_formula(awkward_db: Path) -> None:
    data = export.export_bytes(awkward_db, "entities", "xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert ws["A1"].value == "id" and ws.freeze_panes == "A2"


def test_excel_row_limit_is_a_clear_error_and_leaves_no_file(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (export, export.files, export.writers):  # where the limit is read
        monkeypatch.setattr(module, "XLSX_MAX_ROWS", 3)
    out = tmp_path / "too-many.xlsx"
    with pytest.raises(ExportError, match="CSV or GeoPackage"):
        export.export_file(db, "entities", "xlsx", out)
    assert list(tmp_path.iterdir()) == []
    export.export_file(db, "boards", "csv", tmp_path / "ok.csv")  # other formats unaffected


# ----------------------------------------------------------------------------- filters


FILTERS = [
    make_filter(kinds=["laboratory"]),
    make_filter(boards=["苏州工业园区"], statuses=["operating"]),
    make_filter(layers=["taihu_science_city"]),
    make_filter(search="苏州"),
    make_filter(kinds=["university", "incubator"], levels=["national", "municipal"]),
]


@pytest.mark.parametrize("flt", FILTERS, ids=str)
def test_every_format_holds_exactly_the_filtered_entities(db: Path, tmp_path: Path,
                                                          flt: EntityFilter) -> None:
    want = set(store.query_entities(db, flt)["id"])
    assert want, "the filter matches something (so the test can fail)"
    assert want != set(store.query_entities(db)["id"])
    order = None
    for fmt in FORMATS:
        path, n = export_to(tmp_path, db, "entities", fmt, flt)
        ids = [r["id"] for r in gdal_rows(path)]
        assert n == len(ids) and set(ids) == want, fmt
        order = order or ids
        assert ids == order, "every format lists the features in the same order"


def first_rows(db: Path, flt: EntityFilter | None) -> str:
    """What the exported rows of ``flt`` start with: ``point``, ``no point`` (the first row
    has no coordinates, a later one has) or ``no point anywhere``."""
    rows = read_csv_rows(export.export_bytes(db, "entities", "csv", flt=flt))
    if not any(r["lon"] for r in rows):
        return "no point anywhere"
    return "point" if rows[0]["lon"] else "no point"


def filter_starting_with(db: Path, case: str) -> EntityFilter:
    """A one-value filter (a kind, status, level or 板块) whose export starts as ``case`` says,
    found in the data, so the case holds whatever the registry holds."""
    values = query_sql(db, "SELECT DISTINCT kind, status, level, board FROM entities")
    options = {"kind": "kinds", "status": "statuses", "level": "levels", "board": "boards"}
    for column, option in options.items():
        for value in sorted(v for v in set(values[column]) if isinstance(v, str) and v):
            flt = make_filter(**{option: [value]})
            if first_rows(db, flt) == case:
                return flt
    pytest.fail(f"no filter of the test database starts with {case!r}")


@pytest.mark.parametrize("case", [None, "no point", "no point anywhere", "point"],
                         ids=["no filter", "first row without a point", "no row has a point",
                              "first row with a point"])
def test_gdal_finds_the_xlsx_header_by_itself_whatever_the_filter(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str | None) -> None:
    # no filter: the shipped registry starts with an entity without a point (the 83-row bug)
    monkeypatch.delenv("OGR_XLSX_HEADERS", raising=False)
    assert pyogrio.get_gdal_config_option("OGR_XLSX_HEADERS") is None
    flt = None if case is None else filter_starting_with(db, case)
    path, n = export_to(tmp_path, db, "entities", "xlsx", flt)
    rows = read_xlsx_rows(path.read_bytes())
    assert len(rows) >= 2, "GDAL guesses from the second row (so the test can fail)"
    df = pyogrio.read_dataframe(path)  # GDAL's own guess (HEADERS=AUTO), as QGIS opens it
    assert list(df.columns) == export.table_columns("entities")
    assert len(df) == n == len(rows) == store.count_entities(db, flt)
    assert list(df["id"]) == [r["id"] for r in rows]
    if case != "no point anywhere":
        assert pd.api.types.is_float_dtype(df["lon"]), "coordinates are read as numbers"


@pytest.mark.parametrize("collection", [c for c in COLLECTIONS if c != "entities"])
def test_gdal_finds_the_xlsx_header_of_every_collection(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collection: str) -> None:
    monkeypatch.delenv("OGR_XLSX_HEADERS", raising=False)
    path, n = export_to(tmp_path, db, collection, "xlsx")
    df = pyogrio.read_dataframe(path)
    assert list(df.columns) == export.table_columns(collection)
    assert len(df) == n


def test_empty_result_is_still_a_valid_file_in_every_format(db: Path, tmp_path: Path) -> None:
    flt = make_filter(search="no entity is called this")
    doc = strict_json(export.export_bytes(db, "entities", "geojson", flt=flt))
    assert doc == {"type": "FeatureCollection", "features": []}
    assert geojson_validator.validate_structure(doc) == {}
    for fmt in ("geojson", "csv", "gpkg"):
        path, n = export_to(tmp_path, db, "entities", fmt, flt)
        assert n == 0 and gdal_count(path) == 0, fmt
    # GDAL reads a lone header row of .xlsx as data, so openpyxl checks the empty sheet
    assert read_xlsx_rows(export.export_bytes(db, "entities", "xlsx", flt=flt)) == []
    assert read_csv_rows(export.export_bytes(db, "entities", "csv", flt=flt)) == []


def test_bad_requests_raise_export_errors(db: Path) -> None:
    with pytest.raises(ExportError, match="entities only"):
        export.export_bytes(db, "boards", "csv", flt=make_filter(kinds=["laboratory"]))
    with pytest.raises(ExportError, match="format"):
        export.export_bytes(db, "entities", "shp")
    with pytest.raises(ExportError, match="collection"):
        export.export_bytes(db, "roads", "geojson")
    assert export.export_bytes(db, "boards", "csv", flt=EntityFilter())  # empty filter is fine


@pytest.mark.parametrize(("name", "fmt"), [("a.geojson", "geojson"), ("a.JSON", "geojson"),
                                           ("a.csv", "csv"), ("a.xlsx", "xlsx"),
                                           ("a.gpkg", "gpkg"), ("a.txt", None), ("a", None)])
def test_format_from_path(name: str, fmt: str | None) -> None:
    assert export.format_from_path(name) == fmt


# ----------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(("args", "fmt"), [
    (["-o", "{d}/x.csv"], "csv"),  # inferred from the extension
    (["-o", "{d}/x.gpkg"], "gpkg"),
    (["-o", "{d}/x.out", "--format", "xlsx"], "xlsx"),  # explicit
    (["-o", "{d}/x.out"], "geojson"),  # unknown extension: GeoJSON
])
def test_cli_format_option(env_settings: Settings, tmp_path: Path, args: list[str], fmt: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["export", "entities", "--kind", "laboratory", *[a.format(d=tmp_path) for a in args]]
    assert cli.main(argv) == 0, capsys.readouterr().err
    out = Path(argv[argv.index("-o") + 1])
    flt = make_filter(kinds=["laboratory"])
    if fmt in ("geojson", "csv"):
        assert out.read_bytes() == export.export_bytes(env_settings.db_path, "entities",
                                                       fmt, flt=flt)
    else:
        assert gdal_count(out) == export.count_features(
            env_settings.db_path, "entities", flt)[0]
    assert f"({fmt})" in capsys.readouterr().err


def test_cli_writes_to_stdout(env_settings: Settings,
                              capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli.main(["export", "water", "-o", "-", "--format", "csv"]) == 0
    out = capsysbinary.readouterr().out
    assert out == export.export_bytes(env_settings.db_path, "water", "csv")


def test_cli_rejects_filters_on_other_collections(env_settings: Settings, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", "boards", "--kind", "laboratory", "-o",
                     str(tmp_path / "b.csv")]) == 2
    assert "filters apply to 'export entities' only" in capsys.readouterr().err
    assert not (tmp_path / "b.csv").exists()


def test_missing_database_is_a_clear_error(tmp_path: Path) -> None:
    from geo_app.errors import DataError

    with pytest.raises(DataError, match="does not exist"):
        export.export_bytes(tmp_path / "nope.duckdb", "entities", "geojson")


def test_cli_reports_a_missing_folder(env_settings: Settings, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no" / "such" / "folder.geojson"
    assert cli.main(["export", "entities", "-o", str(out)]) == 1
    assert "does not exist" in capsys.readouterr().err


# ----------------------------------------------------------------------------- output paths
# (security: an export must never write the database or its files; bad paths are one-line
# errors; temporary files of killed exports are cleared)


@pytest.fixture(scope="module")
def imported_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding the shipped data and one user import batch (copied per test)."""
    settings = copy_sources(tmp_path_factory.mktemp("imported"))
    build.build_database(settings)
    execute_sql(settings.db_path, [
        ("INSERT INTO import_batches (batch_id, file_name, imported_at, target, row_count, "
         "source_datum) VALUES ('imp-mine', 'mine.csv', now()::TIMESTAMP, 'entities', 1, "
         "'WGS84')", []),
        ("INSERT INTO entities (id, name_zh, kind, level, status, location_precision, source, "
         "origin, batch_id) VALUES ('mine-1', '用户导入', 'incubator', 'municipal', 'operating', "
         "'unknown', 'export path test', 'user', 'imp-mine')", [])])
    return settings.db_path


@pytest.fixture()
def user_db(imported_source: Path, tmp_path: Path) -> Path:
    """A copy of ``imported_source`` of this test's own: ``tmp_path/data/geo_app.duckdb``."""
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "geo_app.duckdb"
    db.write_bytes(imported_source.read_bytes())
    return db


def batches_of(db: Path) -> int:
    return int(query_sql(db, "SELECT count(*) FROM import_batches").iloc[0, 0])


DATABASE_TARGETS = [
    "data/geo_app.duckdb",                  # the database itself: the reported bug
    "data/../data/geo_app.duckdb",          # the same through ..
    "link-to-db.geojson",                   # a symlink to the database
    "linked-data/geo_app.duckdb",           # through a symlinked folder
    "hard-link.geojson",                    # a hard link to the database (same inode)
    "data/geo_app.duckdb.wal",              # its write-ahead log
    "data/geo_app.duckdb.lock",             # the writer lock
    "data/geo_app.duckdb.write-4242-1",     # store.rewrite's copy
    "data/geo_app.duckdb.tmp4242",          # a build's new file
]


@pytest.mark.parametrize(("target", "fmt"), [(t, "geojson") for t in DATABASE_TARGETS] + [
    (DATABASE_TARGETS[0], fmt) for fmt in FORMATS if fmt != "geojson"])
def test_export_never_writes_the_database_or_its_files(user_db: Path, tmp_path: Path,
                                                       target: str, fmt: str) -> None:
    (tmp_path / "link-to-db.geojson").symlink_to(user_db)
    (tmp_path / "linked-data").symlink_to(user_db.parent)
    os.link(user_db, tmp_path / "hard-link.geojson")
    before = user_db.read_bytes()
    with pytest.raises(ExportError, match="Refusing to export") as info:
        export.export_file(user_db, "entities", fmt, tmp_path / target)
    assert "\n" not in info.value.user_message
    assert user_db.read_bytes() == before
    assert batches_of(user_db) == 1, "the user's import batch survives"
    assert sorted(p.name for p in user_db.parent.iterdir()) == ["geo_app.duckdb"]


def test_a_stream_open_on_the_database_is_refused(user_db: Path) -> None:
    """``geo-app export entities -o - >> data/geo_app.duckdb`` would append to the file."""
    before = user_db.read_bytes()
    with open(user_db, "ab") as fh, pytest.raises(ExportError, match="Refusing to export"):
        export.write_export(user_db, "entities", "geojson", fh)
    assert user_db.read_bytes() == before and batches_of(user_db) == 1


def test_exports_beside_the_database_still_work(user_db: Path) -> None:
    out = user_db.with_name("geo_app.duckdb.geojson")  # a name that only starts alike
    assert export.export_file(user_db, "entities", "geojson", out) > 80
    assert strict_json(out.read_bytes())["features"]


BAD_TARGETS = [
    ("", "empty"),                          # --output ""
    ("{tmp}", "is a folder"),               # a folder
    ("{tmp}/", "is a folder"),
    ("/proc/version", "Cannot write /proc/version"),  # not writable, even as root
    ("{tmp}/a-file.txt/x.geojson", "does not exist"),  # the parent is a regular file
    ("{tmp}/no/such/x.geojson", "does not exist"),
]


@pytest.mark.parametrize(("target", "message"), BAD_TARGETS)
def test_bad_output_paths_are_clear_errors(db: Path, tmp_path: Path, target: str,
                                           message: str) -> None:
    (tmp_path / "a-file.txt").write_text("x")
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ExportError, match=message) as info:
        export.export_file(db, "boards", "geojson", target.format(tmp=tmp_path))
    assert "\n" not in info.value.user_message
    assert sorted(tmp_path.iterdir()) == before, "nothing is left behind"


def dead_pid() -> int:
    """The id of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_of_killed_exports_are_removed(db: Path, tmp_path: Path) -> None:
    gone, alive = dead_pid(), os.getpid()
    stale = [tmp_path / f".out.tmp{gone}.geojson",        # the name of older versions
             tmp_path / f".out.tmp{gone}-0a1b2c3d.geojson"]
    kept = [tmp_path / f".out.tmp{alive}.geojson",        # a live process: still writing
            tmp_path / f".other.tmp{gone}.geojson",       # another target's
            tmp_path / f".out.tmp{gone}.csv",             # out.csv's, not out.geojson's
            tmp_path / ".out.tmp-notes.geojson"]          # not a temporary file at all
    for path in stale + kept:
        path.write_bytes(b'{"type": "FeatureCollection", "feat')
    export.export_file(db, "water", "geojson", tmp_path / "out.geojson")
    assert [p for p in stale if p.exists()] == []
    assert [p for p in kept if not p.exists()] == []
    assert strict_json((tmp_path / "out.geojson").read_bytes())["features"]
    assert {p.name for p in tmp_path.iterdir()} == {"out.geojson"} | {p.name for p in kept}


# ----------------------------------------------------------------------------- app downloads


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_prepared_download_is_the_cli_file_in_a_folder_of_its_own(
        db: Path, tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "static" / "downloads"
    flt = make_filter(kinds=["laboratory"])
    got = export.prepare_download(db, "entities", fmt, root, flt=flt)
    path, n = export_to(tmp_path, db, "entities", fmt, flt)
    assert got.features == n > 0
    assert got.name == f"suzhou-entities{export.EXTENSIONS[fmt]}" and got.path.name == got.name
    assert got.size == got.path.stat().st_size
    token = got.path.parent.name
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token), "secrets.token_urlsafe(24)"
    assert got.url_path == f"{token}/{got.name}"
    assert [p.relative_to(root) for p in root.rglob("*")] == [Path(token), Path(got.url_path)]
    if fmt == "gpkg":  # GDAL stamps the time into a GeoPackage
        assert gdal_rows(got.path) == gdal_rows(path)
    elif fmt == "xlsx":  # and openpyxl into a workbook
        assert read_xlsx_rows(got.path.read_bytes()) == read_xlsx_rows(path.read_bytes())
    else:
        assert got.path.read_bytes() == path.read_bytes()
    again = export.prepare_download(db, "entities", fmt, root, flt=flt)
    assert again.path.parent != got.path.parent and got.path.is_file(), "one folder per click"


def test_a_failed_download_leaves_no_folder(db: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "downloads"

    def full_disk(*args: Any, **kwargs: Any) -> int:
        Path(args[3]).write_bytes(b"partial")
        msg = "Cannot write it: No space left on device"
        raise ExportError(msg)

    with pytest.raises(ExportError, match="Unknown export format"):
        export.prepare_download(db, "entities", "pdf", root)
    monkeypatch.setattr(export.downloads, "export_file", full_disk)
    with pytest.raises(ExportError, match="No space left"):
        export.prepare_download(db, "entities", "csv", root)
    assert list(root.iterdir()) == []


def test_old_download_folders_are_removed(tmp_path: Path) -> None:
    root = tmp_path / "downloads"
    root.mkdir()
    now = time.time()
    old = now - export.DOWNLOAD_MAX_AGE_S - 1

    def folder(name: str, mtime: float) -> Path:
        path = root / name
        path.mkdir()
        (path / "suzhou-entities.csv").write_text("x")
        os.utime(path, (mtime, mtime))
        return path

    stale = folder("A" * 32, old)
    kept = [folder("B" * 32, now - 60),        # young: a link a user may still click
            folder("not-a-token", old),        # not ours
            folder("C" * 31, old)]             # not a token's length
    target = folder("target", old)
    link = root / ("D" * 32)                   # a symlink is never followed
    link.symlink_to(target)
    a_file = root / ("E" * 32)
    a_file.write_text("a file, not a folder")
    os.utime(a_file, (old, old))
    assert export.clear_old_downloads(root, now=now) == [stale]
    assert not stale.exists()
    assert all(p.is_dir() for p in kept) and link.is_symlink() and a_file.is_file()
    assert (target / "suzhou-entities.csv").is_file()
    assert export.clear_old_downloads(tmp_path / "missing") == []


def test_download_folders_are_removed_when_the_process_exits(db: Path, tmp_path: Path) -> None:
    root = tmp_path / "downloads"
    other = root / ("F" * 32)  # another process's, young: left alone
    other.mkdir(parents=True)
    code = ("import sys; from pathlib import Path; from geo_app import export; "
            "d = export.prepare_download(Path(sys.argv[1]), 'boards', 'csv', Path(sys.argv[2])); "
            "print(d.path); assert d.path.read_bytes().startswith(b'\\xef\\xbb\\xbf')")
    proc = subprocess.run([sys.executable, "-c", code, str(db), str(root)], capture_output=True,
                          text=True, cwd=PROJECT_ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip().splitlines()[-1])
    assert path.parent.parent == root
    assert not path.parent.exists(), "removed at exit"
    assert list(root.iterdir()) == [other]
