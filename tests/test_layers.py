"""Strategy layers: each construction rule, membership, statistics and a spec-change round trip."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from geo_app import build, layers, store
from geo_app.datum import METRIC_CRS
from geo_app.errors import LayerSpecError
from geo_app.filters import make_filter
from tests.conftest import copy_sources
from tests.helpers import query_sql

# --------------------------------------------------------------- rules on synthetic geometry


def test_shore_band_excludes_the_lake_and_stays_in_the_limit() -> None:
    lake = box(0, 0, 10_000, 10_000)
    limit = box(-20_000, -20_000, 5_000, 30_000)  # only the western half of the shore
    band = layers.shore_band(lake, 2_000, limit, lake)
    assert not band.intersects(box(1, 1, 9_999, 9_999).buffer(-1))
    assert band.within(limit.buffer(1e-6))
    assert band.contains(Point(-1_000, 5_000)) and not band.contains(Point(-3_000, 5_000))
    assert not band.contains(Point(11_000, 5_000))  # east shore is outside the limit


def test_river_corridor_has_flat_ends_and_excludes_water() -> None:
    river = LineString([(0, 0), (10_000, 0)])
    lake = box(4_000, -500, 6_000, 500)
    belt = layers.river_corridor(river, 1_000, box(-5_000, -5_000, 20_000, 5_000), lake)
    assert belt.area == pytest.approx(10_000 * 2_000 - lake.area, rel=1e-6)
    assert not belt.contains(Point(-500, 0))  # flat cap: nothing beyond the river's end


def test_anchor_area_reaches_target_inside_limit() -> None:
    limit = box(0, 0, 20_000, 20_000)
    geom, radius = layers.anchor_area([Point(1_000, 1_000)], 50e6, limit, shapely.Polygon())
    assert geom.area == pytest.approx(50e6, rel=0.01)
    assert geom.within(limit.buffer(1e-6)) and radius > 4_000  # clipped, so the disc grew


def test_anchor_area_that_cannot_fit_reports_the_miss() -> None:
    geom, radius = layers.anchor_area([Point(0, 0)], 1e12, box(-10, -10, 10, 10), shapely.Polygon())
    assert geom.area == pytest.approx(400) and radius == 60_000


def test_membership_of_points_in_polygons() -> None:
    ents = gpd.GeoDataFrame({"id": ["a", "b", "c"]},
                            geometry=[Point(0.5, 0.5), Point(5, 5), None], crs="EPSG:4326")
    lyr = gpd.GeoDataFrame({"id": ["L1", "L2"]}, geometry=[box(0, 0, 1, 1), box(0, 0, 10, 10)],
                           crs="EPSG:4326")
    members = layers.compute_membership(ents, lyr)
    assert members.values.tolist() == [["a", "L1"], ["a", "L2"], ["b", "L2"]]


# ------------------------------------------------------------------ the shipped layers


def test_shipped_layers_are_schematic_and_sized(db: Path) -> None:
    lyr = store.read_geo_table(db, "layers").set_index("id")
    assert lyr["schematic"].all()
    # 240 km² planned; only ≈224 km² of 虎丘区 land exists, within the spec's ±10 %
    assert lyr.loc["taihu_science_city", "area_km2"] == pytest.approx(240, rel=0.10)
    assert lyr.loc["taihu_new_town", "area_km2"] == pytest.approx(60, rel=0.10)
    metric = lyr.to_crs(METRIC_CRS)
    for lid, row in metric.iterrows():  # the stored area is the geometry's own
        assert row.geometry.area / 1e6 == pytest.approx(lyr.loc[lid, "area_km2"], rel=0.01)
        assert row.geometry.is_valid


def test_ring_excludes_the_lake_and_touches_lake_side_counties_only(db: Path) -> None:
    lyr = store.read_geo_table(db, "layers").set_index("id").to_crs(METRIC_CRS)
    water = store.read_geo_table(db, "water").set_index("id").to_crs(METRIC_CRS)
    bounds = store.read_geo_table(db, "boundaries").to_crs(METRIC_CRS)
    # the counties (the schematic 板块 polygons are cut from the lake-side ones)
    bounds = bounds[bounds["level"] != "board"].set_index("adcode")
    ring = lyr.loc["taihu_ring"].geometry
    assert ring.intersection(water.loc["taihu"].geometry).area < 1e3
    for code, row in bounds.iterrows():
        share = ring.intersection(row.geometry).area / ring.area
        if code in ("320505", "320506", "320507", "320509", "320500"):
            continue
        assert share < 1e-6, code


def test_documented_memberships(db: Path) -> None:
    ents = store.query_entities(db).set_index("id")
    # 长光华芯 (科技城, at the 通安 town point) falls inside 太湖科学城; 南京大学苏州校区
    # has no published site coordinate, so no point and no membership (data/SOURCES.md)
    assert "taihu_science_city" in ents.loc["ent-everbright-photonics", "layers"].split(",")
    assert not ents.loc["uni-nju-suzhou", "layers"]
    # 盛泽 does not fall inside the Wusong belt
    lyr = store.read_geo_table(db, "layers").set_index("id")
    assert not lyr.loc["wusong_belt"].geometry.contains(Point(120.66931, 30.90884))
    # the belt follows the river inside Suzhou: it holds the river's Suzhou stretch
    river = store.read_geo_table(db, "water").set_index("id").loc["wusong"].geometry
    city = store.read_geo_table(db, "boundaries").set_index("adcode").loc["320500"].geometry
    in_city = river.intersection(city)
    outside_belt = in_city.difference(lyr.loc["wusong_belt"].geometry.buffer(1e-6))
    assert outside_belt.length < 0.001 * in_city.length


def test_core_area_never_reaches_a_detached_county_fragment(db: Path) -> None:
    # the 虎丘区 county polygon has ~70 km² inside SIP (the former 娄葑, in AMap and Tianditu
    # alike): 太湖科学城 grows from 浒墅关 over connected land only, so no SIP entity falls in it
    tsc = store.query_entities(db, make_filter(layers=["taihu_science_city"]))
    assert len(tsc) > 0 and set(tsc["board"]) == {"苏州高新区"}
    lyr = store.read_geo_table(db, "layers").set_index("id")
    assert lyr.loc["taihu_science_city"].geometry.geom_type == "Polygon"


def test_anchored_parts_keeps_only_parts_holding_an_anchor() -> None:
    limit = shapely.union_all([box(0, 0, 10, 10), box(20, 0, 30, 10)])
    geom, _ = layers.anchor_area([Point(5, 5)], 150, layers.anchored_parts(limit, [Point(5, 5)]),
                                 shapely.Polygon())
    assert geom.within(box(0, 0, 10, 10).buffer(1e-9))


def test_layer_filter_matches_membership_table(db: Path) -> None:
    members = query_sql(db, "SELECT entity_id FROM layer_members WHERE layer_id = ?",
                              ["taihu_science_city"])
    gdf = store.query_entities(db, make_filter(layers=["taihu_science_city"]))
    assert sorted(gdf["id"]) == sorted(members["entity_id"]) and len(gdf) > 0


def test_layer_stats(db: Path) -> None:
    stats = layers.layer_stats(db)
    summary = stats["summary"].set_index("id")
    by_board = stats["by_board"]
    assert summary.loc["taihu_science_city", "entities"] == int(
        stats["by_kind"].query("layer_id == 'taihu_science_city'")["count"].sum())
    sip = by_board[by_board["board"] == "苏州工业园区"]
    assert sip["area_km2"].notna().all()  # its schematic polygon (tests/test_boundaries.py)
    assert by_board["area_km2"].notna().all()  # all ten 板块 have a polygon
    snd = by_board.query("layer_id == 'taihu_science_city' and board == '苏州高新区'")
    assert snd["area_share"].iloc[0] == pytest.approx(1.0, abs=0.01)
    ring = by_board.query("layer_id == 'taihu_ring'")
    assert ring["area_share"].sum() == pytest.approx(1.0, abs=0.01)


# ------------------------------------------------------------------ spec change round trip


def test_editing_a_spec_changes_the_layer_and_its_statistics(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    build.ensure_database(settings)
    before = layers.layer_stats(settings.db_path)["summary"].set_index("id")
    spec = settings.layers_dir / "wusong_belt.toml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("distance_km = 3", "distance_km = 6"),
                    encoding="utf-8")
    build.ensure_database(settings)  # the content hash covers layers/*.toml
    after = layers.layer_stats(settings.db_path)["summary"].set_index("id")
    ratio = after.loc["wusong_belt", "area_km2"] / before.loc["wusong_belt", "area_km2"]
    assert 1.6 < ratio < 2.2
    assert after.loc["wusong_belt", "entities"] >= before.loc["wusong_belt", "entities"]
    assert after.loc["taihu_ring", "area_km2"] == before.loc["taihu_ring", "area_km2"]


def test_invalid_spec_stops_the_build_and_keeps_the_old_database(tmp_path: Path) -> None:
    settings = copy_sources(tmp_path)
    build.ensure_database(settings)
    old = settings.db_path.read_bytes()
    spec = settings.layers_dir / "taihu_science_city.toml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("target_area_km2 = 240",
                                                             "target_area_km2 = 4000"),
                    encoding="utf-8")
    with pytest.raises(LayerSpecError, match="cannot reach 4000"):
        build.ensure_database(settings)
    assert settings.db_path.read_bytes() == old
