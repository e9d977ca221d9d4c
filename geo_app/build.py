"""Build the DuckDB file from ``data/`` and ``layers/``: on first start, on change, on demand.

The new database is written beside the live one, user imports are copied across,
and the file is swapped in with :func:`os.replace`, so readers always see either
the old or the new data and a crash mid-build leaves the old file untouched.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo_app import __version__, layers, specs, store
from geo_app.errors import DataError
from geo_app.settings import Settings, load_settings
from geo_app.vocab import COMPARATORS, REGISTRY_COLUMNS, VOCABULARIES

#: Files in ``data/`` that the database is built from (the content hash covers them).
DATA_FILES = ("registry.csv", "boards.csv", "indicators.csv", "board_indicators.csv",
              "boundaries.geojson", "boundaries_tianditu.geojson", "water.geojson")
#: The independent Tianditu polygons must overlap the primary (AMap) ones at least this much
#: (intersection over union, per county); below it the build stops (data/SOURCES.md).
MIN_BOUNDARY_IOU = 0.9


def source_hash(settings: Settings) -> str:
    """SHA-256 over the data files, the layer specs and the package version."""
    h = hashlib.sha256(f"geo_app {__version__} schema {store.SCHEMA_VERSION}".encode())
    files = [settings.data_dir / name for name in DATA_FILES]
    files += sorted(settings.layers_dir.glob("*.toml"))
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes() if path.exists() else b"<missing>")
    return h.hexdigest()


def read_csv(path: Path) -> pd.DataFrame:
    """Read a UTF-8 data CSV with every cell as text (empty cells stay '')."""
    if not path.exists():
        msg = f"Missing data file {path}"
        raise DataError(msg)
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")


def _nullable_float(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series.replace("", None), errors="raise").astype("float64")


def check_comparators(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return ``df`` if every row's ``comparator`` (the value's qualifier) is in
    :data:`COMPARATORS`.

    A figure such as ">2,700" or "近2,800" is stored as 2700 / 2800 with ``>`` / ``≈``, so the
    qualifier is data, not a note.

    Raises
    ------
    DataError
        When the column is missing or a value is empty or unknown (naming file, row and value).
    """
    if "comparator" not in df.columns:
        msg = f"{name}: missing column 'comparator' (one of {', '.join(COMPARATORS)} per value)"
        raise DataError(msg)
    for i, value in enumerate(df["comparator"]):
        if value not in COMPARATORS:
            msg = (f"{name} row {i + 2}, column comparator: {value!r} is not one of "
                   f"{', '.join(COMPARATORS)}")
            raise DataError(msg)
    return df


def load_registry(path: Path) -> gpd.GeoDataFrame:
    """Read and check ``registry.csv``; raise :class:`DataError` naming row and column."""
    df = read_csv(path)
    missing = [c for c in REGISTRY_COLUMNS if c not in df.columns]
    if missing:
        msg = f"{path.name}: missing columns {missing}"
        raise DataError(msg)
    for column, vocab in VOCABULARIES.items():
        for i, value in enumerate(df[column]):
            if value and value not in vocab:
                msg = f"{path.name} row {i + 2}, column {column}: unknown value {value!r}"
                raise DataError(msg)
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        msg = f"{path.name}: duplicate id {dup.iloc[0]!r}"
        raise DataError(msg)
    for column in ("lon", "lat"):
        df[column] = _nullable_float(df[column])
    half = df["lon"].isna() != df["lat"].isna()
    if half.any():
        msg = (f"{path.name} row {int(half.idxmax()) + 2}: lon and lat must both be given or "
               "both empty")
        raise DataError(msg)
    df["source_lon"] = df["lon"]
    df["source_lat"] = df["lat"]
    df["conversion"] = df["lon"].notna().map({True: "none (WGS-84 source)", False: ""})
    df["origin"] = "shipped"
    df["batch_id"] = None
    return store.entities_to_gdf(df[list(store.ENTITY_COLUMNS)])


def boundary_agreement(primary: gpd.GeoDataFrame, check: gpd.GeoDataFrame, *,
                       min_iou: float = MIN_BOUNDARY_IOU) -> pd.DataFrame:
    """Per city/county polygon: areas in both sources, their difference and IoU.

    Parameters
    ----------
    primary
        The boundaries drawn (``adcode``, ``name_zh``, ``level``; WGS-84). Only ``level``
        ``city`` and ``county`` rows are compared (``board`` rows are derived from them).
    check
        The independent polygons (``adcode``; WGS-84), one per compared ``adcode``.
    min_iou
        The lowest intersection over union accepted.

    Returns
    -------
    DataFrame
        ``adcode, name_zh, area_km2, check_area_km2, area_diff_pct, iou`` (areas in UTM 51N;
        ``area_diff_pct`` is check minus primary, in % of primary).

    Raises
    ------
    DataError
        When a compared polygon is missing from ``check`` or its IoU is below ``min_iou``.
    """
    units = primary[primary["level"].isin(["city", "county"])].to_crs("EPSG:32651")
    other = check.to_crs("EPSG:32651").set_index(check["adcode"].astype(str))
    rows = []
    for code, name, geom in zip(units["adcode"].astype(str), units["name_zh"], units.geometry,
                                strict=True):
        if code not in other.index:
            msg = (f"boundaries_tianditu.geojson has no polygon for {name} ({code}): the "
                   "independent boundary check cannot run; rebuild with data/rebuild_sources.py")
            raise DataError(msg)
        ref = other.geometry[code]
        iou = geom.intersection(ref).area / geom.union(ref).area
        if iou < min_iou:
            msg = (f"boundaries.geojson {name} ({code}) overlaps the independent Tianditu polygon "
                   f"with IoU {iou:.3f} < {min_iou}: one of the two sources is wrong or was "
                   "rebuilt from a different unit; compare them before building")
            raise DataError(msg)
        rows.append({"adcode": code, "name_zh": name, "area_km2": geom.area / 1e6,
                     "check_area_km2": ref.area / 1e6,
                     "area_diff_pct": (ref.area - geom.area) / geom.area * 100, "iou": iou})
    return pd.DataFrame(rows)


#: The steps of a build, in order, as :data:`Progress` callbacks receive them.
BUILD_STEPS = ("registry", "boundaries", "layers", "database", "memberships")
#: Called with each step of :data:`BUILD_STEPS` as it starts (e.g. to show progress).
Progress = Callable[[str], None]


def _no_progress(step: str) -> None:
    """The default :data:`Progress`: report nothing."""


def load_sources(settings: Settings, progress: Progress = _no_progress) -> dict[str, pd.DataFrame]:
    """Read every data file into the frames of the database tables."""
    d = settings.data_dir
    progress("registry")
    registry = load_registry(d / "registry.csv")
    boards = read_csv(d / "boards.csv")
    boards["land_area_km2"] = _nullable_float(boards["land_area_km2"])
    indicators = check_comparators(read_csv(d / "indicators.csv"), "indicators.csv")
    indicators["year"] = pd.to_numeric(indicators["year"]).astype("int64")
    for column in ("value", "value_max"):
        indicators[column] = _nullable_float(indicators[column])
    board_ind = check_comparators(read_csv(d / "board_indicators.csv"), "board_indicators.csv")
    board_ind["value"] = _nullable_float(board_ind["value"])
    board_ind["origin"] = "shipped"
    progress("boundaries")
    boundaries = gpd.read_file(d / "boundaries.geojson")
    check_path = d / "boundaries_tianditu.geojson"
    if not check_path.exists():
        msg = f"Missing data file {check_path} (the independent boundary check; data/SOURCES.md)"
        raise DataError(msg)
    boundary_agreement(boundaries, gpd.read_file(check_path))
    boundaries = boundaries[["adcode", "name_zh", "name_en", "level", "source", "source_datum",
                             "conversion", "geometry"]]
    water = gpd.read_file(d / "water.geojson")
    water = water[["id", "name_zh", "name_en", "kind", "source", "source_datum", "conversion",
                   "geometry"]]
    return {
        "boards": boards, "boundaries": boundaries, "water": water,
        "entities": registry, "indicators": indicators,
        "board_indicators": board_ind,
    }


def check_db_path(path: Path) -> Path:
    """Return ``path`` if a database file can live there; raise :class:`DataError` otherwise.

    A build moves an unreadable database file aside; a folder named as the database must
    never be moved (``GEO_APP_DB=data`` would otherwise rename the data folder).

    Raises
    ------
    DataError
        When ``path`` is empty or a folder, or a part of its parent folder is a file.
    """
    if not str(path).strip():
        msg = "GEO_APP_DB is empty: set it to a database file, e.g. data/geo_app.duckdb"
        raise DataError(msg)
    path = Path(path)
    if path.is_dir():
        msg = (f"The database path {path} is a folder, not a file: point GEO_APP_DB at a "
               f"file, e.g. {path / 'geo_app.duckdb'}")
        raise DataError(msg)
    for parent in Path(os.path.abspath(path)).parents:
        if parent.exists() and not parent.is_dir():
            msg = (f"The database path {path} is inside {parent}, which is a file, not a "
                   "folder: point GEO_APP_DB at a file in a folder")
            raise DataError(msg)
    return path


def build_database(settings: Settings | None = None, *,
                   progress: Progress = _no_progress) -> dict[str, str]:
    """Rebuild the database from ``data/`` and ``layers/``, keeping user imports.

    ``progress`` is called with each step of :data:`BUILD_STEPS` as it starts. Returns
    the metadata written into the new file.
    """
    settings = settings or load_settings()
    check_db_path(settings.db_path)
    with store.writer_lock(settings.db_path):  # builds and imports never interleave
        return _build_unlocked(settings, progress)


def _build_unlocked(settings: Settings, progress: Progress = _no_progress) -> dict[str, str]:
    tables = load_sources(settings, progress)
    progress("layers")
    layer_specs = specs.load_specs(settings.layers_dir)
    layer_gdf = layers.build_layers(layer_specs, tables)
    tables["layers"] = layer_gdf
    meta = {
        "source_hash": source_hash(settings),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "geo_app_version": __version__,
    }
    live = Path(os.path.realpath(settings.db_path))  # a symlinked GEO_APP_DB stays a symlink
    store.clear_leftovers(live)  # copies left by writers that were killed
    tmp = live.with_name(live.name + f".tmp{os.getpid()}")
    try:
        progress("database")
        store.write_database(tmp, tables, meta)
        try:
            store.copy_user_data(live, tmp)
        except DataError as err:
            # never delete what cannot be read: keep it (and its WAL) aside for recovery
            aside = live.with_name(f"{live.name}.unreadable-{datetime.now(UTC):%Y%m%dT%H%M%S}")
            os.replace(live, aside)
            if Path(f"{live}.wal").exists():
                os.replace(f"{live}.wal", f"{aside}.wal")
            warnings.warn(f"{err.user_message}; the old file was kept as {aside}", stacklevel=2)
        progress("memberships")
        layers.refresh_membership(tmp, in_place=True)
        store.swap_in(tmp, live)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            if leftover.exists():
                leftover.unlink()
    return meta


def ensure_database(settings: Settings | None = None, *,
                    progress: Progress = _no_progress) -> Path:
    """Build the database if it is missing or older than the files it is built from.

    ``progress`` is called with each build step as it starts (never when no build is due).
    """
    settings = settings or load_settings()
    check_db_path(settings.db_path)
    if store.database_exists(settings.db_path):
        try:
            current = store.read_meta(settings.db_path).get("source_hash")
        except DataError:  # an unreadable or foreign file is rebuilt
            current = None
        if current == source_hash(settings):
            return settings.db_path
    with store.writer_lock(settings.db_path):
        # another process may have built it while we waited for the lock
        if store.database_exists(settings.db_path):
            try:
                if store.read_meta(settings.db_path).get("source_hash") == source_hash(settings):
                    return settings.db_path
            except DataError:
                pass
        _build_unlocked(settings, progress)
    return settings.db_path
