"""DuckDB changes to the live file, each one transaction through
:func:`geo_app.store.duckdb_files.rewrite`: layer memberships, user imports of entities
and of 板块 figures, removal of a batch; every import and removal attributed in ``audit``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import geopandas as gpd
import pandas as pd

from geo_app.auth import Actor, require_editor
from geo_app.store.common import _by_board, indicator_batch, utc_now
from geo_app.store.duckdb_connect import connect
from geo_app.store.duckdb_files import rewrite, writer_lock
from geo_app.store.duckdb_read import _query
from geo_app.store.duckdb_schema import insert_frame


def _write(path: Path, statements: Sequence[tuple[str, Sequence[Any]]],
           frames: Mapping[str, pd.DataFrame] | None = None,
           after: Sequence[tuple[str, Sequence[Any]]] = (), *,
           in_place: bool = False) -> None:
    """Run the store's own write statements, frame inserts, then ``after``, as one transaction.

    Through :func:`rewrite` (copy, write, swap); ``in_place`` writes the file itself, only
    for a file that is not live yet (the build's new file).
    """
    opened = connect(path, read_only=False) if in_place else rewrite(path)
    with opened as con:
        con.execute("BEGIN")
        try:
            for sql, params in statements:
                con.execute(sql, list(params))
            for table, frame in (frames or {}).items():
                insert_frame(con, table, frame)
            for sql, params in after:
                con.execute(sql, list(params))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


#: Keeps the denormalised ``entities.layers`` column (comma-separated ids) in step with
#: ``layer_members``, so reading entities never needs a join.
_MEMBERSHIP_COLUMN_SQL: tuple[str, list[Any]] = (
    "UPDATE entities SET layers = coalesce(m.ids, '') FROM (SELECT e.id, "
    "(SELECT string_agg(layer_id, ',' ORDER BY layer_id) FROM layer_members lm "
    "WHERE lm.entity_id = e.id) AS ids FROM entities e) m WHERE entities.id = m.id "
    "AND entities.layers IS DISTINCT FROM coalesce(m.ids, '')",
    [],
)


def replace_memberships(path: Path, members: pd.DataFrame, *, in_place: bool = False) -> None:
    """Replace every layer membership by ``members`` and update ``entities.layers`` to match.

    One transaction through :func:`rewrite`; ``in_place`` writes the file itself, only for
    a file that is not live yet (the build's new file).

    Parameters
    ----------
    members
        ``(entity_id, layer_id)`` pairs, the whole new ``layer_members`` table.
    """
    _write(path, [("DELETE FROM layer_members", [])], {"layer_members": members},
           after=[_MEMBERSHIP_COLUMN_SQL], in_place=in_place)


# ----------------------------------------------------------------------------- user indicators
# (per-板块 figures imported by a user; see docs/indicators.md)


def import_board_indicators(path: Path, frame: pd.DataFrame, *, file_name: str,
                            actor: Actor) -> str:
    """Load validated user figures into ``board_indicators`` as one batch; returns its id.

    One transaction: the ``import_batches`` row (target ``board_indicators``, with who made
    it), its ``audit`` row and every figure (``origin='user'``) are written together or
    not at all.

    Raises
    ------
    NotAuthorisedError
        When ``actor`` is not an editor (nothing is written).
    """
    require_editor(actor, "import indicators")
    rows, batch = indicator_batch(frame, file_name)
    _write(path, [_batch_insert(batch, actor), _audit_insert("import", batch, actor)],
           {"board_indicators": rows})
    return str(batch["batch_id"])


# ----------------------------------------------------------------------------- attribution
# (every change says who made it and when; see docs/deploy.md)

def _actor_values(actor: Actor) -> list[str]:
    return [actor.subject, actor.email, actor.name, actor.kind]


def _batch_insert(batch: Mapping[str, Any], actor: Actor) -> tuple[str, list[Any]]:
    """The INSERT of one ``import_batches`` row attributed to ``actor``."""
    return ("INSERT INTO import_batches (batch_id, file_name, imported_at, target, row_count, "
            "source_datum, actor_subject, actor_email, actor_name, actor_kind) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [batch["batch_id"], batch["file_name"], batch["imported_at"], batch["target"],
             int(batch["row_count"]), batch["source_datum"], *_actor_values(actor)])


def _audit_insert(action: str, batch: Mapping[str, Any], actor: Actor,
                  at: Any = None) -> tuple[str, list[Any]]:
    """The INSERT of one ``audit`` row: ``action`` on ``batch`` by ``actor``."""
    return ("INSERT INTO audit (changed_at, action, batch_id, target, file_name, row_count, "
            "actor_subject, actor_email, actor_name, actor_kind) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [at if at is not None else batch.get("imported_at") or utc_now(), action,
             batch["batch_id"], batch.get("target"), batch.get("file_name"),
             None if batch.get("row_count") is None else int(batch["row_count"]),
             *_actor_values(actor)])


# ----------------------------------------------------------------------------- user entity imports
# (import batches of user entities; validation lives in geo_app.ingest, docs/import.md)

def import_entities(path: Path, frame: gpd.GeoDataFrame, batch: Mapping[str, Any],
                    members: pd.DataFrame, *, actor: Actor, retries: int = 8) -> int:
    """Write one batch of user entities as ONE transaction; returns the rows written.

    Parameters
    ----------
    frame
        Validated rows (``ENTITY_COLUMNS``, optionally ``layers``, WGS-84 point geometry)
        with ``origin='user'`` and ``batch_id`` set.
    batch
        The ``import_batches`` row: batch_id, file_name, imported_at, target, row_count,
        source_datum.
    members
        ``(entity_id, layer_id)`` pairs of the new rows, written in the same transaction.
    actor
        Who imports: recorded on the batch and in ``audit``; must be an editor.

    Raises
    ------
    NotAuthorisedError
        When ``actor`` is not an editor (the file is not even copied).
    ImportValidationError
        When an id is already taken (the transaction is rolled back; nothing is written).
    DatabaseBusyError
        When another process holds the file past the retry budget.
    """
    from geo_app.errors import ImportValidationError

    require_editor(actor, "import entities")
    with rewrite(path, retries=retries) as con:
        con.execute("BEGIN")
        try:
            con.execute(*_batch_insert(batch, actor))
            con.execute(*_audit_insert("import", batch, actor))
            n = insert_frame(con, "entities", _by_board(frame))
            insert_frame(con, "layer_members", members)
            con.execute("COMMIT")
        except duckdb.ConstraintException as err:
            con.execute("ROLLBACK")
            msg = (f"An id of this file is already in the database ({err}); nothing was imported. "
                   "/ 文件中的编号已存在于数据库中，未导入任何数据。")
            raise ImportValidationError(msg) from err
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return n


def delete_batch(path: Path, batch_id: str, *, actor: Actor) -> int | None:
    """Delete an import batch and its rows (entities, memberships, figures) in one transaction.

    The removal is recorded in ``audit`` (who, when, the batch's file and the rows removed)
    in the same transaction. Returns the number of data rows removed, or None when there
    is no such batch.

    Raises
    ------
    NotAuthorisedError
        When ``actor`` is not an editor (nothing is written).
    """
    require_editor(actor, "remove an import batch")
    with writer_lock(path):
        found = _query(path, "SELECT batch_id, file_name, target FROM import_batches "
                       "WHERE batch_id = ?", [batch_id])
        if found.empty:
            return None
        return _delete_batch(path, found.iloc[0].to_dict(), actor)


def _delete_batch(path: Path, batch: Mapping[str, Any], actor: Actor) -> int:
    batch_id = str(batch["batch_id"])
    with rewrite(path) as con:
        con.execute("BEGIN")
        try:
            n = (con.execute("SELECT (SELECT count(*) FROM entities WHERE batch_id = ? AND "
                             "origin = 'user') + (SELECT count(*) FROM board_indicators WHERE "
                             "batch_id = ? AND origin = 'user')",
                             [batch_id, batch_id]).fetchone() or (0,))[0]
            con.execute(*_audit_insert("remove", {**batch, "row_count": int(n)}, actor,
                                       at=utc_now()))
            con.execute("DELETE FROM layer_members WHERE entity_id IN (SELECT id FROM entities "
                        "WHERE batch_id = ? AND origin = 'user')", [batch_id])
            con.execute("DELETE FROM entities WHERE batch_id = ? AND origin = 'user'", [batch_id])
            con.execute("DELETE FROM board_indicators WHERE batch_id = ? AND origin = 'user'",
                        [batch_id])
            con.execute("DELETE FROM import_batches WHERE batch_id = ?", [batch_id])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return int(n)
