"""Server-side aggregation of entity points by zoom, so the map payload stays bounded as N grows.

The map has three modes, by the number of located entities the filter holds:

1. up to :data:`CLIENT_LIMIT` (200): every entity is a folium marker with its popup and
   the browser clusters them (pans and zooms never rerun the app);
2. up to :data:`MARKER_LIMIT` (2,000): every entity once, in a compact form (a tenth of
   the bytes of folium markers; :func:`geo_app.maps.marker_payload`), still no reruns;
3. above: the page carries only the overlays, and each view gets a layer sized to the
   view - count bubbles of grid cells, or the individual entities once the view holds
   at most :data:`MARKER_LIMIT` of them. The browser reports its bounds and zoom after
   each pan or zoom and the app sends the layer for the new view.

Why a grid on the server (and not clustering in the browser)
-------------------------------------------------------------
Leaflet.markercluster and folium's ``FastMarkerCluster`` cluster in the browser: the page
must still carry every point (2.8 MB at 100k points, 25 MB at 1M) and the browser must
create a marker per point before the first frame (3.5 s at 100k, 27 s at 1M here), so
payload and first frame grow with N. Here the browser receives only what one view shows:

* **Cells.** Points are binned on a square grid in Web Mercator *screen* pixels,
  :data:`CELL_PX` pixels wide at the current zoom, so a cell always covers the same area
  on screen and halves in ground size with each zoom level. A W x H pixel view plus half
  a view of margin on each side (so short pans show no empty border) holds at most
  ``(2W/64 + 8) x (2H/64 + 8)`` cells (1,170 for a 1000 x 700 map) whatever N is, and
  far fewer where the entities are (Suzhou at zoom 9: ~50).
  Each cell is sent as one count bubble at the centroid of its points, with the extent
  of its points and its three commonest kinds (~60-100 bytes), so the layer is bounded
  by the screen, not by the data (the whole page stays under ~0.3 MB at any N). The
  window is snapped to 256-pixel tiles, so a pan within the margin gives the same
  window, the same cells and nothing to redraw.
* **Markers.** When the window holds at most :data:`MARKER_LIMIT` points the view gets
  the individual entities (with popups) instead, so clicking a bubble (which zooms to
  the extent of its points) or zooming in always reaches them. At the deepest zoom a
  window can still hold more (many entities placed at one town or district centre);
  then the first ``MARKER_LIMIT`` are sent and the page says how many are not shown.

Binning 1M points takes a few ``numpy`` passes (``np.unique`` on one int64 key a point),
about as long as reading them. A square grid was chosen over hexagons because the cells
are drawn as bubbles at their centroids (the grid itself is never shown), so hexagons
would cost more arithmetic for no visible gain; and over a cluster tree (supercluster)
because a tree must be rebuilt for every filter, while a grid needs no index.

This module is pure (numpy, no folium, no I/O): :mod:`geo_app.views.map` feeds it the
points of the current filter (read with :func:`geo_app.store.iter_point_batches`, the
:data:`NO_POINT_COLUMNS` as ``unlocated``) and the bounds and zoom ``st_folium``
returns, and :mod:`geo_app.maps` draws the result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from geo_app.datum import wgs84_to_gcj02
from geo_app.vocab import EXACT_PRECISIONS, KINDS

#: Up to this many located entities in the filter, the page carries every marker once and
#: the browser clusters them: pans and zooms never rerun the app.
CLIENT_LIMIT = 200
#: Most individual markers sent for one view; above it the view gets aggregated cells.
MARKER_LIMIT = 2_000
#: Width of a grid cell in screen pixels (cells halve in ground size with each zoom).
CELL_PX = 64
#: Windows are snapped to tiles of this many pixels (so small pans change nothing).
TILE_PX = 256
#: Margin around the view, as a fraction of its width/height on each side.
VIEW_MARGIN = 0.5
#: Largest view (pixels on a side) honoured before zooming out to fit: bounds the cell count
#: whatever bounds a client sends.
MAX_VIEW_PX = 4096
#: Rows of the table of entities without a point that the page shows (the count is exact).
NO_POINT_ROWS = 1_000
#: Kind codes: the vocabulary's kinds in order, then "other" for anything else.
KIND_ORDER: tuple[str, ...] = (*KINDS, "other")
#: Mercator latitude limit (as in Leaflet).
MAX_LAT = 85.0511287798

#: Columns of the table of entities without a point (read as ``np_<column>`` with
#: :func:`geo_app.store.iter_point_batches`).
NO_POINT_COLUMNS = ("id", "name_zh", "name_en", "kind", "status", "board")


# ----------------------------------------------------------------------------- points


@dataclass(frozen=True, eq=False)
class Points:
    """Located entities as parallel arrays (what aggregation needs, ~18 bytes a point).

    Attributes
    ----------
    lon, lat
        Coordinates in degrees (WGS-84, or the display datum after :meth:`in_datum`).
    kind
        Index into :data:`KIND_ORDER`.
    exact
        True when the point stands for the entity's own site or campus.
    datum
        The datum of ``lon``/``lat``: ``"wgs84"``, or ``"gcj02"`` after :meth:`in_datum`.
    """

    lon: np.ndarray
    lat: np.ndarray
    kind: np.ndarray
    exact: np.ndarray
    datum: str = "wgs84"

    def __len__(self) -> int:
        return int(self.lon.shape[0])

    def take(self, mask: np.ndarray) -> Points:
        """The points where ``mask`` is true."""
        taken = Points(self.lon[mask], self.lat[mask], self.kind[mask], self.exact[mask],
                       self.datum)
        px0 = self.__dict__.get("_px0")
        if px0 is not None:  # already projected: the subset needs no projection of its own
            object.__setattr__(taken, "_px0", (px0[0][mask], px0[1][mask]))
        return taken

    def world_px(self, zoom: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`world_px` of every point at ``zoom``, bit for bit.

        The projection (a logarithm per point) is computed once per ``Points`` at zoom 0
        and kept; at ``zoom`` the pixels are those times ``2**zoom``, a power of two, so
        exact. A filter's points are kept per database version, so a pan or zoom of a
        1M-entity map multiplies instead of projecting again (five times, before).
        """
        px0 = self.__dict__.get("_px0")
        if px0 is None:
            px0 = world_px(self.lon, self.lat, 0)
            object.__setattr__(self, "_px0", px0)  # frozen: a cache, not a field
        factor = 2.0**zoom
        return px0[0] * factor, px0[1] * factor

    def bounds(self) -> tuple[float, float, float, float] | None:
        """``(west, south, east, north)``, or None when there is no point."""
        if not len(self):
            return None
        return (float(self.lon.min()), float(self.lat.min()),
                float(self.lon.max()), float(self.lat.max()))

    def kind_counts(self) -> dict[str, int]:
        """Number of points per kind (kinds with none are left out)."""
        counts = np.bincount(self.kind.astype(np.intp), minlength=len(KIND_ORDER))
        return {KIND_ORDER[i]: int(c) for i, c in enumerate(counts) if c}

    def in_datum(self, datum: str) -> Points:
        """These points in the display datum: ``"wgs84"`` or ``"gcj02"`` (AMap).

        Points already in ``datum`` are returned as they are, so a caller may convert once
        (per data version) and pass the result on.
        """
        if datum not in ("wgs84", "gcj02"):
            msg = f"Unknown display datum {datum!r}: use 'wgs84' or 'gcj02'"
            raise ValueError(msg)
        if datum == self.datum:
            return self
        if self.datum != "wgs84":
            msg = f"Points in {self.datum} cannot be shown in {datum}: convert from WGS-84"
            raise ValueError(msg)
        x, y = wgs84_to_gcj02(self.lon, self.lat)
        # rounded as :func:`geo_app.maps.to_display_datum` rounds the drawn markers
        return Points(np.round(np.asarray(x, dtype=float), 6),
                      np.round(np.asarray(y, dtype=float), 6),
                      self.kind, self.exact, datum)


def make_points(lon: Iterable[float], lat: Iterable[float], kinds: Iterable[str | None] = (),
                precisions: Iterable[str | None] = ()) -> Points:
    """Points from coordinates and (optional) kind and precision values; NaN rows are dropped.

    >>> pts = make_points([120.6, None], [31.3, 31.2], ["laboratory", "x"], ["site", "town"])
    >>> len(pts), pts.kind_counts(), bool(pts.exact[0])
    (1, {'laboratory': 1}, True)
    """
    x = np.asarray(pd.to_numeric(pd.Series(list(lon), dtype=object), errors="coerce"), dtype=float)
    y = np.asarray(pd.to_numeric(pd.Series(list(lat), dtype=object), errors="coerce"), dtype=float)
    kinds = list(kinds) or [None] * len(x)
    precisions = list(precisions) or [None] * len(x)
    code = {k: i for i, k in enumerate(KINDS)}
    k = np.array([code.get(v or "", len(KINDS)) for v in kinds], dtype=np.uint8)
    e = np.array([(p or "") in EXACT_PRECISIONS for p in precisions], dtype=bool)
    ok = np.isfinite(x) & np.isfinite(y)
    return Points(x[ok], y[ok], k[ok], e[ok])


@dataclass(frozen=True, eq=False)
class PointSummary:
    """What the map needs to know of a filtered registry without holding its rows.

    Attributes
    ----------
    points
        Every located entity of the filter (WGS-84).
    n_total
        Entities matching the filter, located or not.
    no_point
        Up to :data:`NO_POINT_ROWS` entities without a point (id, names, kind, status, 板块),
        ordered by id.
    n_no_point
        How many entities of the filter have no point.
    """

    points: Points
    n_total: int
    no_point: pd.DataFrame
    n_no_point: int


def points_from_batches(batches: Iterable[Any], *,
                        no_point_rows: int = NO_POINT_ROWS) -> PointSummary:
    """Collect the record batches of :func:`geo_app.store.iter_point_batches` (with
    :data:`NO_POINT_COLUMNS` as ``unlocated``) into a summary."""
    lons: list[np.ndarray] = []
    lats: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    exacts: list[np.ndarray] = []
    frames: list[pd.DataFrame] = []
    kept = n_total = n_no_point = 0
    for batch in batches:
        n_total += batch.num_rows
        lon = batch.column("lon").to_numpy(zero_copy_only=False).astype(float, copy=False)
        lat = batch.column("lat").to_numpy(zero_copy_only=False).astype(float, copy=False)
        ok = np.isfinite(lon) & np.isfinite(lat)
        lons.append(lon[ok])
        lats.append(lat[ok])
        kinds.append(batch.column("kind_code").to_numpy(zero_copy_only=False)[ok].astype(np.uint8))
        exact = batch.column("exact").fill_null(False).to_numpy(zero_copy_only=False)
        exacts.append(np.asarray(exact, dtype=bool)[ok])
        missing = int((~ok).sum())
        n_no_point += missing
        if missing and kept < no_point_rows:
            idx = np.flatnonzero(~ok)[: no_point_rows - kept]
            part = batch.select([f"np_{c}" for c in NO_POINT_COLUMNS]).take(idx).to_pandas()
            frames.append(part.rename(columns=lambda c: c.removeprefix("np_")))
            kept += len(idx)
    # rounded as :func:`geo_app.maps.to_display_datum` rounds the drawn markers, so a
    # point on the edge of a window is inside it for the cells and the markers alike
    points = Points(
        np.round(np.concatenate(lons), 6) if lons else np.empty(0),
        np.round(np.concatenate(lats), 6) if lats else np.empty(0),
        np.concatenate(kinds) if kinds else np.empty(0, dtype=np.uint8),
        np.concatenate(exacts) if exacts else np.empty(0, dtype=bool),
    )
    return PointSummary(points=points, n_total=n_total, no_point=_no_point_frame(frames),
                        n_no_point=n_no_point)


def _no_point_frame(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The kept rows without a point, ordered by id (an empty frame of the columns if none)."""
    return (pd.concat(frames, ignore_index=True).sort_values("id", kind="stable")
            .reset_index(drop=True) if frames
            else pd.DataFrame({c: pd.Series(dtype=object) for c in NO_POINT_COLUMNS}))


@dataclass(frozen=True, eq=False)
class PointIndex:
    """Every entity's point by storage position, read once per database version: a
    filter's :class:`PointSummary` is then the row ids it matches
    (:func:`geo_app.store.match_rowids`, a scan of the filter's columns alone) taken from
    here, the same summary :func:`points_from_batches` makes of the filter's stream.

    Attributes
    ----------
    version
        ``repr`` of the database version the index was read at; a match read at another
        version must not be taken from it.
    rowids
        Every entity's storage position, ascending.
    lon, lat, kind, exact
        Every entity's point (NaN coordinates where it has none), as in :class:`Points`.
    no_point
        The entities without a point (``rowid`` and :data:`NO_POINT_COLUMNS`), in storage
        order.
    """

    version: str
    rowids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    kind: np.ndarray
    exact: np.ndarray
    no_point: pd.DataFrame

    @classmethod
    def from_tables(cls, version: str, points: Any, no_point: Any) -> PointIndex:
        """Make the index of :func:`geo_app.store.point_index`'s two tables."""
        def column(name: str) -> np.ndarray:
            return np.asarray(points.column(name).to_numpy())

        lon = column("lon").astype(float)
        lat = column("lat").astype(float)
        located = np.isfinite(lon) & np.isfinite(lat)
        # rounded as points_from_batches rounds them (NaN where there is no point)
        return cls(version=version, rowids=column("rowid").astype(np.int64),
                   lon=np.where(located, np.round(lon, 6), np.nan),
                   lat=np.where(located, np.round(lat, 6), np.nan),
                   kind=column("kind_code").astype(np.uint8),
                   exact=np.asarray(points.column("exact").fill_null(False).to_numpy(), dtype=bool),
                   no_point=no_point.to_pandas())

    def summary(self, rowids: np.ndarray | None = None, *,
                no_point_rows: int = NO_POINT_ROWS) -> PointSummary:
        """The summary of the entities at ``rowids`` (every entity when None).

        Raises
        ------
        ValueError
            When a row id is not in the index (read at another version).
        """
        n = len(self.rowids)
        if rowids is None:
            pos = np.arange(n)
        else:
            wanted = np.asarray(rowids, dtype=np.int64)
            dense = bool(n) and self.rowids[0] == 0 and self.rowids[-1] == n - 1
            # dense: a row id is its position; else found by binary search (ids ascend)
            pos = wanted if dense else np.searchsorted(self.rowids, wanted)
            if len(pos) and (pos[0] < 0 or pos[-1] >= n
                             or (not dense and not np.array_equal(self.rowids[pos], wanted))):
                msg = "Row ids outside the index: read at another version"
                raise ValueError(msg)
        lon, lat = self.lon[pos], self.lat[pos]
        located = ~np.isnan(lon)
        points = Points(lon[located], lat[located], self.kind[pos][located],
                        self.exact[pos][located])
        missing = self.rowids[pos[~located]]
        kept = self.no_point[self.no_point["rowid"].isin(missing[:no_point_rows])]
        frames = [kept.drop(columns="rowid")] if len(kept) else []
        return PointSummary(points=points, n_total=len(pos), no_point=_no_point_frame(frames),
                            n_no_point=len(missing))


# ----------------------------------------------------------------------------- web mercator


def world_px(lon: np.ndarray | float, lat: np.ndarray | float, zoom: int) -> tuple[Any, Any]:
    """Web Mercator pixel coordinates at ``zoom`` (256-pixel tiles, y down, as in Leaflet).

    >>> [round(float(v), 3) for v in world_px(0.0, 0.0, 1)]
    [256.0, 256.0]
    """
    scale = TILE_PX * 2.0**zoom
    lat_c = np.clip(lat, -MAX_LAT, MAX_LAT)
    s = np.sin(np.radians(lat_c))
    x = (np.asarray(lon, dtype=float) + 180.0) / 360.0 * scale
    y = (0.5 - np.log((1 + s) / (1 - s)) / (4 * math.pi)) * scale
    return x, y


def lonlat_of_px(x: float, y: float, zoom: int) -> tuple[float, float]:
    """The inverse of :func:`world_px` for one pixel."""
    scale = TILE_PX * 2.0**zoom
    lon = x / scale * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / scale))))
    return lon, lat


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class View:
    """What the map shows: bounds in degrees (display datum) and an integer zoom."""

    south: float
    west: float
    north: float
    east: float
    zoom: int

    def px_size(self) -> tuple[float, float]:
        """Width and height of the view in screen pixels."""
        x0, y1 = world_px(self.west, self.south, self.zoom)
        x1, y0 = world_px(self.east, self.north, self.zoom)
        return float(x1 - x0), float(y1 - y0)


def view_from_state(state: Mapping[str, Any] | None, *, min_zoom: int = 0,
                    max_zoom: int = 22) -> View | None:
    """Parse what ``st_folium`` returns (``bounds`` and ``zoom``); None if absent or invalid.

    A view larger than :data:`MAX_VIEW_PX` on a side is zoomed out until it fits, so a
    client cannot ask for an unbounded number of cells.

    >>> view_from_state({"zoom": 11, "bounds": {"_southWest": {"lat": 31.0, "lng": 120.4},
    ...                  "_northEast": {"lat": 31.5, "lng": 121.0}}})
    View(south=31.0, west=120.4, north=31.5, east=121.0, zoom=11)
    >>> view_from_state({"zoom": 11, "bounds": {"_southWest": {"lat": None, "lng": None}}}) is None
    True
    """
    if not isinstance(state, Mapping):
        return None
    bounds, zoom = state.get("bounds"), state.get("zoom")
    try:
        sw, ne = bounds["_southWest"], bounds["_northEast"]  # type: ignore[index]
        south, west = float(sw["lat"]), float(sw["lng"])
        north, east = float(ne["lat"]), float(ne["lng"])
        z = int(round(float(zoom)))  # type: ignore[arg-type]
    except (TypeError, KeyError, ValueError):
        return None
    values = (south, west, north, east)
    if not all(math.isfinite(v) for v in values) or south >= north or west >= east:
        return None
    south, north = max(south, -MAX_LAT), min(north, MAX_LAT)
    west, east = max(west, -180.0), min(east, 180.0)
    if south >= north or west >= east:
        return None
    z = min(max(z, min_zoom), max_zoom)
    view = View(south, west, north, east, z)
    while view.zoom > min_zoom and max(view.px_size()) > MAX_VIEW_PX:
        view = View(south, west, north, east, view.zoom - 1)
    return view


def fit_view(bounds: tuple[float, float, float, float], *, width_px: int, height_px: int,
             padding_px: int = 30, max_zoom: int = 12, min_zoom: int = 0) -> View:
    """The view Leaflet's ``fitBounds`` would show for ``(west, south, east, north)``.

    Used for the first drawing of a filter, before the browser has reported its real view
    (it reports it right after; a wrong guess only costs one redraw).
    """
    west, south, east, north = bounds
    x0, y1 = world_px(west, south, 0)
    x1, y0 = world_px(east, north, 0)
    w = max(float(x1 - x0), 1e-9)
    h = max(float(y1 - y0), 1e-9)
    avail_w = max(width_px - 2 * padding_px, 1)
    avail_h = max(height_px - 2 * padding_px, 1)
    zoom = int(math.floor(math.log2(min(avail_w / w, avail_h / h))))
    zoom = min(max(zoom, min_zoom), max_zoom)
    cx, cy = (x0 + x1) / 2 * 2**zoom, (y0 + y1) / 2 * 2**zoom
    west2, north2 = lonlat_of_px(float(cx) - width_px / 2, float(cy) - height_px / 2, zoom)
    east2, south2 = lonlat_of_px(float(cx) + width_px / 2, float(cy) + height_px / 2, zoom)
    return View(south2, west2, north2, east2, zoom)


@dataclass(frozen=True)
class Window:
    """The part of the world a view's layer covers: the view plus margin, snapped to tiles.

    ``x0, y0, x1, y1`` are pixels at ``zoom``; points with ``x0 <= x < x1`` and
    ``y0 <= y < y1`` are inside.
    """

    zoom: int
    x0: float
    y0: float
    x1: float
    y1: float

    def bbox(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in degrees (display datum)."""
        west, north = lonlat_of_px(self.x0, self.y0, self.zoom)
        east, south = lonlat_of_px(self.x1, self.y1, self.zoom)
        return west, south, east, north

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Mask of the points inside the window."""
        return self.contains_px(*world_px(lon, lat, self.zoom))

    def contains_px(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Mask of the points at pixels ``x``, ``y`` (at the window's zoom) inside the window."""
        mask: np.ndarray = (x >= self.x0) & (x < self.x1) & (y >= self.y0) & (y < self.y1)
        return mask


def view_window(view: View, *, margin: float = VIEW_MARGIN, tile_px: int = TILE_PX) -> Window:
    """The view widened by ``margin`` on each side and snapped outwards to ``tile_px`` tiles."""
    x0, y1 = world_px(view.west, view.south, view.zoom)
    x1, y0 = world_px(view.east, view.north, view.zoom)
    w, h = float(x1 - x0), float(y1 - y0)
    world = TILE_PX * 2.0**view.zoom
    left = max(math.floor((x0 - margin * w) / tile_px) * tile_px, 0.0)
    top = max(math.floor((y0 - margin * h) / tile_px) * tile_px, 0.0)
    right = min(math.ceil((x1 + margin * w) / tile_px) * tile_px, world)
    bottom = min(math.ceil((y1 + margin * h) / tile_px) * tile_px, world)
    # a point exactly on the world's east/south edge still belongs to the window
    if right >= world:
        right = world + 1e-6
    if bottom >= world:
        bottom = world + 1e-6
    return Window(view.zoom, float(left), float(top), float(right), float(bottom))


# ----------------------------------------------------------------------------- cells


@dataclass(frozen=True, eq=False)
class Cells:
    """Grid cells holding at least one point, one row per cell.

    Attributes
    ----------
    lat, lon
        Centroid of the cell's points (where its bubble is drawn).
    count
        Points in the cell.
    south, west, north, east
        Extent of the cell's points (clicking a bubble zooms to it).
    kind_counts
        ``(cells, len(KIND_ORDER))`` points per kind.
    zoom, cell_px
        The grid: ``cell_px`` screen pixels at ``zoom``.
    """

    lat: np.ndarray
    lon: np.ndarray
    count: np.ndarray
    south: np.ndarray
    west: np.ndarray
    north: np.ndarray
    east: np.ndarray
    kind_counts: np.ndarray
    zoom: int
    cell_px: int

    def __len__(self) -> int:
        return int(self.count.shape[0])

    def top_kinds(self, k: int = 3) -> list[list[tuple[int, int]]]:
        """Per cell, up to ``k`` ``(kind code, count)`` pairs, commonest first."""
        if not len(self):
            return []
        order = np.argsort(-self.kind_counts, axis=1, kind="stable")[:, :k]
        out: list[list[tuple[int, int]]] = []
        for row, idx in zip(self.kind_counts, order, strict=True):
            out.append([(int(i), int(row[i])) for i in idx if row[i] > 0])
        return out


def aggregate(points: Points, window: Window, *, cell_px: int = CELL_PX) -> Cells:
    """Bin the points inside ``window`` into ``cell_px`` squares at the window's zoom.

    Cells are aligned on a world-wide grid (not on the window), so the same point falls
    in the same cell whichever way the map was panned.

    >>> pts = make_points([120.60, 120.6001, 121.0], [31.30, 31.3001, 31.5], ["laboratory"] * 3)
    >>> cells = aggregate(pts, view_window(View(31.0, 120.0, 32.0, 121.5, 10)))
    >>> sorted(cells.count.tolist())
    [1, 2]
    """
    x, y = points.world_px(window.zoom)
    inside = window.contains_px(x, y)
    cx = np.floor(x[inside] / cell_px).astype(np.int64)
    cy = np.floor(y[inside] / cell_px).astype(np.int64)
    inv, n = _cell_index(cx, cy)
    return _bin(points.lon[inside], points.lat[inside], points.kind[inside], inv, n,
                zoom=window.zoom, cell_px=cell_px)


def _bin(lon: np.ndarray, lat: np.ndarray, kind_codes: np.ndarray, inv: np.ndarray, n: int, *,
         zoom: int, cell_px: int) -> Cells:
    """The cells of points whose cell index (:func:`_cell_index`) is ``inv``."""
    kind = kind_codes.astype(np.int64)
    count = np.bincount(inv, minlength=n)
    if n:
        # a stable sort is one answer whatever the algorithm; on 16-bit keys numpy's is a
        # radix sort (linear), on int64 a merge sort
        order = np.argsort(inv.astype(np.uint16) if n <= 1 << 16 else inv, kind="stable")
        starts = np.r_[0, np.cumsum(count)[:-1]]
        lon_sorted, lat_sorted = lon[order], lat[order]
        south = np.minimum.reduceat(lat_sorted, starts)
        north = np.maximum.reduceat(lat_sorted, starts)
        west = np.minimum.reduceat(lon_sorted, starts)
        east = np.maximum.reduceat(lon_sorted, starts)
    else:
        south = north = west = east = np.empty(0)
    nk = len(KIND_ORDER)
    kinds = np.bincount(inv * nk + kind, minlength=n * nk).reshape(n, nk)
    safe = np.maximum(count, 1)
    return Cells(
        lat=np.bincount(inv, weights=lat, minlength=n) / safe,
        lon=np.bincount(inv, weights=lon, minlength=n) / safe,
        count=count, south=south, west=west, north=north, east=east,
        kind_counts=kinds, zoom=zoom, cell_px=cell_px,
    )


def _cell_index(cx: np.ndarray, cy: np.ndarray) -> tuple[np.ndarray, int]:
    """Each point's cell as an index into the occupied cells ordered by ``(cx, cy)``, and
    their number: ``np.unique(cx * 2**31 + cy, return_inverse=True)`` without its sort.

    A window holds a few thousand grid cells, so the cells are counted on the dense grid
    that spans the points (linear), and only a sparse spread falls back to ``np.unique``.

    >>> inv, n = _cell_index(np.array([5, 3, 5, 3]), np.array([1, 2, 1, 0]))
    >>> inv.tolist(), n
    ([2, 1, 2, 0], 3)
    """
    if not len(cx):
        return np.empty(0, dtype=np.intp), 0
    x0, y0 = int(cx.min()), int(cy.min())
    nx, ny = int(cx.max()) - x0 + 1, int(cy.max()) - y0 + 1
    if nx * ny > 4 * len(cx) + (1 << 16):
        uniq, inv = np.unique(cx * (np.int64(1) << np.int64(31)) + cy, return_inverse=True)
        return inv.reshape(-1), len(uniq)
    local = (cx - x0) * ny + (cy - y0)
    present = np.bincount(local, minlength=nx * ny) > 0
    rank = np.cumsum(present) - 1
    return rank[local], int(rank[-1]) + 1


# ----------------------------------------------------------------------------- planning


@dataclass(frozen=True, eq=False)
class ViewPlan:
    """What to send for one view of a large filter.

    Attributes
    ----------
    mode
        ``"cells"`` (aggregated) or ``"markers"`` (individual entities).
    window
        The area covered (the view plus margin, snapped to tiles).
    in_window
        Located entities inside the window.
    cells
        The cells (``mode == "cells"``), else None.
    capped
        True when ``mode == "markers"`` but the window holds more than the marker limit
        (only at the deepest zoom): the first ``MARKER_LIMIT`` are shown.
    """

    mode: Literal["cells", "markers"]
    window: Window
    in_window: int
    cells: Cells | None = None
    capped: bool = False


#: Most cells a :class:`Points` keeps per zoom (:func:`plan_view`): ~7 MB at most each.
KEPT_CELLS = 50_000


@dataclass(frozen=True, eq=False)
class _ZoomCells:
    """Every point of a :class:`Points` binned at one zoom, and each cell's grid position."""

    cells: Cells
    cx: np.ndarray
    cy: np.ndarray


def _zoom_cells(points: Points, zoom: int, cell_px: int) -> _ZoomCells | None:
    """The cells of all ``points`` at ``zoom``, kept on the ``Points`` (None when there
    would be more than :data:`KEPT_CELLS`: then each view bins its own points)."""
    kept: dict[tuple[int, int], _ZoomCells | None] = points.__dict__.setdefault("_cells", {})
    key = (zoom, cell_px)
    if key in kept:
        return kept[key]
    x, y = points.world_px(zoom)
    cx = np.floor(x / cell_px).astype(np.int64)
    cy = np.floor(y / cell_px).astype(np.int64)
    inv, n = _cell_index(cx, cy)
    found = None
    if n <= KEPT_CELLS:
        # every point lies in the world's window: the cells aggregate() gives for it
        cells = _bin(points.lon, points.lat, points.kind, inv, n, zoom=zoom, cell_px=cell_px)
        cell_x = np.zeros(n, dtype=np.int64)
        cell_y = np.zeros(n, dtype=np.int64)
        cell_x[inv] = cx  # each cell's grid position, from its points (all the same)
        cell_y[inv] = cy
        found = _ZoomCells(cells, cell_x, cell_y)
    kept[key] = found
    return found


def plan_view(points: Points, view: View, *, marker_limit: int = MARKER_LIMIT,
              max_zoom: int = 18, cell_px: int = CELL_PX) -> ViewPlan:
    """Decide between cells and markers for ``view`` and compute the cells if needed.

    ``points`` and ``view`` must be in the same (display) datum.

    A window's edges lie on the grid (its tiles are whole cells), so its cells are
    exactly the cells of all points that lie inside it. Where all the points make at
    most :data:`KEPT_CELLS` cells at the view's zoom, they are binned once per zoom and
    kept on ``points`` (a filter's points are kept per file version), so a pan or zoom
    only picks the window's cells (the same cells, in the same order, bit for bit).
    """
    window = view_window(view)
    if view.zoom < max_zoom and cell_px > 0 and TILE_PX % cell_px == 0:
        whole = _zoom_cells(points, window.zoom, cell_px)
        if whole is not None:
            inside = ((whole.cx * cell_px >= window.x0) & (whole.cx * cell_px < window.x1)
                      & (whole.cy * cell_px >= window.y0) & (whole.cy * cell_px < window.y1))
            n = int(whole.cells.count[inside].sum())
            if n <= marker_limit:
                return ViewPlan("markers", window, n)
            return ViewPlan("cells", window, n, cells=_take_cells(whole.cells, inside))
    mask = window.contains_px(*points.world_px(window.zoom))
    n = int(mask.sum())
    if n <= marker_limit:
        return ViewPlan("markers", window, n)
    if view.zoom >= max_zoom:
        return ViewPlan("markers", window, n, capped=True)
    return ViewPlan("cells", window, n, cells=aggregate(points.take(mask), window, cell_px=cell_px))


def _take_cells(cells: Cells, mask: np.ndarray) -> Cells:
    return Cells(lat=cells.lat[mask], lon=cells.lon[mask], count=cells.count[mask],
                 south=cells.south[mask], west=cells.west[mask], north=cells.north[mask],
                 east=cells.east[mask], kind_counts=cells.kind_counts[mask], zoom=cells.zoom,
                 cell_px=cells.cell_px)
