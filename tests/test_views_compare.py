"""The 板块 comparison page (AppTest) and its equality with ``geo-app compare``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from geo_app import cli, districts, store
from geo_app.settings import Settings
from geo_app.views.common import md_escape
from geo_app.vocab import BOARDS
from tests.helpers import run_apptest
from tests.test_template_injection import shown_texts

TIMEOUT = 90


def _page() -> None:
    from geo_app.views import compare

    compare.render()


def _run(lang: str = "zh", **params: str) -> AppTest:
    return run_apptest(AppTest.from_function(_page, default_timeout=TIMEOUT),
                       {"lang": lang, **params})


def _ranked(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value


def _component_page(at: AppTest) -> str:
    """Everything the one folium component of the page hands the browser."""
    (comp,) = at.get("component_instance")
    args = json.loads(comp.proto.json_args)
    return "\n".join(str(args.get(k) or "") for k in ("script", "header", "html", "css_links",
                                                      "js_links"))


def _charts(at: AppTest) -> list[dict[str, object]]:
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def _titles(spec: dict[str, object]) -> list[str]:
    """The chart's title, axis titles and tooltip titles: every label the chart shows."""
    enc = spec["encoding"]
    assert isinstance(enc, dict)
    tips = enc["tooltip"]
    return [str(spec["title"]), str(enc["x"]["title"]), str(enc["y"]["title"]),
            *(str(tip["title"]) for tip in tips)]


@pytest.fixture(scope="module")
def data(db: Path) -> districts.CompareData:
    return districts.load_compare_data(db)


def test_page_ranks_all_ten_boards_on_a_published_figure(env_settings: Settings,
                                                         data: districts.CompareData) -> None:
    at = _run()
    assert at.selectbox(key="cmp_metric").value == districts.DEFAULT_METRIC == "ind:gdp"
    assert districts.get_metric(data, districts.DEFAULT_METRIC).group == "public"
    assert "metric" not in at.query_params  # the default is not written into the link
    table = _ranked(at)
    expected = districts.comparison_table(data, [districts.DEFAULT_METRIC], lang="zh")
    pd.testing.assert_frame_equal(table.reset_index(drop=True), expected, check_dtype=False)
    assert sorted(table["板块"]) == sorted(BOARDS)
    known = table[table["数值"].notna()]
    assert len(known) >= 6 and (known["年份"] != "").all() and (known["来源"] != "").all()
    captions = " ".join(c.value for c in at.caption)
    assert "苏州工业园区没有官方多边形" in captions and "示意范围" in captions
    assert "虎丘区多边形" in captions
    assert not at.get("imgs") and not at.get("image"), "no static picture any more"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_choropleth_is_a_folium_map_and_sip_is_drawn_schematic(
        env_settings: Settings, data: districts.CompareData, lang: str) -> None:
    at = _run(lang)
    page = _component_page(at)
    assert "L.map(" in page and "bindTooltip" in page  # drawn by Leaflet in the browser
    assert "/app/static/vendor/leaflet/leaflet.js" in page
    assert not re.search(r"https?://(?!www\.w3\.org)", page), "no CDN, no remote asset"
    values = districts.metric_values(data, districts.DEFAULT_METRIC, lang=lang)
    shown = "\n".join(shown_texts(page))  # tooltips and legend, as Leaflet shows them
    kunshan = districts.format_number(5006.7, "亿元", lang=lang)
    assert kunshan in shown  # hover text: value with unit
    sip_value = values.set_index("board").loc["苏州工业园区", "value"]
    assert sip_value == 3686.0
    # on its schematic polygon
    assert districts.format_number(sip_value, "亿元", lang=lang) in shown
    unpainted = [districts.header(c, lang) for c in ("board", "value", "year", "source", "notes")]
    assert not any(d.value.columns.tolist() == unpainted for d in at.dataframe)  # none left out
    legend = ("Schematic polygons (built by rule, not official boundaries): "
              if lang == "en" else "示意多边形（按规则生成，非官方边界）：")
    name = "Suzhou Industrial Park" if lang == "en" else "苏州工业园区"
    assert legend in shown and name in shown.split(legend, 1)[1].split("\n", 1)[0]
    assert "Not drawn" not in shown and "未绘制" not in shown


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_chart_speaks_the_ui_language(env_settings: Settings, lang: str) -> None:
    at = _run(lang)
    specs = _charts(at)
    assert len(specs) >= 3  # the side-by-side small multiples
    for spec in specs:
        titles = _titles(spec)
        if lang == "zh":  # no English-only label in the Chinese UI ('%', 'R&D' are fine)
            english = [x for x in titles if re.search(r"[A-Za-z]{3}", x)
                       and not re.search(r"[\u4e00-\u9fff]", x)]
            assert not english, titles
        else:
            assert "Value" in titles and "Year" in titles and "Source" in titles, titles
    metric_titles = {str(s["title"]) for s in specs}
    registry = districts.REGISTRY_LABEL[0 if lang == "zh" else 1]
    assert registry in metric_titles  # registry counts are named as such


def test_choosing_a_public_figure_shows_gaps_not_zeros(env_settings: Settings,
                                                       data: districts.CompareData) -> None:
    at = _run()
    at.selectbox(key="cmp_metric").set_value("entities").run()
    assert at.query_params["metric"] == "entities"  # the view is in the link
    assert _ranked(at)["指标"].iloc[0] == "本图登记主体数（非官方统计）"
    at.selectbox(key="cmp_metric").set_value("ind:gdp").run()
    assert not at.exception
    table = _ranked(at).set_index("板块")
    assert pd.isna(table.loc["姑苏区", "数值"]) and "无数据" in table.loc["姑苏区", "说明"]
    assert table.loc["昆山市", ["数值", "年份"]].tolist() == [5006.7, "2022"]
    assert "metric" not in at.query_params  # the default metric again
    assert any("年份不同" in w.value for w in at.warning)  # figures from 2021-2023 are mixed
    at.selectbox(key="cmp_year_ind:gdp").set_value("2022").run()
    in_2022 = _ranked(at).set_index("板块")
    assert pd.isna(in_2022.loc["张家港市", "数值"])  # its GDP figure is for 2021


def test_link_with_metric_and_english(env_settings: Settings, data: districts.CompareData) -> None:
    at = _run("en", metric="density")
    table = _ranked(at)
    expected = districts.comparison_table(data, ["density"], lang="en")
    pd.testing.assert_frame_equal(table.reset_index(drop=True), expected, check_dtype=False)
    assert list(table.columns)[:3] == ["metric_id", "Metric", "Rank"]


def test_cli_csv_equals_the_page_table(env_settings: Settings, data: districts.CompareData,
                                       tmp_path: Path) -> None:
    at = _run(metric="ind:rd_share_gdp")
    out = tmp_path / "cmp.csv"
    assert cli.main(["compare", "--metric", "ind:rd_share_gdp", "--format", "csv",
                     "--output", str(out)]) == 0
    page = _ranked(at)
    assert out.read_bytes() == districts.table_to_csv(
        districts.comparison_table(data, ["ind:rd_share_gdp"], lang="zh"))
    from_cli = pd.read_csv(out, encoding="utf-8-sig", dtype={"年份": str}, keep_default_na=False)
    assert from_cli["板块"].tolist() == page["板块"].tolist()
    cli_values = pd.to_numeric(from_cli["数值"].replace("", None)).tolist()
    pd.testing.assert_series_equal(pd.Series(cli_values, dtype=float),
                                   page["数值"].astype(float).reset_index(drop=True),
                                   check_names=False)
    xlsx = tmp_path / "cmp.xlsx"
    assert cli.main(["compare", "--metric", "ind:rd_share_gdp", "--format", "xlsx",
                     "-o", str(xlsx)]) == 0
    assert pd.read_excel(xlsx)["板块"].tolist() == page["板块"].tolist()


def test_side_by_side_shows_only_the_chosen_boards(env_settings: Settings) -> None:
    at = _run(cmp="昆山市,太仓市")
    assert at.multiselect(key="cmp_side_boards").value == ["昆山市", "太仓市"]
    long = next(d.value for d in at.dataframe if "指标代码" in d.value.columns
                and set(d.value["板块"]) == {"昆山市", "太仓市"})
    assert set(long["指标代码"]) >= {"entities", "ind:gdp"}
    at.multiselect(key="cmp_side_boards").set_value(["昆山市"]).run()
    assert any("至少选择两个" in i.value for i in at.info)


@pytest.mark.parametrize(("cmp", "chosen"), [
    # geo_app.filters.parse_values, as the map's board key: spaces ignored, unknown dropped
    (" 昆山市, 太仓市 ,北京市", ["昆山市", "太仓市"]),
    ("昆山市,昆山市,太仓市", ["昆山市", "太仓市"]),            # a repeat counts once
    ("张家港市,常熟市,太仓市,昆山市,吴江区",
     ["张家港市", "常熟市", "太仓市", "昆山市"]),  # four at most
    ("北京市", ["苏州工业园区", "苏州高新区", "昆山市"]),        # nothing valid: the defaults
])
def test_side_by_side_reads_its_boards_from_the_url(env_settings: Settings, cmp: str,
                                                    chosen: list[str]) -> None:
    at = _run(cmp=cmp)
    assert at.multiselect(key="cmp_side_boards").value == chosen
    assert at.query_params["cmp"] == ",".join(chosen)


def test_plan_tab_shows_every_target_with_progress_where_possible(
        env_settings: Settings, data: districts.CompareData, built_settings: Settings) -> None:
    at = _run("en")
    targets = pd.read_csv(built_settings.data_dir / "indicators.csv").query(
        "kind == 'target' and year == 2023")
    prog = districts.plan_progress(data, "en")
    bars = at.get("progress")
    assert len(bars) == int(prog["progress"].notna().sum()) >= 5
    hte = next(b for b in bars if b.proto.text.startswith("National high\\-tech enterprises"))
    assert hte.value == int(13400 / 16000 * 100) and "84%" in hte.proto.text
    assert "13,400" in hte.proto.text and "16,000" in hte.proto.text
    without = next(d.value for d in at.dataframe if "2023 target" in d.value.columns)
    assert set(without["2022"]) == {"no 2022 figure"}
    with_2022 = [b.proto.text for b in bars] + [m.value for m in at.markdown]
    shown = len(without) + sum(1 for i in prog.loc[prog["actual_2022"].notna(), "indicator"]
                               if any(x.startswith(md_escape(i)) for x in with_2022))
    assert shown == len(targets) == len(prog)  # every 2023 target of the seed is on the page
    assert set(without["Metric"]) == set(prog.loc[prog["actual_2022"].isna(), "indicator"])


#: An editor as AppTest seeds ``st.user`` and the ``[auth]``/``[editors]`` secrets (issue 15).
EDITOR_SECRETS = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback",
                           "cookie_secret": "x" * 32, "client_id": "c", "client_secret": "s",
                           "server_metadata_url": "http://localhost:9400/.well-known/openid-configuration"},
                  "editors": {"emails": ["editor@example.org"]}}
EDITOR_USER = {"is_logged_in": True, "sub": "ed-1", "email": "editor@example.org"}


def _run_as(user: dict[str, object]) -> AppTest:
    at = AppTest.from_function(_page, default_timeout=TIMEOUT)
    at.secrets = dict(EDITOR_SECRETS)
    at.user = dict(user)
    return run_apptest(at, {"lang": "en"})


def test_viewers_get_no_indicator_upload(writable_settings: Settings) -> None:
    for at in (_run("en"), _run_as({"is_logged_in": False}),
               _run_as({**EDITOR_USER, "email": "viewer@example.org"})):
        assert not at.file_uploader, "no upload control for a viewer"
        assert any("Only signed-in editors" in c.value for c in at.caption)


def test_upload_rejects_bad_file_then_imports_a_good_one(writable_settings: Settings) -> None:
    db = writable_settings.db_path
    at = _run_as(EDITOR_USER)
    head = "板块,indicator,year,value,unit,source\n"
    at.file_uploader(key="cmp_upload").set_value(
        ("bad.csv", (head + "吴江区,gdp,2022,1,亿元,s\n花园区,gdp,2022,1,亿元,s\n").encode(),
         "text/csv")).run()
    assert any("Nothing was imported" in e.value for e in at.error)
    problems = next(d.value for d in at.dataframe if "problem" in d.value.columns)
    assert problems["row"].tolist() == ["3"]
    assert store.read_table(db, "import_batches").empty
    at.file_uploader(key="cmp_upload").set_value(
        ("good.csv", (head + "吴江区,gdp,2022,2500,亿元,my survey\n").encode(), "text/csv")).run()
    assert not at.error
    at.button(key="cmp_do_import").click().run()
    assert not at.exception
    batches = store.read_table(db, "import_batches")
    assert batches["file_name"].tolist() == ["good.csv"]
    assert batches["actor_email"].tolist() == ["editor@example.org"]
    at.selectbox(key="cmp_metric").set_value("ind:gdp").run()
    wujiang = _ranked(at).set_index("板块").loc["吴江区"]
    assert wujiang[["Value", "Source"]].tolist() == [2500.0, "my survey"]
