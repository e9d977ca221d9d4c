"""House rules checked by the suite: lint, types, and the README documenting every command."""

from __future__ import annotations

import subprocess
import sys

from geo_app.cli import make_parser
from geo_app.settings import PROJECT_ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_is_clean() -> None:
    proc = _run("ruff", "check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    proc = _run("mypy", "geo_app")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_documents_every_command_and_setting() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    sub = next(a for a in make_parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"geo-app {name}" in readme, name
    for var in ("GEO_APP_DB", "GEO_APP_DATA_DIR", "GEO_APP_LAYERS_DIR"):
        assert var in readme, var
    # the README opens with exactly the two commands: start the map, run the tests
    blocks = readme.split("```bash\n")[1:3]
    assert "streamlit run streamlit_app.py" in blocks[0]
    assert "python -m pytest" in blocks[1]
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].split("```")[0].strip() in ci
