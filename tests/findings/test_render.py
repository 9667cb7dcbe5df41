"""Rendering a finding for people: content of the text, not its exact whitespace."""

from __future__ import annotations

import numpy as np

from engine.findings import Evidence, ExplainEntry
from engine.render import render_finding
from engine.runtime.histogram import histogram

from .helpers import make_finding


def test_header_summary_values_trigger() -> None:
    text = render_finding(make_finding())
    first = text.splitlines()[0]
    assert "CRITICAL" in first and "disk_p99_near_txg" in first and "dev=sda" in first
    assert "12.500000s" in first
    assert "p99 write latency on sda rose from 40us to 3ms" in text
    assert "p99(disk.io.latency) = 3ms" in text
    assert "count(disk.io) = 4" in text
    assert "zfs.txg.sync" in text and "txg=8812" in text and "pool=tank" in text
    assert "(190ms)" in text
    assert "lost" not in text


def test_histograms_side_by_side() -> None:
    lines = render_finding(make_finding()).splitlines()
    rows = [ln for ln in lines if "->" in ln]
    # window: 1.5-1.7ms in [2^20, 2^21) ns, 3ms in [2^21, 2^22); baseline in 32.8-65.5us
    by_label = {ln.split(":")[0].strip(): ln for ln in rows}
    row = by_label["1.05ms -> 2.1ms"]
    parts = row.split(":")
    assert parts[1].split()[0] == "3" and parts[2].split()[0] == "0"
    row = by_label["32.8us -> 65.5us"]
    parts = row.split(":")
    assert parts[1].split()[0] == "0" and parts[2].split()[0] == "16"
    # the tallest bucket of each column gets the full bar, in its own column
    assert row.count("|") == 4 and "|" + "*" * 24 + "|" in parts[2]
    # gaps between the two ranges are filled: one row per power of two
    assert len(rows) == 7
    assert any("window" in ln and "baseline" in ln for ln in lines)
    assert sum("count" in ln and "distribution" in ln for ln in lines) == 1
    assert sum(ln.count("distribution") for ln in lines) == 2


def test_sizes_in_binary_units() -> None:
    h = histogram(np.array([4096.0, 70000.0], dtype=np.float64))
    f = make_finding(evidence={"disk.io.bytes": Evidence(h, h)})
    text = render_finding(f)
    assert "4KiB -> 8KiB" in text and "64KiB -> 128KiB" in text


def test_period_explain_lost() -> None:
    S = 1_000_000_000
    f = make_finding(
        period=30 * S,
        episodes=[10 * S, 40 * S, 70 * S],
        explain=[
            ExplainEntry("zfs.txg.sync", 7.5, 3, 0.125),
            ExplainEntry("fs.commit", 0.5, 1, 0.6),
        ],
        lost=17,
    )
    text = render_finding(f)
    assert "period: 30s" in text and "3 episodes" in text and "40.000000s" in text
    assert text.index("zfs.txg.sync  ") < text.index("fs.commit")
    assert "7.50" in text and "12.5%" in text
    assert "evidence may be incomplete: 17 samples lost" in text


def test_empty_evidence() -> None:
    e = histogram(np.array([], dtype=np.float64))
    text = render_finding(make_finding(evidence={"disk.io.latency": Evidence(e, e)}, trigger=None))
    assert "no samples" in text and "n=0" in text and "trigger" not in text
