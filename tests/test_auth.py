"""Who may change the map (issue 15): the actor, the editors list, the core's refusal of a
viewer, attribution of every batch, the append-only audit trail across rebuilds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from geo_app import auth, build, ingest, store
from geo_app.auth import Actor, Editors
from geo_app.errors import NotAuthorisedError
from geo_app.settings import Settings, SettingsError
from tests.helpers import execute_sql

EDITORS = auth.parse_editors({"emails": ["Editor@Example.org"], "subjects": ["kc-42"]})
EDITOR = Actor(subject="ed-1", email="editor@example.org", name="Ed", is_editor=True)
VIEWER = Actor(subject="vi-1", email="viewer@example.org", name="Vi")
CSV = ("id,name_zh,kind,level,status,board,lon,lat,location_precision,source,source_datum\n"
       "u-auth,权限测试,incubator,municipal,operating,昆山市,120.98,31.38,zone,auth test,wgs84\n")
INDICATORS = "板块,indicator,year,value,unit,source,notes\n吴江区,gdp,2022,2500,亿元,my survey,\n"


@pytest.mark.parametrize(("claims", "subject", "is_editor"), [
    # not signed in: st.user without is_logged_in (AppTest's default) or with it false
    ({"email": "editor@example.org"}, "", False),
    ({"is_logged_in": False, "sub": "kc-42"}, "", False),
    # signed in but the provider sent no subject: never an identity
    ({"is_logged_in": True, "email": "editor@example.org"}, "", False),
    # listed by e-mail, compared case-insensitively
    ({"is_logged_in": True, "sub": "a", "email": "EDITOR@example.org"}, "a", True),
    # an e-mail the provider marks unverified never makes an editor (anyone could claim it)
    ({"is_logged_in": True, "sub": "a", "email": "editor@example.org",
      "email_verified": False}, "a", False),
    # listed by subject, whatever the e-mail
    ({"is_logged_in": True, "sub": "kc-42", "email": "other@example.org"}, "kc-42", True),
    # a signed-in user who is not listed is a viewer
    ({"is_logged_in": True, "sub": "b", "email": "viewer@example.org"}, "b", False),
    # is_logged_in must be the boolean true, not a truthy string from somewhere else
    ({"is_logged_in": "yes", "sub": "kc-42"}, "", False),
])
def test_actor_from_claims(claims: dict[str, object], subject: str, is_editor: bool) -> None:
    actor = auth.actor_from_claims(claims, EDITORS)
    assert (actor.subject, actor.is_editor, actor.kind) == (subject, is_editor, "oidc")


@pytest.mark.parametrize("section", [{"emails": 3}, {"subjects": [1, 2]}, {"emails": [None]}])
def test_malformed_editors_table_is_a_settings_error(section: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match=r"\[editors\]"):
        auth.parse_editors(section)


def test_local_actor_is_the_os_user_and_an_editor() -> None:
    import getpass

    actor = auth.local_actor()
    assert actor == Actor(getpass.getuser(), "", getpass.getuser(), "local", True)
    assert Editors().includes("x", "") is False


def _state(db: Path) -> tuple[str, list[str]]:
    """The database file's bytes (hashed) and the names beside it."""
    return (hashlib.sha256(db.read_bytes()).hexdigest(),
            sorted(p.name for p in db.parent.iterdir()))


@pytest.mark.parametrize("actor", [auth.ANONYMOUS, VIEWER, "editor@example.org"],
                         ids=["anonymous", "signed-in viewer", "not an Actor"])
def test_core_refuses_a_viewer_and_leaves_the_file_unchanged(writable_settings: Settings,
                                                             tmp_path: Path,
                                                             actor: Actor) -> None:
    """The page hides the controls; this is the guard behind them (a replayed request, a
    page that forgot to check, a script): every write function refuses before writing."""
    db = writable_settings.db_path
    source = tmp_path / "mine.csv"
    source.write_text(CSV, encoding="utf-8")
    batch = ingest.import_file(source, db, actor=auth.local_actor("admin"))[1]
    assert batch is not None
    report = ingest.check_upload(CSV.replace("u-auth", "u-other").encode(), "x.csv", db)
    frame = report.rows.assign(batch_id="b-x")
    before = _state(db)
    writes = {
        "ingest.import_report": lambda: ingest.import_report(report, db, actor=actor),
        "ingest.import_file": lambda: ingest.import_file(source, db, actor=actor),
        "ingest.remove_batch": lambda: ingest.remove_batch(db, batch, actor=actor),
        "ingest.import_user_indicators": lambda: ingest.import_user_indicators(
            db, INDICATORS.encode(), "mine.csv", actor=actor),
        "store.import_entities": lambda: store.import_entities(
            db, frame, {"batch_id": "b-x", "file_name": "x.csv", "imported_at": None,
                        "target": "entities", "row_count": 1, "source_datum": "WGS84"},
            frame.iloc[0:0][["id"]].rename(columns={"id": "entity_id"}).assign(layer_id=""),
            actor=actor),
        "store.delete_batch": lambda: store.delete_batch(db, batch, actor=actor),
        "store.import_board_indicators": lambda: store.import_board_indicators(
            db, ingest.parse_user_indicators(INDICATORS.encode()), file_name="x.csv",
            actor=actor),
    }
    for name, write in writes.items():
        with pytest.raises(NotAuthorisedError) as err:
            write()  # type: ignore[no-untyped-call]
        assert "only editors" in err.value.user_message or "no acting identity" in \
            err.value.user_message, name
        assert _state(db) == before, f"{name} changed the database"
    # reading stays open to everyone: a dry run checks without writing
    report, none = ingest.import_file(source, db, actor=auth.ANONYMOUS, dry_run=True)
    assert none is None and not report.ok  # u-auth is taken
    assert _state(db) == before


def test_batches_and_audit_say_who_and_when_and_survive_a_rebuild(
        writable_settings: Settings) -> None:
    db = writable_settings.db_path
    assert store.list_audit(db).empty
    report = ingest.check_upload(CSV.encode(), "mine.csv", db)
    batch = ingest.import_report(report, db, actor=EDITOR)
    _rows, ind = ingest.import_user_indicators(db, INDICATORS.encode(), "ind.csv",
                                               actor=auth.local_actor("admin"))
    batches = ingest.list_batches(db).set_index("batch_id")
    assert batches.loc[batch, ["made_by", "actor_subject", "actor_email", "actor_kind"]].tolist() \
        == ["editor@example.org", "ed-1", "editor@example.org", "oidc"]
    assert batches.loc[ind, "made_by"] == "local:admin"
    assert ingest.remove_batch(db, ind, actor=EDITOR) == 1
    build.build_database(writable_settings)  # `geo-app build`: user tables carried across
    audit = ingest.list_audit(db)
    assert audit[["action", "batch_id", "made_by", "file_name", "row_count"]].values.tolist() == [
        ["remove", ind, "editor@example.org", "ind.csv", 1],
        ["import", ind, "local:admin", "ind.csv", 1],
        ["import", batch, "editor@example.org", "mine.csv", 1],
    ]
    assert audit["changed_at"].is_monotonic_decreasing
    kept = ingest.list_batches(db)
    assert kept[["batch_id", "made_by"]].values.tolist() == [[batch, "editor@example.org"]]


def test_a_schema_3_database_keeps_its_batches_unattributed(writable_settings: Settings) -> None:
    """A database from before issue 15 (no actor columns, no audit table) is rebuilt with its
    imports: their batches say nobody rather than a guess."""
    db = writable_settings.db_path
    report = ingest.check_upload(CSV.encode(), "old.csv", db)
    batch = ingest.import_report(report, db, actor=auth.local_actor("admin"))
    execute_sql(db, [("DROP TABLE audit", []),
                     ("ALTER TABLE import_batches DROP COLUMN actor_subject", []),
                     ("UPDATE meta SET value = '3' WHERE key = 'schema_version'", [])])
    build.build_database(writable_settings)
    batches = ingest.list_batches(db)
    assert batches[["batch_id", "made_by"]].values.tolist() == [[batch, ""]]
    assert store.read_meta(db)["schema_version"] == store.SCHEMA_VERSION == "4"
    assert ingest.list_audit(db).empty
