"""The web map's legend: kinds shown, precision styles, layers, boundaries, water, notes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from geo_app.i18n import t
from geo_app.maps.style import _BOUNDARY_COLOR, _WATER_COLOR, BASEMAPS, DEFAULT_BASEMAP, marker_svg
from geo_app.maps.template import escape_html
from geo_app.vocab import KINDS, label

# ----------------------------------------------------------------------------- legend


def _swatch(fill: str, stroke: str, *, dashed: bool = False, line: bool = False,
            fill_opacity: float = 0.25) -> str:
    if line:
        return (f'<svg class="sw" viewBox="0 0 18 12"><line x1="1" y1="6" x2="17" y2="6" '
                f'stroke="{stroke}" stroke-width="3"/></svg>')
    dash = ' stroke-dasharray="4 2"' if dashed else ""
    return (f'<svg class="sw" viewBox="0 0 18 12"><rect x="1" y="1" width="16" height="10" '
            f'fill="{fill}" fill-opacity="{fill_opacity}" stroke="{stroke}" '
            f'stroke-width="1.5"{dash}/></svg>')


def legend_html(
    *, lang: str, kind_counts: Mapping[str, int], layers: Sequence[tuple[str, str]],
    basemap: str = DEFAULT_BASEMAP, has_water: bool = True, has_boundaries: bool = True,
    sip_without_polygon: bool = True, cells: bool = False,
) -> str:
    """The legend: kinds shown (with counts), precision styles, layers, boundaries, water, notes.

    Parameters
    ----------
    kind_counts
        Number of entities drawn per kind; kinds with a count are listed.
    layers
        ``(name, colour)`` of each strategy layer drawn.
    basemap
        The basemap id; notes say whether tiles are loaded and whether overlays are shifted.
    cells
        Explain the count bubbles of aggregated views (large registries).
    """
    parts = [f'<details><summary>{escape_html(t("map_legend", lang))}</summary>',
             legend_kinds_html(kind_counts, lang)]
    if cells:
        parts.append(f'<div class="row"><span class="cell"></span>'
                     f'{escape_html(t("map_legend_cells", lang))}</div>')
    parts.append(f'<h4>{escape_html(t("map_legend_precision", lang))}</h4>')
    parts.append(f'<div class="row">{marker_svg("university", True, size=14)}'
                 f'{escape_html(t("map_precision_exact", lang))}</div>')
    parts.append(f'<div class="row">{marker_svg("university", False, size=14)}'
                 f'{escape_html(t("map_precision_approx", lang))}</div>')
    if layers:
        parts.append(f'<h4>{escape_html(t("map_legend_layers", lang))}</h4>')
        tag = escape_html(t("map_schematic_tag", lang))
        for name, color in layers:
            col = _safe_color(color)
            parts.append(f'<div class="row">{_swatch(col, col, dashed=True)}'
                         f'{escape_html(name)} <i>({tag})</i></div>')
        parts.append(f'<div class="note">{escape_html(t("schematic", lang))}</div>')
    if has_boundaries:
        parts.append(f'<h4>{escape_html(t("map_legend_boundaries", lang))}</h4>')
        parts.append(f'<div class="row">{_swatch("#ffffff", _BOUNDARY_COLOR, fill_opacity=0)}'
                     f'{escape_html(t("map_boundaries_group", lang))}</div>')
        if sip_without_polygon:
            parts.append(f'<div class="note">{escape_html(t("sip_no_polygon", lang))}</div>')
    if has_water:
        parts.append(f'<h4>{escape_html(t("map_water_group", lang))}</h4>')
        parts.append(f'<div class="row">{_swatch(_WATER_COLOR, _WATER_COLOR, fill_opacity=0.45)}'
                     f'{escape_html(t("map_lake", lang))}</div>')
        parts.append(f'<div class="row">{_swatch("", _WATER_COLOR, line=True)}'
                     f'{escape_html(t("map_river", lang))}</div>')
    base = BASEMAPS.get(basemap, BASEMAPS[DEFAULT_BASEMAP])
    if base.datum == "gcj02":
        parts.append(f'<div class="note">{escape_html(t("map_gcj_note", lang))}</div>')
    if base.tiles is None:
        parts.append(f'<div class="note">{escape_html(t("map_no_tiles_note", lang))}</div>')
    parts.append("</details>")
    return "".join(parts)


def legend_kinds_html(kind_counts: Mapping[str, int], lang: str) -> str:
    """The legend's kinds (with counts): its first section, '' when no kind has a count.

    A large filter's layer brings its own (:func:`geo_app.maps.view_layer`), so the base
    map does not change with the filter.
    """
    if not kind_counts:
        return ""
    parts = [f'<h4>{escape_html(t("map_legend_kinds", lang))}</h4>']
    for kind in [k for k in KINDS if kind_counts.get(k)] + [
            k for k in kind_counts if k not in KINDS and kind_counts[k]]:
        parts.append(f'<div class="row">{marker_svg(kind, True, size=14)}'
                     f'{escape_html(label(KINDS, kind, lang))} '
                     f'({int(kind_counts[kind])})</div>')
    return "".join(parts)


_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{3,8}$")


def _safe_color(color: object) -> str:
    """A CSS hex colour from the data, or grey when it is anything else."""
    return color if isinstance(color, str) and _COLOR_RE.match(color) else "#888888"
