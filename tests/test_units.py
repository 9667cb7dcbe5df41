"""Unit literals: parsing, kinds, limits, formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.units import Kind, compatible, format_value, parse_duration, parse_quantity


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("5ms", 5e6, Kind.DURATION),
        ("1m", 60e9, Kind.DURATION),
        ("1MB", 1e6, Kind.SIZE),
        ("1MiB", 1024.0**2, Kind.SIZE),
        ("2µs", 2e3, Kind.DURATION),
        ("2μs", 2e3, Kind.DURATION),
        ("1MiB/s", 1024.0**2, Kind.SIZE_RATE),
        ("100/s", 100.0, Kind.RATE),
        ("50%", 0.5, Kind.NUMBER),
        ("1e6", 1e6, Kind.NUMBER),
    ],
)
def test_parse_quantity(text: str, value: float, kind: Kind) -> None:
    assert parse_quantity(text) == (pytest.approx(value), kind)


@pytest.mark.parametrize("text", ["5 ms", "5xs", "", "ms", "1e400q"])
def test_not_a_quantity(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


@pytest.mark.parametrize("text", ["1e400s", "1e30s", "5MiB", "3"])
def test_parse_duration_rejects_with_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_rate_and_number_compare() -> None:
    assert compatible(Kind.RATE, Kind.NUMBER)
    assert not compatible(Kind.DURATION, Kind.SIZE)


@given(st.integers(min_value=0, max_value=10**15))
def test_duration_round_trips_through_format(ns: int) -> None:
    text = format_value(float(ns), Kind.DURATION)
    back = parse_duration(text)
    assert abs(back - ns) <= max(1, ns) * 0.005
