"""OGC API – Features core and Starlette adapter, in-process (Starlette's TestClient).

The real-client tests (GDAL, OWSLib, schemathesis against a running ``geo-app api``)
are in tests/test_api_clients.py.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import geopandas.testing
import pytest
import shapely
from shapely.geometry import shape

from geo_app import api, asgi, build, cli, export, store
from geo_app.asgi import create_app
from geo_app.filters import EntityFilter, make_filter
from geo_app.settings import PROJECT_ROOT, Settings, SettingsError, parse_hosts
from tests.helpers import execute_sql

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TABLES = ("layers", "boards", "boundaries", "water")


#: The host Starlette's TestClient sends (``http://testserver``): trusted explicitly, since
#: the service answers only localhost by default.
TEST_HOST = "testserver"


def make_client(db: Path, **kwargs: Any) -> TestClient:
    """A TestClient of the app serving ``db``, which trusts the TestClient's own host."""
    return TestClient(create_app(db, allowed_hosts=[TEST_HOST], **kwargs))


@pytest.fixture(scope="module")
def client(db: Path) -> TestClient:
    return make_client(db)


def get_json(client: TestClient, url: str, status: int = 200, **kwargs: Any) -> Any:
    resp = client.get(url, **kwargs)
    assert resp.status_code == status, resp.text
    return resp.json()


def export_features(db: Path, collection: str, flt: EntityFilter | None = None) -> list[dict]:
    """What ``geo-app export`` writes for this collection (the reference for every comparison)."""
    return json.loads(export.export_bytes(db, collection, "geojson", flt=flt))["features"]


def walk_items(client: TestClient, url: str) -> tuple[list[dict], list[dict]]:
    """Follow the ``next`` links from ``url``; returns (features, pages)."""
    features: list[dict] = []
    pages: list[dict] = []
    while url:
        page = get_json(client, url)
        pages.append(page)
        features += page["features"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), "")
        assert len(pages) < 100, "the next links do not end"
    return features, pages


def link(doc: dict, rel: str, media_type: str | None = None) -> dict:
    found = [li for li in doc["links"] if li["rel"] == rel
             and (media_type is None or li["type"] == media_type)]
    assert found, f"no {rel} link ({media_type}) in {doc['links']}"
    return found[0]


def expected_ids(db: Path) -> list[str]:
    return ["entities", *(f"layer-{i}" for i in store.layer_ids(db)), *TABLES]


# ----------------------------------------------------------------------------- resources


def test_landing_page_links_definition_conformance_and_data(client: TestClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert link(body, "service-desc")["type"] == api.OPENAPI
    assert link(body, "service-desc")["href"] == "http://testserver/api?f=json"
    assert link(body, "service-doc")["type"] == "text/html"
    assert link(body, "conformance")["href"] == "http://testserver/conformance"
    assert link(body, "data")["href"] == "http://testserver/collections"
    assert link(body, "self")["type"] == "application/json"
    assert link(body, "alternate")["type"] == "text/html"


def test_conformance_declares_core_geojson_html_oas30(client: TestClient) -> None:
    body = get_json(client, "/conformance")
    assert set(body["conformsTo"]) == {
        f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{c}"
        for c in ("core", "geojson", "html", "oas30")}


def test_collections_are_entities_each_layer_and_the_tables(client: TestClient, db: Path) -> None:
    body = get_json(client, "/collections")
    ids = [c["id"] for c in body["collections"]]
    assert ids == expected_ids(db)
    assert len(store.layer_ids(db)) == 5
    for c in body["collections"]:
        assert c["itemType"] == "feature"
        if c["id"] in ("entities", *TABLES):
            assert c["extent"]["spatial"]["crs"] == api.CRS84
        items = link(c, "items", api.GEOJSON)["href"]
        assert items == f"http://testserver/collections/{c['id']}/items?f=json"


def test_every_extent_contains_every_feature_of_its_collection(client: TestClient,
                                                               db: Path) -> None:
    with_extent = 0
    for c in get_json(client, "/collections")["collections"]:
        features, _ = walk_items(client, f"/collections/{c['id']}/items?limit=1000")
        geoms = [shape(f["geometry"]) for f in features if f["geometry"]]
        if not geoms:  # e.g. a strategy layer no located entity lies in: no extent is claimed
            assert "extent" not in c, c["id"]
            continue
        with_extent += 1
        minx, miny, maxx, maxy = c["extent"]["spatial"]["bbox"][0]
        bx0, by0, bx1, by1 = shapely.union_all(geoms).bounds
        assert minx <= bx0 and miny <= by0 and bx1 <= maxx and by1 <= maxy, c["id"]
        # tight: not a padded box (guards against a fixed "Suzhou" extent)
        assert max(bx0 - minx, by0 - miny, maxx - bx1, maxy - by1) < 1e-6, c["id"]
    assert with_extent >= 6  # entities, two layers with entities, and the four tables


def test_collection_document_has_self_alternate_and_items_links(client: TestClient) -> None:
    body = get_json(client, "/collections/layer-taihu_science_city")
    assert body["id"] == "layer-taihu_science_city"
    assert "太湖科学城" in body["title"]
    assert link(body, "self")["href"] == "http://testserver/collections/layer-taihu_science_city?f=json"
    assert link(body, "alternate", "text/html")
    assert link(body, "items", "text/html")


# ----------------------------------------------------------------------------- schema


def test_every_feature_of_every_collection_is_valid_against_its_schema(client: TestClient,
                                                                      db: Path) -> None:
    from openapi_schema_validator import OAS30Validator

    for cid in expected_ids(db):
        described = link(get_json(client, f"/collections/{cid}"), "describedby", api.SCHEMA_JSON)
        assert described["href"] == f"http://testserver/collections/{cid}/feature-schema?f=json"
        resp = client.get(f"/collections/{cid}/feature-schema")
        assert resp.status_code == 200 and resp.headers["content-type"] == api.SCHEMA_JSON
        schema = resp.json()
        validator = OAS30Validator(schema)
        features, _ = walk_items(client, f"/collections/{cid}/items?limit=1000")
        for feature in features:
            errors = [e.message for e in validator.iter_errors(feature)]
            assert not errors, (cid, feature.get("id"), errors)
        if features:  # a single feature carries links as well
            one = get_json(client, f"/collections/{cid}/items/{quote(str(features[0]['id']))}")
            assert validator.is_valid(one), cid
        props = schema["properties"]["properties"]["properties"]
        # one type string per field: GDAL reads types only from such a schema
        assert all(isinstance(p["type"], str) for p in props.values())


def test_entity_schema_agrees_with_the_export_schema(client: TestClient) -> None:
    """The API's entity types, checked against the export's JSON Schema 2020-12 file."""
    strict = json.loads((PROJECT_ROOT / "schemas" / "entities.schema.json").read_text("utf-8"))
    served = get_json(client, "/collections/entities/feature-schema")["properties"]["properties"]
    assert served["required"] == strict["required"]
    assert "id" not in served["properties"]  # the feature id: GDAL would list it twice
    for name, prop in served["properties"].items():
        want = strict["properties"][name]
        types = want.get("type", "string")
        types = [types] if isinstance(types, str) else types
        assert prop["type"] in types, name
        assert prop["nullable"] == ("null" in types or None in want.get("enum", ())), name
        assert prop.get("enum") == want.get("enum"), name
    assert (served["properties"]["lon"]["type"], served["properties"]["lon"]["nullable"]) == (
        "number", True)
    adcode = get_json(client, "/collections/boundaries/feature-schema")["properties"]["properties"]
    assert adcode["properties"]["adcode"]["nullable"] is False


def test_schema_rejects_what_the_data_never_holds(client: TestClient) -> None:
    from openapi_schema_validator import OAS30Validator

    validator = OAS30Validator(get_json(client, "/collections/entities/feature-schema"))
    feature = get_json(client, "/collections/entities/items?limit=1")["features"][0]
    assert validator.is_valid(feature)
    props = feature["properties"]
    for bad in ({**props, "lon": "x"}, {**props, "kind": "bogus"}, {**props, "name_zh": None},
                {k: v for k, v in props.items() if k != "board"}):
        assert not validator.is_valid({**feature, "properties": bad}), bad
    assert not validator.is_valid({**feature, "geometry": {"type": "Polygon", "coordinates": []}})


def test_schema_page_in_html_and_errors(client: TestClient) -> None:
    page = client.get("/collections/layers/feature-schema?f=html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<code>schematic</code></td><td>boolean</td>" in page.text
    assert "<code>id</code></td><td>string</td><td>no</td><td>equal to the feature id" in page.text
    assert 'href="http://testserver/collections/layers?f=html"' in page.text
    assert client.get("/collections/nope/feature-schema").status_code == 404
    assert client.get("/collections/entities/feature-schema?limit=3").status_code == 400
    evil = api.CollectionInfo(id="x<b>", title="<script>alert(1)</script>", description="",
                              source="layers")
    html = api.html._html_schema("http://h", api.feature_schema(evil), evil, [])
    assert "x&lt;b&gt;: feature schema" in html  # the id, shown as text
    assert "<script>" not in html and "<b>" not in html


# ----------------------------------------------------------------------------- items = export


@pytest.mark.parametrize("collection", ["entities", *TABLES])
def test_items_of_every_collection_equal_the_export(client: TestClient, db: Path,
                                                   collection: str) -> None:
    body = get_json(client, f"/collections/{collection}/items?limit=1000")
    assert body["features"] == export_features(db, collection)
    assert body["numberMatched"] == body["numberReturned"] == len(body["features"])


def test_each_layer_collection_equals_export_entities_with_that_layer(client: TestClient,
                                                                     db: Path) -> None:
    sizes = {}
    for layer_id in store.layer_ids(db):
        body = get_json(client, f"/collections/layer-{layer_id}/items?limit=1000")
        expected = export_features(db, "entities", make_filter(layers=[layer_id]))
        assert body["features"] == expected, layer_id
        sizes[layer_id] = len(expected)
    assert sum(sizes.values()) > 0, sizes


def test_paging_with_next_links_returns_every_entity_once_in_export_order(
        client: TestClient, db: Path) -> None:
    features, pages = walk_items(client, "/collections/entities/items?limit=7")
    expected = export_features(db, "entities")
    assert features == expected
    assert len(pages) == -(-len(expected) // 7)
    for i, page in enumerate(pages):
        assert page["numberMatched"] == len(expected)
        assert page["numberReturned"] == len(page["features"])
        rels = {li["rel"] for li in page["links"]}
        assert ("prev" in rels) == (i > 0)
        assert ("next" in rels) == (i < len(pages) - 1)
        assert page["timeStamp"].endswith("Z")
    prev = parse_qs(urlsplit(link(pages[2], "prev")["href"]).query)
    assert prev["offset"] == ["7"] and prev["limit"] == ["7"]


def test_default_limit_is_10_and_a_larger_limit_is_lowered_to_1000(client: TestClient) -> None:
    body = get_json(client, "/collections/entities/items")
    assert body["numberReturned"] == api.DEFAULT_LIMIT == 10
    body = get_json(client, "/collections/entities/items?limit=99999")
    assert body["numberReturned"] == body["numberMatched"]
    assert parse_qs(urlsplit(link(body, "self")["href"]).query)["limit"] == ["1000"]


@pytest.mark.parametrize("limit", [
    "1001",
    "9999999999999999999",        # 19 digits: was a 400 (OGC API – Features 7.15.4: not an error)
    "9" * 5000,                   # more digits than int() reads (4300): never converted
    "0" * 30 + "5000",            # leading zeros are still a number
])
def test_a_limit_above_the_maximum_serves_the_maximum(client: TestClient, limit: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api.core, "MAX_LIMIT", 7)  # the registry has fewer than 1000 entities
    body = get_json(client, f"/collections/entities/items?limit={limit}")
    assert body["numberReturned"] == len(body["features"]) == 7 < body["numberMatched"]
    for rel in ("self", "next"):  # the links say which limit was served
        query = parse_qs(urlsplit(link(body, rel)["href"]).query)
        assert query["limit"] == ["7"], rel
    assert parse_qs(urlsplit(link(body, "next")["href"]).query)["offset"] == ["7"]


def test_offset_past_the_end_gives_an_empty_page_with_prev(client: TestClient) -> None:
    body = get_json(client, "/collections/entities/items?offset=500&limit=10")
    assert body["features"] == [] and body["numberReturned"] == 0
    assert body["numberMatched"] > 0
    assert parse_qs(urlsplit(link(body, "prev")["href"]).query)["offset"] == ["490"]


@pytest.mark.parametrize(("query", "flt"), [
    ("kind=laboratory,university", {"kinds": ["laboratory", "university"]}),
    # repeating the key means the same as a comma list
    ("kind=laboratory&kind=university", {"kinds": ["laboratory", "university"]}),
    ("board=苏州工业园区", {"boards": ["苏州工业园区"]}),
    ("level=national&status=operating", {"levels": ["national"], "statuses": ["operating"]}),
    ("layer=taihu_science_city,wusong_belt", {"layers": ["taihu_science_city", "wusong_belt"]}),
    ("q=大学", {"search": "大学"}),
    ("q=LABORATORY", {"search": "LABORATORY"}),  # case-insensitive, like the map
    ("kind=university&board=苏州工业园区&q=xi",
     {"kinds": ["university"], "boards": ["苏州工业园区"], "search": "xi"}),
    ("kind=", {}),  # an empty value is no restriction, as in the map's URL
])
def test_filters_give_the_same_features_as_the_export(client: TestClient, db: Path, query: str,
                                                      flt: dict) -> None:
    expected = export_features(db, "entities", make_filter(**flt))
    features, pages = walk_items(client, f"/collections/entities/items?limit=5&{query}")
    assert features == expected
    assert pages[0]["numberMatched"] == len(expected)


def test_filter_values_are_kept_in_paging_links(client: TestClient) -> None:
    body = get_json(client, "/collections/entities/items?limit=1&kind=laboratory&kind=university")
    nxt = parse_qs(urlsplit(link(body, "next")["href"]).query)
    assert nxt["kind"] == ["laboratory,university"]
    assert nxt["offset"] == ["1"]


def test_filters_narrow_a_layer_collection(client: TestClient, db: Path) -> None:
    expected = export_features(db, "entities", make_filter(layers=["taihu_science_city"],
                                                           kinds=["enterprise"]))
    body = get_json(client, "/collections/layer-taihu_science_city/items?kind=enterprise&limit=100")
    assert body["features"] == expected
    assert 0 < len(expected) < get_json(
        client, "/collections/layer-taihu_science_city/items")["numberMatched"]


def test_bbox_keeps_the_entities_inside_the_box_edges_included(client: TestClient,
                                                               db: Path) -> None:
    everything = export_features(db, "entities")
    pts = [f for f in everything if f["geometry"]]
    x0, y0 = pts[0]["geometry"]["coordinates"]  # an entity exactly on the box corner stays
    box = (x0, y0, x0 + 0.3, y0 + 0.3)
    expected = [f for f in pts if box[0] <= f["geometry"]["coordinates"][0] <= box[2]
                and box[1] <= f["geometry"]["coordinates"][1] <= box[3]]
    body = get_json(client, "/collections/entities/items?limit=1000&bbox="
                    + ",".join(map(str, box)))
    assert body["features"] == expected
    assert pts[0] in body["features"]
    assert 0 < len(expected) < len(pts)


def test_bbox_across_the_antimeridian_wraps(client: TestClient) -> None:
    # 100°E eastwards over 180° to 170°W contains Suzhou; 170°W..100°E the other way does not
    wrapped = get_json(client, "/collections/entities/items?limit=1000&bbox=100,-90,-170,90")
    plain = get_json(client, "/collections/entities/items?limit=1000&bbox=100,-90,180,90")
    assert wrapped["features"] == plain["features"] and plain["numberMatched"] > 0
    other = get_json(client, "/collections/entities/items?limit=1000&bbox=-170,-90,100,90")
    assert other["numberMatched"] == 0
    water = get_json(client, "/collections/water/items?bbox=100,-90,-170,90")
    assert water["numberMatched"] == len(get_json(client, "/collections/water/items")["features"])


def test_bbox_on_polygons_keeps_those_intersecting(client: TestClient, db: Path) -> None:
    box = shapely.box(120.2, 31.1, 120.25, 31.15)  # open water in 太湖
    expected = [f for f in export_features(db, "water") if shape(f["geometry"]).intersects(box)]
    body = get_json(client, "/collections/water/items?bbox=120.2,31.1,120.25,31.15")
    assert [f["id"] for f in body["features"]] == [f["id"] for f in expected] == ["taihu"]


def test_entities_without_a_location_are_included_with_null_geometry(client: TestClient,
                                                                    db: Path) -> None:
    unlocated = [f for f in export_features(db, "entities") if f["geometry"] is None]
    assert unlocated
    fid = unlocated[0]["id"]
    body = get_json(client, f"/collections/entities/items/{fid}")
    assert body["geometry"] is None and body["properties"]["lon"] is None


# ----------------------------------------------------------------------------- one feature


@pytest.mark.parametrize("collection", ["entities", *TABLES])
def test_one_feature_equals_its_export_feature(client: TestClient, db: Path,
                                               collection: str) -> None:
    for expected in export_features(db, collection)[:3]:
        resp = client.get(f"/collections/{collection}/items/{expected['id']}")
        assert resp.status_code == 200
        assert resp.headers["content-type"] == api.GEOJSON
        body = resp.json()
        links = body.pop("links")
        assert body == expected
        assert link({"links": links}, "collection")["href"].endswith(f"/collections/{collection}")


def test_sip_board_has_its_schematic_polygon_labelled_so(client: TestClient) -> None:
    body = get_json(client, "/collections/boards/items/sip")
    assert body["geometry"]["type"] == "MultiPolygon"
    assert body["properties"]["name_zh"] == "苏州工业园区"
    assert body["properties"]["polygon_status"] == "schematic"
    assert body["properties"]["source"].startswith("schematic: ")


@pytest.mark.parametrize("url", [
    "/collections/entities/items/no-such-entity",
    "/collections/boundaries/items/999999",
    "/collections/nope",
    "/collections/nope/items",
    "/collections/nope/items/x",
    "/no/such/path",
])
def test_missing_things_are_404_with_a_json_message(client: TestClient, url: str) -> None:
    resp = client.get(url)
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/json"
    assert resp.json()["code"] == "NotFound" and resp.json()["description"]


def test_an_entity_outside_a_layer_is_404_in_that_layer_collection(client: TestClient,
                                                                  db: Path) -> None:
    inside = {f["id"] for f in export_features(db, "entities", make_filter(layers=["wusong_belt"]))}
    outside = next(f["id"] for f in export_features(db, "entities") if f["id"] not in inside)
    assert client.get(f"/collections/layer-wusong_belt/items/{outside}").status_code == 404
    assert client.get(f"/collections/entities/items/{outside}").status_code == 200


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("query", [
    "limit=0",
    "limit=-1",
    "limit=abc",
    "limit=1.5",
    "limit=１０",                 # full-width digits: int() would accept them
    "limit=1_0",                  # int() accepts underscores
    "limit=",                     # empty is not a number
    "limit=5&limit=6",            # repeated
    "offset=-1",
    "offset=1e3",
    "offset=1000000001",          # beyond MAX_OFFSET (would overflow SQL if unbounded)
    "offset=99999999999999999999999",
    "offset=" + "9" * 5000,       # more digits than int() reads: a 400, not a 500
    "limit=-9999999999999999999",
    "limit=000",
    "limit=%2B5",                 # a sign is not part of a whole number here
    "bbox=1,2,3",
    "bbox=1,2,3,4,5,6",           # 3-D boxes are not supported
    "bbox=nan,30,121,32",         # float() accepts nan and inf
    "bbox=120,30,inf,32",
    "bbox=-Infinity,30,121,32",
    "bbox=1e999,30,121,32",       # a decimal number, but infinite as a float
    "bbox=1e308,1e308,1e308,1e308",
    "bbox=" + "9" * 400 + ",30,121,32",
    "bbox=" + ",".join(["1"] * 10_000),
    "bbox=120,-91,121,32",
    "bbox=181,30,121,32",
    "bbox=120,32,121,30",         # min lat above max lat
    "bbox=１２０,30,121,32",
    "bbox=",
    "f=xml",
    "f=",
    "kind=bad_kind",
    "level=National",             # vocabularies are case-sensitive, as in the CLI
    "board=Suzhou",
    "layer=no_such_layer",
    "q=" + "x" * 201,
    "q=a&q=b",
    "kinds=laboratory",           # a typo of a parameter name is reported, not ignored
    "sortby=id",                  # not offered (Part 1 core only)
])
def test_bad_parameters_give_400_naming_the_problem(client: TestClient, query: str) -> None:
    resp = client.get(f"/collections/entities/items?{query}")
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["code"] == "InvalidParameterValue"
    assert len(body["description"]) > 15 and "Traceback" not in body["description"]
    assert len(body["description"]) <= 400, body["description"]


LONG = "x" * 60_000  # httpx refuses URLs above 64 KiB


@pytest.mark.parametrize("url", [
    # Each was quoted whole in the error before (a 60 kB description): filters.make_filter
    # names the unknown value in full, and the 404 of an unknown path repeated the path.
    f"/collections/entities/items?kind={LONG}",
    f"/collections/entities/items?level={LONG}",
    f"/collections/entities/items?status={LONG}",
    f"/collections/entities/items?board={LONG}",
    f"/collections/entities/items?layer={LONG}",
    f"/collections/entities/items?kind=laboratory,{LONG}",
    f"/{LONG}",
    f"/collections/entities/items/{LONG}/more",
    # bounded already; kept so no message starts quoting them whole
    f"/collections/entities/items?q={LONG}",
    f"/collections/entities/items?f={LONG}",
    f"/collections/entities/items?limit={LONG}",
    f"/collections/entities/items?offset={LONG}",
    f"/collections/entities/items?bbox={LONG}",
    f"/collections/entities/items?bbox=1,2,3,{LONG}",
    f"/collections/entities/items?{LONG}=1",
    f"/collections/{LONG}",
    f"/collections/entities/items/{LONG}",
], ids=lambda url: url.replace(LONG, "<60k>"))
def test_errors_quote_at_most_200_characters_of_what_was_sent(client: TestClient,
                                                              url: str) -> None:
    resp = client.get(url)
    assert resp.status_code in (400, 404), resp.text[:300]
    assert resp.headers["content-type"] == "application/json"
    description = resp.json()["description"]
    assert "x" * (api.MAX_ECHO + 1) not in description
    assert len(description) <= 2 * api.MAX_ECHO + 200, description


def test_an_error_description_is_cut_whatever_built_it() -> None:
    _, status, content = api.error_response(400, "InvalidParameterValue", "y" * 100_000)
    description = json.loads(content)["description"]
    assert status == 400 and len(description) == api.MAX_DESCRIPTION
    assert description.endswith("…")


@pytest.mark.parametrize("url", [
    "/collections/boundaries/items?kind=laboratory",   # filters are for entity collections only
    "/collections/layer-taihu_ring/items?layer=wusong_belt",  # the collection is the layer
    "/?limit=3",
    "/collections?bbox=1,2,3,4",
    "/collections/entities?limit=3",
    "/collections/entities/items/lab-spintronics?limit=3",
    "/api?f=yaml",
])
def test_parameters_a_resource_does_not_take_give_400(client: TestClient, url: str) -> None:
    resp = client.get(url)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "InvalidParameterValue"


def test_text_that_is_not_utf8_is_refused_before_the_database(db: Path) -> None:
    req = api.APIRequest("http://x", {"q": ["\ud800"]})
    headers, status, content = api.get_items(db, req, "entities")
    assert status == 400 and "UTF-8" in json.loads(content)["description"]
    headers, status, content = api.get_item(db, api.APIRequest("http://x"), "entities", "\udfff")
    assert status == 400


def test_control_characters_in_search_are_just_text(client: TestClient) -> None:
    body = get_json(client, "/collections/entities/items?q=%00%27%3B--")
    assert body["numberMatched"] == 0


def test_writes_are_refused_with_405_json(client: TestClient) -> None:
    for method in ("post", "put", "delete"):
        resp = client.request(method.upper(), "/collections/entities/items")
        assert resp.status_code == 405
        assert resp.json()["code"] == "MethodNotAllowed"


def _example_path(path: str) -> str:
    return path.replace("{collection_id}", "entities").replace("{feature_id}", "lab-x")


@pytest.mark.parametrize("cors", [(), ("*",)], ids=["no CORS", "CORS *"])
def test_every_route_refuses_every_write_method_with_405_and_allow(db: Path,
                                                                   cors: tuple[str, ...]) -> None:
    """Issue 15: the OGC API is read-only on every path the app routes, with or without CORS."""
    from starlette.routing import Route

    app = create_app(db, allowed_hosts=[TEST_HOST], cors_origins=cors)
    client = TestClient(app)
    routes = [r for r in app.routes if isinstance(r, Route)]
    assert len(routes) == len(asgi.ROUTES)
    for route in routes:
        assert route.methods == {"GET", "HEAD", "OPTIONS"}, route.path
        url = _example_path(route.path)
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            resp = client.request(method, url, headers={"Origin": "https://example.org"},
                                  content=b'{"type": "Feature"}')
            assert resp.status_code == 405, (method, url, resp.status_code)
            assert resp.headers["allow"] == "GET, HEAD, OPTIONS", (method, url)
            assert resp.json()["code"] == "MethodNotAllowed"
        options = client.options(url)
        assert options.status_code == 204 and options.headers["allow"] == "GET, HEAD, OPTIONS"
        assert client.head(url).status_code in (200, 404), url


def test_head_is_answered_like_get_without_a_body(client: TestClient) -> None:
    resp = client.head("/collections/entities/items")
    assert resp.status_code == 200 and resp.content == b""
    assert resp.headers["content-type"] == api.GEOJSON


def test_a_missing_database_is_503_without_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.duckdb"
    resp = make_client(missing).get("/collections")
    assert resp.status_code == 503
    assert resp.json()["code"] == "ServiceUnavailable"
    assert str(tmp_path) not in resp.text


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize(("accept", "f", "media_type"), [
    ("", "", "application/geo+json"),
    ("*/*", "", "application/geo+json"),
    ("application/geo+json, application/json", "", "application/geo+json"),  # GDAL
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "", "text/html"),  # browser
    ("text/html", "json", "application/geo+json"),  # f wins over Accept
    ("application/json", "html", "text/html"),
    ("text/html;q=0.1, application/json", "", "application/geo+json"),
    ("text/html;q=bogus", "", "application/geo+json"),
])
def test_format_follows_f_then_accept(client: TestClient, accept: str, f: str,
                                      media_type: str) -> None:
    url = "/collections/entities/items" + (f"?f={f}" if f else "")
    resp = client.get(url, headers={"Accept": accept} if accept else {})
    assert resp.status_code == 200
    assert resp.headers["content-type"].split(";")[0] == media_type
    assert resp.headers["vary"] == "Accept"
    assert resp.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("url", [
    "/", "/conformance", "/api", "/collections", "/collections/entities",
    "/collections/entities/items", "/collections/boards/items/sip",
    "/collections/layer-taihu_ring/items?kind=laboratory",
])
def test_every_resource_has_an_html_page(client: TestClient, url: str) -> None:
    sep = "&" if "?" in url else "?"
    resp = client.get(f"{url}{sep}f=html")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert resp.text.startswith("<!doctype html>")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    # offline: no script, no stylesheet or image from anywhere, every link to this server
    assert "<script" not in resp.text and "<link" not in resp.text and "src=" not in resp.text
    hrefs = re.findall(r'href="([^"]*)"', resp.text)
    assert hrefs and all(h.startswith("http://testserver/") for h in hrefs), hrefs


def test_html_items_page_links_pages_and_features(client: TestClient) -> None:
    page = client.get("/collections/entities/items?f=html&limit=3&kind=laboratory").text
    assert ('href="http://testserver/collections/entities/items'
            '?kind=laboratory&amp;limit=3&amp;offset=3&amp;f=html"') in page
    assert 'href="http://testserver/collections/entities/items/lab-gusu-materials?f=html"' in page


def test_openapi_document_lists_one_path_per_collection_with_its_filters(client: TestClient,
                                                                         db: Path) -> None:
    resp = client.get("/api")
    assert resp.headers["content-type"] == api.OPENAPI
    doc = resp.json()
    assert doc["openapi"].startswith("3.0")
    for cid in expected_ids(db):
        for path in (f"/collections/{cid}", f"/collections/{cid}/items",
                     f"/collections/{cid}/items/{{featureId}}"):
            assert path in doc["paths"], path
    names = {cid: {p.get("name") or p["$ref"].rsplit("/", 1)[-1]
                   for p in doc["paths"][f"/collections/{cid}/items"]["get"]["parameters"]}
             for cid in ("entities", "layer-wusong_belt", "boundaries")}
    assert names["entities"] == {"limit", "offset", "bbox", "f", "kind", "level", "status",
                                 "board", "layer", "q"}
    assert names["layer-wusong_belt"] == names["entities"] - {"layer"}
    assert names["boundaries"] == {"limit", "offset", "bbox", "f"}
    layer_param = next(p for p in doc["paths"]["/collections/entities/items"]["get"]["parameters"]
                       if p.get("name") == "layer")
    assert layer_param["schema"]["items"]["enum"] == store.layer_ids(db)
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert (limit["default"], limit["maximum"]) == (10, api.MAX_LIMIT)


# ----------------------------------------------------------------------------- CORS


def test_cors_is_off_by_default(client: TestClient) -> None:
    resp = client.get("/collections", headers={"Origin": "https://example.org"})
    assert "access-control-allow-origin" not in resp.headers


def test_cors_allows_the_configured_origins_only(db: Path) -> None:
    app_client = make_client(db, cors_origins=["https://maps.example.org"])
    ok = app_client.get("/collections", headers={"Origin": "https://maps.example.org"})
    assert ok.headers["access-control-allow-origin"] == "https://maps.example.org"
    other = app_client.get("/collections", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    pre = app_client.options("/collections/entities/items", headers={
        "Origin": "https://maps.example.org", "Access-Control-Request-Method": "GET"})
    assert pre.status_code == 200


# ----------------------------------------------------------------------------- trusted hosts

# Every absolute link is built on the Host header: a service that answered any Host would
# send links (and an OpenAPI "servers" URL) pointing wherever the client said.


@pytest.fixture()
def default_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GEO_APP_API_HOSTS in the environment: the service's own default applies."""
    monkeypatch.delenv("GEO_APP_API_HOSTS", raising=False)


@pytest.mark.parametrize("host", [
    "evil.example",
    "evil.example:8000",
    "testserver",                 # Starlette's TestClient: not trusted unless configured
    "localhost.evil.example",     # a suffix of a trusted name is not that name
    "evil.example.localhost",
    "127.0.0.1.nip.io",
    "0.0.0.0:8000",
    "[::2]",
])
@pytest.mark.parametrize("url", ["/", "/api", "/collections/entities/items?f=html&limit=2"])
@pytest.mark.usefixtures("default_hosts")
def test_a_foreign_host_gets_400_and_no_link_to_it(db: Path, host: str, url: str) -> None:
    resp = TestClient(create_app(db)).get(url, headers={"Host": host})
    assert resp.status_code == 400, resp.text[:300]
    assert urlsplit(f"http://{host}").hostname not in resp.text


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "localhost"])
@pytest.mark.usefixtures("default_hosts")
def test_localhost_is_answered_by_default_with_links_to_itself(db: Path, host: str) -> None:
    resp = TestClient(create_app(db)).get("/", headers={"Host": host})
    assert resp.status_code == 200, resp.text
    assert all(li["href"].startswith(f"http://{host}/") for li in resp.json()["links"])


def test_geo_app_api_hosts_replaces_the_default(db: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEO_APP_API_HOSTS", " Maps.Example.org, *.example.net ")
    app_client = TestClient(create_app(db))
    ok = app_client.get("/collections", headers={"Host": "maps.example.org:8080"})
    assert ok.status_code == 200
    assert link(ok.json(), "self")["href"] == "http://maps.example.org:8080/collections?f=json"
    assert app_client.get("/", headers={"Host": "tiles.example.net"}).status_code == 200
    for host in ("localhost", "127.0.0.1", "evil.example", "example.net.evil.example"):
        assert app_client.get("/", headers={"Host": host}).status_code == 400, host


@pytest.mark.parametrize(("text", "hosts"), [
    ("localhost,127.0.0.1,::1", ("localhost", "127.0.0.1", "[::1]")),
    # Starlette compares the Host without its port, IPv6 in brackets, in lower case
    ("Maps.Example.org:8080, [::1]:8000, *.example.net, localhost",
     ("maps.example.org", "[::1]", "*.example.net", "localhost")),
    ("a.example,,a.example", ("a.example",)),
    ("*", ("*",)),                 # any host: the check is off (behind a proxy that checks)
])
def test_parse_hosts(text: str, hosts: tuple[str, ...]) -> None:
    assert parse_hosts(text) == hosts


@pytest.mark.parametrize("text", [
    "http://maps.example.org/",   # a URL, not a host
    "maps.example.org/api",
    "evil*.example.org",          # Starlette allows '*' only as '*' or '*.domain'
    "*example.org",
    "maps example.org",
    "[::1",
    "::zz",
    "host:port",
    " , ",                        # names no host: nothing would ever be answered
])
def test_a_bad_host_setting_is_an_error_naming_the_variable(text: str) -> None:
    with pytest.raises(SettingsError, match="GEO_APP_API_HOSTS"):
        parse_hosts(text)


def test_cli_api_reports_a_bad_host_setting_without_serving(
        env_settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.append(args))
    monkeypatch.setenv("GEO_APP_API_HOSTS", "https://maps.example.org")
    assert cli.main(["api"]) == 1
    assert "GEO_APP_API_HOSTS" in capsys.readouterr().err
    assert served == []


def _served_app(db: Path, monkeypatch: pytest.MonkeyPatch, host: str) -> TestClient:
    """The app ``asgi.serve(db, host=host, port=8123)`` would run (uvicorn is not started)."""
    import uvicorn

    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: apps.append((app, kwargs)))
    asgi.serve(db, host=host, port=8123)
    [(app, kwargs)] = apps
    assert (kwargs["host"], kwargs["port"]) == (host, 8123)
    return TestClient(app)


@pytest.mark.usefixtures("default_hosts")
def test_serve_answers_the_address_it_listens_on(db: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    app_client = _served_app(db, monkeypatch, "192.0.2.10")
    resp = app_client.get("/", headers={"Host": "192.0.2.10:8123"})
    assert resp.status_code == 200
    assert link(resp.json(), "data")["href"] == "http://192.0.2.10:8123/collections"
    assert app_client.get("/", headers={"Host": "127.0.0.1:8123"}).status_code == 200
    assert app_client.get("/", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.usefixtures("default_hosts")
def test_serve_on_every_interface_still_answers_only_the_configured_hosts(
        db: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="geo_app.asgi"):
        app_client = _served_app(db, monkeypatch, "0.0.0.0")
    assert "GEO_APP_API_HOSTS" in caplog.text
    assert app_client.get("/", headers={"Host": "0.0.0.0:8123"}).status_code == 400
    assert app_client.get("/", headers={"Host": "evil.example:8123"}).status_code == 400
    assert app_client.get("/", headers={"Host": "localhost:8123"}).status_code == 200


# ----------------------------------------------------------------------------- the map's server


def test_streamlit_listens_on_localhost_only() -> None:
    """``streamlit run`` without ``server.address`` listens on every interface."""
    from streamlit import config as st_config

    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text("utf-8"))
    assert config["server"]["address"] == "localhost"
    # every key is one Streamlit knows: a misspelt key would be ignored, not refused
    known = set(st_config.get_config_options())
    keys = {f"{section}.{key}" for section, values in config.items() for key in values}
    assert keys <= known, keys - known


# ----------------------------------------------------------------------------- live data


def _insert_entity(db: Path, entity_id: str, name: str, lon: float | None,
                   lat: float | None) -> None:
    execute_sql(db, [(
        "INSERT INTO entities (id, name_zh, name_en, kind, level, status, lon, lat, "
        "location_precision, source, origin) VALUES (?, ?, ?, 'laboratory', 'unknown', "
        "'unknown', ?, ?, 'site', 'test', 'user')",
        [entity_id, name, name, lon, lat])])


def test_html_escapes_every_value(writable_settings: Settings) -> None:
    db = writable_settings.db_path
    evil = "<script>alert(1)</script>\"'&"
    _insert_entity(db, "zz-evil\"<b>", evil, 120.6, 31.3)
    app_client = make_client(db)
    for url in ("/collections/entities/items?f=html&limit=1000",
                "/collections/entities/items/zz-evil%22%3Cb%3E?f=html"):
        page = app_client.get(url).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in page
        assert "<script>" not in page and "<b>" not in page
    body = app_client.get("/collections/entities/items/zz-evil%22%3Cb%3E").json()
    assert body["properties"]["name_zh"] == evil  # JSON keeps the raw value


def test_new_rows_are_seen_without_restart(writable_settings: Settings) -> None:
    db = writable_settings.db_path
    app_client = make_client(db)
    before = app_client.get("/collections/entities/items").json()["numberMatched"]
    old_box = app_client.get("/collections/entities").json()["extent"]["spatial"]["bbox"][0]
    _insert_entity(db, "zz-far", "far away", 122.5, 33.0)
    assert app_client.get("/collections/entities/items").json()["numberMatched"] == before + 1
    new_box = app_client.get("/collections/entities").json()["extent"]["spatial"]["bbox"][0]
    assert new_box[2:] == [122.5, 33.0] and new_box != old_box


def test_a_rebuilt_database_is_served_without_restart(writable_settings: Settings) -> None:
    app_client = make_client(writable_settings.db_path)
    ids = [c["id"] for c in app_client.get("/collections").json()["collections"]]
    assert "layer-wusong_belt" in ids
    (writable_settings.layers_dir / "wusong_belt.toml").unlink()
    build.build_database(writable_settings)  # a new file replaces the old one
    ids = [c["id"] for c in app_client.get("/collections").json()["collections"]]
    assert "layer-wusong_belt" not in ids and "layer-taihu_ring" in ids
    assert app_client.get("/collections/layer-wusong_belt/items").status_code == 404
    resp = app_client.get("/collections/entities/items?layer=wusong_belt")
    assert resp.status_code == 400 and "wusong_belt" in resp.json()["description"]


# ----------------------------------------------------------------------------- store paging


def test_query_entities_page_without_paging_equals_query_entities(db: Path) -> None:
    for flt in (None, make_filter(kinds=["university"]),
                make_filter(layers=["taihu_science_city"])):
        page, matched = store.query_entities_page(db, flt)
        by_id = page.sort_values("id").reset_index(drop=True)
        geopandas.testing.assert_geodataframe_equal(by_id, store.query_entities(db, flt))
        assert matched == len(page) > 0


def test_query_entities_page_keeps_the_exports_storage_order(db: Path) -> None:
    page, _ = store.query_entities_page(db)
    streamed = [i for batch in store.iter_entity_batches(db, columns=["id"])
                for i in batch.column("id").to_pylist()]
    assert page["id"].tolist() == streamed
    assert streamed != sorted(streamed)  # the registry's order, not the id order


def test_query_entities_page_slices_in_order(db: Path) -> None:
    everything, _ = store.query_entities_page(db)
    page, matched = store.query_entities_page(db, limit=5, offset=60)
    assert matched == len(everything)
    assert list(page["id"]) == list(everything["id"][60:65])
    page, matched = store.query_entities_page(db, limit=5, offset=10**12)
    assert page.empty and matched == len(everything)
    page, matched = store.query_entities_page(db, entity_id=str(everything["id"].iloc[3]))
    assert matched == 1 and page["id"].tolist() == [everything["id"].iloc[3]]


# ----------------------------------------------------------------------------- command line


def test_cli_api_passes_host_port_and_cors_to_the_server(
        env_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, dict]] = []
    monkeypatch.setattr(asgi, "serve", lambda db, **kwargs: calls.append((db, kwargs)))
    code = cli.main(["api", "--host", "0.0.0.0", "--port", "8123",
                     "--cors-origin", "https://maps.example.org", "--cors-origin", "*"])
    assert code == 0
    assert calls == [(env_settings.db_path, {"host": "0.0.0.0", "port": 8123,
                                             "cors_origins": ["https://maps.example.org", "*"]})]


def test_cli_api_defaults_to_localhost_8000_without_cors(
        env_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(asgi, "serve", lambda db, **kwargs: calls.append(kwargs))
    assert cli.main(["api"]) == 0
    assert calls == [{"host": "127.0.0.1", "port": 8000, "cors_origins": []}]


@pytest.mark.parametrize("port", ["0", "70000", "http", "-1"])
def test_cli_api_refuses_a_bad_port(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["api", "--port", port])
    assert info.value.code == 2
    assert "not a TCP port" in capsys.readouterr().err
