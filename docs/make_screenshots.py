"""Render the real app into ``docs/screenshots/`` (map and comparison, zh and en).

Run by hand from the project root after ``pip install -e ".[test]"``, with Debian's
``chromium`` and a CJK font (``fonts-noto-cjk``) installed::

XX
    python -m docs.make_screenshots --size 390x844 --out /tmp/phone

It builds a database from ``data/`` in a temporary folder, starts ``streamlit run
streamlit_app.py`` on it (as the benchmarks do), waits until the map has drawn its
overlays, and saves one PNG per page and language. No request leaves localhost.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.bench_map import chromium, streamlit_app
from geo_app import build
from geo_app.settings import PROJECT_ROOT
from tests.conftest import copy_sources

OUT = PROJECT_ROOT / "docs" / "screenshots"
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
#: (file stem, URL path and query) of each picture.
SHOTS = [
    ("map-zh", "/?lang=zh"),
    ("map-en", "/?lang=en"),
    ("map-sip-zh", "/?lang=zh&board=苏州工业园区"),
    ("compare-zh", "/compare?lang=zh"),
    ("compare-en", "/compare?lang=en"),
]


def _local_only(page: object) -> None:
    def route(r: object) -> None:
        url = r.request.url  # type: ignore[attr-defined]
        if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:", "about:")):
            r.continue_()  # type: ignore[attr-defined]
        else:
            r.abort()  # type: ignore[attr-defined]

    page.route("**/*", route)  # type: ignore[attr-defined]


def take(url: str, out: Path, width: int, height: int) -> list[Path]:
    """Save every picture of :data:`SHOTS` from the app at ``url``; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with chromium() as browser:
        for stem, path in SHOTS:
            page = browser.new_page(viewport={"width": width, "height": height})
            _local_only(page)
            page.goto(url + path)
            page.locator("h1").first.wait_for(timeout=90_000)
            if path.startswith("/?"):  # the map page: wait until Leaflet drew the overlays
                frame = page.frame_locator(MAP_FRAME).first
                frame.locator("path.leaflet-interactive").first.wait_for(state="attached",
                                                                          timeout=90_000)
                # a new visitor's sidebar widgets come one run after the map
                widgets = '[data-testid="stSidebar"] [data-testid="stMultiSelect"]'
                page.locator(widgets).first.wait_for(timeout=30_000)
            page.wait_for_timeout(3000)  # tiles are off; let charts, fonts and layout settle
            file = out / f"{stem}.png"
            page.screenshot(path=str(file))
            saved.append(file)
            page.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x800", help="viewport WIDTHxHEIGHT")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG files")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        settings = copy_sources(Path(tmp))
        build.build_database(settings)
        with streamlit_app(settings, Path(tmp) / "streamlit.log") as url:
            for file in take(url, args.out, width, height):
                print(file)


if __name__ == "__main__":
    main()
