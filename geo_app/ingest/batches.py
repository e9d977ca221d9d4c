"""Write a validated file as one import batch, remove a batch, list batches and the audit
trail; every write under :func:`geo_app.store.writer_lock`, by an editor."""

from __future__ import annotations

import time as time_mod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geo_app import store
from geo_app.auth import Actor, require_editor
from geo_app.errors import DatabaseBusyError, ImportValidationError
from geo_app.ingest.report import BatchNotFoundError, ImportReport, _Rejected
from geo_app.ingest.schema import BUSY_TIMEOUT_SECONDS
from geo_app.ingest.text import _short
from geo_app.ingest.upload import _clean_file_name, check_upload, read_file


def import_report(report: ImportReport, db_path: Path, *, actor: Actor,
                  now: datetime | None = None,
                  busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> str:
    """Write a validated report as one import batch (one transaction); returns the batch id.

    The rows go to ``entities`` with ``origin='user'`` and the batch id, a row goes to
    ``import_batches``, and the layer memberships of the new points go to
    ``layer_members`` — all in one DuckDB transaction, so a crash leaves the database as
    it was before or fully after. The batch row and an ``audit`` row record ``actor`` (an
    editor: checked before anything else) and the time.

    Raises
    ------
    NotAuthorisedError
        If ``actor`` is not an editor (nothing is read or written).
    ImportValidationError
        If the report has errors, or an id arrived in the store meanwhile.
    DatabaseBusyError
        If a process outside the app holds the database read-write for ``busy_timeout``
        seconds (another import or a rebuild is waited for, not an error).
    """
    from geo_app.layers import compute_membership  # layers imports store only; no cycle

    require_editor(actor, "import entities")
    if not report.ok:
        raise report.to_error()
    now = now or datetime.now(UTC)
    batch_id = store.new_batch_id(db_path, now)
    frame = report.rows.copy()
    frame["batch_id"] = batch_id
    with store.writer_lock(Path(db_path)):  # no rebuild swaps the file between check and write
        taken = sorted(set(frame["id"]) & store.entity_ids(db_path))
        if taken:
            msg = (f"ids already in the database: {', '.join(taken[:10])}; nothing was imported / "
                   f"数据库中已有这些编号，未导入任何数据")
            raise ImportValidationError(msg)
        members = compute_membership(frame, store.read_geo_table(db_path, "layers"))
        joined = members.groupby("entity_id")["layer_id"].agg(lambda s: ",".join(sorted(s)))
        frame["layers"] = [joined.get(i, "") for i in frame["id"]]
        batch = {"batch_id": batch_id, "file_name": report.file_name,
                 "imported_at": now.astimezone(UTC).replace(tzinfo=None), "target": "entities",
                 "row_count": len(frame), "source_datum": report.datum}
        _write_batch(db_path, frame, batch, members, actor, busy_timeout)
    return batch_id


def _write_batch(db_path: Path, frame: gpd.GeoDataFrame, batch: dict[str, Any],
                 members: pd.DataFrame, actor: Actor, busy_timeout: float) -> None:
    """Short rounds of backoff (about 1.5 s each) until the time budget is spent.

    This app's readers never block a write (it goes to a copy); only a process outside
    the protocol holding the file read-write does, and short, jittered attempts find the
    moment it lets go far more surely than a few long sleeps.
    """
    deadline = time_mod.monotonic() + busy_timeout
    while True:
        try:
            store.import_entities(db_path, frame, batch, members, actor=actor, retries=4)
            return
        except DatabaseBusyError:
            if time_mod.monotonic() >= deadline:
                raise


def import_file(path: Path, db_path: Path, *, actor: Actor, datum: str | None = None,
                dry_run: bool = False) -> tuple[ImportReport, str | None]:
    """Check a file and, unless ``dry_run`` or it has errors, import it as ``actor``.

    A dry run writes nothing and is open to anyone; a write needs an editor
    (:func:`import_report`), refused before the file is read.

    Returns
    -------
    tuple
        The report and the batch id (None when nothing was written).
    """
    if not dry_run:
        require_editor(actor, "import entities")
    path = Path(path)
    try:
        data = read_file(path)
    except _Rejected as err:
        return ImportReport(file_name=_clean_file_name(path.name), problems=[err.problem]), None
    report = check_upload(data, path.name, db_path, datum=datum)
    if dry_run or not report.ok:
        return report, None
    return report, import_report(report, db_path, actor=actor)


def remove_batch(db_path: Path, batch_id: str, *, actor: Actor) -> int:
    """Delete one import batch, its rows and their layer memberships; returns the rows removed.

    The removal is recorded in the ``audit`` table with ``actor`` and the time.

    Raises
    ------
    NotAuthorisedError
        If ``actor`` is not an editor (nothing is written).
    BatchNotFoundError
        If there is no such batch.
    """
    require_editor(actor, "remove an import batch")
    removed = store.delete_batch(db_path, batch_id, actor=actor)  # under the writer lock
    if removed is None:
        msg = f"No import batch '{_short(batch_id)}' / 没有编号为“{_short(batch_id)}”的导入批次"
        raise BatchNotFoundError(msg)
    return removed


def list_batches(db_path: Path) -> pd.DataFrame:
    """The import batches, newest first, with the number of their rows still present and
    who made each (``made_by``)."""
    return store.list_batches(db_path)


def list_audit(db_path: Path) -> pd.DataFrame:
    """Every import and removal, newest first, with who made it and when (append-only)."""
    return store.list_audit(db_path)
