"""Slow imports for the crash and concurrency tests, with no hook in the package itself.

:func:`pause_inside_imports` wraps the store's ``insert_frame`` (where the import writer
looks it up, :data:`WRITER`) so that an import sleeps twice
inside its open transaction (before the entities are written, and after the memberships)
and says so on stderr. Run as ``python -m tests.slow_import SECONDS geo-app-args…`` it does
that in a subprocess and then runs the command line, so a test can kill the process at a
known moment.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from geo_app.store import duckdb_write

#: The module whose ``insert_frame`` the imports call.
WRITER = duckdb_write

#: What the pauses print, in order (the crash test waits for these lines).
STAGES = ("batch row written, inside the import transaction",
          "entities written, inside the import transaction")


def pause_inside_imports(seconds: float,
                         on_pause: Callable[[str], None] | None = None) -> Callable[..., Any]:
    """Make every import pause ``seconds`` at each of :data:`STAGES`; returns the original
    ``insert_frame`` of :data:`WRITER` (to restore it, or for ``monkeypatch`` to do so)."""
    real = WRITER.insert_frame

    def pause(stage: str) -> None:
        print(f"slow import: {stage}", file=sys.stderr, flush=True)
        if on_pause is not None:
            on_pause(stage)
        time.sleep(seconds)

    def slow_insert(con: Any, table: str, frame: Any) -> Any:
        if table == "entities":
            pause(STAGES[0])
        written = real(con, table, frame)
        if table == "layer_members":
            pause(STAGES[1])
        return written

    WRITER.insert_frame = slow_insert  # type: ignore[assignment]
    return real


if __name__ == "__main__":
    from geo_app import cli

    pause_inside_imports(float(sys.argv[1]))
    sys.exit(cli.main(sys.argv[2:]))
