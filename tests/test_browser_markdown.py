"""``views.common.md_escape`` and ``views.map.no_point_html`` (the one table the app shows
as HTML: through ``st.html``, and checked through ``st.markdown(unsafe_allow_html=True)``
too) in the real frontend: Streamlit's Markdown (remark with its
directive, emoji-shortcode and Material-icon extensions) in Debian's Chromium must show an
escaped value as the same characters, whatever it holds: a colon that would start a
directive (``:red[…]``, ``:material/…:``, ``email:name@host`` once lost the text after the
colon), Markdown, HTML or TeX."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from benchmarks.bench_map import chromium, streamlit_app
from geo_app.settings import Settings
from tests.conftest import copy_sources

pytestmark = pytest.mark.browser

VALUES = [
    "email:example@hotmail.com",
    ":red[红色] and :blue-background[蓝]",
    ":material/home: 首页",
    "a :sunglasses: b :sunglasses",
    "Words:a, b, c",
    ":color[x]{foreground=\"#E03131\"}",
    "*粗体* _斜_ `代码` <b>html</b> $x^2$ [链接](http://example.com)",
    "苏州工业园区：独墅湖科教创新区",
]

SCRIPT = '''import json
import pandas as pd
import streamlit as st
from geo_app.views.common import md_escape
from geo_app.views.map import no_point_html

values = json.loads({values!r})
for value in values:
    st.markdown(md_escape(value))
st.html(no_point_html(pd.DataFrame({{"值": values}})))
st.markdown(no_point_html(pd.DataFrame({{"值": values}})), unsafe_allow_html=True)
'''


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("markdown")
    settings: Settings = copy_sources(root)
    script = root / "escaped.py"
    script.write_text(SCRIPT.format(values=json.dumps(VALUES, ensure_ascii=False)),
                      encoding="utf-8")
    with streamlit_app(settings, root / "streamlit.log", script=script) as url:
        yield url


def test_escaped_values_show_as_the_same_characters(page_url: str) -> None:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(page_url)
        boxes = page.locator('[data-testid="stMarkdownContainer"]')
        boxes.nth(len(VALUES)).wait_for(timeout=60_000)
        # The table's container can be attached before its HTML is rendered into it.
        page.locator(".sim-np td").nth(2 * len(VALUES) - 1).wait_for(timeout=60_000)
        shown = [text.strip() for text in boxes.all_inner_texts()[:len(VALUES)]]
        # the app shows the table through st.html; as Markdown it must read the same
        cells = [text.strip() for text in page.locator(".sim-np td").all_inner_texts()]
        tags = page.locator(".sim-np b, .sim-np a, .sim-np span, .sim-np code").count()
    assert shown == VALUES
    assert cells == VALUES + VALUES
    assert tags == 0  # no value became an element
