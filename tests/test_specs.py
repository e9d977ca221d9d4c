"""Layer specifications: every invalid spec names its file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_app.errors import LayerSpecError
from geo_app.settings import PROJECT_ROOT
from geo_app.specs import load_specs, parse_spec

GOOD = """
id = "belt"
name_zh = "带"
name_en = "Belt"
color = "#33a02c"
description_zh = "示意"
description_en = "Schematic"
[build]
method = "river_corridor"
river = "wusong"
distance_km = 3
counties = ["320583"]
"""


def _write(tmp_path: Path, text: str, name: str = "x.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_specs_are_valid() -> None:
    specs = load_specs(PROJECT_ROOT / "layers")
    assert [s.id for s in specs] == ["taihu_ring", "wusong_belt", "taihu_science_city",
                                     "taihu_new_town", "hsr_new_town"]
    for spec in specs:
        assert spec.facts and all(f.source for f in spec.facts), spec.id
        assert "示意" in spec.description_zh and "chematic" in spec.description_en


def test_good_spec_parses(tmp_path: Path) -> None:
    spec = parse_spec(_write(tmp_path, GOOD))
    assert (spec.method, spec.river, spec.distance_km, spec.counties) == (
        "river_corridor", "wusong", 3.0, ("320583",))


@pytest.mark.parametrize(("edit", "key", "message"), [
    (("id = \"belt\"", "id = \"Belt Layer\""), "id", "lowercase"),
    (("color = \"#33a02c\"", "color = \"green\""), "color", "#1f78b4"),
    (("method = \"river_corridor\"", "method = \"voronoi\""), "build.method", "one of"),
    (("distance_km = 3", "distance_km = \"3\""), "build.distance_km", "must be"),
    (("distance_km = 3", "distance_km = 0"), "build.distance_km", "> 0"),
    (("distance_km = 3", "distance_km = true"), "build.distance_km", "number"),
    (("counties = [\"320583\"]", "counties = [\"110000\"]"), "build.counties", "unknown county"),
    (("counties = [\"320583\"]", "counties = []"), "build.counties", "at least one"),
    (("river = \"wusong\"\n", ""), "build.river", "required"),
    (("name_en = \"Belt\"\n", ""), "name_en", "required"),
    (("id = \"belt\"", "id = \"belt\"\nwidth = 3"), "width", "unknown key"),
    (("[build]", "[build"), "(syntax)", "not valid TOML"),
])
def test_invalid_specs_name_file_and_key(tmp_path: Path, edit: tuple[str, str], key: str,
                                         message: str) -> None:
    path = _write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(LayerSpecError) as info:
        parse_spec(path)
    assert info.value.path == str(path) and info.value.key == key
    assert message in str(info.value) and str(path) in info.value.user_message


def test_anchor_area_needs_size_and_anchors(tmp_path: Path) -> None:
    text = GOOD.replace('method = "river_corridor"\nriver = "wusong"\ndistance_km = 3\n',
                        'method = "anchor_area"\n')
    with pytest.raises(LayerSpecError, match="build.anchors"):
        parse_spec(_write(tmp_path, text))
    text += '\n[[build.anchors]]\nname = "a"\nlon = 120.9\nlat = 31.3\nsource = "s"\n'
    with pytest.raises(LayerSpecError, match="exactly one of target_area_km2 or radius_km"):
        parse_spec(_write(tmp_path, text))
    bad = text.replace("lon = 120.9", "lon = 2.0")
    with pytest.raises(LayerSpecError, match=r"anchors\[0\].lon"):
        parse_spec(_write(tmp_path, bad.replace("[build]", "[build]\nradius_km = 2")))


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "a.toml")
    _write(tmp_path, GOOD, "b.toml")
    with pytest.raises(LayerSpecError, match="duplicates the id"):
        load_specs(tmp_path)
