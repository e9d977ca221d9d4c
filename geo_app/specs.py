"""Parse and validate ``layers/*.toml`` into frozen dataclasses; errors name file and key."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geo_app.errors import LayerSpecError

METHODS = ("shore_band", "river_corridor", "anchor_area")
COUNTY_ADCODES = ("320505", "320506", "320507", "320508", "320509",
                  "320581", "320582", "320583", "320585")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Anchor:
    """A point a core area is built around, taken from a registry entity or the spec itself."""

    name: str
    entity_id: str = ""
    lon: float | None = None
    lat: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Fact:
    """A documented fact the layer rests on, with its citation."""

    text: str
    source: str


@dataclass(frozen=True)
class LayerSpec:
    """How one strategy layer is built (see ``layers/README.md`` for every key)."""

    path: str
    id: str
    name_zh: str
    name_en: str
    color: str
    method: str
    description_zh: str
    description_en: str
    counties: tuple[str, ...]
    exclude_water: tuple[str, ...]
    lake: str = ""
    river: str = ""
    distance_km: float = 0.0
    anchors: tuple[Anchor, ...] = ()
    target_area_km2: float | None = None
    radius_km: float | None = None
    tolerance_pct: float = 10.0
    facts: tuple[Fact, ...] = ()
    order: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (stored beside the built layer)."""
        from dataclasses import asdict

        return asdict(self)


def _get(data: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str,
         *, required: bool = True, default: Any = None, prefix: str = "") -> Any:
    full = f"{prefix}{key}"
    if key not in data:
        if required:
            raise LayerSpecError(path, full, "is required")
        return default
    value = data[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise LayerSpecError(path, full, f"must be a number, got {value!r}")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise LayerSpecError(path, full, f"must be {names}, got {type(value).__name__} {value!r}")
    return value


def parse_spec(path: Path) -> LayerSpec:
    """Read one layer file.

    Raises
    ------
    LayerSpecError
        Naming the file and the first invalid key.
    """
    name = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise LayerSpecError(name, "(syntax)", f"not valid TOML: {err}") from err
    known = {"id", "name_zh", "name_en", "color", "description_zh", "description_en", "order",
             "build", "facts"}
    for key in data:
        if key not in known:
            raise LayerSpecError(name, key, f"unknown key; allowed: {', '.join(sorted(known))}")
    layer_id = _get(data, "id", str, name)
    if not _ID.match(layer_id):
        raise LayerSpecError(name, "id", "must be lowercase letters, digits and _ (2–41 chars)")
    color = _get(data, "color", str, name)
    if not _COLOR.match(color):
        raise LayerSpecError(name, "color", f"must look like #1f78b4, got {color!r}")
    build = _get(data, "build", dict, name)
    method = _get(build, "method", str, name, prefix="build.")
    if method not in METHODS:
        raise LayerSpecError(name, "build.method", f"must be one of {', '.join(METHODS)}")
    counties = tuple(_get(build, "counties", list, name, prefix="build."))
    for code in counties:
        if code not in COUNTY_ADCODES:
            raise LayerSpecError(name, "build.counties",
                                 f"unknown county adcode {code!r}; valid: "
                                 f"{', '.join(COUNTY_ADCODES)}")
    if not counties:
        raise LayerSpecError(name, "build.counties", "must list at least one county adcode")
    exclude = tuple(_get(build, "exclude_water", list, name, required=False, default=[],
                         prefix="build."))
    spec = LayerSpec(
        path=name, id=layer_id, name_zh=_get(data, "name_zh", str, name),
        name_en=_get(data, "name_en", str, name), color=color, method=method,
        description_zh=_get(data, "description_zh", str, name),
        description_en=_get(data, "description_en", str, name),
        counties=counties, exclude_water=exclude,
        lake=_get(build, "lake", str, name, required=method == "shore_band", default="",
                  prefix="build."),
        river=_get(build, "river", str, name, required=method == "river_corridor", default="",
                   prefix="build."),
        distance_km=float(_get(build, "distance_km", (int, float), name,
                               required=method != "anchor_area", default=0.0, prefix="build.")),
        anchors=_anchors(build, name, required=method == "anchor_area"),
        target_area_km2=_opt_float(build, "target_area_km2", name, False),
        radius_km=_opt_float(build, "radius_km", name, False),
        tolerance_pct=float(_get(build, "tolerance_pct", (int, float), name, required=False,
                                 default=10.0, prefix="build.")),
        facts=_facts(data, name),
        order=int(_get(data, "order", int, name, required=False, default=0)),
    )
    _check_ranges(spec)
    return spec


def _opt_float(build: dict[str, Any], key: str, path: str, required: bool) -> float | None:
    value = _get(build, key, (int, float), path, required=required, prefix="build.")
    return None if value is None else float(value)


def _anchors(build: dict[str, Any], path: str, required: bool) -> tuple[Anchor, ...]:
    raw = _get(build, "anchors", list, path, required=required, default=[], prefix="build.")
    out = []
    for i, item in enumerate(raw):
        key = f"build.anchors[{i}]"
        if not isinstance(item, dict):
            raise LayerSpecError(path, key, "must be a table with name and entity_id or lon/lat")
        name = _get(item, "name", str, path, prefix=key + ".")
        entity_id = _get(item, "entity_id", str, path, required=False, default="", prefix=key + ".")
        lon = _get(item, "lon", (int, float), path, required=False, prefix=key + ".")
        lat = _get(item, "lat", (int, float), path, required=False, prefix=key + ".")
        if not entity_id and (lon is None or lat is None):
            raise LayerSpecError(path, key, "needs entity_id or both lon and lat")
        if lon is not None and not (119.5 <= lon <= 121.5 and 30.5 <= (lat or 0) <= 32.5):
            raise LayerSpecError(path, key + ".lon", "must lie around Suzhou (WGS-84)")
        source = _get(item, "source", str, path, required=entity_id == "", default="",
                      prefix=key + ".")
        out.append(Anchor(name=name, entity_id=entity_id,
                          lon=None if lon is None else float(lon),
                          lat=None if lat is None else float(lat), source=source))
    if required and not out:
        raise LayerSpecError(path, "build.anchors", "must list at least one anchor")
    return tuple(out)


def _facts(data: dict[str, Any], path: str) -> tuple[Fact, ...]:
    raw = _get(data, "facts", list, path, required=False, default=[])
    out = []
    for i, item in enumerate(raw):
        key = f"facts[{i}]"
        if not isinstance(item, dict):
            raise LayerSpecError(path, key, "must be a table with text and source")
        out.append(Fact(text=_get(item, "text", str, path, prefix=key + "."),
                        source=_get(item, "source", str, path, prefix=key + ".")))
    return tuple(out)


def _check_ranges(spec: LayerSpec) -> None:
    if spec.method != "anchor_area" and not 0 < spec.distance_km <= 50:
        raise LayerSpecError(spec.path, "build.distance_km", "must be > 0 and ≤ 50 km")
    if spec.target_area_km2 is not None and not 0 < spec.target_area_km2 <= 5000:
        raise LayerSpecError(spec.path, "build.target_area_km2", "must be > 0 and ≤ 5000")
    if spec.method == "anchor_area" and (spec.target_area_km2 is None) == (spec.radius_km is None):
        raise LayerSpecError(spec.path, "build.target_area_km2",
                             "an anchor_area needs exactly one of target_area_km2 or radius_km")
    if spec.radius_km is not None and not 0 < spec.radius_km <= 50:
        raise LayerSpecError(spec.path, "build.radius_km", "must be > 0 and ≤ 50 km")
    if not 0 < spec.tolerance_pct <= 50:
        raise LayerSpecError(spec.path, "build.tolerance_pct", "must be > 0 and ≤ 50")


def load_specs(layers_dir: Path) -> list[LayerSpec]:
    """Parse every ``*.toml`` in ``layers_dir``; ids must be unique."""
    specs = [parse_spec(p) for p in sorted(Path(layers_dir).glob("*.toml"))]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.id in seen:
            raise LayerSpecError(spec.path, "id", f"duplicates the id in {seen[spec.id]}")
        seen[spec.id] = spec.path
    return sorted(specs, key=lambda s: (s.order, s.id))
