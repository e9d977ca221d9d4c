"""Tests of geo_app.maps (escaping, GCJ-02 shift, legend, precision styles, offline assets)
and geo_app.assets (copying Leaflet from the XStatic packages)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import folium
import numpy as np
import pandas as pd
import pytest
import shapely

from geo_app import aggregate as agg
from geo_app import assets, maps, store
from geo_app.datum import wgs84_to_gcj02
from geo_app.filters import make_filter
from geo_app.vocab import KINDS

XSS_NAMES = [
    "<img src=x onerror=alert(1)>",
    "${alert(1)}",
    "back`tick",
    "C:\\users\\new",
]

# ----------------------------------------------------------------------------- fixtures


def entity_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Entity rows with every store column (defaults filled in)."""
    base = {c: None for c in store.ENTITY_COLUMNS}
    base.update(kind="laboratory", level="national", status="operating", board="姑苏区",
                location_precision="site", source="test source", origin="shipped", layers="")
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(base))


def entities(rows: list[dict[str, Any]]):  # -> GeoDataFrame
    return store.entities_to_gdf(entity_rows(rows))


def inputs(static: dict[str, Any], ents, **kw: Any) -> maps.MapInputs:
    return maps.MapInputs(entities=ents, **static, **kw)


def script_urls(html: str) -> list[str]:
    return re.findall(r'<script[^>]+src="([^"]+)"', html) + re.findall(
        r'<link[^>]+href="([^"]+)"', html)


def walk_links(m: folium.Map) -> list[str]:
    """The script and style URLs streamlit-folium collects from the map (its own walk)."""
    urls: list[str] = []

    def visit(el: Any) -> None:
        urls.extend(u for _, u in getattr(el, "default_js", []))
        urls.extend(u for _, u in getattr(el, "default_css", []))
        for child in getattr(el, "_children", {}).values():
            visit(child)

    visit(m)
    return urls


def bound_strings(html: str) -> list[str]:
    """Every popup/tooltip/legend string the page hands to Leaflet (JSON-decoded)."""
    found = re.findall(r'\.bind(?:Popup|Tooltip)\(("(?:[^"\\]|\\.)*")', html)
    found += re.findall(r'div\.innerHTML = ("(?:[^"\\]|\\.)*");', html)
    return [json.loads(s) for s in found]


# ----------------------------------------------------------------------------- escaping


@pytest.mark.parametrize(("raw", "expected"), [
    # tags would run as live HTML in a Leaflet popup
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    # ${...} runs inside folium's JavaScript template literals
    ("${alert(1)}", "&#36;{alert(1)}"),
    # a backtick closes a template literal
    ("a`b", "a&#96;b"),
    # a backslash blanks the whole map
    ("C:\\users\\new", "C:&#92;users&#92;new"),
    # quotes break attributes
    ("\"x\" & 'y'", "&quot;x&quot; &amp; &#x27;y&#x27;"),
    (None, ""),
    (float("nan"), ""),
    (3, "3"),
])
def test_escape_html(raw: object, expected: str) -> None:
    assert maps.escape_html(raw) == expected


@pytest.mark.parametrize("name", XSS_NAMES)
def test_popup_and_tooltip_escape_every_value(name: str) -> None:
    row = entity_rows([{"id": "x1", "name_zh": name, "name_en": name, "source": name,
                        "location_source": name, "notes": name, "layers": "taihu_ring"}]).iloc[0]
    for text in (maps.popup_html(row.to_dict(), "zh", {"taihu_ring": name}),
                 maps.tooltip_html(row.to_dict(), "en")):
        assert "<img" not in text and "${" not in text and "`" not in text and "\\" not in text
        assert maps.escape_html(name) in text


def test_map_with_xss_names_has_no_live_markup(static: dict[str, Any]) -> None:
    ents = entities([{"id": f"x{i}", "name_zh": n, "name_en": n, "source": n, "notes": n,
                      "lon": 120.6 + i / 100, "lat": 31.3} for i, n in enumerate(XSS_NAMES)])
    html = maps.render_html(maps.build_map(inputs(static, ents), lang="en"))
    assert "<img src=x" not in html
    assert "${alert" not in html
    assert "back`tick" not in html
    assert "\\users" not in html and "\\\\users" not in html
    shown = bound_strings(html)
    for name in XSS_NAMES:  # each name reaches Leaflet only in its escaped form
        assert any(maps.escape_html(name) in s for s in shown), name


# ----------------------------------------------------------------------------- styles


def test_marker_precision_styles_differ() -> None:
    exact = maps.marker_svg("laboratory", True)
    approx = maps.marker_svg("laboratory", False)
    assert "sim-exact" in exact and "stroke-dasharray" not in exact
    assert "sim-approx" in approx and "stroke-dasharray" in approx
    color = maps.KIND_STYLES["laboratory"].color
    assert color in exact and color in approx


@pytest.mark.parametrize(("precision", "exact"), [
    ("site", True), ("campus", True), ("zone", False), ("town", False), ("district", False),
    ("city", False), ("unknown", False), (None, False),
])
def test_is_exact(precision: str | None, exact: bool) -> None:
    assert maps.is_exact(precision) is exact


def test_every_kind_has_its_own_colour_and_shape() -> None:
    from geo_app.vocab import KINDS

    styles = [maps.KIND_STYLES[k] for k in KINDS]
    assert len({s.color for s in styles}) == len(KINDS)
    assert len({s.shape for s in styles}) == len(KINDS)


def test_unknown_kind_gets_fallback_marker() -> None:
    svg = maps.marker_svg("not-a-kind", True)
    assert 'data-kind="other"' in svg and "not-a-kind" not in svg


def test_map_draws_precision_classes(static: dict[str, Any]) -> None:
    ents = entities([
        {"id": "a", "name_zh": "甲", "lon": 120.6, "lat": 31.3, "location_precision": "site"},
        {"id": "b", "name_zh": "乙", "lon": 120.7, "lat": 31.3, "location_precision": "town"},
    ])
    html = maps.render_html(maps.build_map(inputs(static, ents)))
    assert html.count("sim-marker sim-kind-laboratory sim-exact") == 1
    assert html.count("sim-marker sim-kind-laboratory sim-approx") == 1


# ----------------------------------------------------------------------------- legend


def test_legend_follows_language_and_marks_layers_schematic() -> None:
    zh = maps.legend_html(lang="zh", kind_counts={"laboratory": 2},
                          layers=[("太湖科学城", "#ff0000")])
    en = maps.legend_html(lang="en", kind_counts={"laboratory": 2},
                          layers=[("Taihu Science City", "#ff0000")])
    assert "图例" in zh and "实验室 (2)" in zh and "示意" in zh and "苏州工业园区" in zh
    assert "Legend" in en and "Laboratory (2)" in en and "schematic" in en
    assert "Suzhou Industrial Park has no official boundary" in en and "schematic area" in en
    assert "Hollow, dashed" in en and "Solid" in en


def test_legend_escapes_layer_names_and_colours() -> None:
    html = maps.legend_html(lang="en", kind_counts={}, layers=[("<b>x</b>", "red;}</style>")])
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "</style>" not in html and "#888888" in html


def test_legend_notes_basemap() -> None:
    assert "GCJ-02" in maps.legend_html(lang="en", kind_counts={}, layers=[], basemap="amap")
    assert "No basemap tiles" in maps.legend_html(lang="en", kind_counts={}, layers=[],
                                                  basemap="none")
    assert "GCJ-02" not in maps.legend_html(lang="en", kind_counts={}, layers=[], basemap="osm")


def test_real_map_legend_lists_shipped_kinds(db: Path, static: dict[str, Any]) -> None:
    ents = store.query_entities(db)
    html = maps.render_html(maps.build_map(inputs(static, ents), lang="zh"))
    legend = [s for s in bound_strings(html) if "图例" in s]
    assert len(legend) == 1
    on_map = ents[ents.geometry.notna()]
    for kind, n in on_map["kind"].value_counts().items():
        from geo_app.vocab import KINDS

        assert f"{KINDS[kind][0]} ({n})" in legend[0]
    for name in static["layers"]["name_zh"]:
        assert name in legend[0]


# ----------------------------------------------------------------------------- datum


def test_to_display_datum_shifts_every_vertex_for_amap(static: dict[str, Any]) -> None:
    water = static["water"]
    shifted = maps.to_display_datum(water, "gcj02", decimals=9)
    for before, after in zip(water.geometry, shifted.geometry, strict=True):
        c0 = shapely.get_coordinates(before)
        c1 = shapely.get_coordinates(after)
        x, y = wgs84_to_gcj02(c0[:, 0], c0[:, 1])
        np.testing.assert_allclose(c1, np.column_stack([x, y]), atol=1e-9)
        assert np.abs(c1 - c0).max() > 1e-3  # Suzhou moves by several hundred metres
    same = maps.to_display_datum(water, "wgs84", decimals=9)
    np.testing.assert_allclose(shapely.get_coordinates(same.geometry.values),
                               shapely.get_coordinates(water.geometry.values), atol=1e-9)


def test_to_display_datum_keeps_missing_points() -> None:
    ents = entities([{"id": "a", "name_zh": "甲"},
                     {"id": "b", "name_zh": "乙", "lon": 120.6, "lat": 31.3}])
    out = maps.to_display_datum(ents, "gcj02")
    assert out.geometry.iloc[0] is None
    assert out.geometry.iloc[1].x != 120.6


def test_amap_basemap_shifts_markers_and_overlays(static: dict[str, Any]) -> None:
    ents = entities([{"id": "a", "name_zh": "甲", "lon": 120.585, "lat": 31.299}])
    plain = maps.render_html(maps.build_map(inputs(static, ents), basemap="none"))
    amap = maps.render_html(maps.build_map(inputs(static, ents), basemap="amap"))
    x, y = wgs84_to_gcj02(120.585, 31.299)
    assert "[31.299, 120.585]" in plain
    assert f"[{round(float(y), 6)}, {round(float(x), 6)}]" in amap
    assert "[31.299, 120.585]" not in amap
    taihu = static["water"].set_index("id").loc["taihu"].geometry
    vx, vy = shapely.get_coordinates(taihu)[0]
    gx, gy = wgs84_to_gcj02(vx, vy)
    shifted = f"[{round(float(gx), 5)}, {round(float(gy), 5)}]"
    assert shifted in amap.replace(" ", "").replace(",", ", ")
    assert "autonavi.com" in amap and "autonavi.com" not in plain


def test_unknown_basemap_is_an_error(static: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="Unknown basemap"):
        maps.build_map(inputs(static, entities([])), basemap="google")


# ----------------------------------------------------------------------------- offline


CDN_MARKERS = ("cdn.jsdelivr", "cdnjs", "unpkg", "code.jquery", "netdna", "bootstrapcdn",
               "googleapis", "font-awesome", "fontawesome", "awesome-markers", "bootstrap")


@pytest.mark.parametrize("basemap", list(maps.BASEMAPS))
def test_no_cdn_in_rendered_map(static: dict[str, Any], basemap: str) -> None:
    ents = entities([{"id": "a", "name_zh": "甲", "lon": 120.6, "lat": 31.3}])
    m = maps.build_map(inputs(static, ents), basemap=basemap, asset_base="/app/static/vendor")
    html = maps.render_html(m)
    urls = script_urls(html)
    assert urls and all(u.startswith("/app/static/vendor/") for u in urls), urls
    assert all(u.startswith("/app/static/vendor/") for u in walk_links(m))
    for marker in CDN_MARKERS:
        assert marker not in html.lower(), marker
    if basemap == "none":  # nothing at all outside the app (the SVG namespace is not a request)
        assert set(re.findall(r"https?://[^\s\"'<>\\]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_asset_urls_point_at_copied_files(tmp_path: Path) -> None:
    vendor = assets.ensure_assets(tmp_path / "vendor")
    for url in assets.asset_urls("/app/static/vendor").values():
        rel = url.removeprefix("/app/static/vendor/")
        assert (vendor / rel).is_file(), rel
    assert (vendor / "leaflet" / "images" / "layers.png").is_file()  # used by leaflet.css
    leaflet = (vendor / "leaflet" / "leaflet.js").read_text(encoding="utf-8")
    assert "L.version" in leaflet[:20000] or "1.9.3" in leaflet[:400]


def test_ensure_assets_repairs_a_missing_file(tmp_path: Path) -> None:
    vendor = assets.ensure_assets(tmp_path / "vendor")
    assert assets.assets_ready(vendor)
    js = vendor / "leaflet.markercluster" / "leaflet.markercluster.js"
    js.unlink()
    assert not assets.assets_ready(vendor)
    assets.ensure_assets(vendor)
    assert js.is_file() and assets.assets_ready(vendor)


def test_vendor_url_follows_base_url_path() -> None:
    assert assets.vendor_url("") == "/app/static/vendor"
    assert assets.vendor_url("/geo/") == "/geo/app/static/vendor"


# ----------------------------------------------------------------------------- the real map


def test_real_map_draws_every_located_entity(db: Path, static: dict[str, Any]) -> None:
    ents = store.query_entities(db)
    html = maps.render_html(maps.build_map(inputs(static, ents)))
    n_points = int(ents.geometry.notna().sum())
    assert n_points > 0
    assert html.count("L.marker(") == n_points
    assert html.count("L.markerClusterGroup(") == 1
    assert html.count('"maxZoom": 18') == 1  # markercluster needs the map's maxZoom
    # five strategy layers, county boundaries and water are all in the layer control
    control = re.search(r"overlays\s*:\s*\{(.*?)\}", html, re.S)
    assert control is not None
    assert control.group(1).count(":") == len(static["layers"]) + 3


def test_filtered_map_fits_bounds_to_the_entities_shown(db: Path, static: dict[str, Any]) -> None:
    ents = store.query_entities(db, make_filter(boards=["昆山市"]))
    pts = ents[ents.geometry.notna()]
    assert len(pts) > 0
    html = maps.render_html(maps.build_map(inputs(static, ents)))
    fit = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", html, re.S)
    assert fit is not None
    (s, w), (n, e) = json.loads(fit.group(1))
    assert s == pytest.approx(pts.geometry.y.min()) and n == pytest.approx(pts.geometry.y.max())
    assert w == pytest.approx(pts.geometry.x.min()) and e == pytest.approx(pts.geometry.x.max())


def test_map_without_points_fits_the_city(static: dict[str, Any]) -> None:
    ents = entities([{"id": "a", "name_zh": "无坐标"}])
    html = maps.render_html(maps.build_map(inputs(static, ents)))
    assert "L.marker(" not in html
    city = static["boundaries"].set_index("level").loc["city"].geometry
    minx, miny, maxx, maxy = city.bounds
    fit = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", html, re.S)
    assert fit is not None
    (s, w), (n, e) = json.loads(fit.group(1))
    assert (s, w, n, e) == pytest.approx((miny, minx, maxy, maxx), abs=1e-4)


def test_boundary_tooltips_name_the_board_and_sip_note(db: Path, static: dict[str, Any]) -> None:
    html = maps.render_html(maps.build_map(inputs(static, entities([])), lang="zh"))
    shown = bound_strings(html)
    assert any("虎丘区" in s and "苏州高新区" in s for s in shown)  # 板块 mapping of 虎丘区
    assert any("苏州工业园区没有官方边界" in s and "示意范围" in s for s in shown)
    assert "<b>苏州工业园区</b><br>板块（示意范围，按规则生成，非官方边界）" in shown
    layer_tips = [s for s in shown if "示意范围" in s]
    assert len(layer_tips) >= len(static["layers"])


# ----------------------------------------------------------------------- large registries (issue 9)


def compact_payloads(html: str) -> list[list[Any]]:
    """Every payload of a compact marker layer in a page or script (JSON-decoded)."""
    return [json.loads(p) for p in re.findall(r"var P = (\[.*?\]), S = P\[1\];", html)]


def cell_payloads(html: str) -> list[list[Any]]:
    return [json.loads(p) for p in re.findall(r"var P = (\[.*?\]), K = P\[1\]", html)]


def decode_markers(payload: list[Any]) -> list[dict[str, Any]]:
    """What the compact layer's script builds for each marker (the same concatenation)."""
    icons, strings, rows = payload
    out = []
    for r in rows:
        table = "".join(f"<tr><th>{strings[a]}</th><td>{strings[b]}</td></tr>"
                        for a, b in zip(r[8][::2], r[8][1::2], strict=True))
        popup = (f'<div class="sim-popup"><div class="sim-popup-zh">{r[3]}</div>'
                 f'<div class="sim-popup-en">{r[4]}</div><table>{table}</table>'
                 f'<div class="sim-popup-id">{r[5]}</div></div>')
        tooltip = f"<b>{r[4] if r[6] else r[3]}</b><br>{strings[r[7]]}"
        out.append({"lat": r[0], "lon": r[1], "icon": icons[r[2]], "popup": popup,
                    "tooltip": tooltip, "id": r[5]})
    return out


def synthetic_points(n: int, seed: int = 0) -> agg.Points:
    rng = np.random.default_rng(seed)
    return agg.make_points(rng.uniform(119.95, 121.35, n), rng.uniform(30.8, 32.0, n),
                           rng.choice(list(KINDS), size=n), rng.choice(["site", "town"], size=n))


@pytest.mark.parametrize("text", [
    "</script><script>alert(1)</script>", "{{'map_div'}}", "${x}", "a\u2028b\u2029c", "&amp;",
    "`\\",
])
def test_script_json_cannot_leave_the_script(text: str) -> None:
    out = maps.script_json([text, 1, [2.5, None]])
    for bad in ("<", ">", "{", "}", "&", "\u2028", "\u2029"):
        assert bad not in out
    assert json.loads(out) == [text, 1, [2.5, None]]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_compact_markers_rebuild_the_same_popups_and_tooltips(lang: str) -> None:
    rows = [{"id": f"x{i}", "name_zh": n, "name_en": n, "source": n, "location_source": n,
             "notes": n, "layers": "taihu_ring,bad<id>", "lon": 120.6 + i / 100, "lat": 31.3,
             "location_precision": ["site", "town"][i % 2],
             "kind": ["laboratory", "nonsense"][i % 2]}
            for i, n in enumerate(XSS_NAMES)]
    rows.append({"id": "plain", "name_zh": "普通", "name_en": None, "lon": 120.7, "lat": 31.4,
                 "board": None, "status": "operating"})
    ents = entities(rows)
    names = {"taihu_ring": "<b>环太湖</b>"}
    payload = maps.marker_payload(ents, lang, names)
    decoded = {d["id"]: d for d in decode_markers(payload)}
    assert len(decoded) == len(ents)
    for row in ents.to_dict("records"):
        got = decoded[maps.escape_html(row["id"])]
        assert got["popup"] == maps.popup_html(row, lang, names)
        assert got["tooltip"] == maps.tooltip_html(row, lang)
        assert (got["lat"], got["lon"]) == (row["geometry"].y, row["geometry"].x)
        svg, cls = got["icon"]
        exact = maps.is_exact(row["location_precision"])
        assert svg == maps.marker_svg(row["kind"], exact)
        kind = row["kind"] if row["kind"] in KINDS else "other"
        assert cls == f"sim-marker sim-kind-{kind} {'sim-exact' if exact else 'sim-approx'}"


def test_compact_map_with_xss_names_has_no_live_markup(static: dict[str, Any]) -> None:
    ents = entities([{"id": f"x{i}", "name_zh": n, "name_en": n, "source": n, "notes": n,
                      "lon": 120.6 + i / 100, "lat": 31.3} for i, n in enumerate(XSS_NAMES)])
    html = maps.render_html(maps.build_map(inputs(static, ents), lang="en", mode="compact"))
    assert "<img src=x" not in html and "${alert" not in html
    assert "back`tick" not in html and "\\users" not in html
    (payload,) = compact_payloads(html)
    shown = [d["popup"] + d["tooltip"] for d in decode_markers(payload)]
    for name in XSS_NAMES:
        assert any(maps.escape_html(name) in s for s in shown), name
    assert "L.marker(" in html and html.count("L.markerClusterGroup(") == 1


def test_compact_map_keeps_the_entities_in_the_layer_control(static: dict[str, Any]) -> None:
    ents = entities([{"id": f"e{i}", "name_zh": f"主体{i}", "lon": 120.5 + i / 1000, "lat": 31.3}
                     for i in range(300)])
    html = maps.render_html(maps.build_map(inputs(static, ents), mode="compact"))
    control = re.search(r"overlays\s*:\s*\{(.*?)\}", html, re.S)
    assert control is not None
    assert control.group(1).count(":") == len(static["layers"]) + 3
    names = [json.loads(k) for k in re.findall(r'("(?:[^"\\]|\\.)*")\s*:', control.group(1))]
    assert "科创主体（300）" in names
    (payload,) = compact_payloads(html)
    assert len(payload[2]) == 300
    full = maps.render_html(maps.build_map(inputs(static, ents)))
    assert len(html.encode()) < 0.5 * len(full.encode())


def test_view_mode_page_carries_no_entity_and_stays_small(static: dict[str, Any]) -> None:
    points = synthetic_points(300_000)
    inp = inputs(static, entities([]))
    m = maps.build_map(inp, mode="view", points=points, lang="en")
    (s, w), (n, e) = maps.map_bounds(inp, points=points)
    view = agg.fit_view((w, s, e, n), width_px=900, height_px=700, padding_px=30, max_zoom=12)
    plan = agg.plan_view(points, view)
    assert plan.mode == "cells"
    maps.view_layer(plan, lang="en").add_to(m)
    html = maps.render_html(m)
    assert len(html.encode()) < 400_000  # overlays ~210 KB + cells, whatever N is
    assert not compact_payloads(html)
    (cells,) = cell_payloads(html)
    assert sum(r[2] for r in cells[0]) == len(points)
    legend = [s for s in bound_strings(html) if "Legend" in s]
    assert "Numbered circle" in legend[0]
    for kind, count in points.kind_counts().items():
        assert f"{KINDS[kind][1]} ({count})" in legend[0]
    fit = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", html, re.S)
    assert fit is not None
    west, south, east, north = points.bounds()  # type: ignore[misc]
    np.testing.assert_allclose(json.loads(fit.group(1)), [[south, west], [north, east]], atol=1e-6)


def coordinate_count(html: str) -> int:
    return len(re.findall(r"\[-?\d+\.\d+, -?\d+\.\d+\]", html))


def test_overlays_are_simplified_only_at_scale(static: dict[str, Any]) -> None:
    ents = entities([])
    full = maps.render_html(maps.build_map(inputs(static, ents)))
    view = maps.render_html(maps.build_map(inputs(static, ents), mode="view",
                                           points=synthetic_points(10)))
    assert full.count("L.geoJson(") == view.count("L.geoJson(")  # every polygon still drawn
    assert coordinate_count(view) < 0.75 * coordinate_count(full)
    assert len(view.encode()) < len(full.encode()) - 80_000
    simplified = maps.simplify_for_display(static["boundaries"])
    # within the tolerance: no boundary moves by more than ~20 m on screen
    for a, b in zip(static["boundaries"].geometry, simplified.geometry, strict=True):
        assert a.hausdorff_distance(b) <= maps.DISPLAY_TOLERANCE * 1.01


def test_view_layer_through_st_folium_keeps_the_map_script(static: dict[str, Any]) -> None:
    import streamlit_folium as sf

    points = synthetic_points(50_000)
    scripts, layers = [], []
    for zoom in (9, 12):
        m = maps.build_map(inputs(static, entities([])), mode="view", points=points)
        plan = agg.plan_view(points, agg.View(31.1, 120.4, 31.5, 120.9, zoom))
        fg = maps.view_layer(plan, lang="zh")
        m.get_root().render()
        m.render()
        scripts.append(sf._get_map_string(m))  # noqa: SLF001 (what the component receives)
        layers.append(sf._get_feature_group_string(fg, m))  # noqa: SLF001
    # the map script (and so the component key) is the same for every view: no remount
    hashes = [sf.generate_js_hash(script, "main_map") for script in scripts[:2]]
    assert hashes[0] == hashes[1]
    assert layers[0] != layers[1]
    for layer in layers:
        assert "zoomTo(map_div, r)" in layer  # the click handler reaches the component's map
        assert "map_div.addLayer(feature_group_feature_group_0)" in layer
    assert "markercluster" in " ".join(u for _, u in m.default_js)  # loaded up front


def test_view_layer_markers(static: dict[str, Any]) -> None:
    rows = entities([{"id": f"e{i}", "name_zh": f"主体{i}", "lon": 120.6 + i / 1e4, "lat": 31.3}
                     for i in range(50)])
    plan = agg.plan_view(agg.make_points(rows["lon"], rows["lat"]),
                         agg.View(31.2, 120.5, 31.4, 120.7, 13))
    assert plan.mode == "markers"
    fg = maps.view_layer(plan, entities=rows)
    m = maps.build_map(inputs(static, entities([])), mode="view",
                       points=agg.make_points([120.6], [31.3]))
    fg.add_to(m)
    (payload,) = compact_payloads(maps.render_html(m))
    assert sorted(d["id"] for d in decode_markers(payload)) == sorted(rows["id"])


def test_amap_view_mode_fits_shifted_points(static: dict[str, Any]) -> None:
    points = synthetic_points(5_000)
    html = maps.render_html(maps.build_map(inputs(static, entities([])), mode="view",
                                           points=points, basemap="amap"))
    fit = re.search(r"fitBounds\(\s*(\[\[.*?\]\])", html, re.S)
    assert fit is not None
    west, south, east, north = points.in_datum("gcj02").bounds()  # type: ignore[misc]
    np.testing.assert_allclose(json.loads(fit.group(1)), [[south, west], [north, east]], atol=1e-6)
    assert west != points.bounds()[0]  # type: ignore[index]


@pytest.mark.parametrize(("mode", "points"), [("clusters", None), ("view", None)])
def test_bad_mode_is_an_error(static: dict[str, Any], mode: str, points: object) -> None:
    with pytest.raises(ValueError, match="mode"):
        maps.build_map(inputs(static, entities([])), mode=mode, points=points)  # type: ignore[arg-type]


def test_densest_view_layer_stays_small() -> None:
    # the worst case: entities everywhere in a large window (1400 x 1000 px, zoom 12)
    rng = np.random.default_rng(7)
    points = agg.make_points(rng.uniform(120.3, 121.0, 400_000), rng.uniform(31.0, 31.6, 400_000),
                             rng.choice(list(KINDS), size=400_000))
    x, y = agg.world_px(120.65, 31.3, 12)
    west, north = agg.lonlat_of_px(float(x) - 700, float(y) - 500, 12)
    east, south = agg.lonlat_of_px(float(x) + 700, float(y) + 500, 12)
    plan = agg.plan_view(points, agg.View(south, west, north, east, 12))
    assert plan.mode == "cells" and plan.cells is not None
    assert len(plan.cells) <= (2 * 1400 // agg.CELL_PX + 8) * (2 * 1000 // agg.CELL_PX + 8)
    payload = maps.script_json(maps.cells_payload(plan.cells, "zh"))
    assert len(payload.encode()) < 250_000


def _without_ids(page: str) -> str:
    return re.sub(r"_[0-9a-f]{32}", "_ID", page)


def test_amap_overlays_are_shifted_once_per_preparation(static: dict[str, Any],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ents = entities([{"id": "a", "name_zh": "甲", "lon": 120.62, "lat": 31.31}])
    raw = inputs(static, ents)
    expected = _without_ids(maps.render_html(maps.build_map(raw, basemap="amap")))
    prepared = maps.display_inputs(raw, "gcj02")
    assert maps.display_inputs(prepared, "gcj02") is prepared
    with pytest.raises(ValueError, match="prepared for gcj02"):
        maps.display_inputs(prepared, "wgs84")
    calls: list[int] = []
    real = maps.payload.wgs84_to_gcj02  # where to_display_datum looks it up

    def counting(x: Any, y: Any) -> Any:
        calls.append(len(x))
        return real(x, y)

    monkeypatch.setattr(maps.payload, "wgs84_to_gcj02", counting)
    for _ in range(3):  # three drawings (reruns) of the same data: no vertex shifted again
        page = maps.render_html(maps.build_map(prepared, basemap="amap"))
        assert _without_ids(page) == expected
    assert calls == []
    # entities added later are shifted into the prepared datum, and only they
    later = maps.with_entities(prepared, ents)
    assert calls == [1]
    assert later.entities.geometry.x.iloc[0] == prepared.entities.geometry.x.iloc[0]


def test_points_convert_once() -> None:
    pts = agg.make_points([120.6, 120.7], [31.3, 31.4])
    gcj = pts.in_datum("gcj02")
    assert gcj.datum == "gcj02" and gcj.in_datum("gcj02") is gcj
    assert gcj.take(np.array([True, False])).datum == "gcj02"
    with pytest.raises(ValueError, match="convert from WGS-84"):
        gcj.in_datum("wgs84")
