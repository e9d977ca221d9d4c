"""Same behaviour, same bytes: the DuckDB file and PostGIS hold the same data (both built from
the same copies of data/ and layers/), and every read, export, API response and comparison
table is compared between them. Real servers (tests/pgcluster.py), no mocks."""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pytest

from geo_app import districts, export, store
from geo_app.asgi import create_app
from geo_app.filters import EntityFilter, make_filter
from geo_app.settings import DATABASE_URL_VAR, READ_URL_VAR, Settings
from tests.conftest import PgDatabase, use_postgis

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FILTERS = [
    EntityFilter(),
    make_filter(kinds=["laboratory"]),
    make_filter(boards=["苏州工业园区"], statuses=["operating"]),
    make_filter(layers=["taihu_science_city"]),
    make_filter(search="苏州"),
    make_filter(search="SUZHOU"),
    make_filter(kinds=["university", "incubator"], levels=["national", "municipal"]),
]

#: Tables whose default order (by the first column) has ties: compared as sets of rows.
TIED_ORDER = {"board_indicators"}


class Both:
    """Run one store call on the DuckDB file and on PostGIS (the environment switched)."""

    def __init__(self, duck: Settings, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
        self.duck, self.pg, self.mp = duck, pg, monkeypatch

    def duckdb(self, fn: Callable[[Path], Any]) -> Any:
        self.mp.delenv(DATABASE_URL_VAR, raising=False)
        self.mp.delenv(READ_URL_VAR, raising=False)
        return fn(self.duck.db_path)

    def postgis(self, fn: Callable[[Path], Any]) -> Any:
        use_postgis(self.pg.url, self.mp)
        try:
            return fn(self.pg.settings.db_path)
        finally:
            self.mp.delenv(DATABASE_URL_VAR, raising=False)

    def both(self, fn: Callable[[Path], Any]) -> tuple[Any, Any]:
        return self.duckdb(fn), self.postgis(fn)


@pytest.fixture()
def both(built_settings: Settings, pg_built: PgDatabase,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Both]:
    yield Both(built_settings, pg_built, monkeypatch)


def assert_same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal values, dtypes, columns and index (geometries compared exactly)."""
    pd.testing.assert_frame_equal(a, b, check_exact=True)


# ----------------------------------------------------------------------------- store reads


@pytest.mark.parametrize("table", ["meta", "boards", "boundaries", "water", "import_batches",
                                   "audit", "indicators", "board_indicators", "layers",
                                   "layer_members"])
def test_tables_are_the_same(both: Both, table: str) -> None:
    duck, pg = both.both(lambda db: store.read_table(db, table))
    if table == "meta":  # built at different moments
        duck, pg = (f[~f["key"].isin(["built_at"])].reset_index(drop=True) for f in (duck, pg))
    if table in TIED_ORDER:
        duck, pg = (f.sort_values(list(f.columns), kind="stable").reset_index(drop=True)
                    for f in (duck, pg))
    assert len(duck) > 0 or table in {"import_batches", "audit"}
    assert_same_frame(duck, pg)


def test_tables_in_rowid_order_are_the_same(both: Both) -> None:
    for table in ("indicators", "board_indicators"):
        duck, pg = both.both(lambda db, t=table: store.read_table(db, t, order_by="rowid"))
        assert_same_frame(duck, pg)


@pytest.mark.parametrize("table", ["boundaries", "water", "layers"])
def test_geo_tables_are_the_same(both: Both, table: str) -> None:
    duck, pg = both.both(lambda db: store.read_geo_table(db, table))
    assert_same_frame(pd.DataFrame(duck.drop(columns="geometry")),
                      pd.DataFrame(pg.drop(columns="geometry")))
    assert pg.crs == duck.crs
    assert list(duck.geometry.to_wkb()) == list(pg.geometry.to_wkb())


@pytest.mark.parametrize("flt", FILTERS, ids=str)
def test_entity_reads_are_the_same(both: Both, flt: EntityFilter) -> None:
    duck, pg = both.both(lambda db: store.query_entities(db, flt))
    assert_same_frame(pd.DataFrame(duck.drop(columns="geometry")),
                      pd.DataFrame(pg.drop(columns="geometry")))
    assert list(duck.geometry.to_wkb()) == list(pg.geometry.to_wkb())
    assert both.both(lambda db: store.count_entities(db, flt)) == (len(duck),) * 2
    counts = both.both(lambda db: store.located_counts(db, flt))
    assert counts[0] == counts[1]


@pytest.mark.parametrize(("kwargs"), [
    {"limit": 10, "offset": 0}, {"limit": 7, "offset": 20}, {"limit": 5, "offset": 10_000},
    {"bbox": (120.5, 31.2, 120.8, 31.4)}, {"bbox": (179.0, -90.0, -179.0, 90.0)},
    {"entity_id": "hz-sip"}, {"limit": 3, "offset": 2, "bbox": (119.0, 30.0, 122.0, 32.5)},
], ids=str)
def test_pages_are_the_same(both: Both, kwargs: dict[str, Any]) -> None:
    (duck, n_duck), (pg, n_pg) = both.both(lambda db: store.query_entities_page(db, **kwargs))
    assert n_duck == n_pg
    assert_same_frame(pd.DataFrame(duck.drop(columns="geometry")),
                      pd.DataFrame(pg.drop(columns="geometry")))


def test_counts_and_summaries_are_the_same(both: Both) -> None:
    for column in ("kind", "level", "status", "board", "location_precision", "origin"):
        duck, pg = both.both(lambda db, c=column: store.entity_counts(db, c))
        assert duck == pg and duck
    duck, pg = both.both(lambda db: store.shared_points(db, limit=50))
    assert_same_frame(duck, pg)
    assert both.both(store.layer_ids)[0] == both.both(store.layer_ids)[1]
    assert both.both(store.entity_ids)[0] == both.both(store.entity_ids)[1]
    duck_meta, pg_meta = both.both(store.read_meta)
    assert {k: v for k, v in duck_meta.items() if k != "built_at"} == \
        {k: v for k, v in pg_meta.items() if k != "built_at"}
    assert_same_frame(*both.both(store.list_batches))
    assert_same_frame(*both.both(store.list_audit))


def _table(batches: Iterator[Any]) -> pa.Table:
    return pa.Table.from_batches(list(batches))


@pytest.mark.parametrize("flt", FILTERS[:4], ids=str)
def test_streams_are_the_same(both: Both, flt: EntityFilter) -> None:
    streams: list[Callable[[Path], Iterator[Any]]] = [
        lambda db: store.iter_entity_batches(db, flt, batch_size=7),
        lambda db: store.iter_entity_batches(db, flt, columns=["id", "lat", "layers"]),
        lambda db: store.iter_entity_rows(db, flt, columns=list(export.PROPERTIES["entities"]),
                                          decimals=export.DECIMALS, batch_size=11),
        lambda db: store.iter_entity_geojson(
            db, flt, properties=list(export.PROPERTIES["entities"]), decimals=export.DECIMALS),
        lambda db: store.iter_point_batches(db, flt, unlocated=["id", "name_zh", "board"]),
    ]
    for stream in streams:
        duck, pg = both.both(lambda db, s=stream: _table(s(db)))
        assert duck.schema == pg.schema
        assert duck.equals(pg), (duck.to_pandas().compare(pg.to_pandas())
                                 if duck.num_rows == pg.num_rows else (duck.num_rows, pg.num_rows))


# ----------------------------------------------------------------------------- exports


@pytest.mark.parametrize("collection", export.COLLECTIONS)
@pytest.mark.parametrize("fmt", ["geojson", "csv"])
def test_exports_are_byte_identical(both: Both, collection: str, fmt: str) -> None:
    duck, pg = both.both(lambda db: export.export_bytes(db, collection, fmt))
    assert duck and duck == pg


@pytest.mark.parametrize("flt", FILTERS, ids=str)
def test_filtered_entity_exports_are_byte_identical(both: Both, flt: EntityFilter) -> None:
    for fmt in ("geojson", "csv"):
        duck, pg = both.both(lambda db, f=fmt: export.export_bytes(db, "entities", f, flt=flt))
        assert duck == pg


@pytest.mark.parametrize("collection", ["entities", "layers", "boards"])
def test_spreadsheets_and_geopackages_hold_the_same_cells(both: Both, collection: str,
                                                          tmp_path: Path) -> None:
    import pyogrio

    xlsx = both.both(lambda db: pd.read_excel(io.BytesIO(
        export.export_bytes(db, collection, "xlsx")), dtype=str))
    assert_same_frame(*xlsx)
    frames = []
    for name in ("duck", "pg"):
        out = tmp_path / f"{name}.gpkg"
        fn = both.duckdb if name == "duck" else both.postgis
        fn(lambda db, o=out: export.export_file(db, collection, "gpkg", o))
        frames.append(pyogrio.read_dataframe(out))
    assert_same_frame(pd.DataFrame(frames[0].drop(columns="geometry")),
                      pd.DataFrame(frames[1].drop(columns="geometry")))
    assert list(frames[0].geometry.to_wkb()) == list(frames[1].geometry.to_wkb())


# ----------------------------------------------------------------------------- API


API_URLS = [
    "/", "/conformance", "/collections", "/collections/entities",
    "/collections/entities/items", "/collections/entities/items?limit=1000",
    "/collections/entities/items?limit=5&offset=3",
    "/collections/entities/items?bbox=120.5,31.2,120.8,31.4&limit=50",
    "/collections/entities/items?kind=university,laboratory&limit=100",
    "/collections/entities/items?board=苏州工业园区&q=苏州&limit=100",
    "/collections/entities/items?layer=taihu_science_city&limit=100",
    "/collections/entities/items/hz-sip", "/collections/entities/items/no-such-id",
    "/collections/entities/items?f=html&limit=20", "/collections/entities/schema",
    "/collections/boards/items", "/collections/boundaries/items?limit=100",
    "/collections/water/items?limit=100", "/collections/layers/items",
    "/collections/layer-taihu_science_city/items?limit=100", "/api",
]


#: The time of the response, which differs from one request to the next.
_STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def test_api_responses_are_identical(both: Both) -> None:
    def fetch(db: Path) -> list[tuple[int, str, bytes]]:
        client = TestClient(create_app(db, allowed_hosts=["testserver"]))
        out = []
        for url in API_URLS:
            resp = client.get(url)
            out.append((resp.status_code, resp.headers.get("content-type", ""), resp.content))
        return out

    duck, pg = both.both(fetch)
    for url, a, b in zip(API_URLS, duck, pg, strict=True):
        assert a[:2] == b[:2], url
        assert _STAMP.sub(b"", a[2]) == _STAMP.sub(b"", b[2]), url
    statuses = dict(zip(API_URLS, (status for status, _, _ in duck), strict=True))
    assert statuses["/collections/entities/items/no-such-id"] == 404
    assert sum(1 for s in statuses.values() if s == 200) >= len(API_URLS) - 2, statuses


# ----------------------------------------------------------------------------- comparison


def test_comparison_tables_are_identical(both: Both) -> None:
    import dataclasses

    def tables(db: Path) -> tuple[Any, list[pd.DataFrame]]:
        data = districts.load_compare_data(db)
        metrics = districts.list_metrics(data)
        # every group of metrics, and the default (the full table of 51 metrics takes ~8 s)
        keys = list(dict.fromkeys([districts.default_metric(data),
                                   *(next(m.key for m in metrics if m.group == g)
                                     for g in dict.fromkeys(m.group for m in metrics))]))
        out = [districts.comparison_table(data, keys, lang=lang) for lang in ("zh", "en")]
        out.append(districts.comparison_table(data, keys[:2], boards=["苏州工业园区", "吴江区"]))
        return data, out

    (duck_data, duck), (pg_data, pg) = both.both(tables)
    for field in dataclasses.fields(duck_data):
        a, b = getattr(duck_data, field.name), getattr(pg_data, field.name)
        if "geometry" in a.columns:
            assert list(a.geometry.to_wkb()) == list(b.geometry.to_wkb()), field.name
            a = pd.DataFrame(a.drop(columns="geometry"))
            b = pd.DataFrame(b.drop(columns="geometry"))
        assert_same_frame(a, b)
    assert len(duck[0]) >= 30
    for a, b in zip(duck, pg, strict=True):
        assert_same_frame(a, b)
        assert districts.table_to_csv(a) == districts.table_to_csv(b)


def test_json_of_every_entity_parses_the_same(both: Both) -> None:
    duck, pg = both.both(lambda db: json.loads(export.export_bytes(db, "entities", "geojson")))
    assert duck == pg and len(duck["features"]) > 50


#: Texts whose JSON escapes differ between engines unless rendered with care: the control
#: characters DuckDB escapes in upper-case hex, the ones with short escapes, quotes and
#: backslashes (also right before a closing quote), a literal "\u000b", non-BMP characters.
HOSTILE_TEXTS = ["v\x0bt\x0e\x0f", "\x1a\x1b\x1c\x1d\x1e\x1f", "tab\there\nnew\rline\x08\x0c",
                 "\x01\x07\x10\x19", 'quote" back\\slash', "ends in a backslash\\",
                 "\\u000b written out", "\\\x0b", "\u2028\u2029\u00a0", "火箭 🚀", ""]


def test_hostile_text_is_exported_byte_identically(request: pytest.FixtureRequest,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    from geo_app import build
    from tests.conftest import copy_sources
    from tests.helpers import execute_sql

    monkeypatch.delenv(DATABASE_URL_VAR, raising=False)
    duck = copy_sources(tmp_path / "duckdb")
    build.build_database(duck)
    pg: PgDatabase = request.getfixturevalue("pg_writable")
    ids = list(store.query_entities(pg.settings.db_path)["id"][:len(HOSTILE_TEXTS)])
    update = "UPDATE entities SET name_en = {p}, notes = {p} || {p}, board = {p} WHERE id = {p}"
    with psycopg.connect(pg.url, options="-c search_path=geo_app,public") as con:
        for text, entity in zip(HOSTILE_TEXTS, ids, strict=True):
            con.execute(update.format(p="%s"), [text, text, text, text, entity])
    execute_sql(duck.db_path, [(update.format(p="?"), [t, t, t, t, e])
                               for t, e in zip(HOSTILE_TEXTS, ids, strict=True)])
    both = Both(duck, pg, monkeypatch)
    for fmt in ("geojson", "csv"):
        duck_bytes, pg_bytes = both.both(lambda db, f=fmt: export.export_bytes(db, "entities", f))
        assert duck_bytes == pg_bytes, fmt
    duck_stream, pg_stream = both.both(lambda db: _table(store.iter_entity_geojson(
        db, None, properties=list(export.PROPERTIES["entities"]), decimals=export.DECIMALS,
        batch_size=4)))  # chunks of 4: rows written again exactly in most of them
    assert duck_stream.equals(pg_stream)
    features = json.loads(both.duckdb(lambda db: export.export_bytes(db, "entities", "geojson")))
    names = {f["id"]: f["properties"]["name_en"] for f in features["features"]}
    assert [names[i] for i in ids] == HOSTILE_TEXTS
