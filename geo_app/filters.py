"""The entity filter and its one codec: keys, parser, serialiser and CLI options (pure).

The map's URL, the HTTP API, the CLI and the comparison's 板块 list all read a filter
here and write it back from here:

- :data:`FILTER_KEYS` is the one list of the filter's keys (``kind``, ``level``,
  ``status``, ``board``, ``layer``, ``q``): the query keys of the map URL and the API,
  the CLI options (``--kind``... and ``--search``/``--q``/``-q``), each with the
  :class:`EntityFilter` field it fills and its vocabulary.
- :func:`parse_filter` is the one parser: lenient, it returns the filter and the values it
  rejected (the map warns about them). :func:`filter_from_query` and :func:`make_filter`
  are its strict forms (the API and the CLI: :class:`~geo_app.errors.FilterError`).
  Every list takes comma-separated values or repeated keys (``kind=a,b`` = ``kind=a&kind=b``).
- :func:`filter_to_query` is the one serialiser (the map URL, the API's links);
  :func:`filter_to_args` writes the same filter as CLI options.
- :func:`add_filter_options` declares the CLI options and :func:`filter_from_args` reads them.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from geo_app.errors import FilterError
from geo_app.vocab import BOARDS, KINDS, LEVELS, STATUSES, Labels

#: The longest search text (longer text is cut by the lenient parser, refused by the strict one).
MAX_SEARCH = 200
#: Characters of a rejected value shown in a warning (:meth:`Rejected.__str__`).
_SHOWN = 80


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


@dataclass(frozen=True)
class FilterKey:
    """One key of the filter.

    Attributes
    ----------
    key
        The query key (map URL, API) and the CLI option ``--<key>``.
    field
        The :class:`EntityFilter` attribute it fills.
    name
        How error messages name it.
    about
        One sentence saying what it keeps (the API document and the CLI help).
    vocab
        Its controlled vocabulary; None for the layer ids (known per database) and the text.
    text
        True for the search text (one value, never split), False for a list (any of).
    options
        The CLI option strings; the first is the one :func:`filter_to_args` writes.
    """

    key: str
    field: str
    name: str
    about: str
    vocab: Labels | None = None
    text: bool = False
    options: tuple[str, ...] = ()

    def choices(self, known_layers: Iterable[str] = ()) -> tuple[str, ...]:
        """The values this key accepts (``known_layers`` for ``layer``; none for the text)."""
        if self.text:
            return ()
        return tuple(self.vocab if self.vocab is not None else known_layers)

    @property
    def dest(self) -> str:
        """The attribute of the parsed CLI arguments that holds this key's values."""
        return self.cli_options[0].lstrip("-").replace("-", "_")

    @property
    def cli_options(self) -> tuple[str, ...]:
        """The CLI option strings (``--<key>`` unless :attr:`options` says otherwise)."""
        return self.options or (f"--{self.key}",)


#: The filter's keys, in the order URLs, links and CLI commands write them.
FILTER_KEYS: Mapping[str, FilterKey] = MappingProxyType({k.key: k for k in (
    FilterKey("kind", "kinds", "kind", "Entity kind.", KINDS),
    FilterKey("level", "levels", "level", "Level (national, provincial...).", LEVELS),
    FilterKey("status", "statuses", "status", "Status.", STATUSES),
    FilterKey("board", "boards", "board (板块)", "板块 (district), by its Chinese name.", BOARDS),
    FilterKey("layer", "layers", "layer", "Strategy layer the entity lies in."),
    FilterKey("q", "search", "search", "Name (Chinese or English, case-insensitive) contains "
              "this text, or the id equals it.", text=True, options=("--search", "--q", "-q")),
)})


@dataclass(frozen=True)
class Rejected:
    """A value the parser dropped, with the message that says why.

    ``str()`` gives ``key=value`` (a long value cut), as the map's warning lists them.
    """

    key: str
    value: str
    message: str

    def __str__(self) -> str:
        value = self.value[:_SHOWN] + ("…" if len(self.value) > _SHOWN else "")
        return f"{self.key}={value}"


def split_values(raw: Iterable[str]) -> list[str]:
    """The values of a repeated key, each of which may be a comma-separated list.

    Stripped; empty parts dropped; order and repeats kept.

    >>> split_values(["laboratory, university", "", "laboratory"])
    ['laboratory', 'university', 'laboratory']
    """
    return [p.strip() for value in raw for p in value.split(",") if p.strip()]


def parse_values(key: str, raw: Iterable[str], *, known_layers: Iterable[str] | None = None
                 ) -> tuple[tuple[str, ...], tuple[Rejected, ...]]:
    """The valid values of list key ``key`` (once each, in order) and the rejected ones.

    ``raw`` as in :func:`split_values`. ``layer`` values are checked only when
    ``known_layers`` is given.

    >>> parse_values("board", ["昆山市,北京市", "昆山市"])[0]
    ('昆山市',)
    >>> [str(r) for r in parse_values("board", ["昆山市,北京市"])[1]]
    ['board=北京市']
    """
    spec = FILTER_KEYS[key]
    values = tuple(dict.fromkeys(split_values(raw)))
    if spec.vocab is None and known_layers is None:
        return values, ()
    valid = spec.choices(known_layers or ())
    listed = ", ".join(valid if spec.vocab is not None else sorted(valid))
    rejected = tuple(Rejected(key, v, f"Unknown {spec.name} {v!r}; valid values: {listed}")
                     for v in values if v not in valid)
    return tuple(v for v in values if v in valid), rejected


def parse_filter(params: Mapping[str, Sequence[str]], *,
                 known_layers: Iterable[str] | None = None
                 ) -> tuple[EntityFilter, tuple[Rejected, ...]]:
    """Read a filter from query parameters, leniently: the filter and what was dropped.

    Lists are comma-separated or repeated (``kind=a,b`` = ``kind=a&kind=b``); unknown
    values are dropped and returned; the search text is the first ``q``, stripped and
    cut to :data:`MAX_SEARCH` characters (longer text is also reported). Other keys are
    ignored.

    >>> flt, rejected = parse_filter({"kind": ["laboratory,bogus"], "q": [" 苏州 "]})
    >>> flt.kinds, flt.search, [str(r) for r in rejected]
    (('laboratory',), '苏州', ['kind=bogus'])
    """
    layers = None if known_layers is None else tuple(known_layers)
    fields: dict[str, Any] = {}
    rejected: list[Rejected] = []
    for key, spec in FILTER_KEYS.items():
        raw = params.get(key) or ()
        if spec.text:
            text = raw[0].strip() if raw else ""
            if len(text) > MAX_SEARCH:
                rejected.append(Rejected(key, text, f"Search text is limited to {MAX_SEARCH} "
                                                    "characters"))
            fields[spec.field] = text[:MAX_SEARCH]
        else:
            fields[spec.field], bad = parse_values(key, raw, known_layers=layers)
            rejected += bad
    return EntityFilter(**fields), tuple(rejected)


def filter_from_query(params: Mapping[str, Sequence[str]], *,
                      known_layers: Iterable[str] | None = None) -> EntityFilter:
    """Read a filter from query parameters strictly (the API, the CLI).

    Raises
    ------
    FilterError
        Naming the first unknown value and the valid ones (or the search text's limit).
    """
    flt, rejected = parse_filter(params, known_layers=known_layers)
    if rejected:
        # keys without a fixed vocabulary (layer, then the search) are reported first,
        # as the API always has when several values are wrong
        first = min(rejected, key=lambda r: FILTER_KEYS[r.key].vocab is not None)
        raise FilterError(first.message)
    return flt


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

    The keyword arguments are the :class:`EntityFilter` fields (values may be
    comma-separated lists, as in the URL).

    Raises
    ------
    FilterError
        Naming the first unknown value and the valid ones.
    """
    given: dict[str, Any] = {"kinds": kinds, "levels": levels, "statuses": statuses,
                             "boards": boards, "layers": layers, "search": [search or ""]}
    return filter_from_query({k: list(given[spec.field]) for k, spec in FILTER_KEYS.items()},
                             known_layers=known_layers)


def filter_to_query(flt: EntityFilter, keys: Collection[str] | None = None) -> dict[str, list[str]]:
    """The query parameters of ``flt`` (the inverse of :func:`parse_filter`).

    Empty fields are omitted; ``keys`` restricts the output to those keys.

    >>> filter_to_query(EntityFilter(kinds=("laboratory", "university"), search="苏州"))
    {'kind': ['laboratory', 'university'], 'q': ['苏州']}
    """
    out: dict[str, list[str]] = {}
    for key, spec in FILTER_KEYS.items():
        value = getattr(flt, spec.field)
        if value and (keys is None or key in keys):
            out[key] = [value] if spec.text else list(value)
    return out


def filter_to_args(flt: EntityFilter) -> list[str]:
    """``flt`` as CLI options (``geo-app export``), one option per value.

    >>> filter_to_args(EntityFilter(boards=("昆山市",), search="a b"))
    ['--board', '昆山市', '--search', 'a b']
    """
    return [arg for key, values in filter_to_query(flt).items()
            for value in values for arg in (FILTER_KEYS[key].cli_options[0], value)]


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """Declare the filter's CLI options on ``parser`` (read them with :func:`filter_from_args`).

    Lists take comma-separated values and repeat (``--kind a,b`` = ``--kind a --kind b``);
    the help names each vocabulary. The search is ``--search``, ``--q`` or ``-q``.
    """
    for spec in FILTER_KEYS.values():
        if spec.text:
            parser.add_argument(*spec.cli_options, dest=spec.dest, default="", metavar="TEXT",
                                help=spec.about[:1].lower() + spec.about[1:])
            continue
        values = (", ".join(spec.vocab) if spec.vocab is not None
                  else "the ids 'geo-app layers' lists")
        metavar = spec.key.upper()
        parser.add_argument(*spec.cli_options, dest=spec.dest, action="append", default=[],
                            metavar=f"{metavar}[,{metavar}...]",
                            help=f"{spec.about} Any of (comma-separated or repeated): {values}")


def filter_args(args: argparse.Namespace) -> dict[str, list[str]]:
    """The filter values given on the command line (declared by :func:`add_filter_options`)."""
    out: dict[str, list[str]] = {}
    for key, spec in FILTER_KEYS.items():
        value = getattr(args, spec.dest)
        out[key] = ([value] if value else []) if spec.text else list(value)
    return out


def filter_from_args(args: argparse.Namespace, *,
                     known_layers: Iterable[str] | None = None) -> EntityFilter:
    """The filter the command line asks for (strict, as :func:`filter_from_query`).

    Raises
    ------
    FilterError
        Naming the first unknown value and the valid ones.
    """
    return filter_from_query(filter_args(args), known_layers=known_layers)
