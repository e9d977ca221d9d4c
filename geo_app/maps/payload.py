"""What a map draws: its inputs (:class:`MapInputs`) in the display datum, and the
compact payloads of the large-registry modes that the browser expands."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_app.aggregate import KIND_ORDER, Cells
from geo_app.datum import wgs84_to_gcj02
from geo_app.i18n import t
from geo_app.maps.popups import SHARED_COLUMN, popup_cells
from geo_app.maps.style import is_exact, marker_svg
from geo_app.maps.template import escape_html
from geo_app.vocab import KINDS, label

# ----------------------------------------------------------------------------- datum


def to_display_datum(gdf: gpd.GeoDataFrame, datum: str, *, decimals: int = 6) -> gpd.GeoDataFrame:
    """Return a copy of a WGS-84 frame in the datum of the basemap, coordinates rounded.

    ``datum="gcj02"`` shifts every vertex with :func:`geo_app.datum.wgs84_to_gcj02`
    (for the AMap basemap); ``"wgs84"`` only rounds. Empty geometries stay empty.
    """
    def shift(coords: np.ndarray) -> np.ndarray:
        if datum == "gcj02" and len(coords):
            x, y = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
            coords = np.column_stack([x, y])
        return np.round(coords, decimals)

    if datum not in ("wgs84", "gcj02"):
        msg = f"Unknown display datum {datum!r}: use 'wgs84' or 'gcj02'"
        raise ValueError(msg)
    out = gdf.copy()
    geoms = np.asarray(out.geometry.values, dtype=object)
    present = np.array([g is not None for g in geoms], dtype=bool)
    if present.any():
        geoms[present] = shapely.transform(geoms[present], shift)
    out = out.set_geometry(list(geoms), crs=gdf.crs)
    return out


# ----------------------------------------------------------------------------- the map inputs


@dataclass(frozen=True)
class MapInputs:
    """Everything one map shows, already filtered, in WGS-84.

    Attributes
    ----------
    entities
        Entities to show (``store.query_entities``); rows with no geometry are not drawn.
    layers, boundaries, water
        ``store.read_geo_table`` frames.
    boards
        ``store.read_table(db, "boards")``: maps county polygons to 板块.
    focus_layers
        Layer ids whose areas the view should also fit (the layer filter).
    fit_city
        Fit the whole city and its water (all of Taihu) as well as the entities: the
        first view of the unfiltered map.
    datum
        None for WGS-84 frames as the store gives them; ``"wgs84"`` or ``"gcj02"`` once
        :func:`display_inputs` has prepared them for that display datum (shifted and
        rounded), so a page converts them once per data version, not on every drawing.
    """

    entities: gpd.GeoDataFrame
    layers: gpd.GeoDataFrame
    boundaries: gpd.GeoDataFrame
    water: gpd.GeoDataFrame
    boards: pd.DataFrame
    focus_layers: tuple[str, ...] = ()
    fit_city: bool = False
    datum: str | None = None


def with_entities(inputs: MapInputs, entities: gpd.GeoDataFrame) -> MapInputs:
    """``inputs`` with ``entities`` (WGS-84 rows from the store), shifted to the datum the
    inputs were prepared for, if any (:func:`display_inputs`)."""
    if inputs.datum is not None:
        entities = to_display_datum(entities, inputs.datum)
    return dataclasses.replace(inputs, entities=entities)


def display_inputs(inputs: MapInputs, datum: str) -> MapInputs:
    """``inputs`` prepared for a basemap in ``datum``: every frame shifted and rounded
    (overlays to 1e-5 degrees, entities to 1e-6) by :func:`to_display_datum`.

    Inputs already prepared for ``datum`` are returned as they are.

    Raises
    ------
    ValueError
        If ``inputs`` were prepared for another datum.
    """
    if inputs.datum == datum:
        return inputs
    if inputs.datum is not None:
        msg = f"Map inputs prepared for {inputs.datum} cannot be drawn in {datum}"
        raise ValueError(msg)
    return dataclasses.replace(
        inputs, datum=datum, entities=to_display_datum(inputs.entities, datum),
        layers=to_display_datum(inputs.layers, datum, decimals=5),
        boundaries=to_display_datum(inputs.boundaries, datum, decimals=5),
        water=to_display_datum(inputs.water, datum, decimals=5))


def layer_name_map(layers: pd.DataFrame, lang: str) -> dict[str, str]:
    """Layer id → display name in ``lang``."""
    col = "name_en" if lang == "en" else "name_zh"
    return {str(r["id"]): str(r[col] or r["id"]) for _, r in layers.iterrows()}



def with_shared_counts(points: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``points`` (located rows) with :data:`SHARED_COLUMN`: how many rows sit on each one's
    coordinate (to 1e-6 degrees, ~0.1 m)."""
    if not len(points):
        return points.assign(**{SHARED_COLUMN: pd.Series(dtype="int64")})
    key = pd.Series(list(zip(np.round(points.geometry.x.to_numpy(), 6),
                             np.round(points.geometry.y.to_numpy(), 6), strict=True)),
                    index=points.index)
    return points.assign(**{SHARED_COLUMN: key.map(key.value_counts()).astype("int64")})



#: modes, for display only: the page is then ~200 KB lighter and draws faster.
DISPLAY_TOLERANCE = 0.0002


def simplify_for_display(gdf: gpd.GeoDataFrame,
                         tolerance: float = DISPLAY_TOLERANCE) -> gpd.GeoDataFrame:
    """A copy of ``gdf`` with every geometry simplified (topology kept within each geometry)."""
    if tolerance <= 0 or not len(gdf):
        return gdf
    geoms = shapely.simplify(np.asarray(gdf.geometry.values, dtype=object), tolerance,
                             preserve_topology=True)
    return gdf.set_geometry(list(geoms), crs=gdf.crs)


# ----------------------------------------------------------------------------- large registries


def marker_payload(points: gpd.GeoDataFrame, lang: str,
                   layer_names: Mapping[str, str]) -> list[Any]:
    """The compact form of many markers that :class:`_CompactMarkers` expands in the browser.

    Returns ``[icons, strings, rows]``: ``icons`` are ``[svg, class]`` pairs (one per kind
    and precision style shown); ``strings`` every popup label and value, escaped with
    :func:`escape_html` and deduplicated; each row is ``[lat, lon, icon, name_zh, name_en,
    id, tooltip_in_english, kind_label, [label, value, label, value, ...]]`` with names and
    id escaped and labels and values as indexes into ``strings``. The browser builds the
    popup of :func:`popup_html` and the tooltip of :func:`tooltip_html` by concatenation,
    so both stay byte-for-byte the same as in the ``"markers"`` mode.

    ``points`` must be located rows in the display datum (:func:`to_display_datum`).
    """
    strings: dict[str, int] = {}
    icons: dict[tuple[str, bool], int] = {}

    def sid(value: object) -> int:
        return strings.setdefault(escape_html(value), len(strings))

    def hid(safe_html: str) -> int:
        return strings.setdefault(safe_html, len(strings))

    rows: list[Any] = []
    for row in points.to_dict("records"):
        geom = row["geometry"]
        exact = is_exact(row.get("location_precision"))
        kind = row.get("kind") if row.get("kind") in KINDS else "other"
        icon = icons.setdefault((str(kind), exact), len(icons))
        en = row.get("name_en") if isinstance(row.get("name_en"), str) else ""
        pairs = [i for k, v in popup_cells(row, lang, layer_names) for i in (hid(k), hid(v))]
        rows.append([float(geom.y), float(geom.x), icon, escape_html(row.get("name_zh")),
                     escape_html(en), escape_html(row.get("id")),
                     1 if lang == "en" and en.strip() else 0,
                     sid(label(KINDS, row.get("kind"), lang)), pairs])
    icon_list = [[marker_svg(k, e),
                  f"sim-marker sim-kind-{k} {'sim-exact' if e else 'sim-approx'}"]
                 for (k, e) in icons]
    return [icon_list, list(strings), rows]


def cells_payload(cells: Cells, lang: str) -> list[Any]:
    """The compact form of aggregated cells that :class:`_Cells` draws.

    Returns ``[rows, kind_labels, texts]``: each row is ``[lat, lon, count, south, west,
    north, east, kind, count, ...]`` (centroid, points, extent of the points, up to three
    commonest kinds as indexes into ``kind_labels``); ``texts`` are the tooltip's
    headline (``{n}`` = count) and hint. Every string is escaped.
    """
    top = cells.top_kinds(3)
    rows: list[Any] = []
    for i in range(len(cells)):
        row: list[Any] = [round(float(cells.lat[i]), 5), round(float(cells.lon[i]), 5),
                          int(cells.count[i]),
                          round(float(cells.south[i]), 6), round(float(cells.west[i]), 6),
                          round(float(cells.north[i]), 6), round(float(cells.east[i]), 6)]
        for code, n in top[i]:
            row += [code, n]
        rows.append(row)
    kinds = [escape_html(t("map_kind_other", lang) if k == "other" else label(KINDS, k, lang))
             for k in KIND_ORDER]
    texts = [escape_html(t("map_cell_count", lang)), escape_html(t("map_cell_hint", lang))]
    return [rows, kinds, texts]
