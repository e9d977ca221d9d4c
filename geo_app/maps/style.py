"""How the map looks: the basemaps, the marker of each entity kind, the overlay colours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from geo_app.i18n import t
from geo_app.vocab import EXACT_PRECISIONS, KINDS

# ----------------------------------------------------------------------------- basemaps


@dataclass(frozen=True)
class Basemap:
    """A selectable basemap.

    Attributes
    ----------
    id
        URL value (``?basemap=``).
    tiles
        Tile URL template, or None for no tiles.
    attribution
        Attribution HTML required by the provider (constant, not user data).
    datum
        ``"wgs84"`` or ``"gcj02"``: the datum the tiles are drawn in.
    subdomains
        Leaflet ``{s}`` values.
    """

    id: str
    tiles: str | None
    attribution: str
    datum: str = "wgs84"
    subdomains: str = "abc"
    max_zoom: int = 18


BASEMAPS: Mapping[str, Basemap] = MappingProxyType({
    "none": Basemap("none", None, ""),
    "osm": Basemap("osm", "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                   '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                   'contributors',
                   max_zoom=19),
    "carto": Basemap("carto", "https://{s}.basemaps.cartocdn.com/light_all/{z}/{x}/{y}.png",
                     '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                     'contributors &copy; <a href="https://carto.com/attributions">CARTO</a>',
                     subdomains="abcd", max_zoom=19),
    "amap": Basemap("amap", "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                            "&style=8&x={x}&y={y}&z={z}",
                    "&copy; 高德地图 AutoNavi (GCJ-02)", datum="gcj02", subdomains="1234"),
})
#: The basemap when the URL names none: no tiles, so the page contacts no outside server.
DEFAULT_BASEMAP = "none"


def basemap_label(basemap_id: str, lang: str) -> str:
    """The sidebar label of a basemap."""
    return t(f"map_basemap_{basemap_id}", lang)


# ----------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class KindStyle:
    """Marker colour and shape of one entity kind."""

    color: str
    shape: str


#: Colour AND shape per kind, so kinds stay apart for colour-blind readers and in print.
KIND_STYLES: Mapping[str, KindStyle] = MappingProxyType({
    "high_tech_zone": KindStyle("#e31a1c", "hexagon"),
    "laboratory": KindStyle("#1f78b4", "triangle"),
    "technology_innovation_center": KindStyle("#ff7f00", "diamond"),
    "research_institute": KindStyle("#33a02c", "square"),
    "university": KindStyle("#6a3d9a", "circle"),
    "incubator": KindStyle("#b15928", "pentagon"),
    "offshore_innovation_center": KindStyle("#0e9fb3", "star"),
    "international_cooperation": KindStyle("#e7298a", "triangle_down"),
    "enterprise": KindStyle("#4d4d4d", "cross"),
    "major_facility": KindStyle("#8c6d1f", "octagon"),
    "innovation_platform": KindStyle("#1b9e77", "star4"),
    "core_area": KindStyle("#c51b7d", "target"),
})
_FALLBACK_STYLE = KindStyle("#777777", "circle")

# Shapes in a 20 x 20 box (outlines only; colour and dash are applied per marker).
_SHAPES: Mapping[str, str] = MappingProxyType({
    "circle": '<circle cx="10" cy="10" r="7"/>',
    "square": '<rect x="3.5" y="3.5" width="13" height="13"/>',
    "triangle": '<polygon points="10,2.5 17.5,16.5 2.5,16.5"/>',
    "triangle_down": '<polygon points="2.5,3.5 17.5,3.5 10,17.5"/>',
    "diamond": '<polygon points="10,2 18,10 10,18 2,10"/>',
    "pentagon": '<polygon points="10,2.5 17.6,8 14.7,17 5.3,17 2.4,8"/>',
    "hexagon": '<polygon points="10,2 17,6 17,14 10,18 3,14 3,6"/>',
    "octagon": '<polygon points="7,2.5 13,2.5 17.5,7 17.5,13 13,17.5 7,17.5 2.5,13 2.5,7"/>',
    "star": '<polygon points="10,1.5 12.4,7.3 18.5,7.6 13.8,11.6 15.3,17.8 10,14.4 4.7,17.8 '
            '6.2,11.6 1.5,7.6 7.6,7.3"/>',
    "star4": '<polygon points="10,1.5 12.5,7.5 18.5,10 12.5,12.5 10,18.5 7.5,12.5 1.5,10 '
             '7.5,7.5"/>',
    "cross": '<polygon points="7,2.5 13,2.5 13,7 17.5,7 17.5,13 13,13 13,17.5 7,17.5 7,13 2.5,13 '
             '2.5,7 7,7"/>',
    "target": '<circle cx="10" cy="10" r="7.5"/><circle cx="10" cy="10" r="3" fill-opacity="1"/>',
})

_ICON_PX = 22
#: Leaflet.markercluster options of the compact marker layers (as in ``_add_entities``).
_CLUSTER_OPTIONS: Mapping[str, Any] = MappingProxyType({
    "showCoverageOnHover": False, "spiderfyOnMaxZoom": True, "maxClusterRadius": 40,
    "spiderfyDistanceMultiplier": 1.6})
_BOUNDARY_COLOR = "#555555"
_CITY_COLOR = "#222222"
_WATER_COLOR = "#3b8fd6"


def kind_style(kind: str | None) -> KindStyle:
    """The style of ``kind`` (a neutral grey circle for a value outside the vocabulary)."""
    return KIND_STYLES.get(kind or "", _FALLBACK_STYLE)


def is_exact(precision: str | None) -> bool:
    """True when a point stands for the entity's own site or campus (``vocab.EXACT_PRECISIONS``)."""
    return (precision or "") in EXACT_PRECISIONS


def marker_svg(kind: str | None, exact: bool, *, size: int = _ICON_PX) -> str:
    """The SVG of one marker: filled and solid when ``exact``, hollow and dashed otherwise.

    Only vocabulary-derived values enter the SVG (never user text).
    """
    style = kind_style(kind)
    shape = _SHAPES[style.shape]
    if exact:
        paint = f'fill="{style.color}" fill-opacity="0.9" stroke="#1a1a1a" stroke-width="1.2"'
        cls = "sim-exact"
    else:
        paint = (f'fill="{style.color}" fill-opacity="0.18" stroke="{style.color}" '
                 'stroke-width="2.2" stroke-dasharray="3 2"')
        cls = "sim-approx"
    safe_kind = kind if kind in KINDS else "other"
    return (f'<svg class="sim-icon {cls}" data-kind="{safe_kind}" width="{size}" height="{size}" '
            f'viewBox="0 0 20 20" xmlns="http://www.w3.org/2000/svg"><g {paint}>{shape}</g></svg>')
