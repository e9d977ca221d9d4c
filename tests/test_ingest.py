"""Import: reading, validation, normalisation, the bad-input corpus, and the store afterwards."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import os
import re
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import copy_sources
from openpyxl import Workbook

import geo_app
from geo_app import build, datum, ingest, layers, store
from geo_app.auth import local_actor
from geo_app.errors import ImportValidationError
from geo_app.settings import PROJECT_ROOT, Settings
from geo_app.vocab import BOARDS, KINDS, LEVELS, PRECISIONS, REGISTRY_COLUMNS, STATUSES
from tests.helpers import query_sql
from tests.hostile_inputs import Hostile, hostile_files, workbook
from tests.hostile_inputs import row as hostile_row

CORPUS = Path(__file__).parent / "bad_inputs"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
HEADER = ["id", "name_zh", "name_en", "kind", "level", "status", "board", "lon", "lat",
          "location_precision", "location_source", "source_datum", "source", "notes"]


def _row(**changes: str) -> dict[str, str]:
    base = {"id": "u-001", "name_zh": "测试实验室", "name_en": "Test lab", "kind": "laboratory",
            "level": "provincial", "status": "operating", "board": "昆山市", "lon": "120.95",
            "lat": "31.38", "location_precision": "district", "location_source": "AMap",
            "source_datum": "WGS84", "source": "user list", "notes": ""}
    return {**base, **changes}


def _csv(rows: list[dict[str, str]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(HEADER)
    for r in rows:
        w.writerow([r.get(c, "") for c in HEADER])
    return buf.getvalue()


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371008.8 * math.asin(math.sqrt(a))


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- the corpus


def test_corpus_has_at_least_30_files_each_listed_once() -> None:
    files = sorted(p.name for p in CORPUS.iterdir()
                   if p.name not in ("cases.json", "make_corpus.py", "__pycache__"))
    listed = [c["file"] for c in CASES]
    assert len(listed) == len(set(listed)) >= 30
    assert files == sorted(listed), "every corpus file has a case and every case a file"


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_corpus_case_reports_precise_problem(case: dict) -> None:
    data = (CORPUS / case["file"]).read_bytes()
    report = ingest.read_upload(data, case["file"], datum=case["datum"],
                                existing_ids={"hz-sip"})
    assert not report.ok
    en, zh = case["expect"]
    hits = [p for p in report.errors if en in p.en and zh in p.zh]
    assert hits, f"{case['file']}: no error with {en!r}/{zh!r} in {[p.en for p in report.errors]}"
    assert any(p.row == case["row"] and p.column == case["column"] for p in hits), (
        f"{case['file']}: expected at row {case['row']} column {case['column']!r}, "
        f"got {[(p.row, p.column) for p in hits]}")
    text = report.table().to_string()
    assert en in text and zh in text, "the displayed report carries both languages"


@pytest.fixture(scope="module")
def corpus_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of its own for the corpus: every bad file is thrown at it."""
    settings = copy_sources(tmp_path_factory.mktemp("corpus"))
    build.build_database(settings)
    return settings.db_path


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_corpus_case_leaves_store_byte_identical(case: dict, corpus_db: Path) -> None:
    before = _digest(corpus_db)
    report, batch = ingest.import_file(CORPUS / case["file"], corpus_db, actor=local_actor(),
                                       datum=case["datum"])
    assert batch is None and not report.ok
    with pytest.raises(ImportValidationError):
        ingest.import_report(report, corpus_db, actor=local_actor())
    assert _digest(corpus_db) == before, "a rejected file must not touch the database"
    assert not Path(str(corpus_db) + ".wal").exists()


# ----------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(("encoding", "name", "expected"), [
    ("utf-8", "a.csv", "UTF-8"),
    ("utf-8-sig", "a.csv", "UTF-8 with BOM"),  # Excel's "CSV UTF-8"
    ("gbk", "a.csv", "GBK/GB18030"),  # Excel's "CSV" on a Chinese Windows
    ("utf-16", "a.txt", "UTF-16 LE"),  # Excel's "Unicode text": UTF-16 LE + BOM, tabs
])
def test_encodings_decode_exactly(encoding: str, name: str, expected: str) -> None:
    delimiter = "\t" if name.endswith(".txt") else ","
    text = _csv([_row(name_zh="苏州纳米城（示例）", notes="中文备注，含逗号")], delimiter)
    report = ingest.read_upload(text.encode(encoding), name)
    assert report.ok, [p.en for p in report.problems]
    assert report.encoding == expected
    assert report.rows.iloc[0]["name_zh"] == "苏州纳米城（示例）"
    assert report.rows.iloc[0]["notes"] == "中文备注，含逗号"


def test_gb18030_four_byte_ideograph_is_kept() -> None:
    # 㐀 (U+3400, CJK extension A) needs GB18030's four-byte form; it is not garbage.
    report = ingest.read_upload(_csv([_row(name_zh="㐀实验室")]).encode("gb18030"), "a.csv")
    assert report.ok and report.rows.iloc[0]["name_zh"] == "㐀实验室"


def test_decode_never_falls_back_to_latin1() -> None:
    with pytest.raises(ImportValidationError) as err:
        ingest.decode_text("Zürich café".encode("cp1252"))
    assert "UTF-8" in str(err.value)


# ----------------------------------------------------------------------------- normalisation


def test_full_width_digits_and_punctuation_are_normalised() -> None:
    report = ingest.read_upload(_csv([_row(lon="１２０．９５", lat="３１．３８",
                                            id="ｕ－００１")]).encode(), "a.csv")
    assert report.ok, [p.en for p in report.problems]
    row = report.rows.iloc[0]
    assert (row["lon"], row["lat"], row["id"]) == (120.95, 31.38, "u-001")


@pytest.mark.parametrize(("text", "is_number"), [
    ("120.95", True),
    ("１２０．９５", True),  # full-width: folded by NFKC before the rule applies
    ("+1.2095e2", True),
    ("١٢٠.٩٥", False),  # Arabic-Indic digits: float() reads them, the number rule does not
    ("1_20.95", False),  # float() reads the underscore too
    ("nan", False),
])
def test_both_imports_read_a_number_by_one_rule(text: str, is_number: bool) -> None:
    # a coordinate of the entity import and a value of the indicator import: one rule
    # (geo_app.numbers.is_decimal), where each import had its own pattern before
    entity = ingest.read_upload(_csv([_row(lon=text)]).encode(), "a.csv")
    figure = f"板块,indicator,year,value,unit,source\n太仓市,gdp,2023,{text},亿元,s\n".encode()
    if is_number:
        assert entity.ok and entity.rows.iloc[0]["lon"] == 120.95, [p.en for p in entity.errors]
        assert ingest.parse_user_indicators(figure)["value"].tolist() == [120.95]
    else:
        assert [p.column for p in entity.errors] == ["lon"]
        with pytest.raises(ImportValidationError, match="value"):
            ingest.parse_user_indicators(figure)


@pytest.mark.parametrize(("column", "given", "stored"), [
    ("kind", "实验室", "laboratory"),  # the zh label
    ("kind", "Laboratory", "laboratory"),  # the en label, any case
    ("kind", "Technology innovation centre", "technology_innovation_center"),
    ("level", "省级", "provincial"),
    ("status", "在建", "under_construction"),
    ("status", "Under construction", "under_construction"),
    ("board", "昆山", "昆山市"),  # the short form people write
    ("board", "Suzhou Industrial Park", "苏州工业园区"),
    ("location_precision", "区县", "district"),
])
def test_vocabulary_labels_are_synonyms(column: str, given: str, stored: str) -> None:
    report = ingest.read_upload(_csv([_row(**{column: given})]).encode(), "a.csv")
    assert report.ok, [p.en for p in report.problems]
    assert report.rows.iloc[0][column] == stored


def test_chinese_headers_are_accepted() -> None:
    zh = [ingest.COLUMN_ZH[c] for c in HEADER]
    rows = _csv([_row()]).splitlines()
    text = ",".join(zh) + "\n" + rows[1] + "\n"
    report = ingest.read_upload(text.encode(), "a.csv")
    assert report.ok, [p.en for p in report.problems]


def test_spreadsheet_ids_are_kept_as_text_in_csv() -> None:
    report = ingest.read_upload(_csv([_row(id="000123")]).encode(), "a.csv")
    assert report.ok and report.rows.iloc[0]["id"] == "000123"


def _xlsx(*rows: list[object], formats: dict[str, str] | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    for ref, fmt in (formats or {}).items():
        ws[ref].number_format = fmt
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_xlsx_ids_text_padded_and_numeric() -> None:
    base = [_row()[c] for c in HEADER]
    text_id = ["000123", *base[1:]]
    padded = [124, *base[1:]]  # a number shown as 000124 by the cell format
    plain = [125, *base[1:]]
    floats = list(base)
    floats[7], floats[8] = 120.95, 31.38  # numeric coordinate cells
    floats[0] = "u-float"
    data = _xlsx(text_id, padded, plain, floats, formats={"A3": "000000"})
    report = ingest.read_upload(data, "list.xlsx")
    assert report.ok, [p.en for p in report.errors]
    assert list(report.rows["id"]) == ["000123", "000124", "125", "u-float"]
    warning = [p for p in report.warnings if p.column == "id"]
    assert len(warning) == 1 and warning[0].row == 4 and "leading zeros" in warning[0].en
    assert report.rows.iloc[3]["lon"] == 120.95


def test_only_first_sheet_is_read_with_a_warning() -> None:
    wb = Workbook()
    wb.active.append(HEADER)
    wb.active.append([_row()[c] for c in HEADER])
    wb.create_sheet("other").append(["x"])
    buf = io.BytesIO()
    wb.save(buf)
    report = ingest.read_upload(buf.getvalue(), "a.xlsx")
    assert report.ok
    assert any("other" in p.en and p.severity == "warning" for p in report.problems)


# ----------------------------------------------------------------------------- datums

TRUTH = [(120.585, 31.299), (120.7385, 31.2655), (121.1, 31.45), (120.3, 31.1), (120.62, 31.9)]


@pytest.mark.parametrize(("name", "forward"), [("gcj02", datum.wgs84_to_gcj02),
                                               ("bd09", datum.wgs84_to_bd09)])
def test_shifted_file_lands_within_one_metre(name: str, forward) -> None:  # type: ignore[no-untyped-def]
    lon, lat = forward([p[0] for p in TRUTH], [p[1] for p in TRUTH])
    rows = [_row(id=f"u-{i}", lon=repr(float(x)), lat=repr(float(y)), source_datum="")
            for i, (x, y) in enumerate(zip(lon, lat, strict=True))]
    report = ingest.read_upload(_csv(rows).encode(), "amap.csv", datum=name)
    assert report.ok, [p.en for p in report.problems]
    got = report.rows
    for (tx, ty), gx, gy in zip(TRUTH, got["lon"], got["lat"], strict=True):
        assert _metres(tx, ty, gx, gy) < 1.0
    shifted = [_metres(tx, ty, x, y) for (tx, ty), x, y in zip(TRUTH, lon, lat, strict=True)]
    assert min(shifted) > 200, "the file really was shifted (the test could fail)"
    assert list(got["source_lon"]) == [float(repr(float(x))) for x in lon]
    assert set(got["source_datum"]) == {name.upper()}
    label = {"gcj02": "GCJ-02 -> WGS-84", "bd09": "BD-09 -> WGS-84"}[name]
    assert all(c.startswith(label) for c in got["conversion"])
    assert report.datum == name.upper()


def test_datum_per_row_from_column() -> None:
    gx, gy = datum.wgs84_to_gcj02(120.585, 31.299)
    rows = [_row(id="u-w", lon="120.585", lat="31.299", source_datum="WGS-84"),
            _row(id="u-g", lon=repr(float(gx)), lat=repr(float(gy)), source_datum="高德")]
    report = ingest.read_upload(_csv(rows).encode(), "mixed.csv")
    assert report.ok, [p.en for p in report.problems]
    by_id = report.rows.set_index("id")
    assert _metres(120.585, 31.299, by_id.loc["u-g", "lon"], by_id.loc["u-g", "lat"]) < 1
    assert by_id.loc["u-w", "conversion"] == "none (WGS-84 source)"
    assert report.datum == "GCJ02,WGS84"


def test_rows_without_coordinates_need_no_datum() -> None:
    report = ingest.read_upload(_csv([_row(lon="", lat="", source_datum="",
                                           location_precision="unknown")]).encode(), "a.csv")
    assert report.ok, [p.en for p in report.problems]
    row = report.rows.iloc[0]
    assert np.isnan(row["lon"]) and row.geometry is None and row["source_datum"] == ""


def test_unknown_datum_option_is_rejected() -> None:
    report = ingest.read_upload(_csv([_row()]).encode(), "a.csv", datum="utm")
    assert not report.ok and "unknown datum 'utm'" in report.errors[0].en


# ----------------------------------------------------------------------------- locations


def test_point_near_suzhou_is_a_warning_not_an_error() -> None:
    report = ingest.read_upload(_csv([_row(lon="121.47", lat="31.23")]).encode(), "sh.csv")
    assert report.ok
    assert [p.severity for p in report.problems] == ["warning"]
    assert "outside Suzhou" in report.problems[0].en


def test_offshore_centre_may_lie_abroad() -> None:
    rows = [_row(kind="offshore_innovation_center", lon="-71.09", lat="42.36", board="")]
    report = ingest.read_upload(_csv(rows).encode(), "boston.csv")
    assert report.ok and report.warnings and "accepted because" in report.warnings[0].en
    assert report.rows.iloc[0]["conversion"] == "none (WGS-84 source)"


def test_geojson_with_bom_null_geometry_and_feature_ids() -> None:
    props = {k: v for k, v in _row().items() if k not in ("lon", "lat", "source_datum", "id")}
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "g-1", "properties": props,
         "geometry": {"type": "Point", "coordinates": [120.95, 31.38, 5.0]}},
        {"type": "Feature", "id": 2, "properties": {**props, "location_precision": "unknown"},
         "geometry": None},
    ]}
    data = codecs.BOM_UTF8 + json.dumps(doc, ensure_ascii=False).encode()
    report = ingest.read_upload(data, "points.geojson")
    assert report.ok, [p.en for p in report.problems]
    assert list(report.rows["id"]) == ["g-1", "2"]
    assert report.rows.iloc[0]["source_datum"] == "WGS84"  # RFC 7946
    assert report.rows.iloc[1].geometry is None


def test_export_round_trip_keeps_original_coordinates() -> None:
    gx, gy = datum.wgs84_to_gcj02(120.7, 31.3)
    wx, wy = datum.gcj02_to_wgs84(gx, gy)
    header = [*HEADER, "source_lon", "source_lat", "conversion", "origin", "batch_id", "layers"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    r = _row(lon=repr(float(wx)), lat=repr(float(wy)), source_datum="GCJ02")
    w.writerow([*(r[c] for c in HEADER), repr(float(gx)), repr(float(gy)), "x", "user", "b", "l"])
    report = ingest.read_upload(buf.getvalue().encode(), "export.csv")
    assert report.ok, [p.en for p in report.problems]
    row = report.rows.iloc[0]
    assert (row["lon"], row["source_lon"], row["source_datum"]) == (float(wx), float(gx), "GCJ02")
    assert row["origin"] == "user" and row["batch_id"] is None


# ----------------------------------------------------------------------------- limits


def test_size_limit_matches_streamlit_upload_limit() -> None:
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert ingest.MAX_UPLOAD_BYTES == config["server"]["maxUploadSize"] * 1024 * 1024


def test_oversized_upload_is_rejected() -> None:
    data = _csv([_row()]).encode() + b" " * ingest.MAX_UPLOAD_BYTES
    report = ingest.read_upload(data, "big.csv")
    assert not report.ok and "the limit is 20 MB" in report.errors[0].en


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with open(path, "wb") as fh:
        fh.truncate(ingest.MAX_UPLOAD_BYTES + 1)  # sparse: nothing to read
    report, batch = ingest.import_file(path, tmp_path / "no.duckdb", actor=local_actor())
    assert batch is None and "limit is 20 MB" in report.errors[0].en


def test_zip_bomb_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    wb = Workbook()
    wb.active.append(HEADER)
    buf = io.BytesIO()
    wb.save(buf)
    monkeypatch.setattr(ingest.sniff, "MAX_UNPACKED_BYTES", 1000)
    report = ingest.read_upload(buf.getvalue(), "a.xlsx")
    assert "unpacks to" in report.errors[0].en


def test_problem_list_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest.report, "MAX_PROBLEMS", 10)
    rows = [_row(id=f"u-{i}", kind="nope") for i in range(25)]
    report = ingest.read_upload(_csv(rows).encode(), "a.csv")
    assert len(report.problems) == 11 and "15 more problems" in report.problems[-1].en


# ----------------------------------------------------------------------------- template, docs


def test_template_has_registry_columns_and_a_rejected_example_row() -> None:
    table = ingest.template_rows()
    assert tuple(table.columns) == REGISTRY_COLUMNS
    assert list(table["id"]) == ["example-001"]
    data = ingest.TEMPLATE_PATH.read_bytes()
    report = ingest.read_upload(data, "import_template.csv")
    assert [p.en for p in report.errors] == [
        "this is the template's example row; delete it (or give a real id)"]
    fixed = ingest.read_upload(data.replace(b"example-001", b"u-001"), "mine.csv")
    assert fixed.ok, "apart from its id the example row is valid"


def test_docs_name_every_column_and_value() -> None:
    text = (PROJECT_ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    for value in (*REGISTRY_COLUMNS, *KINDS, *LEVELS, *STATUSES, *PRECISIONS, *BOARDS,
                  "GCJ02", "BD09", "WGS84"):
        assert re.search(rf"`{re.escape(value)}`", text), f"docs/import.md does not name {value}"
    for command in ("geo-app import", "--dry-run", "--datum gcj02", "geo-app batches",
                    "geo-app remove-batch"):
        assert command in text, f"docs/import.md does not show {command}"


# ----------------------------------------------------------------------------- the store


@pytest.fixture()
def user_db(writable_settings: Settings) -> Path:
    """A fresh database of this test's own (the session database is read-only)."""
    return writable_settings.db_path


def _inside_layer(path: Path) -> tuple[str, float, float]:
    layer = store.read_geo_table(path, "layers").iloc[0]
    point = layer.geometry.representative_point()
    return str(layer["id"]), float(point.x), float(point.y)


def test_import_writes_rows_batch_and_memberships(user_db: Path) -> None:
    db = user_db
    layer_id, x, y = _inside_layer(db)
    gx, gy = datum.wgs84_to_gcj02(x, y)
    rows = [_row(id="u-in", lon=repr(float(gx)), lat=repr(float(gy)), source_datum="GCJ02"),
            _row(id="u-none", lon="", lat="", source_datum="", location_precision="unknown")]
    path = db.parent / "mine.csv"
    path.write_text(_csv(rows), encoding="utf-8")
    before = store.count_entities(db)
    report, batch = ingest.import_file(path, db, actor=local_actor())
    assert report.ok and batch is not None
    ents = store.query_entities(db).set_index("id")
    assert len(ents) == before + 2
    user = ents[ents["origin"] == "user"]
    assert set(user.index) == {"u-in", "u-none"} and set(user["batch_id"]) == {batch}
    assert layer_id in ents.loc["u-in", "layers"].split(",")
    assert _metres(x, y, ents.loc["u-in", "lon"], ents.loc["u-in", "lat"]) < 1
    batches = ingest.list_batches(db)
    assert batches.iloc[0][["batch_id", "file_name", "target", "row_count", "source_datum",
                            "rows_present"]].tolist() == [batch, "mine.csv", "entities", 2,
                                                          "GCJ02", 2]
    members = query_sql(db, "SELECT * FROM layer_members ORDER BY ALL")
    layers.refresh_membership(db)  # the full recomputation agrees with the incremental one
    assert query_sql(db, "SELECT * FROM layer_members ORDER BY ALL").equals(members)


def test_user_rows_survive_a_rebuild(writable_settings: Settings) -> None:
    db = writable_settings.db_path
    layer_id, x, y = _inside_layer(db)
    path = db.parent / "mine.csv"
    path.write_text(_csv([_row(id="u-keep", lon=repr(x), lat=repr(y))]), encoding="utf-8")
    _, batch = ingest.import_file(path, db, actor=local_actor())
    old_hash = store.read_meta(db)["source_hash"]
    registry = writable_settings.data_dir / "registry.csv"  # a copy in tmp_path
    registry.write_text(registry.read_text(encoding="utf-8").rstrip("\n") + " \n", encoding="utf-8")
    build.ensure_database(writable_settings)
    assert store.read_meta(db)["source_hash"] != old_hash, "the edit forced a rebuild"
    ents = store.query_entities(db).set_index("id")
    assert ents.loc["u-keep", "origin"] == "user" and ents.loc["u-keep", "batch_id"] == batch
    assert layer_id in ents.loc["u-keep", "layers"].split(",")
    assert ingest.list_batches(db)["batch_id"].tolist() == [batch]
    build.build_database(writable_settings)  # `geo-app build` too
    assert "u-keep" in set(store.query_entities(db)["id"])


def test_remove_batch_removes_rows_and_memberships(user_db: Path) -> None:
    db = user_db
    _, x, y = _inside_layer(db)
    path = db.parent / "mine.csv"
    path.write_text(_csv([_row(id="u-gone", lon=repr(x), lat=repr(y))]), encoding="utf-8")
    before = _digest_rows(db)
    _, batch = ingest.import_file(path, db, actor=local_actor())
    assert ingest.remove_batch(db, batch, actor=local_actor()) == 1
    assert _digest_rows(db) == before
    with pytest.raises(ingest.BatchNotFoundError):
        ingest.remove_batch(db, batch, actor=local_actor())


def _digest_rows(db: Path) -> tuple[int, int, int, str]:
    r = query_sql(db, "SELECT (SELECT count(*) FROM entities), (SELECT count(*) FROM "
                      "layer_members), (SELECT count(*) FROM import_batches), "
                      "(SELECT md5(string_agg(id || layers, ',' ORDER BY id)) FROM entities)")
    return tuple(r.iloc[0])  # type: ignore[return-value]


def test_duplicate_against_store_and_dry_run_write_nothing(user_db: Path) -> None:
    db = user_db
    path = db.parent / "mine.csv"
    path.write_text(_csv([_row(id="u-twice")]), encoding="utf-8")
    before = _digest(db)
    report, batch = ingest.import_file(path, db, actor=local_actor(), dry_run=True)
    assert report.ok and batch is None and _digest(db) == before
    ingest.import_file(path, db, actor=local_actor())
    after_first = _digest_rows(db)
    report, batch = ingest.import_file(path, db, actor=local_actor())
    assert batch is None and "already in the database" in report.errors[0].en
    assert _digest_rows(db) == after_first


def test_id_taken_between_check_and_import_is_rejected(user_db: Path) -> None:
    db = user_db
    data = _csv([_row(id="u-race")]).encode()
    report = ingest.check_upload(data, "a.csv", db)
    other = ingest.check_upload(data, "b.csv", db)
    ingest.import_report(other, db, actor=local_actor())
    state = _digest_rows(db)
    with pytest.raises(ImportValidationError, match="u-race"):
        ingest.import_report(report, db, actor=local_actor())
    assert _digest_rows(db) == state


def test_values_are_stored_as_text_never_executed(user_db: Path) -> None:
    db = user_db
    nasty = "x'); DROP TABLE entities; --"
    data = _csv([_row(id="u-sql", name_zh=nasty, notes="<img src=x onerror=alert(1)>")]).encode()
    report = ingest.check_upload(data, "a.csv", db)
    ingest.import_report(report, db, actor=local_actor())
    ents = store.query_entities(db).set_index("id")
    assert ents.loc["u-sql", "name_zh"] == nasty
    assert ents.loc["u-sql", "notes"] == "<img src=x onerror=alert(1)>"


def test_busy_database_raises_clear_error_and_writes_nothing(user_db: Path) -> None:
    db = user_db
    import subprocess
    import sys

    report = ingest.check_upload(_csv([_row(id="u-busy")]).encode(), "a.csv", db)
    store.forget_readers()  # this process's reader would keep the outside writer out
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, duckdb; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(30)", str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        frame = report.rows.assign(batch_id="b-busy")
        from geo_app.errors import DatabaseBusyError

        with pytest.raises(DatabaseBusyError) as err:
            store.import_entities(db, frame, {"batch_id": "b-busy", "file_name": "a.csv",
                                              "imported_at": None, "target": "entities",
                                              "row_count": 1, "source_datum": "WGS84"},
                                  frame.iloc[0:0][["id"]].rename(columns={"id": "entity_id"})
                                  .assign(layer_id=""), actor=local_actor(), retries=2)
        assert "busy" in err.value.user_message and "数据库正忙" in err.value.user_message
    finally:
        holder.kill()
        holder.wait()
    assert "u-busy" not in store.entity_ids(db)


# ----------------------------------------------------------------------------- command line


def test_cli_import_dry_run_batches_and_remove(writable_settings: Settings, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from geo_app import cli

    db = writable_settings.db_path
    gx, gy = datum.wgs84_to_gcj02(120.7385, 31.2655)
    path = tmp_path / "amap.csv"
    path.write_text(_csv([_row(id="u-cli", lon=repr(float(gx)), lat=repr(float(gy)),
                               source_datum="")]), encoding="utf-8")
    before = _digest(db)
    assert cli.main(["import", str(path), "--datum", "gcj02", "--dry-run"]) == 0
    assert "nothing was written (--dry-run)" in capsys.readouterr().out
    assert _digest(db) == before
    assert cli.main(["import", str(path)]) == 1, "coordinates without a datum are refused"
    err = capsys.readouterr().err
    assert "row 2, column source_datum" in err and "第 2 行，source_datum 列" in err
    assert cli.main(["import", str(path), "--datum", "gcj02"]) == 0
    batch = ingest.list_batches(db)["batch_id"].iloc[0]
    assert f"imported 1 rows as batch {batch}" in capsys.readouterr().out
    row = store.query_entities(db).set_index("id").loc["u-cli"]
    assert _metres(120.7385, 31.2655, row["lon"], row["lat"]) < 1
    assert cli.main(["batches"]) == 0
    listing = capsys.readouterr().out
    assert batch in listing and "amap.csv" in listing and "GCJ02" in listing
    assert cli.main(["remove-batch", batch]) == 0
    assert "u-cli" not in store.entity_ids(db)
    assert cli.main(["remove-batch", batch]) == 1
    assert "No import batch" in capsys.readouterr().err


# ----------------------------------------------------------------------------- hostile inputs
# Each case below gave a traceback, a hang or an acceptance before the importer checked it.

HOSTILE = hostile_files()


def _all_text(report: ingest.ImportReport) -> str:
    """Everything the CLI prints about a report (every problem in both languages)."""
    return "\n".join([*(f"{p.describe('en')}\n{p.describe('zh')}" for p in report.problems),
                      report.summary("en"), str(report.to_error())])


@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_file_is_refused_with_a_located_problem(case: Hostile) -> None:
    report = ingest.read_upload(case.data, case.name)
    assert not report.ok and len(report.rows) == 0
    hits = [p for p in report.errors if case.expect in p.en]
    assert hits, f"{case.name}: no {case.expect!r} in {[p.en for p in report.errors]}"
    assert any(p.row == case.row and p.column == case.column for p in hits), \
        [(p.row, p.column) for p in hits]
    assert all(p.zh for p in hits), "the problem is in Chinese too"
    text = _all_text(report)
    text.encode("utf-8")  # printable: no lone surrogate reaches a terminal or a browser
    assert len(text) < 3000, "the messages stay short"
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]", text)


@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_file_leaves_store_byte_identical(case: Hostile, corpus_db: Path,
                                                  tmp_path: Path) -> None:
    path = tmp_path / case.name
    path.write_bytes(case.data)
    before = _digest(corpus_db)
    report, batch = ingest.import_file(path, corpus_db, actor=local_actor())
    assert batch is None and not report.ok
    assert any(case.expect in p.en for p in report.errors), "refused for its own reason"
    assert _digest(corpus_db) == before


def test_xml_entities_never_reach_a_local_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER", encoding="utf-8")
    doctype = f'<!DOCTYPE sst [<!ENTITY e SYSTEM "{secret.as_uri()}">]>'
    data = workbook([HEADER, hostile_row(name_zh="XXE")], doctype=doctype,
                    raw_strings={"XXE": "&e;"})
    report = ingest.read_upload(data, "xxe.xlsx")
    assert [p.en.split(";")[0] for p in report.errors] == [
        "the workbook part xl/sharedStrings.xml declares an XML document type (DTD) or entities"]
    assert "TOP-SECRET-MARKER" not in _all_text(report)
    assert len(report.rows) == 0


def test_internal_entities_are_refused_too() -> None:
    data = workbook([HEADER, hostile_row(name_zh="E")], doctype='<!DOCTYPE sst [<!ENTITY e "名">]>',
                    raw_strings={"E": "&e;"})
    report = ingest.read_upload(data, "entity.xlsx")
    assert "(DTD)" in report.errors[0].en and "DTD" in report.errors[0].zh


def test_huge_dimension_reads_only_the_cells_present(monkeypatch: pytest.MonkeyPatch) -> None:
    # <dimension ref="A1:XFD1048576"/> made openpyxl pad every row to 16,384 cells (90 s for
    # 20,000 rows); the claimed size must not matter, only the cells in the file.
    rows = [HEADER, *(hostile_row(id=f"u-{i}") for i in range(2000))]
    data = workbook(rows, dimension="A1:XFD1048576")
    seen = 0
    read_cell = ingest._readers._xlsx_text

    def counting(*args: object) -> str:
        nonlocal seen
        seen += 1
        return read_cell(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest._readers, "_xlsx_text", counting)
    start = time.perf_counter()
    report = ingest.read_upload(data, "claims_a_million_rows.xlsx")
    assert report.ok, [p.en for p in report.errors]
    assert len(report.rows) == 2000
    assert seen == len(rows) * len(HEADER), "one read per cell present, none for padding"
    assert time.perf_counter() - start < 20


def test_sheet_going_past_the_row_limit_is_refused_without_walking_it() -> None:
    data = workbook([HEADER, hostile_row()], data_row=1_048_576)
    start = time.perf_counter()
    report = ingest.read_upload(data, "far.xlsx")
    assert "goes on below row 100,001" in report.errors[0].en
    assert time.perf_counter() - start < 10


def test_cr_only_line_ends_import_the_right_rows() -> None:
    rows = [_row(id="u-1", notes="first"), _row(id="u-2", name_zh="第二", notes="second")]
    data = _csv(rows).replace("\r\n", "\r").encode()  # old Mac line ends
    assert b"\n" not in data
    report = ingest.read_upload(data, "mac.csv")
    assert report.ok, [p.en for p in report.problems]
    assert report.rows[["id", "name_zh", "notes"]].values.tolist() == [
        ["u-1", "测试实验室", "first"], ["u-2", "第二", "second"]]


def test_line_breaks_inside_a_quoted_note_come_out_as_lf() -> None:
    data = _csv([_row(notes="line one\r\nline two\rline three")]).encode()
    report = ingest.read_upload(data, "a.csv")
    assert report.ok and report.rows.iloc[0]["notes"] == "line one\nline two\nline three"


def test_messages_stay_bounded_for_a_20000_column_file() -> None:
    data = (",".join([*HEADER, *(f"extra{i}" for i in range(20_000))]) + "\n"
            + ",".join(_row().values()) + "\n").encode()
    report = ingest.read_upload(data, "wide.csv")
    assert not report.ok and len(report.problems) == 1
    assert len(_all_text(report)) < 2000


def test_messages_stay_bounded_for_thousands_of_long_bad_values() -> None:
    rows = [_row(id=f"u-{i}", kind="k" * 3999) for i in range(5000)]
    report = ingest.read_upload(_csv(rows).encode(), "bad.csv")
    assert len(report.problems) == ingest.MAX_PROBLEMS + 1
    assert report.problems[-1].en == "and 4,900 more problems are not listed"
    assert max(len(p.en) for p in report.problems) <= ingest.MAX_MESSAGE_CHARS
    assert len(_all_text(report)) < 100_000


@pytest.mark.parametrize("process_limit", [None, sys.maxsize])
def test_a_cell_longer_than_the_csv_field_limit_is_a_clear_refusal(
        process_limit: int | None) -> None:
    # A library may raise the process-wide limit (reverse_geocoder sets sys.maxsize on import);
    # the refusal must not depend on which tests or libraries ran before.
    old = csv.field_size_limit()
    if process_limit is not None:
        csv.field_size_limit(process_limit)
    try:
        data = _csv([_row(notes="n" * (ingest.CSV_FIELD_LIMIT + 1))]).encode()
        report = ingest.read_upload(data, "a.csv")
    finally:
        csv.field_size_limit(old)
    assert "longer than 131,072 characters" in report.errors[0].en and report.errors[0].row == 2


@pytest.mark.parametrize("name",
                         ["{{7*7}}.csv", "{% raw %}.csv", "<img src=x onerror=alert(1)>.csv",
                                  "${7*7}.csv", "[x](javascript:alert(1)).csv"])
def test_file_names_are_kept_as_plain_text(name: str) -> None:
    report = ingest.read_upload(_csv([_row()]).encode(), name)
    assert report.ok and report.file_name == name


def test_file_names_lose_controls_and_broken_characters() -> None:
    undecodable = os.fsdecode(b"list\xff.csv")  # a Linux name that is not UTF-8
    assert ingest.read_upload(_csv([_row()]).encode(), undecodable).file_name == "list.csv"
    report = ingest.read_upload(_csv([_row()]).encode(), "a\u202egpj.\x00csv")
    assert report.file_name == "agpj.csv"


def test_odd_file_name_is_stored_verbatim(user_db: Path) -> None:
    name = "{{7*7}} <img src=x onerror=alert(1)> {% raw %}.csv"
    report = ingest.check_upload(_csv([_row(id="u-name")]).encode(), name, user_db)
    batch = ingest.import_report(report, user_db, actor=local_actor())
    batches = ingest.list_batches(user_db).set_index("batch_id")
    assert batches.loc[batch, "file_name"] == name


_READ_IN_A_CHILD = """
import sys
from pathlib import Path
from geo_app import ingest
from geo_app.auth import local_actor
for arg in sys.argv[2:]:
    report, batch = ingest.import_file(Path(arg), Path(sys.argv[1]), actor=local_actor())
    print(batch, report.errors[0].en if report.errors else "accepted", flush=True)
"""


def test_devices_fifos_and_directories_are_refused_unread(tmp_path: Path) -> None:
    # Run in a child with a memory cap and a timeout: the old reader followed a link to
    # /dev/zero for ever and waited on a FIFO for ever; neither may hang the test run.
    import resource
    import subprocess
    import sys

    paths = []
    for device, name in (("/dev/zero", "zero.csv"), ("/dev/urandom", "random.xlsx"),
                         ("/dev/zero", "zero.geojson")):
        link = tmp_path / name
        link.symlink_to(device)
        paths.append(link)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    chain = tmp_path / "chain.csv"
    chain.symlink_to(paths[0])  # a link to a link to /dev/zero
    paths += [fifo, folder, chain]

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))  # 1.5 GiB

    done = subprocess.run([sys.executable, "-c", _READ_IN_A_CHILD, str(tmp_path / "no.duckdb"),
                           *map(str, paths)], capture_output=True, text=True, timeout=120,
                          preexec_fn=limit_memory, cwd=PROJECT_ROOT)  # noqa: S603
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(paths)
    for path, line, what in zip(paths, lines, ["a device", "a device", "a device",
                                               "a pipe (FIFO)", "a directory", "a device"],
                                strict=True):
        assert line == f"None {path.name} is {what}, not a file: give the path of a .csv, " \
                       ".xlsx or .geojson file", line
    assert not (tmp_path / "no.duckdb").exists()


def test_a_file_growing_past_the_limit_is_read_no_further(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(_csv([_row()]).encode() + b" " * 5000)
    with pytest.raises(ImportValidationError, match="the limit is"):
        ingest.read_file(path, limit=1000)
    assert ingest.read_file(path, limit=10_000) == path.read_bytes()


# ----------------------------------------------------------------------------- user indicators
# The per-板块 figures a user brings (geo_app.ingest.indicators, docs/indicators.md).

HEAD = "板块,indicator,year,value,unit,source,notes\n"


def _parse(text: str, existing: pd.DataFrame | None = None, enc: str = "utf-8") -> pd.DataFrame:
    return ingest.parse_user_indicators(text.encode(enc), existing)


def test_parse_accepts_full_width_and_aliases() -> None:
    df = _parse("板块,指标,年份,数值,单位,来源\n"
                "吴江区,gdp,２０２２,\"２，５００.５\",亿元,my source\n"
                "全市,new_thing,2023,-1e3,个,s\n")
    assert df.to_dict("records") == [
        {"board": "吴江区", "indicator": "gdp", "year": "2022", "value": 2500.5, "unit": "亿元",
         "source": "my source", "notes": None},
        {"board": "全市", "indicator": "new_thing", "year": "2023", "value": -1000.0, "unit": "个",
         "source": "s", "notes": None}]


@pytest.mark.parametrize("enc", ["utf-8-sig", "gb18030", "utf-16"])
def test_parse_reads_common_excel_encodings(enc: str) -> None:
    df = _parse(HEAD + "姑苏区,gdp,2022,1,亿元,来源甲,\n", enc=enc)
    assert df["board"].tolist() == ["姑苏区"] and df["source"].tolist() == ["来源甲"]


@pytest.mark.parametrize(("row", "column", "fragment"), [
    ("花园区,gdp,2022,1,亿元,s,", "板块", "is not 全市"),
    ("吴中区,gdp,22,1,亿元,s,", "year", "four-digit"),
    ("吴中区,gdp,2201,1,亿元,s,", "year", "four-digit"),
    ("吴中区,gdp,2022,,亿元,s,", "value", "gap is not a zero"),         # empty is not zero
    ("吴中区,gdp,2022,３．４５％,亿元,s,", "value", "not a number"),     # % goes in unit
    ("吴中区,gdp,2022,nan,亿元,s,", "value", "not a number"),
    ("吴中区,gdp,2022,1e400,亿元,s,", "value", "out of range"),
    ("吴中区,gdp,2022,1,亿元,  ,", "source", "every figure needs its source"),
    ("吴中区,gdp,2022,1,,s,", "unit", "empty"),
    ("吴中区,gdp,2022,1,万元,s,", "unit", "differs from the unit '亿元'"),
    ("吴中区,,2022,1,亿元,s,", "indicator", "empty"),
    ("吴中区,gdp,2022,1,亿元", "", "5 cells, the header has 7"),
])
def test_parse_rejects_bad_rows_with_row_numbers(row: str, column: str, fragment: str) -> None:
    existing = pd.DataFrame({"indicator": ["gdp"], "unit": ["亿元"]})
    text = HEAD + "太仓市,gdp,2023,1,亿元,s,\n\n" + row + "\n"   # a blank line before the bad row
    with pytest.raises(ImportValidationError) as info:
        _parse(text, existing)
    assert info.value.problems == [{"row": "4", "column": column,
                                    "problem": info.value.problems[0]["problem"]}]
    assert fragment in info.value.problems[0]["problem"]
    assert "row 4" in info.value.user_message


def test_parse_rejects_duplicates_header_and_empty_files() -> None:
    with pytest.raises(ImportValidationError) as info:
        _parse(HEAD + "太仓市,gdp,2023,1,亿元,s,\n太仓市,gdp,2023,2,亿元,t,\n")
    assert info.value.problems[0]["row"] == "3" and "row 2" in info.value.problems[0]["problem"]
    with pytest.raises(ImportValidationError, match="header"):
        _parse("board,indicator,yr,value,unit,source\n太仓市,gdp,2023,1,亿元,s\n")
    with pytest.raises(ImportValidationError, match="empty"):
        _parse("")
    with pytest.raises(ImportValidationError, match="no rows"):
        _parse(HEAD)
    with pytest.raises(ImportValidationError):  # a unit must stay consistent inside the file too
        _parse(HEAD + "太仓市,x,2023,1,亿元,s,\n昆山市,x,2023,1,万元,s,\n")


# ----------------------------------------------------------------------------- hostile figures
# The indicator import (geo_app.ingest.indicators) decodes, checks text and reads numbers
# exactly as the entity import does: one decoder (ingest.decode_text), one text rule
# (ingest.text_problem), one number rule (numbers.is_decimal).


def test_both_imports_share_one_decoder_one_text_rule_and_one_number_rule() -> None:
    import inspect

    from geo_app.ingest import indicators

    source = inspect.getsource(indicators)
    for shared in ("decode_text(", "text_problem(", "normalise(", "is_decimal("):
        assert shared in source, f"the indicator import does not use {shared}"
    package = Path(geo_app.__file__).parent
    names = {path.relative_to(package).as_posix() for path in package.rglob("*.py")}
    assert {"ingest/text.py", "ingest/decoding.py", "ingest/indicators.py", "numbers.py"} <= names
    for path in sorted(package.rglob("*.py")):
        text, name = path.read_text(encoding="utf-8"), path.relative_to(package).as_posix()
        assert "def _nfkc" not in text and "def decode_upload" not in text, name
        if name != "ingest/text.py":
            assert 'normalize("NFKC"' not in text, f"{name} keeps its own normaliser"
        if name != "ingest/decoding.py":
            assert '"gb18030"' not in text, f"{name} keeps its own decoder"
        if name.startswith(("ingest/", "districts")):
            assert "[eE][+-]?" not in text, f"{name} keeps its own number pattern"


@pytest.mark.parametrize(("column", "text", "fragment"), [
    ("source", "list\u202egpj.exe", "U+202E"),   # right-to-left override (spoofing)
    ("notes", "a\u0085b", "U+0085"),             # C1 NEL
    ("notes", "see \u009b31m", "U+009B"),        # C1 CSI (a terminal escape)
    ("source", "a\u2028b", "U+2028"),            # line separator
    ("notes", "\u3164", "U+3164"),               # HANGUL FILLER: looks empty
    ("source", "\u2800", "U+2800"),              # BRAILLE PATTERN BLANK
    ("unit", "亿\u200b元", "U+200B"),             # zero-width space in a one-line field
    ("notes", "\u200b\u200c", "no visible character"),
    ("indicator", "gdp\x07", "U+0007"),
])
def test_text_the_entity_import_refuses_is_refused_here_too(column: str, text: str,
                                                            fragment: str) -> None:
    assert ingest.text_problem(text, multiline=column in ("source", "notes")) is not None
    cells = {"board": "太仓市", "indicator": "gdp", "year": "2023", "value": "1", "unit": "亿元",
             "source": "s", "notes": "", column: text}
    line = ",".join(cells[c] for c in ("board", "indicator", "year", "value", "unit", "source",
                                       "notes"))
    with pytest.raises(ImportValidationError) as info:
        _parse(HEAD + line + "\n")
    assert [(p["row"], p["column"]) for p in info.value.problems] == [("2", column)]
    assert fragment in info.value.problems[0]["problem"]
    assert text not in info.value.user_message, "the bad characters are shown escaped"


def test_nul_bytes_are_refused_with_their_line() -> None:
    with pytest.raises(ImportValidationError, match="NUL bytes") as info:
        _parse(HEAD + "太仓市,gdp,2023,1,亿元,s\x00x,\n")
    assert "line 2" in info.value.user_message


def test_undecodable_text_is_refused_never_guessed() -> None:
    # a cp1252 cell in a UTF-8 file decodes as GB18030 garbage; the shared decoder refuses it
    raw = (HEAD + "太仓市,gdp,2023,1,亿元,").encode() + "Zürich café".encode("cp1252") + b",\n"
    with pytest.raises(ImportValidationError, match="UTF-8"):
        ingest.parse_user_indicators(raw)


def test_cr_only_line_ends_import_the_right_figures() -> None:
    text = (HEAD + "太仓市,gdp,2023,1,亿元,s,first\n"
            "昆山市,gdp,2023,2,亿元,t,second\n").replace("\n", "\r")
    df = _parse(text)
    assert df[["board", "value", "notes"]].values.tolist() == [["太仓市", 1.0, "first"],
                                                              ["昆山市", 2.0, "second"]]


def test_messages_stay_bounded() -> None:
    with pytest.raises(ImportValidationError) as info:
        _parse(HEAD.rstrip("\n") + "".join(f",extra{i}" for i in range(20_000)) + "\n")
    assert "and 19,995 more" in info.value.user_message
    assert len(info.value.user_message) < 1000
    rows = "".join(f"太仓市,gdp,{1900 + i % 200},{'v' * 90},亿元,{'s' * 300},\n"
                   for i in range(4000))
    with pytest.raises(ImportValidationError) as info:
        _parse(HEAD + rows)
    problems = info.value.problems
    assert len(problems) == 101
    assert problems[-1]["problem"] == "and 3,900 more problems are not listed"
    assert all(len(p["problem"]) < 200 for p in problems)
    assert len(info.value.user_message) < 1500
