"""Units of the rule language and the stream catalog: kinds, literal parsing, formatting.

Every value the engine handles is a number in a base unit (ns, bytes, bytes/s,
events/s) tagged with a `Kind`; the compiler checks kinds, the runtime never does.
"""

from __future__ import annotations

import enum
import re

__all__ = [
    "DURATION_UNITS",
    "SIZE_UNITS",
    "Kind",
    "compatible",
    "format_value",
    "parse_duration",
    "parse_quantity",
]


class Kind(enum.Enum):
    """What a number measures. Arithmetic and comparisons are checked against this."""

    NUMBER = "number"  # a plain number (counts, pids, ratios)
    DURATION = "duration"  # ns
    SIZE = "size"  # bytes
    RATE = "rate"  # events per second
    SIZE_RATE = "size_rate"  # bytes per second
    DURATION_RATE = "duration_rate"  # ns per second (growth of a duration field)
    STRING = "string"

    def per_second(self) -> Kind:
        """The kind of this kind's slope against time (what `growth` returns)."""
        return _PER_SECOND[self]


_PER_SECOND = {
    Kind.NUMBER: Kind.RATE,
    Kind.DURATION: Kind.DURATION_RATE,
    Kind.SIZE: Kind.SIZE_RATE,
    Kind.RATE: Kind.NUMBER,  # no better answer; the compiler never asks for this
    Kind.SIZE_RATE: Kind.NUMBER,
    Kind.DURATION_RATE: Kind.NUMBER,
    Kind.STRING: Kind.STRING,
}

DURATION_UNITS: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}

# Longest first, so that `1MB` is a size and `1m` a minute, `1ms` milliseconds.
_UNIT_ALTERNATIVES = sorted(
    [*(f"{u}/s" for u in SIZE_UNITS), "/s", "%", *DURATION_UNITS, *SIZE_UNITS],
    key=len,
    reverse=True,
)
UNIT_PATTERN = "|".join(re.escape(u) for u in _UNIT_ALTERNATIVES)
_QUANTITY = re.compile(
    r"(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?P<unit>" + UNIT_PATTERN + r")?\Z"
)


def unit_factor(unit: str) -> tuple[float, Kind]:
    """Factor to the base unit, and the kind, of a unit suffix ('' for a plain number)."""
    if unit == "":
        return 1.0, Kind.NUMBER
    if unit == "%":
        return 0.01, Kind.NUMBER
    if unit == "/s":
        return 1.0, Kind.RATE
    if unit.endswith("/s") and unit[:-2] in SIZE_UNITS:
        return float(SIZE_UNITS[unit[:-2]]), Kind.SIZE_RATE
    if unit in DURATION_UNITS:
        return float(DURATION_UNITS[unit]), Kind.DURATION
    if unit in SIZE_UNITS:
        return float(SIZE_UNITS[unit]), Kind.SIZE
    raise ValueError(f"unknown unit {unit!r}")


def parse_quantity(text: str) -> tuple[float, Kind]:
    """`'1.5ms'` -> (1500000.0, DURATION). Raises ValueError on anything else."""
    m = _QUANTITY.match(text.strip())
    if m is None:
        raise ValueError(f"not a number with a unit: {text!r}")
    factor, kind = unit_factor(m.group("unit") or "")
    return float(m.group("num")) * factor, kind


def parse_duration(text: str) -> int:
    """A duration literal (`'100ms'`, `'5m'`) in integer ns; used by the CLI and config."""
    value, kind = parse_quantity(text)
    if kind is not Kind.DURATION:
        raise ValueError(f"expected a duration such as 100ms or 5s, got {text!r}")
    if not value < _MAX_NS:  # also catches inf and nan
        raise ValueError(f"duration too large: {text!r} (at most about 292 years)")
    return round(value)


_MAX_NS = float(2**63 - 1)


def compatible(a: Kind, b: Kind) -> bool:
    """May values of kinds a and b be compared, added or subtracted?

    Plain numbers stand in for rates (a plain rate is per second); the caller
    handles the literal 0, which is compatible with anything.
    """
    if a is b:
        return True
    pair = {a, b}
    return pair == {Kind.NUMBER, Kind.RATE}


def _trim(x: float) -> str:
    s = f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    if "e" in s:
        s = f"{x:.0f}"
    return s


def format_value(value: float | None, kind: Kind) -> str:
    """A value for people: `1.8ms`, `40us`, `12.0MiB`, `3.2MiB/s`, `150/s`."""
    if value is None:
        return "n/a"
    if kind is Kind.DURATION:
        a = abs(value)
        for unit, f in (("h", 3.6e12), ("m", 6e10), ("s", 1e9), ("ms", 1e6), ("us", 1e3)):
            if a >= f:
                return _trim(value / f) + unit
        return _trim(value) + "ns"
    if kind in (Kind.SIZE, Kind.SIZE_RATE):
        suffix = "/s" if kind is Kind.SIZE_RATE else ""
        a = abs(value)
        for unit, f in (("GiB", 1024.0**3), ("MiB", 1024.0**2), ("KiB", 1024.0)):
            if a >= f:
                return _trim(value / f) + unit + suffix
        return _trim(value) + "B" + suffix
    if kind is Kind.DURATION_RATE:
        return format_value(value, Kind.DURATION) + "/s"
    if kind is Kind.RATE:
        return _trim(value) + "/s"
    return _trim(value)
