"""Tests of geo_app.aggregate: Web Mercator pixels, views, windows, grid cells and view plans."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_app import aggregate as agg
from geo_app import store
from geo_app.datum import wgs84_to_gcj02
from geo_app.filters import make_filter
from geo_app.vocab import KINDS

SUZHOU = (119.9, 30.75, 121.4, 32.05)  # west, south, east, north


def uniform_points(n: int, *, seed: int = 0, bounds: tuple[float, ...] = SUZHOU) -> agg.Points:
    rng = np.random.default_rng(seed)
    west, south, east, north = bounds
    kinds = rng.choice(list(KINDS), size=n)
    return agg.make_points(rng.uniform(west, east, n), rng.uniform(south, north, n), kinds,
                           rng.choice(["site", "town"], size=n))


def view_around(lon: float, lat: float, zoom: int, width: int = 1000,
                height: int = 700) -> agg.View:
    x, y = agg.world_px(lon, lat, zoom)
    west, north = agg.lonlat_of_px(float(x) - width / 2, float(y) - height / 2, zoom)
    east, south = agg.lonlat_of_px(float(x) + width / 2, float(y) + height / 2, zoom)
    return agg.View(south, west, north, east, zoom)


# ----------------------------------------------------------------------------- mercator


@pytest.mark.parametrize(("lon", "lat", "zoom", "expected"), [
    (0.0, 0.0, 0, (128.0, 128.0)),          # the world's centre
    (-180.0, 0.0, 2, (0.0, 512.0)),         # west edge
    (180.0, 85.0511287798, 1, (512.0, 0.0)),  # north-east corner of the square world
])
def test_world_px_matches_leaflet(lon: float, lat: float, zoom: int,
                                  expected: tuple[float, float]) -> None:
    x, y = agg.world_px(lon, lat, zoom)
    assert (float(x), float(y)) == pytest.approx(expected, abs=1e-6)


@given(st.floats(-179.9, 179.9), st.floats(-80, 80), st.integers(0, 19))
def test_lonlat_of_px_inverts_world_px(lon: float, lat: float, zoom: int) -> None:
    x, y = agg.world_px(lon, lat, zoom)
    assert agg.lonlat_of_px(float(x), float(y), zoom) == pytest.approx((lon, lat), abs=1e-7)


# ----------------------------------------------------------------------------- views


def state(south: object, west: object, north: object, east: object, zoom: object) -> dict:
    return {"bounds": {"_southWest": {"lat": south, "lng": west},
                       "_northEast": {"lat": north, "lng": east}}, "zoom": zoom}


@pytest.mark.parametrize("bad", [
    None, {}, {"zoom": 10},                       # nothing reported yet
    state(None, None, None, None, 9),             # st_folium's default before the map loads
    state(31.0, 120.0, 31.5, 121.0, None),
    state(float("nan"), 120.0, 31.5, 121.0, 9),
    state(31.5, 120.0, 31.0, 121.0, 9),           # south above north
    state("x", 120.0, 31.5, 121.0, 9),
    "bounds",
])
def test_view_from_state_rejects_bad_input(bad: object) -> None:
    assert agg.view_from_state(bad) is None  # type: ignore[arg-type]


def test_view_from_state_reads_st_folium_output() -> None:
    view = agg.view_from_state(state(31.2, 120.5, 31.4, 120.8, 12.0))
    assert view == agg.View(31.2, 120.5, 31.4, 120.8, 12)


def test_view_from_state_clamps_zoom_and_latitude() -> None:
    view = agg.view_from_state(state(-89.0, -190.0, 89.0, 190.0, 3), max_zoom=18)
    assert view is not None
    assert (view.south, view.west, view.north, view.east) == (-agg.MAX_LAT, -180.0,
                                                              agg.MAX_LAT, 180.0)
    assert agg.view_from_state(state(31.2, 120.5, 31.201, 120.501, 40), max_zoom=18).zoom == 18


def test_an_oversized_view_is_zoomed_out_until_it_fits() -> None:
    # a client claiming all of Suzhou at zoom 18 would otherwise ask for ~10^6 cells
    view = agg.view_from_state(state(30.75, 119.9, 32.05, 121.4, 18))
    assert view is not None
    assert max(view.px_size()) <= agg.MAX_VIEW_PX
    assert max(agg.View(view.south, view.west, view.north, view.east, view.zoom + 1).px_size()) \
        > agg.MAX_VIEW_PX


def test_fit_view_is_the_deepest_zoom_that_shows_the_bounds() -> None:
    west, south, east, north = SUZHOU
    view = agg.fit_view(SUZHOU, width_px=900, height_px=700, padding_px=30, max_zoom=12)
    assert view.west < west and view.east > east and view.south < south and view.north > north
    x0, y1 = agg.world_px(west, south, view.zoom + 1)
    x1, y0 = agg.world_px(east, north, view.zoom + 1)
    assert (x1 - x0) > 900 - 60 or (y1 - y0) > 700 - 60  # one level deeper would not fit
    assert view.px_size() == pytest.approx((900, 700), abs=1e-6)
    tiny = agg.fit_view((120.6, 31.3, 120.6, 31.3), width_px=900, height_px=700, max_zoom=12)
    assert tiny.zoom == 12  # one point: fitBounds stops at maxZoom


def test_view_window_is_snapped_to_tiles_and_holds_the_view_with_margin() -> None:
    view = view_around(120.6, 31.3, 12)
    win = agg.view_window(view)
    for edge in (win.x0, win.y0, win.x1, win.y1):
        assert edge % agg.TILE_PX == 0
    w, h = view.px_size()
    vx0, vy0 = agg.world_px(view.west, view.north, 12)
    assert win.x0 <= vx0 - 0.5 * w and win.x1 >= vx0 + 1.5 * w
    assert win.y0 <= vy0 - 0.5 * h and win.y1 >= vy0 + 1.5 * h


def view_of_px(x0: float, y0: float, w: float, h: float, zoom: int) -> agg.View:
    west, north = agg.lonlat_of_px(x0, y0, zoom)
    east, south = agg.lonlat_of_px(x0 + w, y0 + h, zoom)
    return agg.View(south, west, north, east, zoom)


def test_small_pans_keep_the_window() -> None:
    # view edges minus the half-view margin sit 100 px past a tile edge
    zoom, tile = 12, agg.TILE_PX
    x0, y0 = tile * 3300 + 100 + 512, tile * 1700 + 100 + 384
    win = agg.view_window(view_of_px(x0, y0, 1024, 768, zoom))
    assert agg.view_window(view_of_px(x0 + 50, y0 - 50, 1024, 768, zoom)) == win  # same cells
    moved = agg.view_window(view_of_px(x0 + 200, y0, 1024, 768, zoom))
    assert moved.x0 == pytest.approx(win.x0 + tile) and moved.y0 == pytest.approx(win.y0)


def test_window_bbox_round_trips() -> None:
    win = agg.view_window(view_around(120.6, 31.3, 10))
    west, south, east, north = win.bbox()
    inside = win.contains(np.array([west + 1e-6, east - 1e-6, east + 1e-3]),
                          np.array([south + 1e-6, north - 1e-6, north]))
    assert inside.tolist() == [True, True, False]


# ----------------------------------------------------------------------------- cells


def test_aggregate_counts_every_point_of_the_window_once() -> None:
    pts = uniform_points(20_000)
    win = agg.view_window(view_around(120.65, 31.4, 11))
    cells = agg.aggregate(pts, win)
    inside = win.contains(pts.lon, pts.lat)
    assert int(cells.count.sum()) == int(inside.sum()) > 0
    assert cells.kind_counts.sum(axis=1).tolist() == cells.count.tolist()
    assert (cells.south <= cells.lat).all() and (cells.lat <= cells.north).all()
    assert (cells.west <= cells.lon).all() and (cells.lon <= cells.east).all()
    # every cell's points lie within one CELL_PX square at the window's zoom
    x0, y1 = agg.world_px(cells.west, cells.south, win.zoom)
    x1, y0 = agg.world_px(cells.east, cells.north, win.zoom)
    assert (x1 - x0 < agg.CELL_PX).all() and (y1 - y0 < agg.CELL_PX).all()


def test_cells_sit_on_a_world_grid_whatever_the_window() -> None:
    pts = uniform_points(5_000, seed=3)
    a = agg.aggregate(pts, agg.view_window(view_around(120.6, 31.3, 11)))
    b = agg.aggregate(pts, agg.view_window(view_around(120.75, 31.35, 11)))
    key_a = {(round(la, 9), round(lo, 9)): c
             for la, lo, c in zip(a.lat, a.lon, a.count, strict=True)}
    key_b = {(round(la, 9), round(lo, 9)): c
             for la, lo, c in zip(b.lat, b.lon, b.count, strict=True)}
    # cells wholly inside both windows are identical (same grid, same members)
    common = set(key_a) & set(key_b)
    assert len(common) > 10
    assert all(key_a[k] == key_b[k] for k in common)


@pytest.mark.parametrize("zoom", [8, 10, 12, 14])
def test_cell_count_is_bounded_by_the_screen_not_by_n(zoom: int) -> None:
    view = view_around(120.65, 31.4, zoom, width=1400, height=1000)
    win = agg.view_window(view)
    bound = math.ceil((win.x1 - win.x0) / agg.CELL_PX) * math.ceil((win.y1 - win.y0) / agg.CELL_PX)
    small = agg.aggregate(uniform_points(10_000), win)
    large = agg.aggregate(uniform_points(400_000, seed=1), win)
    assert len(small) <= bound and len(large) <= bound
    assert bound <= (2 * 1400 / agg.CELL_PX + 8) * (2 * 1000 / agg.CELL_PX + 8)


def test_top_kinds_are_the_commonest_first() -> None:
    pts = agg.make_points([120.6] * 6, [31.3] * 6,
                          ["laboratory"] * 3 + ["university"] * 2 + ["incubator"])
    cells = agg.aggregate(pts, agg.view_window(view_around(120.6, 31.3, 12)))
    codes = list(agg.KIND_ORDER)
    assert cells.top_kinds(2) == [[(codes.index("laboratory"), 3), (codes.index("university"), 2)]]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 3_000), zoom=st.integers(5, 17), seed=st.integers(0, 10_000),
       lon=st.floats(119.9, 121.4), lat=st.floats(30.75, 32.05))
def test_aggregate_conserves_points(n: int, zoom: int, seed: int, lon: float, lat: float) -> None:
    pts = uniform_points(n, seed=seed)
    win = agg.view_window(view_around(lon, lat, zoom))
    cells = agg.aggregate(pts, win)
    assert int(cells.count.sum()) == int(win.contains(pts.lon, pts.lat).sum())
    assert (cells.count > 0).all()


# ----------------------------------------------------------------------------- plans


def test_plan_switches_from_cells_to_markers_as_the_view_narrows() -> None:
    pts = uniform_points(50_000)
    wide = agg.plan_view(pts, view_around(120.65, 31.4, 10))
    assert wide.mode == "cells" and wide.cells is not None
    assert wide.in_window > agg.MARKER_LIMIT and int(wide.cells.count.sum()) == wide.in_window
    narrow = agg.plan_view(pts, view_around(120.65, 31.4, 15))
    assert narrow.mode == "markers" and narrow.cells is None and not narrow.capped
    assert 0 < narrow.in_window <= agg.MARKER_LIMIT


def test_colocated_points_are_capped_at_the_deepest_zoom() -> None:
    # 3,000 entities placed at one district centre never separate by zooming
    pts = agg.make_points([120.6] * 3_000, [31.3] * 3_000)
    assert agg.plan_view(pts, view_around(120.6, 31.3, 17), max_zoom=18).mode == "cells"
    deepest = agg.plan_view(pts, view_around(120.6, 31.3, 18), max_zoom=18)
    assert deepest.mode == "markers" and deepest.capped and deepest.in_window == 3_000


def test_in_datum_shifts_to_gcj02() -> None:
    pts = agg.make_points([120.6, 121.0], [31.3, 31.5])
    shifted = pts.in_datum("gcj02")
    x, y = wgs84_to_gcj02(pts.lon, pts.lat)
    np.testing.assert_allclose(shifted.lon, x, atol=1e-6)
    np.testing.assert_allclose(shifted.lat, y, atol=1e-6)
    assert pts.in_datum("wgs84") is pts
    with pytest.raises(ValueError, match="datum"):
        pts.in_datum("bd09")


# ----------------------------------------------------------------------------- reading


def test_points_from_batches_splits_located_and_unlocated() -> None:
    batch = pa.RecordBatch.from_pydict({
        "lon": [120.6, None, 121.0, None], "lat": [31.3, None, 31.5, 31.2],
        "kind_code": pa.array([1, 0, 12, 4], pa.uint8()), "exact": [True, False, None, False],
        **{f"np_{c}": [None, f"b-{c}", None, f"a-{c}"]
           for c in ("id", "name_zh", "name_en", "kind", "status", "board")},
    })
    summary = agg.points_from_batches([batch, batch.slice(0, 0)])
    assert summary.n_total == 4 and summary.n_no_point == 2 and len(summary.points) == 2
    assert summary.points.kind.tolist() == [1, 12]
    assert summary.points.exact.tolist() == [True, False]
    assert summary.no_point["id"].tolist() == ["a-id", "b-id"]  # ordered by id
    capped = agg.points_from_batches([batch], no_point_rows=1)
    assert len(capped.no_point) == 1 and capped.n_no_point == 2


@pytest.mark.parametrize("flt", [
    make_filter(),
    make_filter(kinds=["laboratory", "university"]),
    make_filter(boards=["昆山市"]),
    make_filter(search="苏州"),
])
def test_point_select_agrees_with_query_entities(db: Path, flt) -> None:
    ents = store.query_entities(db, flt)
    summary = agg.points_from_batches(store.iter_point_batches(db, flt,
                                                               unlocated=agg.NO_POINT_COLUMNS))
    located = ents[ents.geometry.notna()]
    assert summary.n_total == len(ents) and len(summary.points) == len(located)
    assert summary.n_no_point == len(ents) - len(located)
    assert summary.points.kind_counts() == located["kind"].value_counts().to_dict()
    assert sorted(summary.no_point["id"]) == sorted(ents.loc[ents.geometry.isna(), "id"])
    np.testing.assert_allclose(np.sort(summary.points.lon), np.sort(located.geometry.x), atol=1e-6)
    exact = located["location_precision"].isin(["site", "campus"]).sum()
    assert int(summary.points.exact.sum()) == int(exact)


def _random_points(seed: int, n: int) -> agg.Points:
    rng = np.random.default_rng(seed)
    lon = np.r_[rng.normal(120.6, 0.3, n), rng.uniform(-180, 180, 20), [180.0, -180.0]]
    lat = np.r_[rng.normal(31.3, 0.2, n), rng.uniform(-85, 85, 20), [0.0, 85.0]]
    kinds = rng.choice([*KINDS, "x"], len(lon))
    return agg.make_points(np.round(lon, 6), np.round(lat, 6), kinds, ["site"] * len(lon))


@pytest.mark.parametrize("seed", [0, 1])
def test_kept_cells_per_zoom_give_the_plan_of_each_window(seed: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The cells a Points keeps per zoom, picked for a window, are the cells binned from
    the window's own points: same cells, same order, bit for bit, in every view."""
    kept = _random_points(seed, 30_000)
    views = [agg.View(31.0 + d, 120.2 + d, 31.6 + d, 121.0 + d, z)
             for z in (3, 7, 9, 10, 11, 12, 13, 14, 16) for d in (0.0, 0.37)]
    views.append(agg.View(-80.0, -179.0, 84.0, 179.9, 2))  # the world's edges
    views += [agg.View(31.29, 120.59, 31.31, 120.61, z) for z in (12, 14, 15)]  # few points
    planned = [agg.plan_view(kept, v, max_zoom=18) for v in views]
    assert kept.__dict__["_cells"]  # kept on the points
    monkeypatch.setattr(agg, "KEPT_CELLS", 0)  # each window bins its own points
    fresh = _random_points(seed, 30_000)
    modes = set()
    for view, got in zip(views, planned, strict=True):
        want = agg.plan_view(fresh, view, max_zoom=18)
        assert (got.mode, got.in_window, got.capped, got.window) == (
            want.mode, want.in_window, want.capped, want.window), view
        modes.add(got.mode)
        if want.cells is None:
            assert got.cells is None
            continue
        assert got.cells is not None
        for name in ("lat", "lon", "count", "south", "west", "north", "east", "kind_counts"):
            assert np.array_equal(getattr(got.cells, name), getattr(want.cells, name)), name
    assert modes == {"cells", "markers"}
    assert not fresh.__dict__["_cells"] or all(v is None for v in fresh.__dict__["_cells"].values())


def test_a_point_index_with_gaps_in_its_row_ids() -> None:
    """Row ids need not be dense (rows removed by a batch's removal): a summary takes the
    rows by id, and refuses ids the index does not hold (a match of another version)."""
    points = pa.table({"rowid": pa.array([3, 7, 8, 20], pa.int64()),
                       "lon": [120.1, None, 120.3, 120.4], "lat": [31.1, None, 31.3, 31.4],
                       "kind_code": pa.array([0, 1, 2, 3], pa.uint8()),
                       "exact": [True, None, False, True]})
    no_point = pa.table({"rowid": pa.array([7], pa.int64()), "id": ["b"], "name_zh": ["乙"],
                         "name_en": [None], "kind": ["laboratory"], "status": ["operating"],
                         "board": [""]})
    index = agg.PointIndex.from_tables("v1", points, no_point)
    some = index.summary(np.array([7, 20]))
    assert some.points.lon.tolist() == [120.4] and some.points.kind.tolist() == [3]
    assert (some.n_total, some.n_no_point, some.no_point["id"].tolist()) == (2, 1, ["b"])
    every = index.summary()
    assert every.points.lon.tolist() == [120.1, 120.3, 120.4] and every.n_total == 4
    assert every.points.exact.tolist() == [True, False, True]
    for wrong in ([4], [21], [3, 9]):
        with pytest.raises(ValueError, match="another version"):
            index.summary(np.array(wrong))
