"""PostGIS writes: memberships, user imports and removals, each one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import psycopg

from geo_app.auth import Actor, require_editor
from geo_app.errors import DatabaseBusyError, DataError, ImportValidationError
from geo_app.store.common import (
    _by_board,
    import_batch_id,
    indicator_batch,
    utc_now,
)
from geo_app.store.postgis_connect import (
    LOCK_KEY,
    SCHEMA_NAME,
    SERIAL_SCHEMA,
    _pool,
    _primary_url,
    _write,
)
from geo_app.store.postgis_schema import _python, insert_frame

_MEMBERSHIP_COLUMN_SQL = (
    "UPDATE entities SET layers = coalesce(m.ids, '') FROM (SELECT e.id, "
    "(SELECT string_agg(layer_id, ',' ORDER BY layer_id) FROM layer_members lm "
    "WHERE lm.entity_id = e.id) AS ids FROM entities e) m WHERE entities.id = m.id "
    "AND entities.layers IS DISTINCT FROM coalesce(m.ids, '')")


def replace_memberships(path: Path | str, members: pd.DataFrame, *,
                        in_place: bool = False) -> None:
    """Replace every layer membership by ``members`` and update ``entities.layers``, in one
    transaction (``in_place`` is accepted for the DuckDB signature; it changes nothing)."""
    with _write(path) as con:
        con.execute("DELETE FROM layer_members")
        insert_frame(con, "layer_members", members)
        con.execute(_MEMBERSHIP_COLUMN_SQL)


_SERIAL = f"{SERIAL_SCHEMA}.batch_serial"


def _next_serial() -> int:
    """A number no other call on this server ever gets: the next value of the batch
    sequence on the primary (made on first use; a sequence never hands a value out twice,
    whatever the transactions around it do)."""
    with _pool(_primary_url(), SCHEMA_NAME).connection() as con:
        for _ in range(3):
            try:
                with con.transaction():
                    row = con.execute("SELECT nextval(%s)", [_SERIAL]).fetchone()
                return int(row[0]) if row else 0
            except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
                _create_serial(con)
    msg = f"Cannot make the sequence {_SERIAL} numbering import batches"
    raise DataError(msg)


def _create_serial(con: psycopg.Connection[Any]) -> None:
    try:
        with con.transaction():
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {SERIAL_SCHEMA}")
            con.execute(f"CREATE SEQUENCE IF NOT EXISTS {_SERIAL}")
    except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject,
            psycopg.errors.DuplicateSchema, psycopg.errors.DuplicateTable):
        pass  # another process made it at the same moment


def new_batch_id(path: Path | str, now: Any) -> str:
    """The id of a new import batch, ``imp-<time>-<6 hex digits>`` as on DuckDB, the digits
    numbered by a server sequence: unique by construction across processes and rebuilds."""
    return import_batch_id(now, _next_serial())


def _actor_values(actor: Actor) -> list[str]:
    return [actor.subject, actor.email, actor.name, actor.kind]


def _batch_insert(con: psycopg.Connection[Any], batch: Mapping[str, Any], actor: Actor) -> None:
    con.execute("INSERT INTO import_batches (batch_id, file_name, imported_at, target, "
                "row_count, source_datum, actor_subject, actor_email, actor_name, actor_kind) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [batch["batch_id"], batch["file_name"], _python(batch["imported_at"]),
                 batch["target"], int(batch["row_count"]), batch["source_datum"],
                 *_actor_values(actor)])


def _audit_insert(con: psycopg.Connection[Any], action: str, batch: Mapping[str, Any],
                  actor: Actor, at: Any = None) -> None:
    con.execute("INSERT INTO audit (changed_at, action, batch_id, target, file_name, row_count, "
                "actor_subject, actor_email, actor_name, actor_kind) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [_python(at if at is not None else batch.get("imported_at") or utc_now()),
                 action, batch["batch_id"], batch.get("target"), batch.get("file_name"),
                 None if batch.get("row_count") is None else int(batch["row_count"]),
                 *_actor_values(actor)])


def _shared_xact_lock(con: psycopg.Connection[Any]) -> None:
    """Inside a write transaction: wait for a rebuild (never for another import)."""
    con.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LOCK_KEY])


def import_entities(path: Path | str, frame: gpd.GeoDataFrame, batch: Mapping[str, Any],
                    members: pd.DataFrame, *, actor: Actor, retries: int = 8) -> int:
    """Write one batch of user entities as ONE transaction; returns the rows written.

    As ``geo_app.store.import_entities``; an id already present (or arriving from another
    import at the same time) rolls the whole batch back.

    Raises
    ------
    NotAuthorisedError
        When ``actor`` is not an editor.
    ImportValidationError
        When an id (or the batch id) is already taken; nothing is written.
    """
    require_editor(actor, "import entities")
    try:
        with _write(path) as con:
            _shared_xact_lock(con)
            _batch_insert(con, batch, actor)
            _audit_insert(con, "import", batch, actor)
            n = insert_frame(con, "entities", _by_board(frame))
            insert_frame(con, "layer_members", members)
    except psycopg.errors.UniqueViolation as err:
        if err.diag.table_name == "import_batches":  # another import drew the same batch id
            msg = (f"Another import took the batch id {batch['batch_id']} at the same moment; "
                   "nothing was imported: import the file again. / 批次编号冲突，未导入任何数据，"
                   "请重新导入。")
        else:
            msg = (f"An id of this file is already in the database "
                   f"({err.diag.message_detail}); nothing was imported. / "
                   "文件中的编号已存在于数据库中，未导入任何数据。")
        raise ImportValidationError(msg) from err
    except psycopg.errors.LockNotAvailable as err:
        msg = ("The database is busy (a rebuild is running). Try again in a moment. / "
               "数据库正忙，请稍后重试。")
        raise DatabaseBusyError(msg) from err
    return n


def import_board_indicators(path: Path | str, frame: pd.DataFrame, *, file_name: str,
                            actor: Actor) -> str:
    """Load validated user figures into ``board_indicators`` as one batch; returns its id."""
    require_editor(actor, "import indicators")
    rows, batch = indicator_batch(frame, file_name, _next_serial())
    with _write(path) as con:
        _shared_xact_lock(con)
        _batch_insert(con, batch, actor)
        _audit_insert(con, "import", batch, actor)
        insert_frame(con, "board_indicators", rows)
    return str(batch["batch_id"])


def delete_batch(path: Path | str, batch_id: str, *, actor: Actor) -> int | None:
    """Delete an import batch and its rows in one transaction, recorded in ``audit``;
    the rows removed, or None when there is no such batch."""
    require_editor(actor, "remove an import batch")
    with _write(path) as con:
        _shared_xact_lock(con)
        found = con.execute("SELECT batch_id, file_name, target FROM import_batches "
                            "WHERE batch_id = %s FOR UPDATE", [batch_id]).fetchone()
        if found is None:
            con.rollback()
            return None
        batch = {"batch_id": found[0], "file_name": found[1], "target": found[2]}
        row = con.execute("SELECT (SELECT count(*) FROM entities WHERE batch_id = %s AND "
                          "origin = 'user') + (SELECT count(*) FROM board_indicators WHERE "
                          "batch_id = %s AND origin = 'user')", [batch_id, batch_id]).fetchone()
        n = int(row[0]) if row else 0
        _audit_insert(con, "remove", {**batch, "row_count": n}, actor, at=utc_now())
        con.execute("DELETE FROM layer_members WHERE entity_id IN (SELECT id FROM entities "
                    "WHERE batch_id = %s AND origin = 'user')", [batch_id])
        con.execute("DELETE FROM entities WHERE batch_id = %s AND origin = 'user'", [batch_id])
        con.execute("DELETE FROM board_indicators WHERE batch_id = %s AND origin = 'user'",
                    [batch_id])
        con.execute("DELETE FROM import_batches WHERE batch_id = %s", [batch_id])
    return n
