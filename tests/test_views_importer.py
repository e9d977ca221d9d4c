"""The import page (AppTest): upload, bilingual report, import, batches, removal; read-only
unless an editor signed in (``AppTest.user`` and ``AppTest.secrets`` seed ``st.user`` and the
``[auth]``/``[editors]`` tables; the sign-in itself is tested in tests/test_browser_auth.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from geo_app import auth, datum, ingest, store
from geo_app.settings import Settings
from tests.helpers import run_apptest
from tests.hostile_inputs import hostile_files

TIMEOUT = 90
HEADER = ("id,name_zh,name_en,kind,level,status,board,lon,lat,location_precision,"
          "location_source,source_datum,source,notes\n")


def _page() -> None:
    from geo_app.views import importer

    importer.render()


#: ``[auth]`` as a deployment writes it (never used to sign in here: AppTest seeds the user).
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
        "client_id": "geo-app", "client_secret": "secret",
        "server_metadata_url": "http://localhost:9400/.well-known/openid-configuration"}
EDITOR = {"is_logged_in": True, "sub": "ed-1", "email": "editor@example.org", "name": "Ed"}
VIEWER = {"is_logged_in": True, "sub": "vi-1", "email": "viewer@example.org", "name": "Vi"}


def _run(lang: str = "zh", *, user: dict[str, object] | None = EDITOR,
         secrets: dict[str, object] | None = None) -> AppTest:
    """The page as ``user`` sees it (default: a signed-in editor; None: not signed in)."""
    at = AppTest.from_function(_page, default_timeout=TIMEOUT)
    at.secrets = secrets if secrets is not None else {
        "auth": AUTH, "editors": {"emails": ["Editor@Example.org"]}}
    at.user = dict(user) if user is not None else {"is_logged_in": False}
    return run_apptest(at, {"lang": lang}, errors_allowed=True)


WRITE_KEYS = ("imp_file_0", "imp_datum", "imp_do", "imp_remove", "imp_remove_choice",
              "imp_remove_confirm")


def _write_controls(at: AppTest) -> list[str]:
    """Keys of the write controls on the page (uploaders, datum, import and removal)."""
    keys = [w.key for w in [*at.file_uploader, *at.selectbox, *at.button, *at.checkbox]]
    return [k for k in keys if k and (k in WRITE_KEYS or k.startswith("imp_file_"))]


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _upload(at: AppTest, name: str, text: str, generation: int = 0) -> AppTest:
    at.file_uploader(key=f"imp_file_{generation}").set_value((name, text.encode(), "text/csv"))
    at.run()
    _ok(at)
    return at


def _table(at: AppTest, column: str):  # type: ignore[no-untyped-def]
    """The first table on the page with ``column`` (AppTest does not expose dataframe keys)."""
    for frame in at.dataframe:
        if column in frame.value.columns:
            return frame.value
    raise AssertionError(f"no table with column {column!r}")


def _good(**cells: str) -> str:
    row = {"id": "u-page", "name_zh": "页面测试", "lon": "120.7385", "lat": "31.2655",
           "source_datum": "WGS84", "kind": "incubator", **cells}
    return HEADER + (f"{row['id']},{row['name_zh']},,{row['kind']},municipal,operating,"
                     f"苏州工业园区,{row['lon']},{row['lat']},zone,test,{row['source_datum']},"
                     "page test,\n")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_with_template_and_no_batches(writable_settings: Settings, lang: str) -> None:
    at = _run(lang)
    assert not at.error
    assert at.title[0].value == ("导入自有主体" if lang == "zh" else "Import your own entities")
    assert len(at.get("download_button")) == 1
    uploader = at.file_uploader(key="imp_file_0")
    assert set(uploader.allowed_type) >= {".csv", ".xlsx", ".geojson", ".json"}
    captions = " ".join(c.value for c in at.caption)
    assert ("尚无导入批次" if lang == "zh" else "No import batches yet") in captions
    assert "editor@example.org" in captions.replace("\\", ""), "the editor is named"


def _import_as_cli(db: Path) -> str:
    report = ingest.check_upload(_good(id="u-cli").encode(), "cli.csv", db)
    return ingest.import_report(report, db, actor=auth.local_actor("admin"))


@pytest.mark.parametrize(("case", "user", "secrets"), [
    ("no [auth] configured", None, {"other": {"x": 1}}),
    ("not signed in", None, None),
    ("signed in, not on the editors list", VIEWER, None),
    ("editor list names the e-mail, but the provider says it is unverified",
     {**EDITOR, "email_verified": False}, None),
    ("AppTest's default user (an e-mail without is_logged_in)",
     {"email": "editor@example.org"}, None),
])
def test_viewers_see_no_write_control(writable_settings: Settings, case: str,
                                      user: dict[str, object] | None,
                                      secrets: dict[str, object] | None) -> None:
    _import_as_cli(writable_settings.db_path)  # a batch exists, so removal could be offered
    at = _run("en", user=user, secrets=secrets)
    _ok(at)
    assert _write_controls(at) == [], case
    assert not at.file_uploader, case
    batches = _table(at, "rows_present")
    assert list(batches["made_by"]) == ["local:admin"], "who imported is shown to everyone"
    audit = _table(at, "action")
    assert list(audit["action"]) == ["import"] and list(audit["made_by"]) == ["local:admin"]


def test_without_auth_the_page_says_how_to_enable_editing(writable_settings: Settings) -> None:
    at = _run("en", user=None, secrets={"other": {"x": 1}})
    assert any("To enable editing" in i.value and "[auth]" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "auth_sign_in"], "no sign-in without [auth]"


def test_signed_out_visitor_is_offered_sign_in_and_a_viewer_is_named(
        writable_settings: Settings) -> None:
    at = _run("en", user=None)
    assert at.button(key="auth_sign_in").label == "Sign in (editors)"
    at = _run("en", user=VIEWER)
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any("viewer@example.org" in c and "read-only" in c for c in captions), captions
    assert at.button(key="auth_sign_out")


def test_upload_check_import_list_and_remove(writable_settings: Settings) -> None:
    db = writable_settings.db_path
    before = store.count_entities(db)
    at = _upload(_run("en"), "mine.csv", _good())
    assert not at.error
    assert "ready to import" in at.success[0].value
    assert at.button(key="imp_do").disabled is False
    preview = _table(at, "source_lon")
    assert list(preview["id"]) == ["u-page"]
    assert store.count_entities(db) == before, "checking writes nothing"

    at.button(key="imp_do").click().run()
    _ok(at)
    assert store.count_entities(db) == before + 1
    batch = ingest.list_batches(db)["batch_id"].iloc[0]
    shown = [s.value.replace("\\", "") for s in at.success]  # Markdown-escaped text
    assert any(batch in text for text in shown), "the import is confirmed with its batch"
    assert list(_table(at, "rows_present")["batch_id"]) == [batch]
    assert len(at.file_uploader) == 1 and at.file_uploader[0].key == "imp_file_1", \
        "the uploader is cleared after an import"

    at.selectbox(key="imp_remove_choice").set_value(batch).run()
    assert at.button(key="imp_remove").disabled, "removal needs the confirmation box"
    at.checkbox(key="imp_remove_confirm").check().run()
    at.button(key="imp_remove").click().run()
    _ok(at)
    assert store.count_entities(db) == before
    assert ingest.list_batches(db).empty


def test_rejected_file_shows_bilingual_report_and_cannot_be_imported(
        writable_settings: Settings) -> None:
    db = writable_settings.db_path
    before = store.count_entities(db)
    at = _upload(_run("zh"), "bad.csv", _good(kind="labratory"))
    assert "不能导入" in at.error[0].value
    problems = _table(at, "problem")
    assert list(problems["列 column"]) == ["kind"]
    assert "第 2 行 / row 2" in problems["位置 where"].iloc[0]
    assert "did you mean 'laboratory'" in problems["problem"].iloc[0]
    assert "是否应为“laboratory”" in problems["问题"].iloc[0]
    assert at.button(key="imp_do").disabled
    assert store.count_entities(db) == before


def test_datum_choice_converts_coordinates(writable_settings: Settings) -> None:
    gx, gy = datum.wgs84_to_gcj02(120.7385, 31.2655)
    at = _run("en")
    at.selectbox(key="imp_datum").set_value("gcj02").run()
    _upload(at, "amap.csv", _good(lon=repr(float(gx)), lat=repr(float(gy)), source_datum=""))
    preview = _table(at, "source_lon")
    assert abs(preview["lon"].iloc[0] - 120.7385) < 1e-5
    assert abs(preview["lat"].iloc[0] - 31.2655) < 1e-5
    assert preview["source_datum"].iloc[0] == "GCJ02"


def test_user_values_are_shown_as_text_never_html(writable_settings: Settings) -> None:
    payload = "<img src=x onerror=alert(1)>"
    at = _upload(_run("en"), "<b onmouseover=alert(1)>x.csv",
                 _good(name_zh=payload.replace(",", "")))
    at.button(key="imp_do").click().run()
    _ok(at)
    assert payload in set(store.query_entities(writable_settings.db_path)["name_zh"])
    for element in [*at.markdown, *at.caption]:
        assert not element.proto.allow_html, "no element may render user HTML"
        assert payload not in element.value
    batches = _table(at, "rows_present")
    assert list(batches["file_name"]) == ["<b onmouseover=alert(1)>x.csv"], \
        "shown as plain text in a table"


# ----------------------------------------------------------------------------- hostile uploads


def test_every_hostile_upload_shows_an_error_never_a_traceback(writable_settings: Settings) -> None:
    db = writable_settings.db_path
    before = store.count_entities(db)
    at = _run("en")
    failures = []
    for case in hostile_files():
        at.file_uploader(key="imp_file_0").set_value((case.name, case.data, "text/plain"))
        at.run()
        if at.exception:
            failures.append((case.name, [e.value[:300] for e in at.exception]))
        elif not at.error or "cannot be imported" not in at.error[0].value:
            failures.append((case.name, "no st.error"))
        elif not at.button(key="imp_do").disabled:
            failures.append((case.name, "the import button is enabled"))
    assert not failures, failures
    assert store.count_entities(db) == before


@pytest.mark.parametrize("name",
                         ["{{7*7}}.csv", "{% raw %}.csv", "<img src=x onerror=alert(1)>.csv",
                                  ":smile: :red[x] :blue-badge[y].csv", "**bold** $x$ [a](b).csv"])
def test_file_name_is_shown_and_stored_as_plain_text(writable_settings: Settings,
                                                     name: str) -> None:
    at = _run("en")
    at.file_uploader(key="imp_file_0").set_value((name, _good().encode(), "text/csv"))
    at.run()
    _ok(at)
    assert f"File: {name}" in [e.value for e in at.text], "the name is shown as plain text"
    core = name.removesuffix(".csv")
    markdown = [*at.markdown, *at.caption, *at.error, *at.success, *at.warning, *at.info,
                *at.title, *at.subheader]
    for element in markdown:
        assert core not in element.value.replace("\\", ""), \
            f"the file name reached Markdown: {element.value!r}"
    at.button(key="imp_do").click().run()
    _ok(at)
    assert list(_table(at, "rows_present")["file_name"]) == [name]
    stored = ingest.list_batches(writable_settings.db_path)["file_name"].tolist()
    assert stored == [name]
