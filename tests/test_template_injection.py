"""No data value is ever template source: a corpus of Jinja payloads in every text field of
every map mode (geo_app.maps' template boundary; the browser and AppTest halves of the
corpus live in tests/test_browser.py and tests/test_views_map.py)."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
import streamlit_folium as sf
from streamlit.testing.v1 import AppTest

from geo_app import aggregate as agg
from geo_app import build, ingest, maps
from geo_app.auth import local_actor
from geo_app.maps import template, webmap
from geo_app.settings import Settings
from tests.conftest import copy_sources, point_env_at
from tests.helpers import run_apptest
from tests.test_maps import entities, inputs

#: Where the code-running payload would create a directory if it were ever evaluated: the
#: payload reads the path from the environment, so it needs no quotes (tojson escapes them).
PROBE_ENV = "SIM_PROBE"
RCE = ("{{cycler.__init__.__globals__.os.mkdir("
       "cycler.__init__.__globals__.os.environ.SIM_PROBE)}}")

#: Each payload must reach the page as the same characters, and never run.
TEMPLATE_PAYLOADS = [
    "{{7*7}}",
    "{{ config }}",
    RCE,
    "{{ lipsum.__globals__.os.popen(request) }}",
    "{% raw %}",
    "{%- endraw %}",
    "{# #}",
    "${{7*7}}",
    "{{",
    "}}",
    "x }} y {{ z",
    "{{'map_div'}}",  # the shape streamlit-folium's reference rewriting looks for
    "{%",
    "%}{{",
]

#: Entity columns that a popup, tooltip or the compact payload shows.
TEXT_FIELDS = ["name_zh", "name_en", "id", "source", "location_source", "notes"]


def write_payload_import(path: Path, rows_per_payload: int) -> Path:
    """An import file whose every text field holds a payload: ``rows_per_payload`` rows per
    payload of :data:`TEMPLATE_PAYLOADS`, named ``模板PPIII…`` so that a name search picks a
    few rows (``模板PPIII``), hundreds or all of them."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name_zh", "name_en", "kind", "level", "status", "board", "lon", "lat",
                    "location_precision", "location_source", "source_datum", "source", "notes"])
        for p, payload in enumerate(TEMPLATE_PAYLOADS):
            for i in range(rows_per_payload):
                w.writerow([f"tpl-{p:02d}-{i:03d}", f"模板{p:02d}{i:03d}{payload}", payload,
                            "incubator", "unknown", "operating", "苏州工业园区",
                            f"{120.55 + (i % 16) * 0.02:.4f}",
                            f"{31.20 + (i // 16) * 0.02 + p * 0.001:.4f}",
                            "site", payload, "wgs84", payload, payload])
    return path


@pytest.fixture()
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "template-payload-ran"
    monkeypatch.setenv(PROBE_ENV, str(path))
    return path


def hostile_static(static: dict[str, Any], payload: str) -> dict[str, Any]:
    """The overlays with every name (layers, counties, water, 板块) set to ``payload``."""
    out = {k: v.copy() for k, v in static.items()}
    for key in ("layers", "boundaries", "water"):
        out[key]["name_zh"] = payload
        out[key]["name_en"] = payload
    out["layers"]["method"] = payload
    out["boards"]["name_zh"] = payload
    return out


def hostile_entities(payload: str, n: int) -> Any:
    rows = []
    for i in range(n):
        row: dict[str, Any] = {f: payload for f in TEXT_FIELDS}
        row.update(id=f"{payload}-{i}", lon=120.60 + (i % 40) / 200, lat=31.25 + (i // 40) / 200,
                   layers="taihu_science_city", board=payload if i % 2 else "姑苏区")
        rows.append(row)
    return entities(rows)


_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def shown_texts(page: str) -> list[str]:
    """Every JSON string literal in ``page``, decoded and HTML-unescaped: what Leaflet shows."""
    out = []
    for literal in _JSON_STRING.findall(page):
        try:
            value = json.loads(literal)
        except json.JSONDecodeError:
            continue
        out.append(html.unescape(value))
    return out


def assert_shown_literally(page: str, payload: str, probe: Path) -> None:
    assert not probe.exists(), "a payload ran on the server"
    texts = shown_texts(page)
    assert any(payload in text for text in texts), payload
    if payload == "{{7*7}}":
        assert not any(text == "49" for text in texts)


def streamlit_folium_strings(m: Any, layer: Any = None) -> str:
    """What streamlit-folium hands the component: it renders the whole figure first."""
    m.get_root().render()
    m.render()
    parts = [sf._get_header(m), sf._get_html(m), sf._get_map_string(m)]  # noqa: SLF001
    if layer is not None:
        parts.append(sf._get_feature_group_string(layer, m))  # noqa: SLF001
    return "\n".join(parts)


@pytest.mark.parametrize("payload", TEMPLATE_PAYLOADS)
@pytest.mark.parametrize(("mode", "basemap"), [("markers", "none"), ("markers", "amap"),
                                               ("compact", "none"), ("compact", "amap")])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_payloads_in_every_field_never_run(static: dict[str, Any], probe: Path, payload: str,
                                           mode: str, basemap: str, lang: str) -> None:
    inp = inputs(hostile_static(static, payload), hostile_entities(payload, 3))
    names = {"taihu_science_city": payload}
    page = maps.render_html(maps.build_map(inp, lang=lang, basemap=basemap, mode=mode))
    assert_shown_literally(page, payload, probe)
    # the popup table shows each text field of the entity
    rows = [maps.popup_html(r, lang, names) for r in inp.entities.to_dict("records")]
    assert all(maps.escape_html(payload) in r for r in rows)
    for_component = streamlit_folium_strings(
        maps.build_map(inp, lang=lang, basemap=basemap, mode=mode))
    assert_shown_literally(for_component, payload, probe)


@pytest.mark.parametrize("payload", TEMPLATE_PAYLOADS)
@pytest.mark.parametrize("cells", [True, False])
def test_payloads_in_view_mode_never_run(static: dict[str, Any], probe: Path, payload: str,
                                         cells: bool) -> None:
    rows = hostile_entities(payload, 60)
    points = agg.make_points(rows["lon"], rows["lat"], rows["kind"], rows["location_precision"])
    view = agg.View(31.2, 120.5, 31.5, 120.9, 9 if cells else 15)
    plan = agg.plan_view(points, view, marker_limit=10 if cells else 1000)
    assert plan.mode == ("cells" if cells else "markers")
    m = maps.build_map(inputs(hostile_static(static, payload), entities([])), mode="view",
                       points=points, lang="en", basemap="amap")
    layer = maps.view_layer(plan, lang="en", entities=None if cells else rows,
                            layer_names={"taihu_science_city": payload})
    page = streamlit_folium_strings(m, layer)
    assert not probe.exists()
    assert_shown_literally(page, payload, probe)  # layer names, legend, overlays
    if not cells:  # the view's markers carry the entity fields
        assert sum(payload in t for t in shown_texts(page)) >= len(TEXT_FIELDS)


def test_boundary_holds_for_elements_folium_adds_while_rendering(static: dict[str, Any],
                                                                 probe: Path) -> None:
    # every MacroElement in the rendered tree, including ElementAddToElement and SetIcon,
    # which folium creates inside render(), went through the sealed render
    m = maps.build_map(inputs(hostile_static(static, RCE), hostile_entities(RCE, 2)))
    maps.render_html(m)
    unsealed = []

    def walk(el: Any) -> None:
        sealed = isinstance(el, template._SealedRender)  # noqa: SLF001
        if isinstance(el, template.MacroElement) and not sealed:
            unsealed.append(type(el).__name__)
        for child in el._children.values():  # noqa: SLF001
            walk(child)

    walk(m)
    assert unsealed == []
    assert not probe.exists()


def test_a_literal_is_never_compiled() -> None:
    for payload in TEMPLATE_PAYLOADS:
        assert template._Literal(payload).render() == payload  # noqa: SLF001


def test_seal_is_idempotent_and_keeps_the_class_behaviour(static: dict[str, Any]) -> None:
    m = maps.build_map(inputs(static, entities([])))
    cls = type(m)
    assert maps.seal(m) is m and type(m) is cls
    assert isinstance(m, webmap.folium.Map)
    assert cls.__name__ == "SealedMap"


def test_sealed_page_shows_ordinary_data(static: dict[str, Any]) -> None:
    # the boundary removes only the second pass: ordinary names arrive as before
    ents = entities([{"id": "a", "name_zh": "苏州实验室", "lon": 120.7, "lat": 31.3}])
    page = maps.render_html(maps.build_map(inputs(static, ents)))
    assert any("苏州实验室" in text for text in shown_texts(page))
    assert "{{" not in page and "{%" not in page


# ----------------------------------------------------------------------------- every page (AppTest)


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A database holding one import, named like a template, whose every text field is a
    payload: 150 rows per payload, more in all than the compact limit allows."""
    root = tmp_path_factory.mktemp("hostile")
    settings = copy_sources(root)
    build.build_database(settings)
    source = write_payload_import(root / "{{7*7}}{% raw %}{# x #}.csv", 150)
    ingest.import_file(source, settings.db_path, actor=local_actor())
    return settings


def _map_page() -> None:
    from geo_app.views import map as page

    page.render()


def _compare_page() -> None:
    from geo_app.views import compare

    compare.render()


def _export_page() -> None:
    from geo_app.views import export

    export.render()


def _import_page() -> None:
    from geo_app.views import importer

    importer.render()


def _sources_page() -> None:
    from geo_app.views import sources

    sources.render()


@pytest.mark.parametrize(("query", "mode"), [("模板0000", "markers"), ("模板0", "compact"),
                                             ("模板", "view")])
@pytest.mark.parametrize("basemap", ["none", "amap"])
def test_map_page_shows_payloads_and_runs_none(hostile_db: Settings, probe: Path,
                                               monkeypatch: pytest.MonkeyPatch, query: str,
                                               mode: str, basemap: str) -> None:
    point_env_at(hostile_db, monkeypatch)
    at = AppTest.from_function(_map_page, default_timeout=90)
    run_apptest(at, {"q": query, "lang": "en", "basemap": basemap}, errors_allowed=True)
    assert not at.error, [e.value for e in at.error]
    (comp,) = at.get("component_instance")
    args = json.loads(comp.proto.json_args)
    page = "\n".join(str(args.get(k) or "") for k in ("script", "header", "html",
                                                      "feature_group", "layer_control"))
    assert not probe.exists()
    texts = shown_texts(page)
    if mode == "view":  # the cells carry counts only
        assert "simCount" in page
    else:
        for payload in TEMPLATE_PAYLOADS[: 1 if mode == "markers" else 10]:
            assert sum(payload in text for text in texts) >= 3, payload


@pytest.mark.parametrize("page", [_compare_page, _export_page, _import_page, _sources_page])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_other_page_runs_none(hostile_db: Settings, probe: Path,
                                    monkeypatch: pytest.MonkeyPatch, page: Any, lang: str) -> None:
    point_env_at(hostile_db, monkeypatch)
    at = AppTest.from_function(page, default_timeout=90)
    run_apptest(at, {"lang": lang, "q": RCE}, errors_allowed=True)
    assert not probe.exists()
