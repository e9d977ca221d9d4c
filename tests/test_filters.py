"""The filter codec (geo_app.filters): one key list, one parser, one serialiser, the CLI options.

The map URL, the API, the CLI and the comparison's 板块 list all go through these
functions, so each case below is a behaviour of every one of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex

import pytest

from geo_app import filters
from geo_app.errors import FilterError
from geo_app.filters import (
    FILTER_KEYS,
    MAX_SEARCH,
    EntityFilter,
    filter_from_args,
    filter_from_query,
    filter_to_args,
    filter_to_query,
    make_filter,
    parse_filter,
    parse_values,
)

LAYERS = ("taihu_science_city", "wusong_belt")


@pytest.mark.parametrize(("query", "expected", "rejected"), [
    # nothing given: no restriction (the unfiltered map, the whole export)
    ({}, EntityFilter(), []),
    # a comma list and repeated keys mean the same (the map writes one, people type the other)
    ({"kind": ["laboratory,university"]}, EntityFilter(kinds=("laboratory", "university")), []),
    ({"kind": ["laboratory", "university"]}, EntityFilter(kinds=("laboratory", "university")), []),
    # spaces around values and empty parts (a trailing comma) are not values
    ({"kind": [" laboratory , ,university,"]},
     EntityFilter(kinds=("laboratory", "university")), []),
    # a repeated value counts once, in its first place
    ({"board": ["昆山市,苏州工业园区", "昆山市"]},
     EntityFilter(boards=("昆山市", "苏州工业园区")), []),
    # unknown values are dropped and reported, the valid ones kept (a stale or hand-edited link)
    ({"kind": ["bogus,laboratory"], "board": ["北京市"]}, EntityFilter(kinds=("laboratory",)),
     ["kind=bogus", "board=北京市"]),
    # vocabularies are case-sensitive, as the database values are
    ({"level": ["National"]}, EntityFilter(), ["level=National"]),
    # a layer that the database does not have (removed by a rebuild) is dropped
    ({"layer": ["wusong_belt,gone"]}, EntityFilter(layers=("wusong_belt",)), ["layer=gone"]),
    # the search is the first q, stripped; never split at commas (names contain them)
    ({"q": [" 苏州, 大学 ", "ignored"]}, EntityFilter(search="苏州, 大学"), []),
    # a blank search is no search
    ({"q": ["   "]}, EntityFilter(), []),
    # an over-long search is cut (lenient) and reported (the strict parser refuses it)
    ({"q": ["x" * (MAX_SEARCH + 5)]}, EntityFilter(search="x" * MAX_SEARCH),
     ["q=" + "x" * 80 + "…"]),
    # keys that are not filter keys (lang, basemap, metric...) are not the filter's business
    ({"lang": ["en"], "kinds": ["laboratory"]}, EntityFilter(), []),
    # the reported value is cut, so a warning never repeats a huge value whole
    ({"status": ["y" * 500]}, EntityFilter(), ["status=" + "y" * 80 + "…"]),
])
def test_the_lenient_parser(query: dict[str, list[str]], expected: EntityFilter,
                            rejected: list[str]) -> None:
    flt, bad = parse_filter(query, known_layers=LAYERS)
    assert flt == expected
    assert [str(r) for r in bad] == rejected


def test_layers_are_not_checked_without_the_databases_list() -> None:
    # the exports' make_filter(layers=...) callers pass no list: any id is kept
    assert parse_filter({"layer": ["anything"]}) == (EntityFilter(layers=("anything",)), ())


@pytest.mark.parametrize(("query", "message"), [
    ({"kind": ["bogus"]}, "Unknown kind 'bogus'; valid values: high_tech_zone, laboratory"),
    ({"board": ["Suzhou"]}, "Unknown board (板块) 'Suzhou'; valid values: 张家港市"),
    ({"layer": ["nope"]}, "Unknown layer 'nope'; valid values: taihu_science_city, wusong_belt"),
    ({"q": ["x" * (MAX_SEARCH + 1)]}, f"Search text is limited to {MAX_SEARCH} characters"),
    # several wrong: the layer, then the search, then the vocabularies in key order (what the
    # API's 400 names; its answers stay the same as before the codec)
    ({"kind": ["bogus"], "layer": ["nope"]}, "Unknown layer 'nope'"),
    ({"kind": ["bogus"], "q": ["x" * 300]}, "Search text is limited"),
    ({"board": ["北京市"], "status": ["zz"]}, "Unknown status 'zz'"),
])
def test_the_strict_parser_names_the_first_problem(query: dict[str, list[str]],
                                                   message: str) -> None:
    with pytest.raises(FilterError) as info:
        filter_from_query(query, known_layers=LAYERS)
    assert info.value.user_message.startswith(message)


@pytest.mark.parametrize("flt", [
    EntityFilter(),
    EntityFilter(kinds=("laboratory", "university"), levels=("national",),
                 statuses=("operating",), boards=("苏州工业园区",), layers=("wusong_belt",),
                 search="苏州 大学"),
    EntityFilter(search="a,b"),  # a comma in the search survives the round trip
    EntityFilter(boards=("昆山市",)),
])
def test_the_serialiser_is_the_parsers_inverse(flt: EntityFilter) -> None:
    query = filter_to_query(flt)
    assert parse_filter(query, known_layers=LAYERS) == (flt, ())
    # the API's links write each list comma-joined: the same filter again
    joined = {k: [",".join(v)] if not FILTER_KEYS[k].text else v for k, v in query.items()}
    assert parse_filter(joined, known_layers=LAYERS) == (flt, ())


def test_the_serialiser_writes_keys_in_order_and_only_those_asked_for() -> None:
    flt = EntityFilter(kinds=("laboratory",), layers=("wusong_belt",), search="x")
    assert list(filter_to_query(flt)) == ["kind", "layer", "q"]  # empty fields are omitted
    # a layer's own collection in the API: its links carry no layer key
    assert filter_to_query(flt, ("kind", "q")) == {"kind": ["laboratory"], "q": ["x"]}


def test_one_key_list_fills_every_field() -> None:
    # a field of EntityFilter without a key (or a key without a field) could never be
    # written to a URL or read from one
    assert sorted(s.field for s in FILTER_KEYS.values()) == sorted(
        f.name for f in dataclasses.fields(EntityFilter))
    assert list(FILTER_KEYS) == ["kind", "level", "status", "board", "layer", "q"]


def test_make_filter_is_the_strict_parser_by_field() -> None:
    assert make_filter(kinds=["laboratory"], search=None) == EntityFilter(kinds=("laboratory",))
    with pytest.raises(FilterError, match="Unknown layer 'x'"):
        make_filter(layers=["x"], known_layers=LAYERS)


@pytest.mark.parametrize(("raw", "valid", "rejected"), [
    # the comparison's ?cmp= and --boards: comma lists or repeats, unknown dropped
    (["昆山市,太仓市"], ("昆山市", "太仓市"), []),
    (["昆山市", "太仓市"], ("昆山市", "太仓市"), []),
    ([" 昆山市 ,北京市"], ("昆山市",), ["board=北京市"]),
    ([""], (), []),  # ?cmp= (the page writes it when nothing is chosen)
])
def test_the_board_list_of_the_comparison(raw: list[str], valid: tuple[str, ...],
                                          rejected: list[str]) -> None:
    boards, bad = parse_values("board", raw)
    assert boards == valid and [str(r) for r in bad] == rejected


def _cli(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    filters.add_filter_options(parser)
    return parser.parse_args(list(args))


@pytest.mark.parametrize(("args", "expected"), [
    # the options written before the codec keep working
    (["--kind", "laboratory", "--kind", "university"],
     EntityFilter(kinds=("laboratory", "university"))),
    (["--board", "苏州工业园区", "--search", "大学"],
     EntityFilter(boards=("苏州工业园区",), search="大学")),
    (["-q", "大学"], EntityFilter(search="大学")),
    # the URL's q is an option too, and every list takes commas as in the URL
    (["--q", "大学"], EntityFilter(search="大学")),
    (["--kind", "laboratory,university", "--board", "昆山市,太仓市"],
     EntityFilter(kinds=("laboratory", "university"), boards=("昆山市", "太仓市"))),
    (["--layer", "wusong_belt"], EntityFilter(layers=("wusong_belt",))),
    ([], EntityFilter()),
])
def test_the_cli_options(args: list[str], expected: EntityFilter) -> None:
    assert filter_from_args(_cli(*args), known_layers=LAYERS) == expected


@pytest.mark.parametrize(("args", "message"), [
    (["--board", "北京市"], "Unknown board (板块) '北京市'"),
    (["--kind", "laboratory,bogus"], "Unknown kind 'bogus'"),
    (["--layer", "nope"], "Unknown layer 'nope'"),
])
def test_the_cli_options_refuse_unknown_values(args: list[str], message: str) -> None:
    with pytest.raises(FilterError) as info:
        filter_from_args(_cli(*args), known_layers=LAYERS)
    assert info.value.user_message.startswith(message)


@pytest.mark.parametrize("flt", [
    EntityFilter(kinds=("laboratory", "university"), boards=("昆山市",), search="a b"),
    EntityFilter(layers=("wusong_belt",), statuses=("planned",)),
    EntityFilter(),
])
def test_the_cli_serialiser_reads_back(flt: EntityFilter) -> None:
    # the export page shows this command line: running it must give the same filter
    args = shlex.split(shlex.join(filter_to_args(flt)))
    assert filter_from_args(_cli(*args), known_layers=LAYERS) == flt


def test_the_cli_help_names_each_vocabulary() -> None:
    parser = argparse.ArgumentParser()
    filters.add_filter_options(parser)
    text = parser.format_help()
    for spec in FILTER_KEYS.values():
        for value in spec.choices():
            assert value in text.replace("\n", " ").replace("  ", " "), value
