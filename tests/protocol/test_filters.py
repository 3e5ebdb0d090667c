"""Tags filters: what each comparison and combination lets through, and which trees are
refused, as Centrifugo evaluates and validates them."""

from __future__ import annotations

import pytest

from rotary.protocol.filters import MAX_NODES, TOO_DEEP, TagsFilter, matches, problem


def leaf(key: str, cmp: str, val: str = "", *vals: str) -> TagsFilter:
    return TagsFilter(key=key, cmp=cmp, val=val, vals=tuple(vals))


TAGS = {"team": "eng", "region": "eu-west", "price": "10.50", "empty": ""}

CASES = [
    (leaf("team", "eq", "eng"), True),
    (leaf("team", "eq", "ENG"), False),
    (leaf("missing", "eq", "x"), False),
    (leaf("team", "neq", "sales"), True),
    (leaf("missing", "neq", "x"), True),  # an absent key differs from any value
    (leaf("team", "in", "", "ops", "eng"), True),
    (leaf("team", "nin", "", "ops", "eng"), False),
    (leaf("missing", "in", "", "x", ""), True),  # an absent key compares as ""
    (leaf("missing", "nin", "", "x"), True),
    (leaf("empty", "ex"), True),
    (leaf("missing", "ex"), False),
    (leaf("missing", "nex"), True),
    (leaf("region", "sw", "eu-"), True),
    (leaf("region", "ew", "west"), True),
    (leaf("region", "ct", "u-w"), True),
    (leaf("missing", "ct", "a"), False),
    (leaf("price", "gt", "10.5"), False),  # compared as decimals, not as text
    (leaf("price", "gte", "10.5"), True),
    (leaf("price", "lt", "9"), False),
    (leaf("price", "lte", "+10.500"), True),
    (leaf("price", "gt", "-3"), True),
    (leaf("team", "gt", "1"), False),  # not a number: false, never an error
    (leaf("price", "gt", "1e1"), False),  # no exponents
    (leaf("price", "lt", "11."), False),  # no trailing point
    (leaf("price", "lt", "0." + "1" * 20), False),  # more than 19 decimals
    (TagsFilter(op="and", nodes=(leaf("team", "eq", "eng"), leaf("price", "gt", "10"))), True),
    (TagsFilter(op="and", nodes=(leaf("team", "eq", "eng"), leaf("missing", "ex"))), False),
    (TagsFilter(op="or", nodes=(leaf("team", "eq", "x"), leaf("empty", "ex"))), True),
    (TagsFilter(op="or", nodes=(leaf("team", "eq", "x"), leaf("missing", "ex"))), False),
    (TagsFilter(op="not", nodes=(leaf("team", "eq", "eng"),)), False),
]


@pytest.mark.parametrize(("tf", "expected"), CASES, ids=lambda v: repr(v)[:60])
def test_each_comparison_passes_exactly_the_tags_centrifugo_passes(
    tf: TagsFilter, expected: bool
) -> None:
    assert problem(tf) is None
    assert matches(tf, TAGS) is expected


def test_a_publication_without_tags_passes_only_absence_conditions() -> None:
    assert matches(leaf("team", "nex"), None) is True
    assert matches(leaf("team", "neq", "x"), None) is True
    assert matches(leaf("team", "eq", "x"), None) is False


@pytest.mark.parametrize(
    "tf",
    [
        TagsFilter(),  # a leaf without cmp
        leaf("team", "eq"),
        leaf("team", "eq", "x", "y"),
        leaf("team", "in"),
        leaf("team", "in", "x", "y"),
        leaf("team", "ex", "x"),
        leaf("team", "like", "x"),
        leaf("", "eq", "x"),
        TagsFilter(op="and"),
        TagsFilter(op="not", nodes=(leaf("a", "ex"), leaf("b", "ex"))),
        TagsFilter(op="xor", nodes=(leaf("a", "ex"),)),
        TagsFilter(op="or", nodes=(leaf("a", "ex"), leaf("a", "eq"))),  # a bad child
        TagsFilter(op="not", nodes=(TOO_DEEP,)),
    ],
    ids=repr,
)
def test_malformed_filters_are_refused(tf: TagsFilter) -> None:
    assert problem(tf) is not None


def test_exists_needs_no_key_as_in_centrifugo() -> None:
    assert problem(leaf("", "nex")) is None


def test_a_tree_of_more_than_max_nodes_is_refused() -> None:
    many = tuple(leaf("a", "ex") for _ in range(MAX_NODES - 1))
    assert problem(TagsFilter(op="or", nodes=many)) is None
    assert problem(TagsFilter(op="or", nodes=(*many, leaf("b", "ex")))) is not None
