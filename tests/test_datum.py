"""Datum conversions against published reference pairs and round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_app import datum

# Reference pairs from the test suite of the gcoord library (hujiulong/gcoord,
# test/unit/crs/*.spec.js), checked there to 5 decimals: (from, to, lon/lat in, lon/lat out).
GCOORD_PAIRS = [
    ("wgs84", "gcj02", (123.0, 45.0), (123.00607541, 45.00197815)),
    ("wgs84", "bd09", (123.0, 45.0), (123.0124491, 45.0083293)),
    ("gcj02", "wgs84", (123.0, 45.0), (122.99395597, 44.99804071)),
    ("gcj02", "bd09", (123.0, 45.0), (123.00636499, 45.00636899)),
    ("bd09", "gcj02", (123.0, 45.0), (122.99363304, 44.99365430)),
    ("bd09", "wgs84", (123.0, 45.0), (122.98762210, 44.99171540)),
]
FUNCS = {
    ("wgs84", "gcj02"): datum.wgs84_to_gcj02, ("wgs84", "bd09"): datum.wgs84_to_bd09,
    ("gcj02", "wgs84"): datum.gcj02_to_wgs84, ("gcj02", "bd09"): datum.gcj02_to_bd09,
    ("bd09", "gcj02"): datum.bd09_to_gcj02, ("bd09", "wgs84"): datum.bd09_to_wgs84,
}


@pytest.mark.parametrize(("src", "dst", "given_", "expected"), GCOORD_PAIRS)
def test_published_reference_pairs(src: str, dst: str, given_: tuple[float, float],
                                   expected: tuple[float, float]) -> None:
    lon, lat = FUNCS[(src, dst)](given_[0], given_[1])
    assert float(lon) == pytest.approx(expected[0], abs=1e-5)
    assert float(lat) == pytest.approx(expected[1], abs=1e-5)


def test_suzhou_offset_matches_research() -> None:
    # geodata-sources.md: around Suzhou the GCJ-02 offset is about +0.0042° lon, -0.0022° lat
    lon, lat = datum.wgs84_to_gcj02(120.6, 31.3)
    assert float(lon) - 120.6 == pytest.approx(0.0042, abs=3e-4)
    assert float(lat) - 31.3 == pytest.approx(-0.0022, abs=3e-4)


def _metres(lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray) -> np.ndarray:
    k = 111_320.0
    return np.hypot((lon1 - lon2) * k * np.cos(np.radians(lat1)), (lat1 - lat2) * k)


@settings(max_examples=200, deadline=None)
@given(st.floats(73.7, 134.7), st.floats(18.2, 53.5))
def test_gcj02_round_trip_under_one_metre(lon: float, lat: float) -> None:
    glon, glat = datum.wgs84_to_gcj02(lon, lat)
    wlon, wlat = datum.gcj02_to_wgs84(glon, glat)
    assert _metres(np.array(lon), np.array(lat), wlon, wlat) < 1.0


def test_bd09_round_trip_vectorised() -> None:
    rng = np.random.default_rng(7)
    lon = rng.uniform(119.9, 121.4, 10_000)
    lat = rng.uniform(30.7, 32.1, 10_000)
    blon, blat = datum.wgs84_to_bd09(lon, lat)
    assert blon.shape == (10_000,)
    wlon, wlat = datum.bd09_to_wgs84(blon, blat)
    assert _metres(lon, lat, wlon, wlat).max() < 1.0
    # BD-09 read as WGS-84 is off by ~1 km (reliability-facts.md)
    assert 900 < float(np.median(_metres(lon, lat, blon, blat))) < 1500


@pytest.mark.parametrize(("lon", "lat"), [
    (2.35, 48.85),      # Paris: outside China
    (114.17, 22.30),    # Hong Kong: not shifted by Chinese providers
    (113.54, 22.19),    # Macau
    (121.56, 25.04),    # Taipei
    (-74.0, 40.7),      # New York
])
def test_points_outside_mainland_china_are_not_shifted(lon: float, lat: float) -> None:
    for func in FUNCS.values():
        x, y = func(lon, lat)
        assert (float(x), float(y)) == (lon, lat)


def test_nan_passes_through_and_shapes_must_match() -> None:
    x, y = datum.gcj02_to_wgs84([np.nan, 120.6], [31.3, 31.3])
    assert np.isnan(x[0]) and np.isfinite(x[1])
    with pytest.raises(ValueError, match="same shape"):
        datum.wgs84_to_gcj02([1.0, 2.0], [1.0])


def test_to_wgs84_dispatch_and_unknown_datum() -> None:
    g = datum.wgs84_to_gcj02(120.6, 31.3)
    lon, lat = datum.to_wgs84(g[0], g[1], "GCJ-02")
    assert float(lon) == pytest.approx(120.6, abs=1e-8)
    with pytest.raises(ValueError, match="Unknown datum"):
        datum.to_wgs84(1.0, 1.0, "cgcs2001")
