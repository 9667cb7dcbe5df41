"""No input, however malformed, makes the compiler raise anything but its own rule
error (rules.md, Errors): token soup through `tracehound check`."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from .helpers import run_cli

TOKENS = [
    "rule",
    "r",
    "r2",
    "define",
    "x",
    "=",
    "when",
    "within",
    "of",
    "before",
    "after",
    "during",
    "over",
    "for",
    "by",
    "periodic",
    "every",
    "at",
    "least",
    "times",
    "explain",
    "severity",
    "cooldown",
    "evidence",
    "baseline",
    "summary",
    "notify",
    "labels",
    "where",
    "and",
    "or",
    "not",
    "in",
    "matches",
    "warning",
    "critical",
    "info",
    "count(",
    "rate(",
    "p99(",
    "sum(",
    "percentile(",
    "predict(",
    "growth(",
    "(",
    ")",
    ",",
    ">",
    ">=",
    "<",
    "==",
    "!=",
    "+",
    "-",
    "*",
    "/",
    "disk.io",
    "disk.io.latency",
    "disk.io.bytes",
    "zfs.txg.sync",
    "memcg.usage",
    "oom.kill",
    "dev",
    "op",
    "pool",
    "1ms",
    "5",
    "0",
    "1e6",
    "1MiB/s",
    "50%",
    "100/s",
    "1m",
    "±",
    "+-",
    "10ms",
    '"write"',
    '"a\\"b"',
    '"{p99(disk.io.latency)}"',
    '"{"',
    "#",
    "\n",
    "µs",
    "1.5.5",
    "..",
    "disk..io",
    '"',
    "\\",
    "@",
    "{",
    "}",
    "1ms1",
    "99.9",
    "-1s",
    "0s",
]
VALID = "rule ok\n  when p99(disk.io.latency) > 1ms over 1s\n"


def _soup(rng: random.Random) -> str:
    n = rng.randrange(1, 40)
    toks = [rng.choice(TOKENS) for _ in range(n)]
    text = " ".join(toks)
    if rng.random() < 0.5:
        # mutate a valid rule instead
        v = list(VALID)
        for _ in range(rng.randrange(1, 4)):
            i = rng.randrange(len(v))
            v[i : i + rng.randrange(0, 4)] = list(rng.choice(TOKENS))
        text = "".join(v)
    return text


@pytest.mark.parametrize("seed", range(8))
def test_token_soup_never_tracebacks(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(60):
        text = _soup(rng)
        p = tmp_path / f"f{i}.rules"
        p.write_text(text)
        try:
            r = run_cli(["check", str(p)])
        except Exception as e:  # pragma: no cover - the failure we look for
            raise AssertionError(f"compiler raised {type(e).__name__}: {e!r} on {text!r}") from e
        assert r.rc in (0, 2), (text, r.err)
        assert "Traceback" not in r.err, text
        if r.rc == 2:
            assert re.search(rf"^{re.escape(str(p))}:\d+:\d+: error: ", r.err, re.M), (text, r.err)
