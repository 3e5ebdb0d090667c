"""Go duration strings: parsing for config values, formatting for CLI output."""

from __future__ import annotations

import pytest

from rotary.config import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("25s", 25.0),
        ("1h30m", 5400.0),
        ("720h", 2_592_000.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("0", 0.0),
        ("0s", 0.0),
        ("-1s", -1.0),
        ("1h2m3s4ms", 3723.004),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("10ns", 1e-8),
    ],
)
def test_go_duration_strings_parse_to_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["25", "", "abc", "1x", "s", "1h 30m", "--1s"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_number_without_unit_is_reported_as_missing_unit() -> None:
    with pytest.raises(ValueError, match="missing unit"):
        parse_duration("25")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (604_800, "168h0m0s"),
        (3600, "1h0m0s"),
        (600, "10m0s"),
        (90, "1m30s"),
        (45, "45s"),
        (0, "0s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (0.000001, "1µs"),
        (1e-9, "1ns"),
        (-60, "-1m0s"),
        (86_400, "24h0m0s"),
    ],
)
def test_durations_format_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_formatting_then_parsing_round_trips() -> None:
    for seconds in (0.25, 1, 59, 61, 3601.5, 604_800):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)
