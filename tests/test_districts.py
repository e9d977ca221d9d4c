"""Per-板块 metrics recomputed independently, gaps kept as gaps, plan vs result, user figures."""

from __future__ import annotations

import dataclasses
import io
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely

from geo_app import build, cli, districts, ingest, maps, store
from geo_app.auth import local_actor
from geo_app.datum import METRIC_CRS
from geo_app.errors import FilterError, ImportValidationError
from geo_app.settings import Settings
from geo_app.vocab import BOARDS
from tests import test_template_injection as tij
from tests.conftest import point_env_at

HEAD = "板块,indicator,year,value,unit,source,notes\n"


@pytest.fixture(scope="module")
def data(db: Path) -> districts.CompareData:
    return districts.load_compare_data(db)


@pytest.fixture(scope="module")
def exported(built_settings: Settings, tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, gpd.GeoDataFrame]:
    """Entities and layers written by ``geo-app export``, read back with geopandas."""
    out = tmp_path_factory.mktemp("export")
    mp = pytest.MonkeyPatch()
    point_env_at(built_settings, mp)
    try:
        frames = {}
        for collection in ("entities", "layers", "boundaries"):
            path = out / f"{collection}.geojson"
            assert cli.main(["export", collection, "--output", str(path)]) == 0
            frames[collection] = gpd.read_file(path)
    finally:
        mp.undo()
    return frames


def _values(data: districts.CompareData, key: str) -> pd.Series:
    vals = districts.metric_values(data, key)
    return vals.set_index("board")["value"]


def _boards_csv(settings: Settings) -> pd.DataFrame:
    return pd.read_csv(settings.data_dir / "boards.csv", dtype={"county_adcode": str})


# ---------------------------------------------------------------------------- independent recompute


def test_entity_counts_match_the_export(data: districts.CompareData,
                                        exported: dict[str, gpd.GeoDataFrame]) -> None:
    ents = exported["entities"]
    counted = ents[ents["board"].isin(list(BOARDS)) & (ents["status"] != "planned")]
    expected = counted.groupby("board").size().reindex(list(BOARDS), fill_value=0)
    got = _values(data, "entities")
    assert got.tolist() == expected.astype(float).tolist()
    assert got.sum() > 30  # the registry places most of its entities in a 板块


def test_national_platforms_and_zones_match_the_export(
        data: districts.CompareData, exported: dict[str, gpd.GeoDataFrame]) -> None:
    ents = exported["entities"]
    ents = ents[ents["board"].isin(list(BOARDS)) & (ents["status"] != "planned")]
    national = ents[(ents["level"] == "national") & ents["kind"].isin(districts.PLATFORM_KINDS)]
    assert _values(data, "national_platforms").to_dict() == {
        b: float((national["board"] == b).sum()) for b in BOARDS}
    zones = ents[ents["kind"] == "high_tech_zone"]
    assert _values(data, "high_tech_zones").to_dict() == {
        b: float((zones["board"] == b).sum()) for b in BOARDS}
    # 太仓's planned national upgrade is a plan item, not a second zone
    assert _values(data, "high_tech_zones")["太仓市"] == 1.0
    assert _values(data, "high_tech_zones_national")["太仓市"] == 0.0


def test_density_uses_official_land_area(data: districts.CompareData, built_settings: Settings,
                                         exported: dict[str, gpd.GeoDataFrame]) -> None:
    ents = exported["entities"]
    ents = ents[ents["board"].isin(list(BOARDS)) & (ents["status"] != "planned")]
    area = _boards_csv(built_settings).set_index("name_zh")["land_area_km2"]
    got = _values(data, "density")
    for board in BOARDS:
        expected = (ents["board"] == board).sum() / area[board] * 100
        assert got[board] == pytest.approx(expected, abs=5e-4), board
    # SIP has an official land area, so its density is known although it has no polygon
    assert not math.isnan(got["苏州工业园区"])
    sources = districts.metric_values(data, "density")["source"]
    assert sources.str.contains("苏州统计年鉴 2019").all()


def test_layer_entity_shares_match_a_spatial_join(
        data: districts.CompareData, exported: dict[str, gpd.GeoDataFrame]) -> None:
    ents = exported["entities"]
    pts = ents[ents.geometry.notna() & ~ents.geometry.is_empty]
    layers = exported["layers"]
    joined = gpd.sjoin(pts, layers[["id", "geometry"]].rename(columns={"id": "layer_id"}),
                       predicate="within")
    checked = 0
    for layer_id in layers["id"]:
        inside = joined[joined["layer_id"] == layer_id]
        got = _values(data, f"layer_entity_share:{layer_id}")
        if inside.empty:
            assert got.isna().all(), layer_id  # undefined, not zero
            continue
        for board in BOARDS:
            expected = (inside["board"] == board).sum() / len(inside) * 100
            assert got[board] == pytest.approx(expected, abs=0.01), (layer_id, board)
            checked += 1
    assert checked >= 10


def test_layer_area_shares_match_an_overlay(
        data: districts.CompareData, built_settings: Settings,
        exported: dict[str, gpd.GeoDataFrame]) -> None:
    layers = exported["layers"].to_crs(METRIC_CRS).set_index("id")
    bounds = exported["boundaries"].to_crs(METRIC_CRS).set_index("adcode")
    boards = _boards_csv(built_settings).set_index("name_zh")
    ring = layers.loc["taihu_ring", "geometry"]
    got = _values(data, "layer_area_share:taihu_ring")
    for board in BOARDS:
        code = boards.loc[board, "county_adcode"]
        if not isinstance(code, str):
            assert math.isnan(got[board]), "SIP has no polygon: unknown, never zero"
            continue
        expected = ring.intersection(bounds.loc[code, "geometry"]).area / ring.area * 100
        assert got[board] == pytest.approx(expected, abs=0.05), board
    notes = districts.metric_values(data, "layer_area_share:taihu_ring").set_index("board")["notes"]
    assert "无官方多边形" in notes["苏州工业园区"]
    assert "虎丘区" in notes["苏州高新区"]


# ----------------------------------------------------------------------------- gaps and ranks


def test_missing_public_figure_is_a_gap_not_a_zero(data: districts.CompareData) -> None:
    table = districts.comparison_table(data, ["ind:gdp"], lang="en")
    row = table.set_index("板块").loc["姑苏区"]
    assert math.isnan(row["Value"]) and pd.isna(row["Rank"])
    assert row["Year"] == "" and row["Source"] == "" and "no data" in row["Notes"]
    assert table["Rank"].isna().tolist() == sorted(table["Rank"].isna().tolist())  # gaps last
    known = table.dropna(subset=["Value"])
    assert (known["Year"] != "").all() and (known["Source"] != "").all()
    assert 0.0 not in set(table["Value"].dropna())
    csv_text = districts.table_to_csv(table).decode("utf-8-sig")
    gusu = next(line for line in csv_text.splitlines() if ",姑苏区," in line)
    assert ",,亿元,,," in gusu  # empty value, year and source cells


def test_public_figure_uses_latest_year_unless_a_year_is_chosen(
        data: districts.CompareData) -> None:
    latest = districts.metric_values(data, "ind:gdp").set_index("board")
    assert (latest.loc["苏州工业园区", "value"],
            latest.loc["苏州工业园区", "year"]) == (3686.0, "2023")
    in_2022 = districts.metric_values(data, "ind:gdp", year="2022").set_index("board")
    assert in_2022.loc["苏州工业园区", "value"] == 3515.61
    assert math.isnan(in_2022.loc["张家港市", "value"])  # its figure is for 2021


@pytest.mark.parametrize(("values", "lower", "expected"), [
    ([3.0, 1.0, 2.0], False, [1, 3, 2]),
    ([5.0, 5.0, 1.0], False, [1, 1, 3]),          # ties share the better rank
    ([4.0, 20.0, np.nan], True, [1, 2, pd.NA]),   # positions: lower is better; gap unranked
    ([np.nan, np.nan], False, [pd.NA, pd.NA]),    # nothing known: nobody ranked (not all 1st)
    ([0.0, np.nan, 2.0], False, [2, pd.NA, 1]),   # a real zero is ranked, a gap is not
])
def test_rank_values(values: list[float], lower: bool, expected: list[object]) -> None:
    got = districts.rank_values(pd.Series(values), lower_is_better=lower).tolist()
    assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in expected]


def test_rank_metric_ranks_ascending(data: districts.CompareData) -> None:
    table = districts.comparison_table(data, ["ind:national_hitech_zone_rank"], lang="en")
    ranked = table.dropna(subset=["Value"]).set_index("板块")
    assert ranked.loc["苏州工业园区", "Rank"] == 1  # 4th nationally beats 20th


def test_board_filter_keeps_ranks_among_all_ten(data: districts.CompareData) -> None:
    full = districts.comparison_table(data, ["entities"], lang="en").set_index("板块")
    part = districts.comparison_table(data, ["entities"], boards=["太仓市", "昆山市"], lang="en")
    assert set(part["板块"]) == {"太仓市", "昆山市"}
    for r in part.itertuples():
        assert r.Rank == full.loc[r.板块, "Rank"]


def test_unknown_board_or_metric_is_a_clear_error(data: districts.CompareData) -> None:
    with pytest.raises(FilterError, match="Unknown 板块"):
        districts.comparison_table(data, ["entities"], boards=["花园区"])
    with pytest.raises(FilterError, match="Unknown metric"):
        districts.comparison_table(data, ["nope"])


def test_every_metric_covers_all_ten_boards(data: districts.CompareData) -> None:
    for metric in districts.list_metrics(data):
        vals = districts.metric_values(data, metric.key)
        assert vals["board"].tolist() == list(BOARDS), metric.key
        known = vals[vals["value"].notna()]
        assert (known["source"] != "").all() and (known["year"] != "").all(), metric.key
        assert (vals.loc[vals["value"].isna(), "notes"] != "").all(), metric.key


# ----------------------------------------------------------------------------- plan vs result


def test_every_2023_target_is_shown_with_its_2022_value(data: districts.CompareData,
                                                        built_settings: Settings) -> None:
    ind = pd.read_csv(built_settings.data_dir / "indicators.csv")
    targets = ind[(ind["kind"] == "target") & (ind["year"] == 2023)]
    actual = ind[(ind["kind"] == "actual") & (ind["year"] == 2022)].set_index("metric")
    prog = districts.plan_progress(data, "en")
    assert prog["id"].tolist() == targets["id"].tolist()
    for r in prog.itertuples():
        if r.metric in actual.index:
            assert r.actual_2022 == actual.loc[r.metric, "value"]
            assert r.actual_2022_source == f"seed {actual.loc[r.metric, 'section']}"
        else:
            assert math.isnan(r.actual_2022) and r.actual_2022_text == "no 2022 figure"
            assert math.isnan(r.progress)
    hte = prog[prog["metric"] == "high_tech_enterprises_total"].iloc[0]
    assert hte.progress == pytest.approx(13400 / 16000)
    assert hte.actual_2023 == 15700  # the later public figure, with its source
    assert "2024 city work report" in hte.actual_2023_source
    # 205 个 projects against 100 项: different units, so no progress is invented
    transfer = prog[prog["metric"] == "major_tech_transfer_projects"].iloc[0]
    assert transfer.actual_2022 == 205 and math.isnan(transfer.progress)


def test_board_plan_items_follow_the_registry(data: districts.CompareData) -> None:
    items = districts.plan_items(data, "en")
    upgrade = items[items["item"].str.startswith("Upgrade 太仓高新区")]
    assert upgrade[["board", "section", "status"]].values.tolist() == [["太仓市", "二.5.四",
                                                                        "not_yet"]]
    for board in ("吴江区", "吴中区", "常熟市"):
        prep = items[(items["board"] == board) & items["item"].str.contains("preparatory")]
        assert prep["status"].tolist() == ["not_yet"], board
    offshore = items[items["section"] == "二.5.三"]
    assert sorted(offshore["board"]) == sorted(BOARDS)
    assert set(offshore["status"]) == {"unknown"}  # the 26 centres' list is not published
    # the registry row is linked, not doubled
    assert not items["item"].str.contains("太仓高新区升级").any()
    # when the registry says the zone became national, the item is achieved
    ents = data.entities.copy()
    ents.loc[ents["id"] == "hz-taicang", "level"] = "national"
    ents.loc[ents["id"] == "hz-wujiang-prep", "status"] = "operating"
    moved = districts.plan_items(dataclasses.replace(data, entities=ents), "en")
    done = moved[moved["status"] == "achieved"]["board"].tolist()
    assert sorted(done) == ["吴江区", "太仓市"]
    counts = districts.metric_values(dataclasses.replace(data, entities=ents), "plan:achieved")
    assert counts.set_index("board")["value"]["太仓市"] == 1.0


# ----------------------------------------------------------------------------- map


def _distinct_values(data: districts.CompareData) -> pd.DataFrame:
    """GDP rows with a different value for every 板块 (SIP's is 9009), so a value on the map
    tells which 板块 it came from."""
    values = districts.metric_values(data, "ind:gdp")
    values["value"] = [9009.0 if b == "苏州工业园区" else 100.0 + i
                       for i, b in enumerate(values["board"])]
    return values


def _painted(gdf: gpd.GeoDataFrame) -> dict[str, tuple[str, float]]:
    return {r.board: (r.adcode, r.value) for r in gdf.itertuples()}


def test_choropleth_paints_each_board_with_its_own_polygon_only(
        data: districts.CompareData) -> None:
    values = _distinct_values(data)
    gdf = districts.choropleth_gdf(data, values)
    painted = _painted(gdf)
    assert len(gdf) == 10  # all ten 板块: SIP on its schematic polygon (tests/test_boundaries.py)
    assert painted["苏州工业园区"] == ("board-sip", 9009.0)  # SIP's value on SIP's polygon only
    wuzhong = values.set_index("board").loc["吴中区", "value"]
    assert painted["吴中区"] == ("board-wuzhong", wuzhong)  # 吴中区 without SIP: 吴中区's value
    snd = data.boundaries.set_index("adcode").loc["board-snd", "geometry"]
    assert gdf.set_index("board").loc["苏州高新区", "geometry"].equals(snd)  # 虎丘区 without SIP
    assert gdf["adcode"].is_unique  # one value per polygon
    assert districts.boards_without_polygon(data, values).empty


def _boards_with_sip(data: districts.CompareData, adcode: str, status: str) -> pd.DataFrame:
    boards = data.boards.copy()
    sip = boards["name_zh"] == "苏州工业园区"
    boards.loc[sip, "county_adcode"] = adcode
    boards.loc[sip, "polygon_status"] = status
    return boards


@pytest.mark.parametrize(("status", "painted_wuzhong"), [
    ("none", True),               # SIP points at 吴中区's county without owning it
    ("shared", True),
    ("official_county", False),   # two 板块 claim one polygon: painted for neither
])
def test_sip_pointing_at_wuzhong_never_takes_its_colour(data: districts.CompareData, status: str,
                                                        painted_wuzhong: bool) -> None:
    wz_code = data.boards.set_index("name_zh").loc["吴中区", "county_adcode"]  # board-wuzhong
    shared = dataclasses.replace(data, boards=_boards_with_sip(data, wz_code, status))
    values = _distinct_values(data)
    gdf = districts.choropleth_gdf(shared, values)
    painted = _painted(gdf)
    assert "苏州工业园区" not in painted and 9009.0 not in set(gdf["value"])
    wuzhong = values.set_index("board").loc["吴中区", "value"]
    assert (painted.get("吴中区") == (wz_code, wuzhong)) is painted_wuzhong
    missing = districts.boards_without_polygon(shared, values).set_index("board")
    assert missing.loc["苏州工业园区", "value"] == 9009.0  # listed beside the map instead
    if not painted_wuzhong:
        assert missing.loc[["苏州工业园区", "吴中区"], "reason"].tolist() == ["shared", "shared"]


def test_a_board_given_a_polygon_of_its_own_is_painted(data: districts.CompareData) -> None:
    # a 板块 whose boards row names another polygon of its own is painted with that one
    bounds = data.boundaries
    own = gpd.GeoDataFrame({"adcode": ["sip-schematic"], "name_zh": ["苏州工业园区（示意）"],
                            "name_en": ["SIP (schematic)"], "level": ["district"]},
                           geometry=[shapely.box(120.68, 31.25, 120.80, 31.36)], crs=bounds.crs)
    later = dataclasses.replace(
        data, boards=_boards_with_sip(data, "sip-schematic", "schematic"),
        boundaries=gpd.GeoDataFrame(pd.concat([bounds, own], ignore_index=True), crs=bounds.crs))
    values = _distinct_values(data)
    gdf = districts.choropleth_gdf(later, values).set_index("board")
    assert gdf.loc["苏州工业园区", "value"] == 9009.0
    assert gdf.loc["苏州工业园区", "geometry"].equals(own.geometry.iloc[0])
    assert len(gdf) == 10 and districts.boards_without_polygon(later, values).empty


@pytest.mark.parametrize(("row", "owns"), [
    ({"name_zh": "吴中区", "polygon_status": "official_county"}, True),
    ({"name_zh": "苏州高新区", "polygon_status": "official_county"}, True),  # SND: 虎丘区
    ({"name_zh": "苏州工业园区", "polygon_status": "none"}, False),
    ({"name_zh": "苏州工业园区", "polygon_status": " None "}, False),        # spelled loosely
    ({"name_zh": "苏州工业园区", "polygon_status": "schematic"}, True),      # a polygon added later
    ({"name_zh": "吴中区", "polygon_status": None}, True),                   # no status: same name
    ({"name_zh": "苏州工业园区", "polygon_status": np.nan}, False),          # no status, other name
])
def test_which_board_owns_a_polygon(row: dict[str, object], owns: bool) -> None:
    assert districts.choropleth._owns_polygon(row, "吴中区") is owns  # noqa: SLF001


def test_choropleth_labels_follow_the_language(data: districts.CompareData) -> None:
    values = districts.metric_values(data, "ind:gdp", lang="en").assign(comparator="=")
    values.loc[values["board"] == "昆山市", "comparator"] = ">"
    gdf = districts.choropleth_gdf(data, values, lang="en").set_index("board")
    assert gdf.loc["昆山市", ["name", "value_text"]].tolist() == ["Kunshan", ">5,006.7 亿元"]
    assert gdf.loc["姑苏区", "value_text"] == "no data"
    zh = districts.choropleth_gdf(data, districts.metric_values(data, "ind:gdp")).set_index("board")
    assert zh.loc["姑苏区", ["name", "value_text"]].tolist() == ["姑苏区", "无数据"]


def test_default_metric_is_the_best_covered_published_figure(
        data: districts.CompareData, built_settings: Settings) -> None:
    shipped = pd.read_csv(built_settings.data_dir / "board_indicators.csv")
    shipped = shipped[shipped["board"].isin(list(BOARDS)) & shipped["value"].notna()]
    coverage = shipped.groupby("indicator")["board"].nunique()
    assert districts.DEFAULT_METRIC == f"ind:{coverage.idxmax()}" == "ind:gdp"
    assert coverage.max() == coverage["gdp"] >= 6
    assert districts.default_metric(data) == districts.DEFAULT_METRIC
    assert districts.get_metric(data, districts.DEFAULT_METRIC).group == "public"
    assert districts.comparison_table(data, [])["指标代码"].unique().tolist() == ["ind:gdp"]
    # a database without GDP falls back to the best-covered figure it has, then the registry
    bi = data.board_indicators
    no_gdp = dataclasses.replace(data, board_indicators=bi[bi["indicator"] != "gdp"])
    assert districts.default_metric(no_gdp) == "ind:rd_share_gdp"
    assert districts.default_metric(dataclasses.replace(data, board_indicators=bi.iloc[:0])) == \
        "entities"


def test_registry_counts_are_named_as_registry_counts(data: districts.CompareData) -> None:
    registry = [m for m in districts.list_metrics(data) if m.group == "registry"]
    assert len(registry) > 10
    for m in registry:
        assert m.label_zh.startswith("本图登记主体数") and m.label_zh.endswith("（非官方统计）")
        assert "this map's registry" in m.label_en and m.label_en.endswith(
            "(not an official statistic)")
    labels = {m.key: m.label("zh") for m in districts.list_metrics(data)}
    assert labels["entities"] == "本图登记主体数（非官方统计）"
    assert "非官方统计" in labels["density"]


# ---------------------------------------------------------------------------- the folium choropleth


def _choropleth_frame(names: list[str], values: list[float], **text: str) -> gpd.GeoDataFrame:
    boxes = [shapely.box(120.5 + i * 0.1, 31.2, 120.58 + i * 0.1, 31.3) for i in range(len(names))]
    return gpd.GeoDataFrame({
        "name": names, "value": values,
        "value_text": [districts.format_number(v, "亿元") for v in values],
        "year": text.get("year", "2022"), "source": text.get("source", "statistical bulletin"),
        "notes": text.get("notes", ""),
    }, geometry=boxes, crs="EPSG:4326")


def _fills(page: str) -> list[str]:
    return re.findall(r'"fillColor": "(#[0-9a-f]{6})"', page)


def test_folium_choropleth_colours_by_class_with_legend_and_gaps() -> None:
    gdf = _choropleth_frame(["甲", "乙", "丙", "丁", "戊"], [10.0, 20.0, 30.0, 40.0, np.nan])
    page = maps.render_html(maps.build_choropleth(gdf, title="地区生产总值", unit="亿元",
                                                  unpainted=["苏州工业园区"]))
    edges = maps.class_breaks(gdf["value"])
    assert edges == [10.0, 17.5, 25.0, 32.5, 40.0]
    colors = maps.class_colors(len(edges) - 1)
    assert len(colors) == 4 and colors[-1] == maps.CHOROPLETH_PALETTE[-1]
    assert _fills(page)[:5] == [*colors, "#d9d9d9"]  # each class its colour; the gap grey
    texts = "\n".join(tij.shown_texts(page))
    assert "地区生产总值（亿元）" in texts  # legend: title and unit, then the class breaks
    assert all(span in texts for span in ("10 – 17.5", "17.5 – 25", "25 – 32.5", "32.5 – 40"))
    assert "无数据（未找到公开数字）" in texts and "未绘制：苏州工业园区" in texts
    assert "乙</b><br>地区生产总值: 20 亿元<br>年份: 2022<br>来源: statistical bulletin" in texts
    assert "/app/static/vendor/leaflet/leaflet.js" in page and "cdn" not in page.lower()
    ranks = maps.render_html(maps.build_choropleth(gdf, title="rank", lang="en",
                                                   lower_is_better=True))
    assert _fills(ranks)[:4] == colors[::-1]  # the best (lowest) value is the darkest
    assert "Classes (quantiles)" in "".join(tij.shown_texts(ranks))
    with pytest.raises(ValueError, match="missing value_text"):
        maps.build_choropleth(gdf.drop(columns="value_text"), title="x")


@pytest.mark.parametrize(("values", "expected"), [
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 5),   # five classes when there are enough values
    ([3.0, 3.0, 8.0], 2),                  # fewer distinct values: fewer classes
    ([7.0], 1),                            # one value: one class, not a division by zero
    ([np.nan, np.nan], 0),                 # nothing known: no class, everything grey
])
def test_class_breaks(values: list[float], expected: int) -> None:
    edges = maps.class_breaks(values)
    assert max(0, len(edges) - 1) == expected
    known = [v for v in values if not math.isnan(v)]
    classes = [maps.value_class(v, edges) for v in known]
    assert all(c is not None and 0 <= c < max(1, expected) for c in classes)
    assert classes == sorted(classes)


@pytest.mark.parametrize("payload", tij.TEMPLATE_PAYLOADS)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_choropleth_shows_template_payloads_literally(payload: str, lang: str,
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    probe = tmp_path / "template-payload-ran"
    monkeypatch.setenv(tij.PROBE_ENV, str(probe))
    gdf = _choropleth_frame([payload, "乙"], [7.0, 49.0], source=payload, notes=payload,
                            year=payload)
    water = gdf.iloc[:1].assign(name_zh=payload, name_en=payload, kind="lake")
    m = maps.build_choropleth(gdf, title=payload, unit=payload, lang=lang, unpainted=[payload],
                              boundaries=gdf.assign(name_zh=payload, name_en=payload),
                              water=water)
    page = maps.render_html(m)
    tij.assert_shown_literally(page, payload, probe)
    texts = tij.shown_texts(page)
    assert sum(payload in x for x in texts) >= 4  # name, metric, year, source, legend, water
    tij.assert_shown_literally(tij.streamlit_folium_strings(
        maps.build_choropleth(gdf, title=payload, lang=lang, unpainted=[payload])), payload, probe)


# ----------------------------------------------------------------------------- export


def test_csv_and_xlsx_neutralise_formulas_and_keep_numbers() -> None:
    table = pd.DataFrame({"板块": ["昆山市", "太仓市"], "数值": [-3.5, np.nan],
                          "来源": ["=HYPERLINK(\"http://x\")", "@SUM(A1)"],
                          "排名": pd.array([1, pd.NA], dtype="Int64")})
    text = districts.table_to_csv(table)
    assert text.startswith(b"\xef\xbb\xbf")
    lines = text.decode("utf-8-sig").splitlines()
    assert lines[1] == "昆山市,-3.5,\"'=HYPERLINK(\"\"http://x\"\")\",1"
    assert lines[2] == "太仓市,,'@SUM(A1),"
    ws = openpyxl.load_workbook(io.BytesIO(districts.table_to_xlsx(table))).active
    assert ws["B2"].value == -3.5 and ws["B3"].value is None
    assert ws["C2"].value == "'=HYPERLINK(\"http://x\")" and ws["C2"].data_type == "s"
    assert ws["D2"].value == 1 and ws["D3"].value is None


# ----------------------------------------------------------------------------- user figures
# (the import's own checks are tested in tests/test_ingest.py with the import, geo_app.ingest)


def test_import_is_all_or_nothing_and_survives_a_rebuild(writable_settings: Settings) -> None:
    db = writable_settings.db_path
    before = store.read_table(db, "board_indicators")
    bad = (HEAD + "吴江区,gdp,2022,2500,亿元,my survey,\n吴江区,gdp,2021,oops,亿元,x,\n").encode()
    with pytest.raises(ImportValidationError):
        ingest.import_user_indicators(db, bad, "bad.csv", actor=local_actor())
    assert len(store.read_table(db, "board_indicators")) == len(before)
    assert store.read_table(db, "import_batches").empty
    good = (HEAD + "吴江区,gdp,2022,2500,亿元,my survey,est.\n"
            "太仓市,gdp,2022,1700,亿元,=HYPERLINK(\"x\"),\n").encode()
    _rows, none = ingest.import_user_indicators(db, good, "good.csv", actor=local_actor(),
                                                dry_run=True)
    assert none is None and len(store.read_table(db, "board_indicators")) == len(before)
    rows, batch = ingest.import_user_indicators(db, good, "good.csv", actor=local_actor())
    batches = store.read_table(db, "import_batches")
    assert batches[["batch_id", "file_name", "target", "row_count"]].values.tolist() == [
        [batch, "good.csv", "board_indicators", 2]]
    data = districts.load_compare_data(db)
    gdp = districts.metric_values(data, "ind:gdp", year="2022").set_index("board")
    assert gdp.loc["吴江区", ["value", "source"]].tolist() == [2500.0, "my survey"]
    assert gdp.loc["太仓市", "value"] == 1700.0  # the user figure supersedes the shipped one
    figures = districts.indicator_table(data, "en")
    taicang = figures[(figures["板块"] == "太仓市") & (figures["metric_id"] == "gdp")]
    assert sorted(taicang["In use"].tolist()) == [False, True]
    build.build_database(writable_settings)
    kept = store.read_table(db, "board_indicators")
    assert (kept["origin"] == "user").sum() == 2
    assert len(rows) == 2


def test_cli_import_reports_rows_and_writes_nothing_on_error(
        writable_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEAD + "吴江区,gdp,2022,1,亿元,s,\n吴中区,gdp,2022,x,亿元,s,\n",
                   encoding="utf-8")
    assert cli.main(["import-indicators", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "row 3\tvalue" in err and "Nothing was imported" in err
    assert store.read_table(writable_settings.db_path, "import_batches").empty
    good = tmp_path / "good.csv"
    good.write_text(HEAD + "吴江区,gdp,2022,1,亿元,s,\n", encoding="utf-8")
    assert cli.main(["import-indicators", str(good), "--dry-run"]) == 0
    assert store.read_table(writable_settings.db_path, "import_batches").empty
    assert cli.main(["import-indicators", str(good)]) == 0
    assert "imported 1 rows" in capsys.readouterr().out
    assert len(store.read_table(writable_settings.db_path, "import_batches")) == 1


def test_cli_compare_table_shows_gaps_and_lists_metrics(
        env_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["compare", "--metric", "ind:gdp", "--boards", "姑苏区", "昆山市",
                     "--lang", "en"]) == 0
    out = capsys.readouterr().out.splitlines()
    gusu = next(line for line in out if "姑苏区" in line)
    assert "—" in gusu and " 0 " not in gusu and "no data" in gusu
    assert any("5,006.7" in line and "2022" in line for line in out)
    assert cli.main(["compare", "--format", "xlsx"]) == 2  # a workbook needs a file
    capsys.readouterr()
    assert cli.main(["compare", "--list-metrics"]) == 0
    keys = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"entities", "density", "ind:gdp", "plan:not_yet"} <= set(keys)
    assert cli.main(["compare", "--metric", "nope"]) == 1
    assert "Unknown metric" in capsys.readouterr().err


def test_an_approximate_2022_figure_never_meets_a_strict_target(
        data: districts.CompareData) -> None:
    # 2022 R&D share "接近4%" (≈ 4) against the 2023 target "超4%" (> 4): not known to be met
    rows = districts.plan_progress(data, "en").set_index("id")
    rd = rows.loc["2023-rd_share_gdp"]
    assert rd["met"] is None and rd["progress"] < 1
    hte = rows.loc["2023-high_tech_enterprises_total"]
    assert hte["met"] is False and hte["progress"] == pytest.approx(13400 / 16000)


def test_cli_warns_when_ranked_figures_come_from_different_years(
        env_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from geo_app import cli

    assert cli.main(["compare", "--metric", "ind:high_tech_enterprises_total", "--format", "csv",
                     "--output", "-"]) == 0
    assert "different years (2022, 2023)" in capsys.readouterr().err
