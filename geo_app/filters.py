"""The entity filter shared by the map, the exports, the CLI and the HTTP API (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from geo_app.errors import FilterError
from geo_app.vocab import BOARDS, KINDS, LEVELS, STATUSES, Labels


@dataclass(frozen=True)
class EntityFilter:
    """Which entities to show. Empty tuples mean "no restriction".

    Attributes
    ----------
    kinds, levels, statuses, boards
        Allowed values (any of), each from its controlled vocabulary.
    layers
        Strategy-layer ids; an entity matches if it lies in any of them.
    search
        Case-insensitive substring of the Chinese or English name.
    """

    kinds: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    boards: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    search: str = ""

    def is_empty(self) -> bool:
        """True when nothing is filtered out."""
        return not (self.kinds or self.levels or self.statuses or self.boards
                    or self.layers or self.search.strip())


def _check(values: Iterable[str], vocab: Labels, name: str) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(v.strip() for v in values if v and v.strip()))
    bad = [v for v in out if v not in vocab]
    if bad:
        msg = f"Unknown {name} {bad[0]!r}; valid values: {', '.join(vocab)}"
        raise FilterError(msg)
    return out


def make_filter(
    *,
    kinds: Iterable[str] = (),
    levels: Iterable[str] = (),
    statuses: Iterable[str] = (),
    boards: Iterable[str] = (),
    layers: Iterable[str] = (),
    search: str | None = "",
    known_layers: Iterable[str] | None = None,
) -> EntityFilter:
    """Build an :class:`EntityFilter`, validating every value against its vocabulary.

    Raises
    ------
    FilterError
        Naming the first unknown value and the valid ones.
    """
    layer_ids = tuple(dict.fromkeys(v.strip() for v in layers if v and v.strip()))
    if known_layers is not None:
        valid = set(known_layers)
        bad = [v for v in layer_ids if v not in valid]
        if bad:
            msg = f"Unknown layer {bad[0]!r}; valid values: {', '.join(sorted(valid))}"
            raise FilterError(msg)
    text = (search or "").strip()
    if len(text) > 200:
        msg = "Search text is limited to 200 characters"
        raise FilterError(msg)
    return EntityFilter(
        kinds=_check(kinds, KINDS, "kind"),
        levels=_check(levels, LEVELS, "level"),
        statuses=_check(statuses, STATUSES, "status"),
        boards=_check(boards, BOARDS, "board (板块)"),
        layers=layer_ids,
        search=text,
    )


#: Query-string keys of each filter field (the map URL, the API and the CLI use them).
QUERY_KEYS = {"kinds": "kind", "levels": "level", "statuses": "status", "boards": "board",
              "layers": "layer", "search": "q"}


def filter_from_query(params: Mapping[str, list[str]], **kwargs: object) -> EntityFilter:
    """Read a filter from query parameters (``kind=a&kind=b`` or ``kind=a,b``)."""
    def values(key: str) -> list[str]:
        out: list[str] = []
        for raw in params.get(key, []):
            out.extend(part for part in raw.split(",") if part)
        return out

    search_vals = params.get("q", [])
    return make_filter(
        kinds=values("kind"), levels=values("level"), statuses=values("status"),
        boards=values("board"), layers=values("layer"),
        search=search_vals[0] if search_vals else "", **kwargs,  # type: ignore[arg-type]
    )


def filter_to_query(flt: EntityFilter) -> dict[str, list[str]]:
    """The inverse of :func:`filter_from_query` (empty fields are omitted)."""
    out: dict[str, list[str]] = {}
    for attr, key in QUERY_KEYS.items():
        value = getattr(flt, attr)
        if attr == "search":
            if value:
                out[key] = [value]
        elif value:
            out[key] = list(value)
    return out
