"""Smoke run of the benchmark runner (``benchmarks/run.py --quick``) so it cannot rot.

Timings are not asserted here (speed goals live in the runner's table); this checks that
every benchmark runs, that the map rows cover both the every-marker and the aggregated
page, and that the table is printed.
"""

from __future__ import annotations

import math

import pytest

from benchmarks import run


def test_quick_run_prints_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run.run([500, 3_000], quick=True)
    out = capsys.readouterr().out
    assert rows
    for row in rows:
        assert math.isfinite(row.value) and row.value >= 0, row
        assert f"{row.n:,}" in out and row.metric in out
    metrics = {(r.n, r.metric) for r in rows}
    # 500 located entities: every marker once; 3,000: aggregated cells sized to the view
    assert (500, "map page payload (compact)") in metrics
    assert (3_000, "map page payload (cells)") in metrics
    for row in rows:
        if row.metric.startswith("map "):
            assert row.baseline is not None and row.baseline > 0
            assert row.baseline_name == "folium FastMarkerCluster"
        if row.metric.startswith("map page payload"):
            assert row.value < 1.0  # MB


def test_every_step_the_first_load_profile_times_exists() -> None:
    """``--first-sight`` times the map page's steps by replacing them (``PROFILED``); a
    step renamed or removed in the page makes the profiled app fail on its first run."""
    import importlib

    from benchmarks import bench_map

    missing = [f"{module}:{attr}" for module, attr in bench_map.patched_steps()
               if not hasattr(importlib.import_module(module), attr)]
    assert missing == []
    assert any(entry.endswith(":_whole_map") for entry in bench_map.PROFILED)
