"""House rules checked by the suite: lint, types, and the README documenting every command."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from geo_app.cli import make_parser
from geo_app.settings import PROJECT_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_is_clean() -> None:
    proc = _run("ruff", "check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    proc = _run("mypy", "geo_app", "benchmarks")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_documents_every_command_and_setting() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    sub = next(a for a in make_parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"geo-app {name}" in readme, name
    settings_vars = set(re.findall(r"GEO_APP_[A-Z_]+", "".join(
        p.read_text(encoding="utf-8") for p in (PROJECT_ROOT / "geo_app").rglob("*.py"))))
    assert {"GEO_APP_DB", "GEO_APP_DATABASE_URL", "GEO_APP_READ_URL"} <= settings_vars
    for var in sorted(settings_vars):
        assert f"`{var}`" in readme, var
    # the README opens with exactly the two commands: start the map, run the tests
    blocks = readme.split("```bash\n")[1:3]
    assert "streamlit run streamlit_app.py" in blocks[0]
    assert "python -m pytest" in blocks[1]
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].split("```")[0].strip() in ci


# -- boundaries: which modules may import which library --------------------------------------

#: library (top-level import name) -> the only places that may import it: folders end in "/".
#: Imports under ``if TYPE_CHECKING:`` are types, not uses, and do not count.
BOUNDARIES = [
    # the database engines: every SQL statement lives in geo_app/store
    ("duckdb", ("geo_app/store/",)),
    ("duckdb_extension_spatial", ("geo_app/store/",)),
    ("psycopg", ("geo_app/store/",)),
    ("psycopg_pool", ("geo_app/store/",)),
    # Leaflet through folium: only maps builds (and seals) map elements
    ("folium", ("geo_app/maps/",)),
    ("branca", ("geo_app/maps/",)),
    # the web pages
    ("streamlit", ("geo_app/views/", "streamlit_app.py")),
    ("streamlit_folium", ("geo_app/views/", "streamlit_app.py")),
]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imported(tree: ast.AST) -> set[str]:
    """Top-level names of the libraries a module imports (``import``, ``from``, import_module)."""
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)  # the body is for the type checker only
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__"))
                   or (isinstance(node.func, ast.Attribute)
                       and node.func.attr == "import_module"))):
            found.add(node.args[0].value.split(".")[0])
        stack.extend(ast.iter_child_nodes(node))
    return found


def _importers(root: Path, library: str) -> set[str]:
    """Files under ``root`` (geo_app/ and streamlit_app.py), as posix paths, importing
    ``library``."""
    files = [*sorted((root / "geo_app").rglob("*.py")), root / "streamlit_app.py"]
    return {path.relative_to(root).as_posix() for path in files
            if path.exists()
            and library in _imported(ast.parse(path.read_text(encoding="utf-8"), str(path)))}


def _outside(paths: set[str], allowed: tuple[str, ...]) -> set[str]:
    return {p for p in paths
            if not any(p.startswith(a) if a.endswith("/") else p == a for a in allowed)}


@pytest.mark.parametrize(("library", "allowed"), BOUNDARIES)
def test_only_its_home_imports_a_library(library: str, allowed: tuple[str, ...]) -> None:
    importers = _importers(PROJECT_ROOT, library)
    assert not _outside(importers, allowed), f"{library} imported outside {allowed}"
    # the walk sees the library where it is used (else this test could not fail)
    assert importers, f"no module imports {library}: is the walk broken?"


@pytest.mark.parametrize("probe", [
    "import duckdb\n",
    "import duckdb.typing as t\n",
    "from duckdb import DuckDBPyConnection\n",
    "def f():\n    import duckdb\n",                       # a late import is an import
    "import importlib\nimportlib.import_module('duckdb')\n",
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\nelse:\n    import duckdb\n",
])
def test_boundary_walk_finds_a_stray_import(tmp_path: Path, probe: str) -> None:
    (tmp_path / "geo_app" / "store").mkdir(parents=True)
    (tmp_path / "geo_app" / "store" / "read.py").write_text("import duckdb\n", encoding="utf-8")
    (tmp_path / "geo_app" / "cli.py").write_text(probe, encoding="utf-8")
    assert _outside(_importers(tmp_path, "duckdb"), ("geo_app/store/",)) == {"geo_app/cli.py"}


def test_boundary_walk_leaves_type_only_imports() -> None:
    probe = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import folium\n"
    assert "folium" not in _imported(ast.parse(probe))
