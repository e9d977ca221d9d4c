"""Copy Leaflet and its plugins from the XStatic PyPI packages into ``static/vendor/``
(offline map).

Streamlit serves the ``static/`` folder beside ``streamlit_app.py`` at ``/app/static/``
(``server.enableStaticServing = true`` in ``.streamlit/config.toml``), so the map loads
every script, stylesheet and image from the app itself and never from a CDN. The files
are copied at first start, the way the database is built, so nothing third-party is
committed; ``static/vendor/`` is git-ignored.

Only what the map uses is served: Leaflet (script, stylesheet, control images) and
Leaflet.markercluster. The map draws its own SVG markers, so jQuery, Bootstrap,
Font Awesome and awesome-markers are not needed.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from geo_app.errors import GeoAppError
from geo_app.settings import PROJECT_ROOT

#: Folder Streamlit serves at ``/app/static/``.
STATIC_DIR = PROJECT_ROOT / "static"
#: Where the vendored files go (``/app/static/vendor/...``).
VENDOR_DIR = STATIC_DIR / "vendor"
#: URL path of :data:`VENDOR_DIR` when the app runs at the server root.
VENDOR_URL = "/app/static/vendor"
#: Where the export page writes files for the browser to download (git-ignored).
DOWNLOADS_DIR = STATIC_DIR / "downloads"
#: URL path of :data:`DOWNLOADS_DIR` when the app runs at the server root.
DOWNLOADS_URL = "/app/static/downloads"

_MANIFEST = ".manifest.json"


@dataclass(frozen=True)
class Bundle:
    """Files of one XStatic package to serve.

    Attributes
    ----------
    name
        Folder under ``static/vendor/`` (also the URL segment).
    module
        The XStatic module (``xstatic.pkg.<name>``) whose ``BASE_DIR`` holds the files.
    files
        Paths relative to ``BASE_DIR``.
    """

    name: str
    module: str
    files: tuple[str, ...]


BUNDLES: tuple[Bundle, ...] = (
    Bundle("leaflet", "xstatic.pkg.leaflet",
           ("leaflet.js", "leaflet.css", "images/layers.png", "images/layers-2x.png",
            "images/marker-icon.png", "images/marker-icon-2x.png", "images/marker-shadow.png")),
    Bundle("leaflet.markercluster", "xstatic.pkg.leaflet_markercluster",
           ("leaflet.markercluster.js", "MarkerCluster.css", "MarkerCluster.Default.css")),
)


class AssetError(GeoAppError, RuntimeError):
    """A map asset package is missing or the static folder cannot be written."""


def _package_dir(bundle: Bundle) -> tuple[Path, str]:
    try:
        mod = import_module(bundle.module)
    except ImportError as err:
        msg = (f"The map asset package {bundle.module} is not installed; run "
               f"'pip install -e .' (it is a dependency of geo-app).")
        raise AssetError(msg) from err
    return Path(mod.BASE_DIR), str(getattr(mod, "PACKAGE_VERSION", "?"))


def _wanted() -> dict[str, str]:
    """Manifest of what should be in the vendor folder: bundle -> package version."""
    return {b.name: _package_dir(b)[1] for b in BUNDLES}


def _read_manifest(vendor_dir: Path) -> dict[str, str] | None:
    try:
        data = json.loads((vendor_dir / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def assets_ready(vendor_dir: Path = VENDOR_DIR) -> bool:
    """True when every file of every bundle is present, copied from the installed versions."""
    if _read_manifest(vendor_dir) != _wanted():
        return False
    return all((vendor_dir / b.name / f).is_file() for b in BUNDLES for f in b.files)


def ensure_assets(vendor_dir: Path = VENDOR_DIR) -> Path:
    """Copy the map's scripts, styles and images into ``vendor_dir`` unless already there.

    Each file is written under a temporary name and renamed into place, and the
    manifest is written last, so a crash mid-copy is repaired at the next start.
    Concurrent starts are serialised with a lock file.

    Returns
    -------
    Path
        ``vendor_dir``.

    Raises
    ------
    AssetError
        If an XStatic package is missing or a file cannot be copied.
    """
    if assets_ready(vendor_dir):
        return vendor_dir
    try:
        vendor_dir.mkdir(parents=True, exist_ok=True)
        with open(vendor_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not assets_ready(vendor_dir):
                    _copy_all(vendor_dir)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    except OSError as err:
        msg = f"Cannot write the map assets into {vendor_dir}: {err}"
        raise AssetError(msg) from err
    return vendor_dir


def _copy_all(vendor_dir: Path) -> None:
    manifest: dict[str, str] = {}
    for bundle in BUNDLES:
        src_dir, version = _package_dir(bundle)
        for rel in bundle.files:
            src = src_dir / rel
            if not src.is_file():
                msg = f"{bundle.module} {version} lacks {rel} (looked in {src_dir})"
                raise AssetError(msg)
            dest = vendor_dir / bundle.name / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        manifest[bundle.name] = version
    tmp = vendor_dir / (_MANIFEST + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, vendor_dir / _MANIFEST)


def asset_urls(base_url: str = VENDOR_URL) -> dict[str, str]:
    """URLs of the served files under ``base_url`` (no trailing slash).

    >>> asset_urls("/app/static/vendor")["leaflet_js"]
    '/app/static/vendor/leaflet/leaflet.js'
    """
    base = base_url.rstrip("/")
    return {
        "leaflet_js": f"{base}/leaflet/leaflet.js",
        "leaflet_css": f"{base}/leaflet/leaflet.css",
        "markercluster_js": f"{base}/leaflet.markercluster/leaflet.markercluster.js",
        "markercluster_css": f"{base}/leaflet.markercluster/MarkerCluster.css",
        "markercluster_default_css": f"{base}/leaflet.markercluster/MarkerCluster.Default.css",
    }


def vendor_url(base_url_path: str = "") -> str:
    """The URL of the vendor folder for a Streamlit ``server.baseUrlPath`` ('' at the root).

    >>> vendor_url("maps/")
    '/maps/app/static/vendor'
    """
    prefix = base_url_path.strip("/")
    return f"/{prefix}{VENDOR_URL}" if prefix else VENDOR_URL


def downloads_url(base_url_path: str = "") -> str:
    """The URL of the downloads folder for a Streamlit ``server.baseUrlPath`` ('' at the root).

    >>> downloads_url("maps/"), downloads_url("")
    ('/maps/app/static/downloads', '/app/static/downloads')
    """
    prefix = base_url_path.strip("/")
    return f"/{prefix}{DOWNLOADS_URL}" if prefix else DOWNLOADS_URL
