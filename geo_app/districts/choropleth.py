"""The 板块 a choropleth may paint: each with the one polygon it owns and its value, and
those it cannot paint (listed beside the map, never painted with another 板块's value)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo_app.districts.data import CompareData, format_number
from geo_app.vocab import BOARDS

#: ``boards.polygon_status`` values saying a 板块 has no polygon of its own (it may still
#: name a county whose polygon belongs to another 板块: that polygon is never painted for it).
NO_OWN_POLYGON = frozenset({"", "none", "shared", "pending"})
_CHOROPLETH_COLUMNS = ("board", "board_en", "name", "adcode", "value", "value_max", "comparator",
                       "value_text", "unit", "year", "source", "notes")


def _owns_polygon(board: Mapping[str, Any], county_name: object) -> bool:
    """Whether ``board`` (a ``boards`` row) claims its ``county_adcode`` polygon as its own.

    A ``polygon_status`` outside :data:`NO_OWN_POLYGON` says so (``official_county`` for the
    counties and SND's 虎丘区, any status of a polygon added later); without a status only
    a county of the same name is the 板块's own.
    """
    status = board.get("polygon_status")
    status = status.strip().lower() if isinstance(status, str) else ""
    if status:
        return status not in NO_OWN_POLYGON
    return county_name == board.get("name_zh")


def board_polygons(boards: pd.DataFrame, boundaries: pd.DataFrame) -> dict[str, str]:
    """板块 → the adcode of the polygon that may be painted with its value.

    A polygon is painted only for the one 板块 that claims it as its own
    (:func:`_owns_polygon`); a polygon claimed by two or more 板块 is painted for none,
    and a 板块 that only points at another's county gets no polygon. A 板块 whose
    ``boards`` row names a polygon of its own (a ``boundaries`` row) gets it: in the shipped
    data 苏州工业园区 its schematic polygon ``board-sip`` and 吴中区 / 苏州高新区 their
    county polygons without it (``board-wuzhong``, ``board-snd``; ``level`` ``board``).

    >>> bounds = pd.DataFrame({"adcode": ["320506"], "name_zh": ["吴中区"]})
    >>> boards = pd.DataFrame({"name_zh": ["吴中区", "苏州工业园区"],
    ...                        "county_adcode": ["320506", "320506"],
    ...                        "polygon_status": ["official_county", "none"]})
    >>> board_polygons(boards, bounds)
    {'吴中区': '320506'}
    """
    names = dict(zip(boundaries["adcode"].astype(str), boundaries["name_zh"], strict=True))
    claims: dict[str, list[str]] = {}
    for row in boards.to_dict("records"):
        code = row.get("county_adcode")
        code = code.strip() if isinstance(code, str) else ""
        if code in names and _owns_polygon(row, names[code]):
            claims.setdefault(code, []).append(str(row["name_zh"]))
    return {owners[0]: code for code, owners in claims.items() if len(owners) == 1}


def _choropleth_rows(values: pd.DataFrame, polygons: Mapping[str, str], lang: str) -> pd.DataFrame:
    out = values.copy()
    out["board_en"] = [BOARDS[b][1] if b in BOARDS else b for b in out["board"]]
    out["name"] = out["board_en"] if lang == "en" else out["board"]
    out["adcode"] = [polygons.get(b, "") for b in out["board"]]
    out["value"] = out["value"].astype(float)
    out["value_max"] = out["value_max"].astype(float) if "value_max" in out else np.nan
    out["comparator"] = out["comparator"].fillna("=").astype(str) if "comparator" in out else "="
    for column in ("unit", "year", "source", "notes"):
        out[column] = out[column].fillna("").astype(str) if column in out else ""
    out["value_text"] = [format_number(v, u, comparator=c, value_max=vm, lang=lang)
                         for v, u, c, vm in zip(out["value"], out["unit"], out["comparator"],
                                                out["value_max"], strict=True)]
    return out[list(_CHOROPLETH_COLUMNS)].reset_index(drop=True)


def choropleth_gdf(data: CompareData, values: pd.DataFrame, *,
                   lang: str = "zh") -> gpd.GeoDataFrame:
    """The 板块 painted on the choropleth, each with its own polygon and value.

    Parameters
    ----------
    data
        The snapshot (``boards`` and ``boundaries``).
    values
        :func:`metric_values` of the metric shown (an optional ``comparator`` and
        ``value_max`` column qualify the values).
    lang
        Language of ``name`` (the 板块 as shown) and ``value_text``
        (:func:`format_number` with the comparator, ``无数据`` / ``no data`` for a gap).

    Returns
    -------
    GeoDataFrame
        ``board, board_en, name, adcode, value, value_max, comparator, value_text, unit,
        year, source, notes`` in WGS-84, one row per painted 板块 (the join of
        :func:`board_polygons`: SND with the 虎丘区 polygon; SIP, which has none, is left out
        and listed by :func:`boards_without_polygon`). No polygon ever carries another 板块's
        value.
    """
    polygons = board_polygons(data.boards, data.boundaries)
    rows = _choropleth_rows(values, polygons, lang)
    rows = rows[rows["adcode"] != ""].reset_index(drop=True)
    geoms = data.boundaries.set_index(data.boundaries["adcode"].astype(str)).geometry
    return gpd.GeoDataFrame(rows, geometry=[geoms[c] for c in rows["adcode"]], crs="EPSG:4326")


def boards_without_polygon(data: CompareData, values: pd.DataFrame, *,
                           lang: str = "zh") -> pd.DataFrame:
    """The 板块 of ``values`` that the choropleth cannot paint, with their values.

    Same columns as :func:`choropleth_gdf` (``adcode`` empty, no geometry) plus ``reason``:
    ``no_polygon`` (no polygon of its own, SIP today) or ``shared`` (it claims a polygon
    another 板块 claims too). They are listed beside the map, never painted with another
    板块's value.
    """
    rows = _choropleth_rows(values, board_polygons(data.boards, data.boundaries), lang)
    rows = rows[rows["adcode"] == ""].reset_index(drop=True)
    codes = set(data.boundaries["adcode"].astype(str))
    claims = {str(r["name_zh"]): str(r.get("county_adcode") or "")
              for r in data.boards.to_dict("records") if _owns_polygon(r, None)}
    rows["reason"] = ["shared" if claims.get(b, "") in codes else "no_polygon"
                      for b in rows["board"]]
    return rows
