"""AppTest tests of the map page, the data & sources page and the URL-synced filters."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from geo_app import store
from geo_app.filters import make_filter
from geo_app.i18n import t
from geo_app.settings import PROJECT_ROOT, Settings
from tests.conftest import point_env_at
from tests.helpers import run_apptest

APP = str(PROJECT_ROOT / "streamlit_app.py")
TIMEOUT = 90


def run_app(params: dict[str, Any] | None = None) -> AppTest:
    return run_apptest(AppTest.from_file(APP, default_timeout=TIMEOUT), params,
                       errors_allowed=True)


def map_args(at: AppTest) -> dict[str, Any]:
    """The arguments the page hands to the streamlit-folium component."""
    comps = at.get("component_instance")
    assert len(comps) == 1
    return json.loads(comps[0].proto.json_args)


def shown_text(at: AppTest) -> str:
    """Every popup, tooltip and legend string of the map, JSON-decoded."""
    script = map_args(at)["script"]
    found = re.findall(r'\.bind(?:Popup|Tooltip)\(("(?:[^"\\]|\\.)*")', script)
    found += re.findall(r'div\.innerHTML = ("(?:[^"\\]|\\.)*");', script)
    return "\n".join(json.loads(f) for f in found)


def legend_text(at: AppTest) -> str:
    script = map_args(at)["script"]
    found = re.findall(r'div\.innerHTML = ("(?:[^"\\]|\\.)*");', script)
    assert len(found) == 1
    return json.loads(found[0])


def drawn_markers(at: AppTest) -> int:
    return map_args(at)["script"].count("L.marker(")


def counts_text(at: AppTest) -> str:
    return at.markdown[0].value


def expected(db: Path, **kw: Any) -> tuple[int, int]:
    """(entities matching, of which with a point) for a filter, straight from the store."""
    ents = store.query_entities(db, make_filter(**kw))
    return len(ents), int(ents.geometry.notna().sum())


def no_point_rows(at: AppTest) -> int:
    """Rows of the table of entities without a point (absent when there are none)."""
    tables = [m.value for m in at.get("html") if m.value.startswith('<div class="sim-np">')]
    assert len(tables) <= 1
    return tables[0].count("<tr>") - 1 if tables else 0


def params_of(at: AppTest) -> dict[str, list[str]]:
    return {k: list(v) if isinstance(v, list) else [v] for k, v in at.query_params.items()}


# ----------------------------------------------------------------------------- map page


def test_map_page_draws_everything_offline(env_settings: Settings, db: Path) -> None:
    at = run_app()
    n, on_map = expected(db)
    assert at.title[0].value == "苏州科创地图"
    assert counts_text(at) == (f"地图上 {on_map} 个，无坐标 {n - on_map} 个，"
                               f"共 {n} 个符合筛选（全部 {n} 个）")
    args = map_args(at)
    assert args["script"].count("L.marker(") == on_map
    assert args["script"].count("L.geoJson(") >= 5 + 10 + 4  # layers, boundaries, water
    links = args["js_links"] + args["css_links"]
    assert links and all(u.startswith("/app/static/vendor/") for u in links), links
    assert args["returned_objects"] == []  # pans and zooms never rerun the script
    assert n - on_map > 0
    assert no_point_rows(at) == n - on_map  # entities without a point are listed, not dropped
    assert at.query_params["lang"] == "zh"


@pytest.mark.parametrize(("params", "flt"), [
    ({"kind": "laboratory"}, {"kinds": ["laboratory"]}),
    ({"board": "昆山市"}, {"boards": ["昆山市"]}),
    # comma lists and repeated keys both work
    ({"kind": "high_tech_zone,incubator"}, {"kinds": ["high_tech_zone", "incubator"]}),
    ({"kind": ["high_tech_zone", "incubator"], "status": "operating"},
     {"kinds": ["high_tech_zone", "incubator"], "statuses": ["operating"]}),
    ({"layer": "hsr_new_town"}, {"layers": ["hsr_new_town"]}),
    ({"q": "Suzhou"}, {"search": "Suzhou"}),
    ({"q": "实验室"}, {"search": "实验室"}),
])
def test_url_filter_changes_what_is_drawn(env_settings: Settings, db: Path,
                                          params: dict[str, Any], flt: dict[str, Any]) -> None:
    at = run_app(params)
    n, on_map = expected(db, **flt)
    total, all_points = expected(db)
    assert (n, on_map) != (total, all_points)  # the filter really filters
    assert drawn_markers(at) == on_map
    assert f"共 {n} 个符合筛选" in counts_text(at)
    assert no_point_rows(at) == n - on_map


def test_widgets_start_from_url_and_write_back(env_settings: Settings, db: Path) -> None:
    at = run_app({"kind": "high_tech_zone"})
    assert at.sidebar.multiselect(key="f_kind").value == ["high_tech_zone"]
    at.sidebar.multiselect(key="f_board").select("昆山市").run()
    n, on_map = expected(db, kinds=["high_tech_zone"], boards=["昆山市"])
    assert drawn_markers(at) == on_map
    assert f"共 {n} 个符合筛选" in counts_text(at)
    assert params_of(at)["board"] == ["昆山市"] and params_of(at)["kind"] == ["high_tech_zone"]
    at.sidebar.multiselect(key="f_kind").unselect("high_tech_zone").run()
    assert "kind" not in params_of(at)
    assert drawn_markers(at) == expected(db, boards=["昆山市"])[1]


def test_search_box_filters_and_is_kept_in_url(env_settings: Settings, db: Path) -> None:
    at = run_app()
    at.sidebar.text_input(key="f_q").input("苏州").run()
    assert at.query_params["q"] == "苏州"
    assert drawn_markers(at) == expected(db, search="苏州")[1]


def test_copied_url_reproduces_the_view(env_settings: Settings) -> None:
    first = run_app()
    first.sidebar.multiselect(key="f_board").select("苏州工业园区").run()
    first.sidebar.multiselect(key="f_status").select("operating").run()
    first.sidebar.radio(key="lang_radio").set_value("en").run()
    first.sidebar.selectbox(key="basemap_select").set_value("carto").run()
    url = params_of(first)
    assert url == {"lang": ["en"], "board": ["苏州工业园区"], "status": ["operating"],
                   "basemap": ["carto"]}
    second = run_app(url)
    assert counts_text(second) == counts_text(first)
    assert map_args(second)["script"] == map_args(first)["script"]
    assert second.sidebar.multiselect(key="f_board").value == ["苏州工业园区"]
    assert second.sidebar.radio(key="lang_radio").value == "en"
    assert second.sidebar.selectbox(key="basemap_select").value == "carto"


def test_invalid_url_values_are_dropped_with_a_warning(env_settings: Settings, db: Path) -> None:
    at = run_app({"kind": ["bogus", "laboratory"], "board": "<b>nowhere</b>", "basemap": "google"})
    warning = at.sidebar.warning[0].value
    assert "kind=bogus" in warning and "nowhere" in warning
    assert params_of(at)["kind"] == ["laboratory"] and "board" not in params_of(at)
    assert "basemap" not in params_of(at)  # unknown basemap -> the default (none)
    assert drawn_markers(at) == expected(db, kinds=["laboratory"])[1]


def test_a_new_visitor_gets_the_map_first_and_the_widgets_in_the_next_run(
        env_settings: Settings, db: Path) -> None:
    """A session's first run leaves the sidebar's widgets, and what is below the map, to
    the next (which the browser's timer or the map's report asks for): the same map, the
    URL's state kept, and the URL's invalid values still said when the widgets come."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    url = {"kind": ["bogus", "laboratory"], "board": "nowhere", "lang": "en",
           "basemap": "carto"}
    run_apptest(at, url, errors_allowed=True, new_visitor=True)
    on_map = expected(db, kinds=["laboratory"])[1]
    assert drawn_markers(at) == on_map
    assert not (at.sidebar.multiselect or at.sidebar.radio or at.sidebar.selectbox
                or at.sidebar.text_input)
    assert [c.value for c in at.sidebar.caption] == ["Loading the filters …"]
    below = t("no_point", "en")
    assert not at.main.expander and not any(below in c.value for c in at.main.caption)
    assert not any(t("map_share_hint", "en") in c.value for c in at.main.caption)
    assert params_of(at) == {"kind": ["laboratory"], "lang": ["en"], "basemap": ["carto"]}
    (comp,) = at.get("component_instance")
    frame = comp.proto.id
    at.run()
    assert at.sidebar.multiselect(key="f_kind").value == ["laboratory"]
    assert at.sidebar.radio(key="lang_radio").value == "en"
    assert at.sidebar.selectbox(key="basemap_select").value == "carto"
    warning = at.sidebar.warning[0].value
    assert "kind=bogus" in warning and "nowhere" in warning
    assert not at.sidebar.caption
    assert any(t("map_share_hint", "en") in c.value for c in at.main.caption)
    assert any(below in e.label for e in at.main.expander)  # laboratories: none located
    (comp,) = at.get("component_instance")
    assert comp.proto.id == frame  # the browser keeps its map
    assert drawn_markers(at) == on_map
    assert params_of(at) == {"kind": ["laboratory"], "lang": ["en"], "basemap": ["carto"]}
    at.run()
    assert not at.sidebar.warning and at.sidebar.multiselect(key="f_kind").value == ["laboratory"]


def _has_search_copy(db: Path) -> bool:
    """Whether this process's reader of ``db`` holds the map search's copy of the names."""
    from geo_app.store import duckdb_connect, duckdb_stream

    catalog, schema, table = duckdb_stream._SEARCH_TABLE.split(".")
    with duckdb_connect.reader(db) as cur:
        return bool(cur.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? "
            "AND schema_name = ? AND table_name = ?", [catalog, schema, table]).fetchone()[0])


def test_the_run_that_draws_the_search_box_makes_the_search_copy_ahead(
        writable_settings: Settings) -> None:
    """The first search of a file need not wait for the reader's copy of the names: the
    run that draws the search box has it made in a thread (a new visitor's first run,
    without the box, does not)."""
    import time

    db = writable_settings.db_path
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    run_apptest(at, new_visitor=True)
    assert not at.sidebar.text_input and not _has_search_copy(db)
    at.run()
    assert at.sidebar.text_input(key="f_q")
    deadline = time.monotonic() + 30
    while not _has_search_copy(db) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _has_search_copy(db)
    _, found = store.match_rowids(db, make_filter(search="实验室"))
    assert len(found) == store.count_entities(db, make_filter(search="实验室")) > 0


def test_url_lists_are_read_as_the_api_reads_them(env_settings: Settings, db: Path) -> None:
    # geo_app.filters.parse_filter: spaces and empty parts ignored, a repeat counts once, and
    # the URL written back is the normalised one (one value per key entry)
    at = run_app({"kind": [" laboratory , ,university", "laboratory"], "layer": "nope"})
    assert at.sidebar.multiselect(key="f_kind").value == ["laboratory", "university"]
    assert params_of(at)["kind"] == ["laboratory", "university"]
    assert "layer=nope" in at.sidebar.warning[0].value
    assert drawn_markers(at) == expected(db, kinds=["laboratory", "university"])[1]


def test_a_search_longer_than_the_box_is_cut_and_said_so(env_settings: Settings) -> None:
    at = run_app({"q": "苏" * 250})
    assert at.sidebar.text_input(key="f_q").value == "苏" * 200
    warning = at.sidebar.warning[0].value
    assert "q=" in warning and "苏" * 81 not in warning  # the value is quoted cut, not whole


def test_english_labels_everywhere(env_settings: Settings) -> None:
    at = run_app({"lang": "en"})
    assert at.title[0].value == "Suzhou Innovation Map"
    assert "on the map" in counts_text(at)
    legend = legend_text(at)
    assert "Legend" in legend and "County boundaries (板块)" in legend and "University" in legend
    assert "图例" not in legend and "大学" not in legend
    assert "<th>Kind</th>" in shown_text(at)  # popup labels follow the language
    assert at.sidebar.multiselect(key="f_kind").label == "Kind"
    at.sidebar.radio(key="lang_radio").set_value("zh").run()
    assert at.query_params["lang"] == "zh"
    assert at.title[0].value == "苏州科创地图" and "图例" in legend_text(at)
    assert "<th>类型</th>" in shown_text(at)


def test_amap_basemap_is_shifted_and_said_so(env_settings: Settings) -> None:
    at = run_app({"basemap": "amap"})
    assert at.sidebar.selectbox(key="basemap_select").value == "amap"
    script = map_args(at)["script"]
    assert "autonavi.com" in script
    caption = at.caption[0].value
    assert "GCJ-02" in caption and "苏州工业园区" in caption
    plain = map_args(run_app())["script"]
    assert "autonavi.com" not in plain and "tileLayer" not in plain


def test_filter_state_survives_a_page_without_filters(env_settings: Settings) -> None:
    def two_pages() -> None:
        import streamlit as st

        from geo_app.views import common

        lang = common.language_switch()
        if st.session_state.get("page", "map") == "map":
            ids, names = common.layer_choices(common.db_path(), lang)
            flt = common.sidebar_filter(lang, ids, names)
            st.write(f"kinds={','.join(flt.kinds)}")
        else:
            st.write("other page")

    at = AppTest.from_function(two_pages, default_timeout=TIMEOUT)
    at.query_params["kind"] = "laboratory"
    at.query_params["lang"] = "en"
    at.run()
    assert at.markdown[0].value == "kinds=laboratory"
    at.session_state["page"] = "other"
    for key in list(at.query_params):  # navigating clears the address
        del at.query_params[key]
    at.run()
    assert at.markdown[0].value == "other page"
    at.session_state["page"] = "map"
    at.run()
    assert not at.exception
    assert at.markdown[0].value == "kinds=laboratory"
    assert at.query_params["kind"] == "laboratory" and at.query_params["lang"] == "en"


# ----------------------------------------------------------------------------- sources page


def _sources_page() -> None:
    from geo_app.views import sources

    sources.render()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_sources_page(env_settings: Settings, db: Path, lang: str) -> None:
    at = AppTest.from_function(_sources_page, default_timeout=TIMEOUT)
    at.query_params["lang"] = lang
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    n, on_map = expected(db)
    text = "\n".join(m.value for m in at.markdown)
    assert at.title[0].value == ("数据与来源" if lang == "zh" else "Data & sources")
    assert "Data sources and provenance" in text  # data/SOURCES.md, with every licence
    assert "CC-BY 4.0" in text and "LGPL-3.0-or-later" in text and "MIT" in text
    if lang == "zh":
        assert "没有官方多边形" in text and "26家海外离岸创新中心" in text
        assert f"{n - on_map} 个主体没有可靠来源的坐标" in text
    else:
        assert "no official polygon" in text and "26 overseas offshore innovation centres" in text
        assert f"{n - on_map} entities have no sourced coordinates" in text
    frames = [d.value for d in at.dataframe]
    by_kind = frames[0]
    assert int(by_kind.iloc[:, 1].sum()) == n
    assert any(len(f) == n - on_map for f in frames)  # the entities without a point
    assert any(len(f) == n for f in frames)  # every entity with its sources


# ----------------------------------------------------------------------- large registries (issue 9)

N_LARGE = 5_000


def synthetic_settings(dest: Path, n: int) -> Settings:
    """A database of the shipped data plus ``n`` synthetic entities, built in ``dest``."""
    import shutil

    from benchmarks.synthetic import write_synthetic_data_dir
    from geo_app import build

    data = write_synthetic_data_dir(dest / "data", n)
    shutil.copytree(PROJECT_ROOT / "layers", dest / "layers")
    settings = Settings(db_path=data / "geo_app.duckdb", data_dir=data, layers_dir=dest / "layers")
    build.build_database(settings)
    return settings


@pytest.fixture(scope="module")
def large_built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return synthetic_settings(tmp_path_factory.mktemp("large"), N_LARGE)


@pytest.fixture()
def large(large_built: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    return point_env_at(large_built, monkeypatch)


def payloads(script: str, kind: str) -> list[list[Any]]:
    """Compact marker (``kind="markers"``) or cell payloads in a script."""
    pattern = (r"var P = (\[.*?\]), S = P\[1\];" if kind == "markers"
               else r"var P = (\[.*?\]), K = P\[1\]")
    return [json.loads(p) for p in re.findall(pattern, script)]


def marker_ids(payload: list[Any]) -> list[str]:
    return [html.unescape(r[5]) for r in payload[2]]


def test_large_filter_sends_cells_for_the_view(large: Settings) -> None:
    at = run_app()
    n, on_map = expected(large.db_path)
    assert on_map > 2_000
    assert counts_text(at) == (f"地图上 {on_map} 个，无坐标 {n - on_map} 个，"
                               f"共 {n} 个符合筛选（全部 {n} 个）")
    args = map_args(at)
    assert args["returned_objects"] == ["bounds", "zoom"]  # pans and zooms rerun here
    assert drawn_markers(at) == 0 and not payloads(args["script"], "markers")
    (cells,) = payloads(args["feature_group"], "cells")
    assert sum(r[2] for r in cells[0]) == on_map  # the first view holds every entity
    assert len(cells[0]) < 200
    assert "markercluster" in " ".join(args["js_links"])  # for the markers of a later view
    assert "圆圈" in at.caption[0].value and "2,000" in at.caption[0].value
    assert "带数字的圆圈" in legend_text(at)


def view_state(lon: float, lat: float, zoom: int,
               half_px: tuple[int, int] = (450, 350)) -> dict[str, Any]:
    from geo_app import aggregate as agg

    x, y = agg.world_px(lon, lat, zoom)
    west, north = agg.lonlat_of_px(float(x) - half_px[0], float(y) - half_px[1], zoom)
    east, south = agg.lonlat_of_px(float(x) + half_px[0], float(y) + half_px[1], zoom)
    return {"bounds": {"_southWest": {"lat": south, "lng": west},
                       "_northEast": {"lat": north, "lng": east}}, "zoom": zoom}


def test_a_reported_view_gets_its_individual_markers(large: Settings) -> None:
    from geo_app import aggregate as agg

    at = run_app()
    first_layer = map_args(at)["feature_group"]
    state = view_state(120.62, 31.30, 14)
    at.session_state["_map_view"] = {"sig": at.session_state["_map_sig"], "state": state}
    at.run()
    args = map_args(at)
    assert not payloads(args["feature_group"], "cells")
    (markers,) = payloads(args["feature_group"], "markers")
    window = agg.view_window(agg.view_from_state(state))  # type: ignore[arg-type]
    ents = store.query_entities(large.db_path)
    located = ents[ents.geometry.notna()]
    inside = window.contains(located.geometry.x.to_numpy(), located.geometry.y.to_numpy())
    assert 0 < inside.sum() <= 2_000
    assert sorted(marker_ids(markers)) == sorted(located.loc[inside, "id"])
    assert "逐个显示" in at.caption[0].value
    # the base map is unchanged, so the browser keeps it and only swaps the layer
    assert args["returned_objects"] == ["bounds", "zoom"] and args["feature_group"] != first_layer
    # zooming back out brings the cells back
    at.session_state["_map_view"] = {"sig": at.session_state["_map_sig"],
                                     "state": view_state(120.62, 31.30, 9)}
    at.run()
    assert payloads(map_args(at)["feature_group"], "cells")


def test_a_view_of_another_filter_is_ignored(large: Settings) -> None:
    at = run_app()
    first = map_args(at)["feature_group"]
    at.session_state["_map_view"] = {"sig": "another map", "state": view_state(120.62, 31.30, 15)}
    at.run()
    assert map_args(at)["feature_group"] == first


@pytest.mark.parametrize(("query", "mode"), [
    ("合成主体10", "markers"),   # 111 entities: folium markers, as for the shipped registry
    ("合成主体1", "compact"),    # 1,111: every marker once, compact
])
def test_mid_size_filters_send_every_marker_without_reruns(large: Settings, query: str,
                                                           mode: str) -> None:
    at = run_app({"q": query})
    _, on_map = expected(large.db_path, search=query)
    args = map_args(at)
    assert args["returned_objects"] == [] and args["feature_group"] is None
    if mode == "markers":
        assert on_map <= 200 and drawn_markers(at) == on_map
    else:
        assert 200 < on_map <= 2_000 and drawn_markers(at) == 1  # the layer's one template
        (markers,) = payloads(args["script"], "markers")
        assert len(markers[2]) == on_map


# ----------------------------------------------------------------------- first sight (issue 18)


def _map_page(db: Path, flt: Any) -> Any:
    """The ``MapPage`` of a run for ``flt`` (Chinese, no basemap), uncached."""
    import dataclasses

    from geo_app.views import map as page

    version = page.data_version(db)
    build = page.build_stamp.__wrapped__(str(db), version)  # type: ignore[attr-defined]
    summary = page.load_summary(str(db), version, flt)
    inputs = dataclasses.replace(page._display_overlays.__wrapped__(str(db), build, "wgs84"),  # type: ignore[attr-defined]  # noqa: SLF001
                                 focus_layers=flt.layers, fit_city=flt.is_empty())
    return page.MapPage(db=str(db), version=version, flt=flt, lang="zh", basemap="none",
                        summary=summary, inputs=inputs, layer_names={})


def _plan(db: Path, flt: Any, view: Any = None) -> Any:
    """The plan the page draws for ``flt`` at ``view`` (None: its first drawing), uncached."""
    from geo_app.views import map as page

    return page.plan_map(_map_page(db, flt), view, loaders=page.DIRECT)


def _component_args(plan: Any, monkeypatch: pytest.MonkeyPatch, *, render: bool,
                    key: str = "k") -> dict[str, Any]:
    """What ``st_folium`` hands its component for (a copy of) the plan's map."""
    import copy

    import streamlit_folium

    got: dict[str, Any] = {}
    monkeypatch.setattr(streamlit_folium, "_component_func", lambda **kw: got.update(kw))
    fmap, layer = copy.deepcopy((plan.fmap, plan.layer))
    streamlit_folium.st_folium(fmap, height=700, use_container_width=True,
                               returned_objects=plan.returned_objects,
                               feature_group_to_add=layer, key=key, render=render)
    got.pop("on_change")
    return got


@pytest.mark.parametrize(("which", "query", "zoom", "mode"), [
    ("shipped", "", None, "markers"), ("large", "合成主体1", None, "compact"),
    ("large", "", None, "cells"), ("large", "", 14, "view markers")])
def test_the_map_is_rendered_once_for_the_same_component_arguments(
        which: str, query: str, zoom: int | None, mode: str, db: Path, large_built: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside the markers mode the page passes ``render=False`` (one render of the map
    instead of two): the component must get exactly what ``render=True`` gives. In the
    markers mode it would not (folium adds the icons while the page renders)."""
    from geo_app import aggregate as agg

    view = agg.view_from_state(view_state(120.62, 31.30, zoom)) if zoom else None
    plan = _plan(db if which == "shipped" else large_built.db_path,
                 make_filter(search=query or None), view)
    assert plan.mode == mode
    once = _component_args(plan, monkeypatch, render=False)
    twice = _component_args(plan, monkeypatch, render=True)
    assert once["script"] and once.keys() == twice.keys()
    differ = [key for key in once if once[key] != twice[key]]
    assert differ == (["script", "key"] if mode == "markers" else []), differ


def test_an_import_keeps_the_overlays_a_rebuild_replaces_them(tmp_path: Path) -> None:
    """The overlays are cached under the build stamp: an import (entities only) keeps it,
    a rebuild of other data changes it, and the file version changes either way."""
    import csv
    import shutil

    from geo_app import build, ingest
    from geo_app.auth import local_actor
    from geo_app.views import map as page
    from tests.conftest import copy_sources

    settings = copy_sources(tmp_path)
    build.build_database(settings)
    db = settings.db_path
    stamp = page.build_stamp.__wrapped__  # type: ignore[attr-defined]
    before, v0 = stamp(str(db), page.data_version(db)), page.data_version(db)
    source = tmp_path / "one.csv"
    with open(source, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name_zh", "kind", "level", "status", "board", "lon", "lat",
                    "location_precision", "location_source", "source_datum", "source"])
        w.writerow(["stamp-1", "印章孵化器", "incubator", "municipal", "operating", "苏州高新区",
                    "120.4425", "31.3391", "town", "test", "wgs84", "test"])
    assert ingest.import_file(source, db, actor=local_actor())[1] is not None
    assert page.data_version(db) != v0
    assert stamp(str(db), page.data_version(db)) == before
    # a rebuild from changed sources: new stamp (the overlays are read again)
    shutil.copy2(settings.data_dir / "registry.csv", tmp_path / "registry.bak")
    with open(settings.data_dir / "registry.csv", "a", encoding="utf-8") as fh:
        fh.write("\n")
    build.build_database(settings)
    assert stamp(str(db), page.data_version(db)) != before


@pytest.mark.parametrize(("zoom", "mode"), [(None, "cells"), (14, "view markers")])
def test_the_kept_base_map_gives_the_component_what_st_folium_gives(
        zoom: int | None, mode: str, large_built: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Large filters: the page renders the base map once (``BaseMap``) and hands the
    component its strings with each view's layer; that must be exactly what ``st_folium``
    gives for the base map and the layer."""
    import copy

    import streamlit_folium

    from geo_app import aggregate as agg
    from geo_app.views import map as page

    view = agg.view_from_state(view_state(120.62, 31.30, zoom)) if zoom else None
    plan = _plan(large_built.db_path, make_filter(), view)
    assert plan.mode == mode
    theirs = _component_args(plan, monkeypatch, render=False, key="main_map")
    base = page.BaseMap.render(copy.deepcopy(plan.fmap))
    ours: dict[str, Any] = {}
    monkeypatch.setattr(streamlit_folium, "_component_func", lambda **kw: ours.update(kw))
    page._view_component(base, copy.deepcopy(plan.layer))  # noqa: SLF001
    ours.pop("on_change")
    assert ours.keys() == theirs.keys() and ours["feature_group"]
    assert [k for k in ours if ours[k] != theirs[k]] == []


def _check_kept_whole_map(db: Path, query: str, mode: str,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to ``MARKER_LIMIT`` entities the page keeps the rendered map (``_whole_map``, no
    layer) and hands the component its strings: exactly what ``st_folium`` gives for the
    map, the markers mode's icons included."""
    import streamlit_folium

    from geo_app.views import map as page

    mp = _map_page(db, make_filter(search=query or None))
    plan = page.plan_map(mp, None, loaders=page.DIRECT)
    assert plan.mode == mode and plan.layer is None
    theirs = _component_args(plan, monkeypatch, render=True, key="main_map")
    assert plan.notes == []  # the page's caption has no view notes for these
    whole = page._whole_map.__wrapped__("sig", mp)  # type: ignore[attr-defined]  # noqa: SLF001
    ours: dict[str, Any] = {}
    monkeypatch.setattr(streamlit_folium, "_component_func", lambda **kw: ours.update(kw))
    page._view_component(whole, None)  # noqa: SLF001
    ours.pop("on_change")
    assert ours.keys() == theirs.keys()
    assert ours["returned_objects"] == [] and ours["default"] == {} and ours["script"]
    assert [k for k in ours if ours[k] != theirs[k]] == []


def test_the_kept_whole_map_gives_the_component_what_st_folium_gives(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped registry (markers mode): see :func:`_check_kept_whole_map`."""
    _check_kept_whole_map(db, "", "markers", monkeypatch)


def test_the_kept_compact_map_gives_the_component_what_st_folium_gives(
        large_built: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search of the large registry (compact mode): see :func:`_check_kept_whole_map`."""
    _check_kept_whole_map(large_built.db_path, "合成主体1", "compact", monkeypatch)


def test_a_new_tab_does_not_rebuild_the_map_of_a_small_filter(
        env_settings: Settings, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The map of a filter up to ``MARKER_LIMIT`` entities is built once per filter,
    language and basemap: a second session gets the same component arguments without a
    build; another filter builds its own."""
    from geo_app import maps
    from geo_app.views import map as page

    page._whole_map.clear()  # noqa: SLF001
    built: list[str] = []
    real = maps.build_map

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(kwargs["mode"])
        return real(*args, **kwargs)

    monkeypatch.setattr(maps, "build_map", counting)
    first = map_args(run_app())
    assert built == ["markers"]
    assert map_args(run_app()) == first and built == ["markers"]
    labs = map_args(run_app({"kind": "laboratory"}))
    assert built == ["markers", "markers"] and labs["script"] != first["script"]
    assert map_args(run_app({"lang": "en"}))["script"] != first["script"]
    assert len(built) == 3


def test_a_pan_changes_only_the_layer_of_the_component(large: Settings) -> None:
    """A pan or zoom reruns the page, and the component gets the same arguments but the
    view's layer: the browser keeps its map (the same iframe) and swaps the layer."""
    at = run_app()
    first = before = map_args(at)
    for zoom in (12, 14, 11, 9):
        state = view_state(120.62, 31.30, zoom)
        at.session_state["_map_view"] = {"sig": at.session_state["_map_sig"], "state": state}
        at.run()
        args = map_args(at)
        assert [k for k in args if args[k] != before[k]] == ["feature_group"], zoom
        before = args
    assert [k for k in args if args[k] != first[k]] == ["feature_group"]


def test_a_filter_change_keeps_the_base_map_and_swaps_the_layer(large: Settings) -> None:
    """Large filters share one base map (overlays, legend, fitted to the city): a filter
    change hands the component the same map with another layer, which writes the filter's
    kinds into the legend and fits the map to the filter on its first drawing only."""
    from geo_app import aggregate as agg
    from geo_app.maps.legend import legend_kinds_html

    at = run_app()
    first = map_args(at)
    at.sidebar.multiselect(key="f_status").set_value(["operating"]).run()
    args = map_args(at)
    assert [k for k in args if args[k] != first[k]] == ["feature_group"]
    flt = make_filter(statuses=["operating"])
    ents = store.query_entities(large.db_path, flt)
    located = ents[ents.geometry.notna()]
    assert len(located) > 2_000
    (cells,) = payloads(args["feature_group"], "cells")
    assert sum(r[2] for r in cells[0]) == len(located)
    kinds = agg.make_points(located.geometry.x, located.geometry.y, located["kind"]).kind_counts()
    extras = re.search(r'var kinds = ("(?:[^"\\]|\\.)*"), fit = (\[\[.*?\]\]);',
                       args["feature_group"])
    assert extras and json.loads(extras.group(1)) == legend_kinds_html(kinds, "zh")
    west, south, east, north = located.total_bounds
    assert json.loads(extras.group(2)) == [[south, west], [north, east]]
    assert "主体类型" not in legend_text(at)  # the base legend's kinds come from the layer
    # the layer makes the map report a move at once, only inside st_folium's frame and
    # only as its own report of bounds and zoom would
    assert "streamlit:setComponentValue" in args["feature_group"]
    assert 'r.indexOf("bounds") < 0 || r.indexOf("zoom") < 0' in args["feature_group"]
    # the view the map then reports gets a layer that keeps it
    at.session_state["_map_view"] = {"sig": at.session_state["_map_sig"],
                                     "state": view_state(120.62, 31.30, 12)}
    at.run()
    assert ", fit = null;" in map_args(at)["feature_group"]


def test_the_no_point_table_escapes_every_value() -> None:
    """The table of entities without a point is HTML on one line: no value becomes markup,
    Markdown, a formula or a second block."""
    import pandas as pd

    from geo_app.views.map import no_point_html

    hostile = ["<img src=x onerror=alert(1)>", "a\n\n# heading\n\n<script>x</script>",
               "$x^2$ `code` \\n", "</td></tr></table><b>x</b>", None]
    out = no_point_html(pd.DataFrame({"名称 <i>": hostile, "id": ["1", "2", "3", "4", "5"]}))
    assert "\n" not in out and "\r" not in out and "$" not in out and "`" not in out
    assert "<img" not in out and "<script" not in out and "<b>" not in out and "<i>" not in out
    assert out.count("<tr>") == 6 and out.count("<td>") == 10
    assert "&lt;img src=x onerror=alert(1)&gt;" in out and "名称 &lt;i&gt;" in out
    assert html.unescape(out.split("<td>")[3].split("</td>")[0]) == hostile[1]


def test_a_summary_read_across_a_write_is_the_new_files(tmp_path: Path) -> None:
    """The index is read once per version; a filter's row ids read after the file changed
    are not taken from an index of the old file: the summary streams the new file."""
    from geo_app import aggregate, build, ingest, store
    from geo_app.auth import local_actor
    from geo_app.views import map as page
    from tests.conftest import copy_sources

    settings = copy_sources(tmp_path)
    build.build_database(settings)
    db = settings.db_path
    old = page.data_version(db)
    flt = make_filter(kinds=["incubator"])
    before = page.load_summary(str(db), old, flt)  # reads the old file's index
    source = tmp_path / "one.csv"
    source.write_text("id,name_zh,kind,level,status,board,lon,lat,location_precision,"
                      "location_source,source_datum,source\nidx-1,索引孵化器,incubator,municipal,"
                      "operating,苏州高新区,120.4425,31.3391,town,test,wgs84,test\n",
                      encoding="utf-8")
    assert ingest.import_file(source, db, actor=local_actor())[1] is not None
    after = page.load_summary(str(db), old, flt)  # the old version's key, the new file
    want = aggregate.points_from_batches(store.iter_point_batches(
        db, flt, unlocated=aggregate.NO_POINT_COLUMNS))
    assert after.n_total == before.n_total + 1 == want.n_total
    assert after.points.lon.tolist() == want.points.lon.tolist()


def _run_probe(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a Python process of its own with the app's script as ``sys.argv[1]``
    (the GEO_APP_* variables the fixtures set are inherited)."""
    return subprocess.run([sys.executable, "-c", code, APP], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


_FREEZE_PROBE = textwrap.dedent("""
    import gc, json, sys
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(sys.argv[1], default_timeout=90).run()
    first = gc.get_freeze_count()
    from geo_app.views import map as map_view
    render_walked = any(o is map_view.render for o in gc.get_objects())
    made_later = {"made after the first run": []}
    at.run()
    made_later_walked = any(o is made_later for o in gc.get_objects())
    print(json.dumps([first, render_walked, made_later_walked,
                      len(at.exception), len(at.get("component_instance"))]))
""")


def test_the_app_freezes_its_imports_once_per_process(env_settings: Settings) -> None:
    """Streamlit collects garbage after every run; the app froze what its imports made
    first, so that collection skips them (``common.freeze_imports``), and only once: what
    later runs make is still collected. In a process of its own, as freezing is for the
    whole process."""
    done = _run_probe(_FREEZE_PROBE)
    assert done.returncode == 0, done.stderr[-3000:]
    frozen, render_walked, made_later_walked, errors, maps = json.loads(
        done.stdout.strip().splitlines()[-1])
    assert frozen > 50_000 and not render_walked  # the imports' objects (a page, say)
    assert made_later_walked  # the second run froze nothing more
    assert errors == 0 and maps == 1  # the map page ran, twice


_EXIT_PROBE = textwrap.dedent("""
    import sys
    from geo_app import store
    from geo_app.store import duckdb_connect
    from streamlit.testing.v1 import AppTest

    def slow_head_start(path):  # still inside DuckDB when the process exits
        with duckdb_connect.reader(path) as cur:
            cur.execute("SELECT sum(a.range % 7) FROM range(150000000) a").fetchall()

    store.prepare_search = slow_head_start
    at = AppTest.from_file(sys.argv[1], default_timeout=90).run()
    at.run()  # draws the search box: starts the head start
    print("ran", len(at.exception))
""")


def test_a_process_that_exits_during_the_search_head_start_exits_cleanly(
        env_settings: Settings) -> None:
    """The server stopped while the map's head start (``views.map._prepare_search``) runs
    in DuckDB: the process waits for it and exits 0 (a daemon thread cut off inside DuckDB
    aborted it with status 134)."""
    done = _run_probe(_EXIT_PROBE)
    assert "terminate called" not in done.stderr
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "ran 0"

