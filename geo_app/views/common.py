"""Shared view helpers: language and filters kept in the URL query string, cached reads.

State rules (the same for the language, the filters and the basemap):

- A link opened in a new session (or a ``st.switch_page(..., query_params=...)``) seeds the
  widgets from the URL; invalid values are dropped with a warning.
- After that the widgets are authoritative: every run writes their values back to the URL,
  so copying the address at any time reproduces the view.
- Switching pages keeps the state (a copy lives in ``st.session_state``), even when the
  other page does not draw the same widgets.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from geo_app import build, store
from geo_app.errors import GeoAppError
from geo_app.filters import (
    FILTER_KEYS,
    MAX_SEARCH,
    EntityFilter,
    filter_to_query,
    parse_filter,
    split_values,
)
from geo_app.i18n import LANGS, t
from geo_app.settings import Settings, load_settings
from geo_app.vocab import BOARDS, KINDS, LEVELS, PRECISIONS, STATUSES, label

#: URL key (:data:`geo_app.filters.FILTER_KEYS`) -> session-state key of its sidebar widget.
FILTER_WIDGETS: Mapping[str, str] = {key: f"f_{key}" for key in FILTER_KEYS}
_LANG_WIDGET = "lang_radio"

# ----------------------------------------------------------------------------- process


def freeze_imports() -> None:
    """Take what is alive now out of the garbage collector's walks, once per process:
    called by ``streamlit_app.py`` right after it imported every page, so this is mostly
    the modules, their functions and classes (~160k objects), which live as long as the
    process anyway.

    Streamlit collects all generations after every run of a page (``runner.postScriptGC``,
    kept on: Streamlit's guard against memory building up between runs). Walking these
    objects took 110-200 ms at the end of each run at 1M entities, holding the GIL while
    the browser waited on the server; frozen, the collection takes ~3 ms, and a 1M filter
    change's median fell from 0.42-0.43 s to 0.34-0.36 s, a pan's from 0.35-0.38 s to
    0.29-0.30 s (docs/scale.md, sixth pass). Objects made later (pages' data, caches,
    sessions) are collected as before. What the process's first run had made by then (its
    session, a caption) stays frozen: a few objects, once. "Once" is asked of the
    collector itself, not of a flag here, which a module reload would reset.
    """
    if gc.get_freeze_count():
        return
    gc.collect()  # the imports' own garbage is freed, not frozen
    gc.freeze()


# ----------------------------------------------------------------------------- database


_Fingerprint = tuple[tuple[str, tuple[int, int, int, int] | None], ...]


def _fingerprint(paths: Sequence[Path]) -> _Fingerprint:
    return tuple((str(p), store.file_stamp(p)) for p in paths)


def _source_files(settings: Settings) -> list[Path]:
    files = [settings.data_dir / name for name in build.DATA_FILES]
    files += sorted(settings.layers_dir.glob("*.toml"))
    return files + [settings.db_path]


#: (database, file stats of its sources and itself) already checked by this process:
#: ``ensure_database`` hashes every source file, so it runs only when a stat changed.
_CHECKED: set[tuple[str, _Fingerprint]] = set()


#: Session key: the steps of the build this session's last run showed (its next run shows
#: the finished box once more: the map page's next run comes by itself, see
#: :func:`geo_app.views.map.render`, and the box would vanish as soon as the map came).
_BUILT_KEY = "_db_built_steps"


class _BuildProgress:
    """Shows a build's steps in an ``st.status`` box, opened at the first step (so a run
    that builds nothing shows nothing)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.box: Any = None
        self.steps: list[str] = []

    def __call__(self, step: str) -> None:
        if self.box is None:
            self.box = st.status(t("build_title", self.lang), expanded=True)
        self.box.write(t(f"build_step_{step}", self.lang))
        self.steps.append(step)

    def done(self) -> None:
        if self.box is not None:
            self.box.update(label=t("build_done", self.lang), state="complete", expanded=False)
            st.session_state[_BUILT_KEY] = self.steps


def _show_built(steps: Sequence[str], lang: str) -> None:
    """The finished box of a build the session's previous run showed."""
    box = st.status(t("build_done", lang), state="complete", expanded=False)
    for step in steps:
        box.write(t(f"build_step_{step}", lang))


def db_path() -> Path:
    """The database, built from ``data/`` on first start (and when the data change).

    While a build runs, the page shows its steps (registry, boundaries, layers, database,
    memberships) instead of staying blank.
    """
    settings = load_settings()
    key = (str(settings.db_path), _fingerprint(_source_files(settings)))
    if key not in _CHECKED:
        progress = _BuildProgress(get_lang())
        build.ensure_database(settings, progress=progress)
        progress.done()
        if len(_CHECKED) > 64:  # one entry per write of the file: keep the set small
            _CHECKED.clear()
        _CHECKED.add((str(settings.db_path), _fingerprint(_source_files(settings))))
    else:
        steps = st.session_state.pop(_BUILT_KEY, None)
        if steps:
            _show_built(steps, get_lang())
    return settings.db_path


def data_version(path: Path) -> str:
    """A cheap token that changes whenever the database file changes (rebuild or import).

    Use it as the key of ``st.cache_data`` functions that read the database: it costs two
    ``stat`` calls, where reading ``built_at`` would open the database.
    """
    return repr(store.database_version(path))


@st.cache_data(show_spinner=False, max_entries=8)
def _layers_table(path: str, version: str) -> gpd.GeoDataFrame:
    return store.read_geo_table(Path(path), "layers")


def layers_table(path: Path) -> gpd.GeoDataFrame:
    """The strategy layers (cached per database version)."""
    return _layers_table(str(path), data_version(path))


def layer_choices(path: Path, lang: str) -> tuple[list[str], dict[str, str]]:
    """Layer ids and their names in ``lang``: the arguments of :func:`sidebar_filter`."""
    layers = layers_table(path)
    col = "name_en" if lang == "en" else "name_zh"
    ids = [str(i) for i in layers["id"]]
    return ids, {str(r["id"]): str(r[col] or r["id"]) for _, r in layers.iterrows()}


def show_error(err: GeoAppError) -> None:
    """Show a package error to the user (its user message, never a traceback).

    The message may quote user input, so Markdown in it is escaped (an image link in a
    bad cell must not load anything).
    """
    st.error(md_escape(err.user_message))


# ----------------------------------------------------------------------------- text


#: Markdown's punctuation, HTML's brackets, TeX's ``$``, and the ``:`` and ``/`` of Streamlit's
#: directives (``:red[…]``, emoji shortcodes) and icons (``:material/home:``, matched before
#: Markdown), each shown literally when escaped with a backslash (tests/test_browser_markdown.py
#: checks it in Chromium).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:/])")


def md_escape(text: object) -> str:
    r"""Escape Markdown (and HTML) so ``text`` shows literally in ``st.markdown``/``st.warning``.

    >>> md_escape("*a* <b> $x$")
    '\\*a\\* \\<b\\> \\$x\\$'
    >>> md_escape(":red[x]")
    '\\:red\\[x\\]'
    """
    return _MD_SPECIAL.sub(r"\\\1", str(text))


# ----------------------------------------------------------------------------- URL state


def _url_changed(group: str, current: Mapping[str, list[str]]) -> bool:
    """True when the URL holds other values for ``group`` than this session last wrote.

    That happens on a new link and on the browser's back and forward buttons: each change
    of the view is one history entry, and a run that Streamlit starts for a history
    navigation takes the URL as it is, empty values included (going back to the
    unfiltered view clears the filter). Otherwise a URL without values for ``group``
    says nothing (a page switch may drop them): the session keeps its state.
    """
    ctx = get_script_run_ctx()
    history = bool(getattr(ctx, "is_history_navigation", False))
    if not history and not any(current.values()):
        return False
    return dict(current) != st.session_state.get(f"_url_written_{group}")


def _remember_written(group: str, written: Mapping[str, list[str]]) -> None:
    st.session_state[f"_url_written_{group}"] = dict(written)


def _set_param(key: str, values: list[str]) -> None:
    if values:
        if st.query_params.get_all(key) != values:
            st.query_params[key] = values
    elif key in st.query_params:
        del st.query_params[key]


def get_lang() -> str:
    """The language of this run: ``?lang=en`` in a new link, else the session's; Chinese by
    default."""
    ss = st.session_state
    url = st.query_params.get("lang")
    if url in LANGS and _url_changed("lang", {"lang": [url]}):
        return url
    lang = ss.get(_LANG_WIDGET) or ss.get("_lang") or "zh"
    return lang if lang in LANGS else "zh"


#: Session key: this session's browser has been sent the sidebar's widgets (and so has
#: their code; :func:`geo_app.views.map.render` sends a new visitor the map first).
WIDGETS_SHOWN_KEY = "_widgets_shown"


def language_switch() -> str:
    """Sidebar language switch, written back to the URL; returns the language."""
    return language_widget(seed_language())


def seed_language() -> str:
    """The language of this run, put into the switch's state before it is drawn
    (:func:`language_widget` draws it, later in the run if the page wants)."""
    ss = st.session_state
    # re-assigned every run: a widget on another page has another id and would
    # otherwise start from its default
    ss[_LANG_WIDGET] = get_lang()
    return str(ss[_LANG_WIDGET])


def language_widget(lang: str) -> str:
    """Draw the sidebar language switch seeded by :func:`seed_language` (whose value
    ``lang`` is) and write the language back to the URL; returns it."""
    ss = st.session_state
    lang = st.sidebar.radio(t("language", lang), LANGS,
                            format_func=lambda v: "中文" if v == "zh" else "English",
                            horizontal=True, key=_LANG_WIDGET)
    ss[WIDGETS_SHOWN_KEY] = True
    keep_language(lang)
    return lang


def keep_language(lang: str) -> None:
    """What :func:`language_widget` does besides drawing: keep ``lang`` for the session and
    write it to the URL (a run that leaves the widget to the next calls only this)."""
    st.session_state["_lang"] = lang
    _set_param("lang", [lang])
    _remember_written("lang", {"lang": [lang]})


def _url_filter_values() -> dict[str, list[str]]:
    """The filter values in the URL, as this page writes them (lists split, text stripped)."""
    out: dict[str, list[str]] = {}
    for key, spec in FILTER_KEYS.items():
        raw = st.query_params.get_all(key)
        if spec.text:
            out[key] = [raw[0].strip()] if raw and raw[0].strip() else []
        else:
            out[key] = split_values(raw)
    return out


def _seed_filter_widgets(known_layers: Sequence[str]) -> list[str]:
    """Put URL (or remembered) filter values into the widgets' state; returns invalid values."""
    ss = st.session_state
    url = _url_filter_values()
    bad: list[str] = []
    changed = _url_changed("filter", url)
    if changed:
        flt, rejected = parse_filter(url, known_layers=known_layers)
        ss["_filter"] = filter_to_query(flt)
        bad = [str(r) for r in rejected]
    remembered: dict[str, list[str]] = ss.get("_filter", {})
    for key, spec in FILTER_KEYS.items():
        widget = FILTER_WIDGETS[key]
        # re-assigned every run (see language_switch): the same key on another page
        # is another widget and would start empty
        if not changed and widget in ss:
            continue_with = ss[widget]
        else:
            vals = remembered.get(key, [])
            continue_with = (vals[0] if vals else "") if spec.text else list(vals)
        if not spec.text:  # e.g. a layer that a rebuild removed
            options = spec.choices(known_layers)
            continue_with = [v for v in continue_with if v in options]
        ss[widget] = continue_with
    return bad


def sidebar_filter(lang: str, known_layers: list[str], layer_names: dict[str, str]) -> EntityFilter:
    """Filter widgets in the sidebar, initialised from and written back to the URL."""
    _, bad = seed_filter(known_layers)
    return filter_widgets(lang, known_layers, layer_names, bad)


def seed_filter(known_layers: list[str]) -> tuple[EntityFilter, list[str]]:
    """The filter of this run, put into the filter widgets' state before they are drawn
    (:func:`filter_widgets` draws them, later in the run if the page wants): the filter
    they will show, and the URL's invalid values."""
    bad = _seed_filter_widgets(known_layers)
    flt, _ = parse_filter(_seeded_chosen(), known_layers=known_layers)
    return flt, bad


def _seeded_chosen() -> dict[str, list[str]]:
    """The filter widgets' seeded state, as :func:`_chosen` reads the drawn widgets."""
    return _chosen({key: st.session_state[FILTER_WIDGETS[key]] for key in FILTER_KEYS})


def _chosen(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """The filter widgets' values (by filter key) as :func:`parse_filter` reads them: the
    search box's text stripped (nothing when blank), a multiselect's list as it is."""
    chosen: dict[str, list[str]] = {}
    for key, spec in FILTER_KEYS.items():
        value = values[key]
        if spec.text:
            chosen[key] = [value.strip()] if value and value.strip() else []
        else:
            chosen[key] = list(value)
    return chosen


def filter_widgets(lang: str, known_layers: list[str], layer_names: dict[str, str],
                   bad: Sequence[str]) -> EntityFilter:
    """Draw the sidebar's filter widgets seeded by :func:`seed_filter` (``bad``: the URL's
    invalid values it returned) and write their filter back to the URL; returns it."""
    sb = st.sidebar
    sb.header(t("filters", lang))
    if bad:
        sb.warning(t("map_invalid_url", lang, values=md_escape(", ".join(bad))))
    shown: dict[str, Any] = {}
    for key, spec in FILTER_KEYS.items():
        if spec.text:
            shown[key] = sb.text_input(t("search", lang), key=FILTER_WIDGETS[key],
                                       max_chars=MAX_SEARCH)
        else:
            shown[key] = sb.multiselect(t(key, lang), spec.choices(known_layers),
                                        format_func=_value_label(key, lang, layer_names),
                                        key=FILTER_WIDGETS[key], placeholder=t("map_choose", lang))
    chosen = _chosen(shown)
    flt, _ = parse_filter(chosen, known_layers=known_layers)  # the widgets offer valid values only
    _keep_filter(chosen, flt)
    return flt


def keep_filter(flt: EntityFilter) -> None:
    """What :func:`filter_widgets` does besides drawing, for the filter :func:`seed_filter`
    returned: keep it for the session and write it to the URL (a run that leaves the
    widgets to the next calls only this)."""
    _keep_filter(_seeded_chosen(), flt)


def _keep_filter(chosen: dict[str, list[str]], flt: EntityFilter) -> None:
    st.session_state["_filter"] = chosen
    write_filter_to_url(flt)


def _value_label(key: str, lang: str, layer_names: Mapping[str, str]) -> Callable[[str], str]:
    """How the sidebar shows a value of filter ``key``: its label, or the layer's name."""
    vocab = FILTER_KEYS[key].vocab
    if vocab is None:
        return lambda v: layer_names.get(v, v)
    return lambda v: label(vocab, v, lang)


def write_filter_to_url(flt: EntityFilter) -> None:
    """Replace the filter keys of the query string (language and other keys are kept)."""
    wanted = filter_to_query(flt)
    for key in FILTER_WIDGETS:
        _set_param(key, wanted.get(key, []))
    _remember_written("filter", {k: wanted.get(k, []) for k in FILTER_WIDGETS})


def url_choice(param: str, widget_key: str, options: Sequence[str], default: str) -> str:
    """Seed a single-choice widget's state from ``?param=`` (new links) or keep the session's.

    Call before drawing the widget with ``key=widget_key``; afterwards call
    :func:`write_choice_to_url`. Returns the value the widget will start with.
    """
    ss = st.session_state
    raw = st.query_params.get(param)
    if raw is not None and raw in options and _url_changed(param, {param: [raw]}):
        value = raw
    elif raw is None and _url_changed(param, {param: []}):
        value = default  # back to a view that had the default (omitted from the URL)
    elif ss.get(widget_key) in options:
        value = str(ss[widget_key])
    else:
        kept = ss.get(f"_{widget_key}")
        value = kept if isinstance(kept, str) and kept in options else default
    ss[widget_key] = value  # re-assigned every run (see language_switch)
    return str(value)


def write_choice_to_url(param: str, widget_key: str, value: str, default: str) -> None:
    """Write a single choice to the URL (omitted when it is the default) and remember it."""
    st.session_state[f"_{widget_key}"] = value
    values = [] if value == default else [value]
    _set_param(param, values)
    _remember_written(param, {param: values})


def entity_table(gdf: pd.DataFrame, lang: str, layer_names: Mapping[str, str]) -> pd.DataFrame:
    """Entities as a display table with translated labels (no geometry)."""
    cols = {
        "id": t("col_id", lang), "name_zh": t("col_name_zh", lang),
        "name_en": t("col_name_en", lang),
        "kind": t("kind", lang), "level": t("level", lang), "status": t("status", lang),
        "board": t("board", lang), "location_precision": t("col_precision", lang),
        "layers": t("col_layers", lang), "source": t("col_source", lang),
    }
    df = pd.DataFrame({k: gdf[k] if k in gdf else "" for k in cols})
    for key, vocab in (("kind", KINDS), ("level", LEVELS), ("status", STATUSES),
                       ("board", BOARDS), ("location_precision", PRECISIONS)):
        df[key] = [label(vocab, v if isinstance(v, str) else None, lang) for v in df[key]]
    df["layers"] = ["、".join(layer_names.get(i, i) for i in str(v or "").split(",") if i)
                    for v in df["layers"]]
    return df.rename(columns=cols).reset_index(drop=True)
