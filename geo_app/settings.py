"""Frozen settings read from environment variables (database path, data and layer folders)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where the app finds its inputs and keeps its database.

    Attributes
    ----------
    db_path
        The DuckDB file (``GEO_APP_DB``; default ``data/geo_app.duckdb``).
    data_dir
        Source data (``GEO_APP_DATA_DIR``; default ``data/``).
    layers_dir
        Layer specifications (``GEO_APP_LAYERS_DIR``; default ``layers/``).
    """

    db_path: Path
    data_dir: Path
    layers_dir: Path


def load_settings() -> Settings:
    """Read the settings from the environment each time (cheap; tests change it)."""
    data_dir = Path(os.environ.get("GEO_APP_DATA_DIR", PROJECT_ROOT / "data"))
    return Settings(
        db_path=Path(os.environ.get("GEO_APP_DB", data_dir / "geo_app.duckdb")),
        data_dir=data_dir,
        layers_dir=Path(os.environ.get("GEO_APP_LAYERS_DIR", PROJECT_ROOT / "layers")),
    )
