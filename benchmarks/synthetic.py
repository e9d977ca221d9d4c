"""Synthetic registries for benchmarks: N entities spread over Suzhou's 板块 (clearly fake).

Points are drawn uniformly inside each 板块's county polygon, with 板块 weighted by land
area; kinds, levels and statuses follow the shipped registry's mix. Every row says it is
synthetic in ``source`` and ``notes``; nothing here is ever written to ``data/``.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_app.settings import PROJECT_ROOT
from geo_app.vocab import REGISTRY_COLUMNS

DATA = PROJECT_ROOT / "data"


def _board_polygons() -> tuple[list[str], list[shapely.Geometry], np.ndarray]:
    boards = pd.read_csv(DATA / "boards.csv", dtype=str, keep_default_na=False)
    bounds = gpd.read_file(DATA / "boundaries.geojson").set_index("adcode")
    names, polys, weights = [], [], []
    for row in boards.itertuples():
        if not row.county_adcode:
            continue  # SIP has no polygon: synthetic SIP rows would need an invented border
        names.append(row.name_zh)
        polys.append(bounds.loc[row.county_adcode, "geometry"])
        weights.append(float(row.land_area_km2))
    w = np.asarray(weights)
    return names, polys, w / w.sum()


def synthetic_registry(n: int, *, seed: int = 0) -> pd.DataFrame:
    """Return ``n`` synthetic registry rows (the registry's columns, all WGS-84 points)."""
    rng = np.random.default_rng(seed)
    names, polys, weights = _board_polygons()
    shipped = pd.read_csv(DATA / "registry.csv", dtype=str, keep_default_na=False)
    board_idx = rng.choice(len(names), size=n, p=weights)
    lon = np.empty(n)
    lat = np.empty(n)
    for i, poly in enumerate(polys):
        want = int((board_idx == i).sum())
        shapely.prepare(poly)
        minx, miny, maxx, maxy = poly.bounds
        got_x: list[np.ndarray] = []
        got_y: list[np.ndarray] = []
        have = 0
        while have < want:
            x = rng.uniform(minx, maxx, want * 3 + 16)
            y = rng.uniform(miny, maxy, want * 3 + 16)
            ok = shapely.contains_xy(poly, x, y)
            got_x.append(x[ok])
            got_y.append(y[ok])
            have += int(ok.sum())
        lon[board_idx == i] = np.concatenate(got_x)[:want]
        lat[board_idx == i] = np.concatenate(got_y)[:want]

    def mix(column: str) -> np.ndarray:
        return rng.choice(shipped[column].to_numpy(), size=n)

    df = pd.DataFrame({
        "id": [f"syn-{i:07d}" for i in range(n)],
        "name_zh": [f"合成主体{i}" for i in range(n)],
        "name_en": [f"Synthetic entity {i}" for i in range(n)],
        "kind": mix("kind"), "level": mix("level"), "status": mix("status"),
        "board": np.asarray(names, dtype=object)[board_idx],
        "lon": np.round(lon, 6), "lat": np.round(lat, 6),
        "location_precision": "site", "location_source": "synthetic (benchmarks/synthetic.py)",
        "source_datum": "WGS84", "source": "synthetic benchmark data", "notes": "synthetic",
    })
    return df[list(REGISTRY_COLUMNS)]


def write_synthetic_data_dir(dest: Path, n: int, *, seed: int = 0) -> Path:
    """A copy of ``data/`` whose registry holds ``n`` synthetic rows; returns the folder."""
    import shutil

    from geo_app.build import DATA_FILES

    dest.mkdir(parents=True, exist_ok=True)
    for name in DATA_FILES:
        if name != "registry.csv":
            shutil.copy2(DATA / name, dest / name)
    synthetic = synthetic_registry(n, seed=seed)
    # the layers anchor on shipped rows (e.g. 高铁新城): keep them so specs still build
    shipped = pd.read_csv(DATA / "registry.csv", dtype=str, keep_default_na=False)
    pd.concat([shipped, synthetic.astype(str)]).to_csv(dest / "registry.csv", index=False)
    return dest
