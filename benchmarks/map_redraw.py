"""Map redraw benchmark (by hand): ``python -m benchmarks.map_redraw [--db PATH]``.

What a filter change costs on the server for the shipped registry: the entity query
(one short-lived DuckDB connection, which loads the spatial extension), building the
Folium map, and the work ``streamlit_folium.st_folium`` does before sending it (render +
script extraction). The overlays (layers, boundaries, water) are read once per database
version and cached by the page, so they are read once here too. Goal (issue 4): a
filter change redraws well under a second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from geo_app import build, maps, store
from geo_app.filters import EntityFilter, make_filter
from geo_app.settings import PROJECT_ROOT, Settings

FILTERS: dict[str, EntityFilter] = {
    "no filter": EntityFilter(),
    "board=昆山市": make_filter(boards=["昆山市"]),
    "kind=laboratory": make_filter(kinds=["laboratory"]),
    "layer=taihu_science_city": make_filter(layers=["taihu_science_city"]),
    "q=苏州": make_filter(search="苏州"),
}


def best_of(func: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Best wall time in milliseconds and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = func()
        best = min(best, (time.perf_counter() - t0) * 1000)
    return best, result


def stfolium_prepare(fmap: object) -> int:
    """What st_folium does before handing the map to the browser; returns the script size."""
    import streamlit_folium as sf

    fmap.get_root().render()  # type: ignore[attr-defined]
    sf._get_html(fmap)  # noqa: SLF001 (measuring the component's own steps)
    sf._get_header(fmap)  # noqa: SLF001
    return len(sf._get_map_string(fmap))  # noqa: SLF001


def _prepared_size(inputs: maps.MapInputs) -> int:
    return stfolium_prepare(maps.build_map(inputs))


def main(argv: list[str] | None = None) -> None:
    """Print one table row per filter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path,
                        help="an existing database (default: build the shipped data)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            settings = Settings(db_path=Path(tmp) / "geo_app.duckdb",
                                data_dir=PROJECT_ROOT / "data",
                                layers_dir=PROJECT_ROOT / "layers")
            build.build_database(settings)
            db = settings.db_path
        t0 = time.perf_counter()
        static = {"layers": store.read_geo_table(db, "layers"),
                  "boundaries": store.read_geo_table(db, "boundaries"),
                  "water": store.read_geo_table(db, "water"),
                  "boards": store.read_table(db, "boards")}
        print(f"overlays read once per database version: {(time.perf_counter() - t0) * 1000:.0f} "
              "ms\n")
        print(f"{'filter':28} {'rows':>5} {'query ms':>9} {'build ms':>9} {'st_folium ms':>13} "
              f"{'total ms':>9} {'script KB':>10}")
        for name, flt in FILTERS.items():
            q_ms, ents = best_of(partial(store.query_entities, db, flt))
            inputs = maps.MapInputs(entities=ents, focus_layers=flt.layers, **static)
            b_ms, fmap = best_of(partial(maps.build_map, inputs))
            s_ms, size = best_of(partial(_prepared_size, inputs))
            s_ms -= b_ms  # stfolium_prepare builds a fresh map each time
            total = q_ms + b_ms + s_ms
            print(f"{name:28} {len(ents):>5} {q_ms:>9.0f} {b_ms:>9.0f} {s_ms:>13.0f} "  # type: ignore[arg-type]
                  f"{total:>9.0f} {int(size) / 1024:>10.0f}")  # type: ignore[call-overload]
        print("\nA repeated filter is served from st.cache_data (no query); pans and zooms never "
              "rerun.")


if __name__ == "__main__":
    main()
