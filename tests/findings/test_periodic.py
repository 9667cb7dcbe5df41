"""Periodic detection: steady, jittered, broken then steady again, every P +- J."""

from __future__ import annotations

from engine.dsl.plan import PeriodicSpec
from engine.runtime.periodic import PeriodicDetector

S = 1_000_000_000


def _feed(spec: PeriodicSpec, times: list[int]) -> list[tuple[int, int, list[int]]]:
    d = PeriodicDetector(spec)
    out = []
    for t in times:
        r = d.episode(t)
        if r is not None:
            out.append((t, r[0], r[1]))
    return out


def test_steady_fires_once_at_nth() -> None:
    fired = _feed(PeriodicSpec(None, None, 3), [0, 30 * S, 60 * S, 90 * S, 120 * S])
    assert fired == [(60 * S, 30 * S, [0, 30 * S, 60 * S])]


def test_at_least_n() -> None:
    fired = _feed(PeriodicSpec(None, None, 5), [i * 10 * S for i in range(6)])
    assert [f[0] for f in fired] == [40 * S]
    assert fired[0][2] == [i * 10 * S for i in range(5)]


def test_jitter_default_ten_percent() -> None:
    # gaps 30s and 32s: spread 2s <= 3.1s -> fires
    assert _feed(PeriodicSpec(None, None, 3), [0, 30 * S, 62 * S])[0][1] == 31 * S
    # gaps 30s and 35s: spread 5s > 3.25s -> quiet
    assert _feed(PeriodicSpec(None, None, 3), [0, 30 * S, 65 * S]) == []


def test_explicit_jitter() -> None:
    spec = PeriodicSpec(None, 6 * S, 3)
    assert _feed(spec, [0, 30 * S, 65 * S]) != []
    spec = PeriodicSpec(None, 1 * S, 3)
    assert _feed(spec, [0, 30 * S, 62 * S]) == []


def test_broken_then_steady_again() -> None:
    times = [0, 10 * S, 20 * S, 30 * S, 47 * S, 80 * S, 100 * S, 120 * S, 140 * S]
    fired = _feed(PeriodicSpec(None, None, 3), times)
    # first run fires at 20s; the break at 47s/80s; the new 20s run fires at 120s.
    assert [(t, p) for t, p, _ in fired] == [(20 * S, 10 * S), (120 * S, 20 * S)]


def test_every_p_within_j() -> None:
    times = [0, 30 * S, 60 * S, 90 * S]
    assert _feed(PeriodicSpec(30 * S, 2 * S, 3), times) != []
    assert _feed(PeriodicSpec(31 * S, 2 * S, 3), times) != []
    assert _feed(PeriodicSpec(33 * S, 2 * S, 3), times) == []
    # every with the default jitter: 10% of the mean (3s)
    assert _feed(PeriodicSpec(27 * S, None, 3), times) != []
    assert _feed(PeriodicSpec(26 * S, None, 3), times) == []


def test_fewer_than_n_never_fires() -> None:
    assert _feed(PeriodicSpec(None, None, 4), [0, S, 2 * S]) == []
