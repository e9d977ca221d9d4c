"""The app's downloads: exports written by :func:`geo_app.export.files.export_file` into
new unguessable folders the app serves from disk, removed after a while."""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from geo_app.errors import ExportError
from geo_app.export.files import _check_request, export_file
from geo_app.export.formats import file_name
from geo_app.filters import EntityFilter

# ----------------------------------------------------------------------------- app downloads


#: How long a prepared download stays on disk (seconds) before the next export removes it.
DOWNLOAD_MAX_AGE_S = 15 * 60
#: A download folder's name: ``secrets.token_urlsafe(24)`` (32 characters, 192 random bits).
_DOWNLOAD_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_own_download_dirs: set[Path] = set()
_download_lock = threading.Lock()


@dataclass(frozen=True)
class Download:
    """An export written for the app to serve from disk.

    Attributes
    ----------
    path
        The file: ``<root>/<token>/<file name>``.
    url_path
        Its path below the served root, ``<token>/<file name>`` (URL-safe as it is:
        the token is URL-safe base64 and the name is :func:`file_name`'s).
    name
        The file name (:func:`file_name`: from the fixed collections and formats).
    size
        Bytes.
    features
        Features written.
    """

    path: Path
    url_path: str
    name: str
    size: int
    features: int


def clear_old_downloads(root: Path, max_age_s: float = DOWNLOAD_MAX_AGE_S, *,
                        now: float | None = None) -> list[Path]:
    """Delete the download folders in ``root`` not modified for ``max_age_s`` seconds.

    Only real folders (never a symlink) named like a token are removed; a file being
    served while its folder is removed is still read to its end (the open file lives on).

    Returns
    -------
    list of Path
        The folders deleted.
    """
    now = time.time() if now is None else now
    gone = []
    for entry in root.glob("*") if root.is_dir() else []:
        try:
            st = entry.lstat()
        except OSError:
            continue
        if (_DOWNLOAD_TOKEN.fullmatch(entry.name) and stat.S_ISDIR(st.st_mode)
                and now - st.st_mtime > max_age_s):
            shutil.rmtree(entry, ignore_errors=True)
            gone.append(entry)
    return gone


def _remove_own_downloads(pid: int) -> None:
    if os.getpid() == pid:  # not from a forked child that inherited the exit handler
        for folder in list(_own_download_dirs):
            shutil.rmtree(folder, ignore_errors=True)


def _new_download_dir(root: Path) -> Path:
    """A new folder ``root/<token>`` of this process, removed at its exit at the latest."""
    with _download_lock:
        root.mkdir(parents=True, exist_ok=True)
        folder = root / secrets.token_urlsafe(24)
        folder.mkdir()  # a collision (2**-192) fails rather than shares a folder
        if not _own_download_dirs:
            atexit.register(_remove_own_downloads, os.getpid())
        _own_download_dirs.add(folder)
        return folder


def prepare_download(db_path: Path, collection: str, fmt: str, root: Path, *,
                     flt: EntityFilter | None = None,
                     max_age_s: float = DOWNLOAD_MAX_AGE_S) -> Download:
    """Write an export into a new unguessable folder under ``root`` for the app to serve.

    :func:`export_file` (the function behind ``geo-app export -o``, so the bytes are the
    command line's) streams the export to ``root/<secrets.token_urlsafe(24)>/<file name>``;
    nothing of the file is held in memory. Folders in ``root`` older than ``max_age_s``
    are removed first (:func:`clear_old_downloads`), and the process removes its own
    folders when it exits. A failed export leaves no folder. The file is never beside the
    database: it is alone in its new folder, and :func:`export_file` refuses database files.

    Raises
    ------
    ExportError
        For a bad request, or when the folder or file cannot be written (the system's
        reason, e.g. a full disk, is in the message).
    """
    _check_request(collection, fmt, flt)
    clear_old_downloads(root, max_age_s)
    try:
        folder = _new_download_dir(root)
    except OSError as err:
        msg = f"Cannot prepare the download: no folder can be created in {root} " \
              f"({err.strerror or err})"
        raise ExportError(msg) from err
    name = file_name(collection, fmt)
    done = False
    try:
        n = export_file(db_path, collection, fmt, folder / name, flt=flt)
        size = (folder / name).stat().st_size
        done = True
    finally:
        if not done:
            shutil.rmtree(folder, ignore_errors=True)
            _own_download_dirs.discard(folder)
    return Download(path=folder / name, url_path=f"{folder.name}/{name}", name=name,
                    size=size, features=n)
