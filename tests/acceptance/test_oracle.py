# ruff: noqa: E501
"""Randomised traces checked against a brute-force oracle written from the spec.

Big enough (tens of thousands of events, two files, shuffled lines) that the
engine's batching, per-stream slicing and history expiry all come into play.
"""

from __future__ import annotations

import bisect
import random
from pathlib import Path
from typing import Any

import pytest

from .helpers import MS, US, S, disk, ev, run_cli, write_trace

TICK = 100 * MS


def _trace(seed: int, n: int = 20000, span: int = 60 * S, long_txg: bool = False):
    rng = random.Random(seed)
    times = sorted(rng.sample(range(0, span), n))
    disks = []
    for t in times:
        disks.append(
            disk(
                t,
                int(rng.lognormvariate(11, 1.2)),
                dev=rng.choice(["sda", "sdb", "sdc"]),
                bytes=rng.choice([512, 4096, 65536, 131072]),
                op=rng.choice(["read", "write"]),
            )
        )
    txgs = []
    for i in range(40):
        st = rng.randrange(0, span)
        dur = rng.randrange(0, 20 * S if long_txg else 500 * MS)
        txgs.append(ev("zfs.txg.sync", st, st + dur, pool=rng.choice(["tank", "rpool"]), txg=i))
    ooms = [ev("oom.kill", rng.randrange(0, span), pid=i) for i in range(20)]
    return disks, txgs, ooms


def _run(
    tmp_path: Path, rules: str, events: list[dict[str, Any]], seed: int
) -> list[dict[str, Any]]:
    rng = random.Random(seed + 1)
    evs = list(events)
    rng.shuffle(evs)
    half = len(evs) // 2
    a = write_trace(tmp_path / "a.jsonl", evs[:half])
    b = write_trace(tmp_path / "b.jsonl.gz", evs[half:], gz=True)
    (tmp_path / "r.rules").write_text(rules)
    r = run_cli(["replay", str(a), str(b), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert r.rc == 0, r.err
    return r.findings


class Index:
    def __init__(self, disks: list[dict[str, Any]]) -> None:
        self.ev = sorted(disks, key=lambda e: e["ts"])
        self.ts = [e["ts"] for e in self.ev]

    def between(self, lo: int, hi: int, dev: str | None = None) -> list[dict[str, Any]]:
        i = bisect.bisect_left(self.ts, lo)
        j = bisect.bisect_right(self.ts, hi)
        return [e for e in self.ev[i:j] if dev is None or e["dev"] == dev]


TRIGGER_RULES = """
rule w
  when count(disk.io) >= 50 and max(disk.io.latency) > 0 and sum(disk.io.bytes) > 0
       and min(disk.io.latency) > 0 and last(disk.io.latency) > 0
  within 30ms of zfs.txg.sync
rule b
  when count(disk.io where op == "read") >= 10
  before oom.kill within 100ms
  by dev
"""


def _oracle_trigger(disks, txgs, ooms):  # type: ignore[no-untyped-def]
    idx = Index(disks)
    out = set()
    for t in txgs:
        lo, hi = t["ts"] - 30 * MS, t["end"] + 30 * MS
        es = idx.between(lo, hi)
        if len(es) >= 50:
            lat = [e["latency"] for e in es]
            out.add(
                ("w", lo, hi, "", len(es), max(lat), sum(e["bytes"] for e in es), min(lat), lat[-1])
            )
    for o in ooms:
        lo, hi = o["ts"] - 100 * MS, o["ts"]
        for dev in ("sda", "sdb", "sdc"):
            n = sum(1 for e in idx.between(lo, hi, dev) if e["op"] == "read")
            if n >= 10:
                out.add(("b", lo, hi, dev, n))
    return out


def _got_trigger(findings):  # type: ignore[no-untyped-def]
    got = set()
    for f in findings:
        v = f["values"]
        if f["rule"] == "w":
            got.add(
                (
                    "w",
                    f["window"][0],
                    f["window"][1],
                    "",
                    v["count(disk.io)"],
                    v["max(disk.io.latency)"],
                    v["sum(disk.io.bytes)"],
                    v["min(disk.io.latency)"],
                    v["last(disk.io.latency)"],
                )
            )
        else:
            got.add(
                (
                    "b",
                    f["window"][0],
                    f["window"][1],
                    f["key"]["dev"],
                    v['count(disk.io where op == "read")'],
                )
            )
    return got


@pytest.mark.parametrize("seed,long_txg", [(1, False), (2, False), (3, True), (4, True)])
def test_trigger_rules_match_oracle(tmp_path: Path, seed: int, long_txg: bool) -> None:
    disks, txgs, ooms = _trace(seed, long_txg=long_txg)
    findings = _run(tmp_path, TRIGGER_RULES, disks + txgs + ooms, seed)
    exp = _oracle_trigger(disks, txgs, ooms)
    got = _got_trigger(findings)
    assert {x[0] for x in exp} == {"w", "b"}, "the oracle should expect findings of both rules"
    assert len(got) == len(findings)
    assert got == exp, (sorted(exp - got)[:5], sorted(got - exp)[:5])


SLIDING_RULES = """
rule s
  when count(disk.io) >= 45 over 200ms
rule k
  when count(disk.io where op == "write") >= 20 over 300ms
  by dev
rule f
  when count(disk.io) >= 40 over 200ms
  for 300ms
"""


def _oracle_sliding(disks):  # type: ignore[no-untyped-def]
    idx = Index(disks)
    last = max(e["ts"] for e in disks)
    end = -(-last // TICK) * TICK
    out = set()
    prev: dict[tuple[str, str], bool] = {}
    hist: list[bool] = []
    fired_f = False
    for t in range(0, end + 1, TICK):
        held = len(idx.between(t - 200 * MS, t)) >= 45
        if held and not prev.get(("s", ""), False):
            out.add(("s", t, ""))
        prev[("s", "")] = held
        for dev in ("sda", "sdb", "sdc"):
            n = sum(1 for e in idx.between(t - 300 * MS, t, dev) if e["op"] == "write")
            h = n >= 20
            if h and not prev.get(("k", dev), False):
                out.add(("k", t, dev))
            prev[("k", dev)] = h
        hf = len(idx.between(t - 200 * MS, t)) >= 40
        hist.append(hf)
        if not hf:
            fired_f = False
        elif len(hist) >= 4 and all(hist[-4:]) and not fired_f:
            out.add(("f", t, ""))
            fired_f = True
    return out


@pytest.mark.parametrize("seed", [5, 6])
def test_sliding_rules_match_oracle(tmp_path: Path, seed: int) -> None:
    disks, _, _ = _trace(seed, n=25000, span=40 * S)
    findings = _run(tmp_path, SLIDING_RULES, disks, seed)
    exp = _oracle_sliding(disks)
    got = {(f["rule"], f["ts"], f["key"].get("dev", "")) for f in findings}
    assert len(got) == len(findings)
    assert exp, "the oracle should expect some findings"
    assert got == exp, (sorted(exp - got)[:5], sorted(got - exp)[:5])


def _nearest_rank(vals: list[int], q: float) -> int:
    from fractions import Fraction

    v = sorted(vals)
    r = -(-(Fraction(str(q)) * len(v)) // 100)
    return v[max(int(r), 1) - 1]


PCT_RULES = """
rule p
  when p90(disk.io.latency) > 300us over 1s
rule q
  when p50(disk.io.latency where op == "read") > 90us over 6s
  by dev
rule m
  when p99(disk.io.latency over 5s) > 4 * p50(disk.io.latency) over 1s
"""


def _sparse_trace(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    t = 0
    while t < 60 * S:
        # bursts and gaps: the rate changes every few seconds, with silent stretches
        phase = (t // (3 * S)) % 4
        gap = [20 * MS, 40 * MS, 400 * MS, 2500 * MS][phase]
        t += rng.randrange(1, gap)
        out.append(
            disk(
                t,
                int(rng.lognormvariate(11, 1.2)),
                dev=rng.choice(["sda", "sdb"]),
                op=rng.choice(["read", "write"]),
            )
        )
    return out


def _oracle_pct(disks):  # type: ignore[no-untyped-def]
    idx = Index(disks)
    first = min(e["ts"] for e in disks)
    last = max(e["ts"] for e in disks)
    out = {}
    prev: dict[tuple[str, str], bool] = {}

    def step(name: str, key: str, held: bool, t: int, vals: dict[str, float]) -> None:
        if held and not prev.get((name, key), False):
            out[(name, t, key)] = vals
        prev[(name, key)] = held

    for t in range(-(-first // TICK) * TICK, -(-last // TICK) * TICK + 1, TICK):
        w1 = [e["latency"] for e in idx.between(t - 1 * S, t)]
        if w1:
            v = _nearest_rank(w1, 90)
            step("p", "", v > 300_000, t, {"p90(disk.io.latency)": v})
            w5 = [e["latency"] for e in idx.between(t - 5 * S, t)]
            a, b = _nearest_rank(w5, 99), _nearest_rank(w1, 50)
            step(
                "m",
                "",
                a > 4 * b,
                t,
                {"p99(disk.io.latency over 5s)": a, "p50(disk.io.latency)": b},
            )
        else:
            step("p", "", False, t, {})
            step("m", "", False, t, {})
        for dev in ("sda", "sdb"):
            w6 = [e["latency"] for e in idx.between(t - 6 * S, t, dev) if e["op"] == "read"]
            if w6:
                v = _nearest_rank(w6, 50)
                step("q", dev, v > 90_000, t, {'p50(disk.io.latency where op == "read")': v})
            else:
                step("q", dev, False, t, {})
    return out


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_sliding_percentiles_match_oracle(tmp_path: Path, seed: int) -> None:
    disks = _sparse_trace(seed)
    findings = _run(tmp_path, PCT_RULES, disks, seed)
    exp = _oracle_pct(disks)
    got = {(f["rule"], f["ts"], f["key"].get("dev", "")): f["values"] for f in findings}
    assert len(got) == len(findings)
    assert {k[0] for k in exp} == {"p", "q", "m"}
    missing = sorted(set(exp) - set(got))[:5]
    extra = sorted(set(got) - set(exp))[:5]
    assert not missing and not extra, (missing, extra)
    for k, v in exp.items():
        assert got[k] == v, k


def test_far_out_of_order_lines_in_a_big_file(tmp_path: Path) -> None:
    # 150k disk writes in order, one every ms; the TXG lines come first in the file
    # although they happen late, and the reads they correlate with come last although
    # they happen early
    n = 150_000
    writes = [disk(k * MS + 1, op="write") for k in range(n)]
    reads = [disk(k * S + 500 * US, op="read") for k in range(1, 11)]
    txgs = [ev("zfs.txg.sync", k * S + 5 * MS, k * S + 6 * MS, txg=k) for k in range(1, 11)]
    rules = 'rule r\n  when count(disk.io where op == "read") >= 1 and count(disk.io) >= 5\n  before zfs.txg.sync within 5ms\n'
    (tmp_path / "r.rules").write_text(rules)
    tp = write_trace(tmp_path / "t.jsonl", txgs + writes + reads)
    r = run_cli(["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert r.rc == 0, r.err
    got = sorted(
        (
            f["trigger"]["txg"],
            f["values"]['count(disk.io where op == "read")'],
            f["values"]["count(disk.io)"],
        )
        for f in r.findings
    )
    # window [k s, k s + 5ms]: writes at k s + 1ns … k s + 4ms + 1ns (5) and the read
    assert got == [(k, 1, 6) for k in range(1, 11)]


CHURN_RULES = """
rule c
  when count(disk.io) >= 4 and max(disk.io.latency) > 200us over 500ms
  by comm
rule t
  when sum(disk.io.bytes) >= 16KiB
  within 50ms of oom.kill
  by comm
"""


@pytest.mark.parametrize("seed", [21, 22])
def test_churning_keys_match_oracle(tmp_path: Path, seed: int) -> None:
    # ~100k events over 200s; each comm is active for a couple of seconds, then never
    # again, so key codes are released and new ones made all along
    rng = random.Random(seed)
    disks = []
    t = 0
    while t < 200 * S:
        t += rng.randrange(1, 4 * MS)
        comm = f"c{t // (2 * S) * 7 + rng.randrange(7)}"
        disks.append(
            disk(
                t, int(rng.lognormvariate(11, 1.2)), comm=comm, bytes=rng.choice([512, 4096, 8192])
            )
        )
    ooms = []
    for i in range(80):
        ot = rng.randrange(0, 200 * S)
        ooms.append(ev("oom.kill", ot, pid=i, comm=f"c{ot // (2 * S) * 7 + rng.randrange(7)}"))
    findings = _run(tmp_path, CHURN_RULES, disks + ooms, seed)
    idx = Index(disks)
    comms = sorted({e["comm"] for e in disks})
    exp = set()
    # sliding rule c
    last = max(e["ts"] for e in disks)
    first = min(e["ts"] for e in disks)
    held_prev: dict[str, bool] = {}
    for st in range(-(-first // TICK) * TICK, -(-last // TICK) * TICK + 1, TICK):
        w = idx.between(st - 500 * MS, st)
        per: dict[str, list[int]] = {}
        for e in w:
            per.setdefault(e["comm"], []).append(e["latency"])
        for c in set(per) | {k for k, v in held_prev.items() if v}:
            lats = per.get(c, [])
            h = len(lats) >= 4 and max(lats) > 200_000
            if h and not held_prev.get(c, False):
                exp.add(("c", st, c, len(lats)))
            held_prev[c] = h
    # trigger rule t: comm on both sides, so it must match the trigger's
    for o in ooms:
        es = idx.between(o["ts"] - 50 * MS, o["ts"] + 50 * MS)
        s = sum(e["bytes"] for e in es if e["comm"] == o["comm"])
        if s >= 16384:
            exp.add(("t", o["ts"] + 50 * MS, o["comm"], s))
    got = set()
    for f in findings:
        if f["rule"] == "c":
            got.add(("c", f["ts"], f["key"]["comm"], f["values"]["count(disk.io)"]))
        else:
            got.add(("t", f["ts"], f["key"]["comm"], f["values"]["sum(disk.io.bytes)"]))
    assert len(got) == len(findings)
    assert any(x[0] == "c" for x in exp) and any(x[0] == "t" for x in exp)
    assert got == exp, (sorted(exp - got)[:5], sorted(got - exp)[:5])
    assert len(comms) > 500
