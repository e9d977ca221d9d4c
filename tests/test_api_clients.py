"""``geo-app api`` read by clients nobody here wrote: GDAL's OAPIF driver, OWSLib, schemathesis.

One real server (the ``geo-app api`` console script in a subprocess, on a free port)
serves the session database; every client's features are compared with what
``geo-app export`` writes for the same collection and filters.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openapi_spec_validator
import pandas as pd
import pyogrio
import pytest
import schemathesis
import shapely
from hypothesis import HealthCheck, given, settings
from owslib.ogcapi.features import Features
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from shapely.geometry import shape

from geo_app import export, store
from geo_app.filters import EntityFilter, make_filter
from geo_app.settings import Settings
from tests.helpers import stop_process

TABLES = ("layers", "boards", "boundaries", "water")
#: Examples per operation and generation mode in the fuzz (43 operations x 2 modes).
FUZZ_EXAMPLES = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(built_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``geo-app api --port <free port>`` running against the session database."""
    script = Path(sys.executable).with_name("geo-app")
    assert script.exists(), f"the geo-app console script is not installed beside {sys.executable}"
    port = _free_port()
    log_path = tmp_path_factory.mktemp("api") / "server.log"
    env = {**os.environ, "GEO_APP_DB": str(built_settings.db_path),
           "GEO_APP_DATA_DIR": str(built_settings.data_dir),
           "GEO_APP_LAYERS_DIR": str(built_settings.layers_dir)}
    env.pop("GEO_APP_API_HOSTS", None)  # the default: localhost, 127.0.0.1, ::1
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(script), "api", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"geo-app api exited: {log_path.read_text()}"
            try:
                if httpx.get(f"{url}/conformance", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"no answer in 60 s: {log_path.read_text()}"
            time.sleep(0.2)
        yield {"url": url, "log": log_path, "port": port}
    finally:
        stop_process(proc)


def export_features(db: Path, collection: str, flt: EntityFilter | None = None) -> list[dict]:
    """The features ``geo-app export <collection>`` writes (the reference)."""
    return json.loads(export.export_bytes(db, collection, "geojson", flt=flt))["features"]


def reference(db: Path, collection_id: str, flt: EntityFilter | None = None) -> list[dict]:
    """Export features of a collection id of the API (``layer-X`` = entities in layer X)."""
    if collection_id.startswith("layer-"):
        layer = collection_id.removeprefix("layer-")
        base = flt or EntityFilter()
        return export_features(db, "entities", EntityFilter(
            kinds=base.kinds, levels=base.levels, statuses=base.statuses, boards=base.boards,
            layers=(layer,), search=base.search))
    return export_features(db, collection_id, flt)


def collection_ids(db: Path) -> list[str]:
    return ["entities", *(f"layer-{i}" for i in store.layer_ids(db)), *TABLES]


# ----------------------------------------------------------------------------- GDAL (OAPIF)


def _same_value(got: Any, want: Any) -> bool:
    if want is None:
        return got is None or (isinstance(got, float) and math.isnan(got)) or got == ""
    if isinstance(want, bool):
        return bool(got) == want
    if isinstance(want, (int, float)):
        return isinstance(got, (int, float)) and math.isclose(float(got), float(want))
    return str(got) == str(want)


def assert_gdal_matches(df: pd.DataFrame, expected: list[dict], id_column: str,
                        label: str) -> None:
    """Same count, same ids in the same order, every property and geometry equal."""
    assert len(df) == len(expected), label
    if not expected:  # an empty collection (a layer no entity lies in): GDAL has no fields
        return
    assert df[id_column].astype(str).tolist() == [str(f["id"]) for f in expected], label
    for row, want in zip(df.itertuples(index=False), expected, strict=True):
        got = row._asdict()
        for key, value in want["properties"].items():
            assert key in got, f"{label}: GDAL lost the property {key!r}"
            assert _same_value(got[key], value), (label, want["id"], key, got[key], value)
        if want["geometry"] is None:
            assert got["geometry"] is None, (label, want["id"])
        else:
            assert got["geometry"].equals_exact(shape(want["geometry"]), 1e-9), (label, want["id"])


def test_gdal_lists_every_collection(server: dict, db: Path) -> None:
    layers = pyogrio.list_layers(f"OAPIF:{server['url']}/")
    assert [str(name) for name in layers[:, 0]] == collection_ids(db)


def test_gdal_reads_every_collection_like_the_export(server: dict, db: Path) -> None:
    counts = {}
    for cid in collection_ids(db):
        df = pyogrio.read_dataframe(f"OAPIF:{server['url']}/", layer=cid)
        id_column = "adcode" if cid == "boundaries" else "id"
        counts[cid] = len(df)
        assert_gdal_matches(df, reference(db, cid), id_column, cid)
    assert counts["entities"] == store.count_entities(db) > 60
    # ten counties and the city, and the three schematic 板块 polygons SIP's rule cuts
    levels = store.read_geo_table(db, "boundaries")["level"].value_counts().to_dict()
    assert levels == {"city": 1, "county": 9, "board": 3}
    assert counts["boundaries"] == 13 and counts["boards"] == 10


def test_gdal_follows_next_links_page_by_page(server: dict, db: Path) -> None:
    df = pyogrio.read_dataframe(f"OAPIF:{server['url']}", layer="entities", PAGE_SIZE=7)
    assert_gdal_matches(df, reference(db, "entities"), "id", "entities by 7")
    log = server["log"].read_text()
    assert "/collections/entities/items?limit=7&offset=63&f=json" in log  # the 10th page


def test_gdal_takes_field_types_from_the_schema_not_the_first_page(server: dict,
                                                                   db: Path) -> None:
    first = reference(db, "entities")[0]
    assert first["properties"]["lon"] is None  # a first page of one feature without a point
    df = pyogrio.read_dataframe(f"OAPIF:{server['url']}", layer="entities", PAGE_SIZE=1)
    assert str(df["lon"].dtype) == "float64"  # guessed from that page it would be text
    assert_gdal_matches(df, reference(db, "entities"), "id", "entities by 1")
    assert "/collections/entities/feature-schema" in server["log"].read_text()


def test_gdal_bbox_and_attribute_filters_run_on_the_server(server: dict, db: Path) -> None:
    url = f"OAPIF:{server['url']}"
    df = pyogrio.read_dataframe(url, layer="entities", where="kind = 'laboratory'")
    assert_gdal_matches(df, reference(db, "entities", make_filter(kinds=["laboratory"])), "id",
                        "kind = laboratory")
    df = pyogrio.read_dataframe(url, layer="layer-taihu_science_city",
                                where="board = '苏州高新区'")
    assert_gdal_matches(df, reference(db, "layer-taihu_science_city",
                                      make_filter(boards=["苏州高新区"])), "id", "layer + board")
    assert len(df) > 0
    box = (120.5, 31.0, 121.0, 31.5)
    df = pyogrio.read_dataframe(url, layer="entities", bbox=box)
    inside = [f for f in reference(db, "entities") if f["geometry"]
              and shapely.box(*box).intersects(shape(f["geometry"]))]
    assert_gdal_matches(df, inside, "id", "bbox")
    log = server["log"].read_text()
    assert "kind=laboratory" in log  # GDAL passed the filter to the server (the API lists it)
    assert "bbox=120.5,31,121,31.5" in log


# ----------------------------------------------------------------------------- OWSLib


def strip_links(feature: dict) -> dict:
    return {k: v for k, v in feature.items() if k != "links"}


def test_owslib_sees_the_landing_page_conformance_and_collections(server: dict, db: Path) -> None:
    w = Features(server["url"])
    assert {"core", "geojson", "oas30", "html"} == {
        c.rsplit("/", 1)[-1] for c in w.conformance()["conformsTo"]}
    assert [c["id"] for c in w.collections()["collections"]] == collection_ids(db)
    assert w.collection("boards")["extent"]["spatial"]["bbox"][0][0] > 119


def test_owslib_reads_every_collection_exactly_as_exported(server: dict, db: Path) -> None:
    w = Features(server["url"])
    for cid in collection_ids(db):
        body = w.collection_items(cid, limit=1000)
        expected = reference(db, cid)
        assert body["features"] == expected, cid  # the whole GeoJSON, property by property
        assert body["numberMatched"] == body["numberReturned"] == len(expected), cid


def test_owslib_pages_with_offset_and_limit(server: dict, db: Path) -> None:
    w = Features(server["url"])
    got: list[dict] = []
    offset = 0
    while True:
        body = w.collection_items("entities", limit=9, offset=offset)
        got += body["features"]
        offset += 9
        if offset >= body["numberMatched"]:
            break
    assert got == reference(db, "entities")


@pytest.mark.parametrize(("params", "flt"), [
    ({"kind": "laboratory,university"}, {"kinds": ["laboratory", "university"]}),
    ({"board": "苏州工业园区", "level": "national"},
     {"boards": ["苏州工业园区"], "levels": ["national"]}),
    ({"layer": "taihu_science_city", "status": "operating"},
     {"layers": ["taihu_science_city"], "statuses": ["operating"]}),
    ({"q": "大学"}, {"search": "大学"}),
])
def test_owslib_filters_equal_export_filters(server: dict, db: Path, params: dict,
                                             flt: dict) -> None:
    body = Features(server["url"]).collection_items("entities", limit=1000, **params)
    expected = reference(db, "entities", make_filter(**flt))
    assert body["features"] == expected
    assert len(expected) > 0


def test_owslib_reads_single_features(server: dict, db: Path) -> None:
    w = Features(server["url"])
    for cid in ("entities", "boundaries", "water", "boards"):
        for want in reference(db, cid)[:2]:
            assert strip_links(w.collection_item(cid, str(want["id"]))) == want


def test_a_missing_feature_is_a_json_404_over_http(server: dict) -> None:
    resp = httpx.get(f"{server['url']}/collections/entities/items/nope")
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["code"] == "NotFound"


# ----------------------------------------------------------------------------- safe defaults


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "attacker.test:{port}"])
def test_a_foreign_host_header_is_refused_over_http(server: dict, host: str) -> None:
    host = host.format(port=server["port"])
    for path in ("/", "/collections/entities/items?f=html"):
        resp = httpx.get(f"{server['url']}{path}", headers={"Host": host})
        assert resp.status_code == 400, resp.text[:300]
        assert host.split(":")[0] not in resp.text


def test_the_hosts_clients_use_on_this_machine_are_answered(server: dict) -> None:
    for host in (f"127.0.0.1:{server['port']}", f"localhost:{server['port']}"):
        resp = httpx.get(f"{server['url']}/", headers={"Host": host})
        assert resp.status_code == 200, host
        assert all(li["href"].startswith(f"http://{host}/") for li in resp.json()["links"])


def test_a_huge_limit_serves_the_maximum_over_http(server: dict, db: Path) -> None:
    resp = httpx.get(f"{server['url']}/collections/entities/items",
                     params={"limit": "9999999999999999999"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["numberReturned"] == body["numberMatched"] == store.count_entities(db)


@pytest.mark.parametrize("params", [
    {"kind": "x" * 10_000},
    {"board": "板" * 3_000},
    {"bbox": ",".join(["1e999"] * 1_000)},
    {"offset": "9" * 10_000},
])
def test_errors_over_http_are_bounded(server: dict, params: dict) -> None:
    resp = httpx.get(f"{server['url']}/collections/entities/items", params=params)
    assert resp.status_code == 400
    assert resp.json()["code"] == "InvalidParameterValue"  # the API's answer, not the server's
    assert len(resp.text) < 1000, resp.text[:300]


# ----------------------------------------------------------------------------- OpenAPI


def test_the_openapi_document_validates(server: dict, db: Path) -> None:
    resp = httpx.get(f"{server['url']}/api")
    assert resp.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    openapi_spec_validator.validate(resp.json())  # raises on an invalid OpenAPI 3.0 document
    schema = schemathesis.openapi.from_url(f"{server['url']}/api")
    labels = {op.ok().label for op in schema.get_all_operations()}
    # schemathesis leaves out the document's own path, /api
    assert labels == {f"GET {path}" for path in resp.json()["paths"] if path != "/api"}
    assert len(labels) == 3 + 4 * len(collection_ids(db))  # describe, feature-schema, items, item


def test_fuzzing_every_operation_finds_no_server_error(server: dict) -> None:
    """Property-based: schema-valid and schema-invalid parameters never give a 5xx.

    Valid requests must also match the documented status codes, media types, headers and
    response schemas. Two schemathesis checks are left out on purpose: positive data can
    still be refused (a bbox latitude of 95 is a number, which OpenAPI 3.0 cannot rule out
    per position), and a ``limit`` above the maximum is lowered, not refused, because the
    standard says so.
    """
    schema = schemathesis.openapi.from_url(f"{server['url']}/api")
    base = [not_a_server_error, status_code_conformance, content_type_conformance]
    conformance = [response_headers_conformance, response_schema_conformance]
    called: set[str] = set()
    labels: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.add(operation.label)
        fuzz(operation, GenerationMode.POSITIVE, base + conformance, called)
        fuzz(operation, GenerationMode.NEGATIVE, base, called)
    assert called == labels and len(labels) == 43  # every operation was exercised


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, checks: list,
         called: set[str]) -> None:
    """Send FUZZ_EXAMPLES generated requests to one operation; fail on the first failed check."""
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        called.add(case.operation.label)
        case.call_and_validate(checks=checks, timeout=30)

    run()
