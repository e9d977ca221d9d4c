"""The ``>>>`` examples in the package's docstrings run and hold (numpy-style docs that show
a result must show the real one)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import geo_app

MODULES = sorted(m.name for m in pkgutil.walk_packages(geo_app.__path__, "geo_app."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_package_has_examples_to_run() -> None:
    attempted = sum(doctest.testmod(importlib.import_module(n), report=False).attempted
                    for n in MODULES)
    assert attempted >= 70  # 78 when this test was written
