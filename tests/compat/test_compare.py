"""The comparison itself: what it ignores, and that it catches what it must."""

from __future__ import annotations

from tests.compat.compare import Difference, Listed, diff, normalise, unexplained
from tests.compat.runner import Transcript


def test_client_ids_become_the_name_of_their_connection_even_as_keys() -> None:
    t = Transcript(
        entries=[{"connect": {"client": "abc"}}, {"presence": {"abc": {"client": "abc"}}}],
        clients={"a": "abc"},
    )
    assert normalise(t) == [
        {"connect": {"client": "<client:a>"}},
        {"presence": {"<client:a>": {"client": "<client:a>"}}},
    ]


def test_epochs_and_versions_are_ignored() -> None:
    c = normalise(Transcript([{"subscribe": {"epoch": "x", "offset": 1}, "version": "6.9.1"}]))
    r = normalise(Transcript([{"subscribe": {"epoch": "y", "offset": 1}, "version": "5.4.9"}]))
    assert diff(c, r) == []


def test_a_different_error_code_is_a_difference() -> None:
    found = diff([{"error": {"code": 103}}], [{"error": {"code": 109}}])
    assert found == [Difference("0/error/code", 103, 109)]


def test_a_missing_key_and_a_longer_list_are_differences() -> None:
    assert diff({"a": 1}, {}) == [Difference("a", 1, "<absent>")]
    assert diff([1], [1, 2]) == [Difference("len", 1, 2)]


def test_ttl_within_two_seconds_counts_as_equal_but_not_three() -> None:
    assert diff({"x": {"ttl": 100}}, {"x": {"ttl": 98}}) == []
    assert diff({"x": {"ttl": 100}}, {"x": {"ttl": 97}}) != []


def test_true_and_one_are_not_the_same_value() -> None:
    assert diff({"x": True}, {"x": 1}) == [Difference("x", True, 1)]


def test_a_listed_difference_covers_its_path_and_below_and_stale_entries_are_reported() -> None:
    listed = [Listed("s", "2/connect", "why", "doc"), Listed("s", "9", "why", "doc")]
    found = [Difference("2/connect/ttl", 1, 2), Difference("3/error", 1, 2)]
    left, stale = unexplained("s", found, listed)
    assert left == [Difference("3/error", 1, 2)]
    assert stale == [listed[1]]
    assert unexplained("other", found, listed)[0] == found
