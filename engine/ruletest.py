"""Rule tests (`*.test.toml`): rules + a trace + the findings they must (not) produce.

Each test replays its trace through the same pipeline as `tracehound replay`, then
checks `[[expect]]` and `[[expect_not]]` against the findings. The format is
documented in docs/testing-rules.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec

from .errors import TraceError, TraceHoundError
from .findings import Finding
from .render import key_text
from .units import parse_duration

__all__ = ["RuleTest", "RuleTestError", "TestOutcome", "find_tests", "load_test", "run_test"]

Time = int | str  # ns, or a duration literal ("30.2s") counted from ts 0


class RuleTestError(TraceHoundError):
    """A test file that cannot be run (bad TOML, unknown key, missing file)."""


class Expect(msgspec.Struct, forbid_unknown_fields=True):
    rule: str
    key: dict[str, Any] | None = None
    severity: str | None = None
    count: int | None = None  # exactly this many; None: at least one
    at: Time | None = None  # the finding's ts, within `tolerance`
    tolerance: Time = "1s"
    after: Time | None = None  # ts >= after
    before: Time | None = None  # ts <= before
    window: list[Time] | None = None  # [start, end], each within `tolerance`
    period: Time | None = None  # periodic rules, within `tolerance`
    explain_top: str | None = None  # the best-ranked explain stream


class ExpectNot(msgspec.Struct, forbid_unknown_fields=True):
    rule: str
    key: dict[str, Any] | None = None
    after: Time | None = None
    before: Time | None = None


class _File(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[str]
    name: str | None = None
    trace: str | None = None
    traces: list[str] = []
    events: str | None = None
    event: list[dict[str, Any]] = []
    exact: bool = False
    tick: Time | None = None
    expect: list[Expect] = []
    expect_not: list[ExpectNot] = []


@dataclass
class RuleTest:
    path: Path
    name: str
    rules: list[str]
    traces: list[str]
    inline: str | None  # JSON lines written inline (`events` or `[[event]]`)
    inline_first: int  # the test file's line holding the first line of `events`
    inline_lines: int  # lines of `events`; [[event]] tables follow, one line each
    exact: bool
    tick: int
    expect: list[Expect]
    expect_not: list[ExpectNot]


@dataclass
class TestOutcome:
    test: RuleTest
    passed: bool
    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _ns(value: Time, where: str, file: Path) -> int:
    if isinstance(value, int):
        return value
    try:
        return parse_duration(value)
    except (ValueError, OverflowError) as e:  # OverflowError: "1e400s" is infinite
        raise RuleTestError(f"{file}: error: {where}: {e}") from None


def find_tests(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.rglob("*.test.toml")))
        elif p.is_file():
            out.append(p)
        else:
            raise RuleTestError(f"{p}: error: no such file or folder")
    return out


def load_test(path: Path) -> RuleTest:
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except OSError as e:
        raise RuleTestError(f"{path}: error: cannot read: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        where = f"{path}:{m.group(1)}:{m.group(2)}" if m else str(path)
        raise RuleTestError(f"{where}: error: not valid TOML: {e}") from None
    try:
        f = msgspec.convert(raw, _File)
    except msgspec.ValidationError as e:
        raise RuleTestError(f"{path}: error: {e}") from None
    base = path.parent
    traces = [str(base / t) for t in ([f.trace] if f.trace else []) + f.traces]
    inline = f.events
    first, n_inline = _events_line(text), 0
    if inline is not None:
        inline = inline if inline.endswith("\n") else inline + "\n"
        n_inline = inline.count("\n")
    if f.event:
        lines = [msgspec.json.encode(ev).decode() for ev in f.event]
        inline = (inline or "") + "\n".join(lines) + "\n"
    if not traces and inline is None:
        raise RuleTestError(f"{path}: error: give a `trace`, `traces`, `events` or [[event]]")
    for t in traces:
        if not Path(t).is_file():
            raise RuleTestError(f"{path}: error: trace {t} not found")
    if not f.expect and not f.expect_not and not f.exact:
        raise RuleTestError(f"{path}: error: nothing to check: add [[expect]] or [[expect_not]]")
    for x in f.expect:
        for tv in (x.at, x.after, x.before, x.period, *(x.window or [])):
            if tv is not None:
                _ns(tv, f"expect {x.rule}", path)
        _ns(x.tolerance, f"expect {x.rule}: tolerance", path)
        if x.window is not None and len(x.window) != 2:
            raise RuleTestError(f"{path}: error: expect {x.rule}: window is [start, end]")
    tick = _ns(f.tick, "tick", path) if f.tick is not None else 100_000_000
    if tick <= 0:
        raise RuleTestError(f"{path}: error: tick: must be more than 0, got {f.tick!r}")
    return RuleTest(
        path=path,
        name=f.name or path.name.removesuffix(".test.toml"),
        rules=[str(base / r) for r in f.rules],
        traces=traces,
        inline=inline,
        inline_first=first,
        inline_lines=n_inline,
        exact=f.exact,
        tick=tick,
        expect=list(f.expect),
        expect_not=list(f.expect_not),
    )


def _events_line(text: str) -> int:
    """The line of the test file where the text of `events = \"\"\"...` starts."""
    m = re.search(r'^[ \t]*events[ \t]*=[ \t]*("""|\'\'\'|"|\')(\r?\n)?', text, re.M)
    if m is None:
        return 1
    return text.count("\n", 0, m.start()) + 1 + (1 if m.group(2) else 0)


def _inline_error(test: RuleTest, e: TraceError) -> TraceError:
    """A bad inline event, placed in the test file."""
    if e.line <= test.inline_lines:
        return TraceError(e.message, str(test.path), test.inline_first + e.line - 1)
    return TraceError(f"[[event]] #{e.line - test.inline_lines}: {e.message}", str(test.path), 0)


# ---- matching ----


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return str(a) == str(b)


def _key_ok(f: Finding, key: dict[str, Any] | None) -> bool:
    return key is None or all(k in f.key and _same(f.key[k], v) for k, v in key.items())


def _near(x: int, want: int, tol: int) -> bool:
    return abs(x - want) <= tol


def _matches(f: Finding, e: Expect, file: Path) -> bool:
    if f.rule != e.rule or not _key_ok(f, e.key):
        return False
    if e.severity is not None and f.severity != e.severity:
        return False
    tol = _ns(e.tolerance, "tolerance", file)
    if e.at is not None and not _near(f.ts, _ns(e.at, "at", file), tol):
        return False
    if e.after is not None and f.ts < _ns(e.after, "after", file):
        return False
    if e.before is not None and f.ts > _ns(e.before, "before", file):
        return False
    if e.window is not None:
        lo, hi = (_ns(t, "window", file) for t in e.window)
        if not (_near(f.window[0], lo, tol) and _near(f.window[1], hi, tol)):
            return False
    if e.period is not None and (
        f.period is None or not _near(f.period, _ns(e.period, "period", file), tol)
    ):
        return False
    return not (
        e.explain_top is not None and (not f.explain or f.explain[0].stream != e.explain_top)
    )


def _not_matches(f: Finding, e: ExpectNot, file: Path) -> bool:
    if f.rule != e.rule or not _key_ok(f, e.key):
        return False
    if e.after is not None and f.ts < _ns(e.after, "after", file):
        return False
    return not (e.before is not None and f.ts > _ns(e.before, "before", file))


def _t(ns: int) -> str:
    """Seconds from ts 0, as test files write them."""
    return f"{ns / 1e9:.3f}s"


def describe_finding(f: Finding) -> str:
    start, end = f.window
    out = f"{f.rule}{key_text(f.key)} {f.severity} ts={_t(f.ts)} window=[{_t(start)}, {_t(end)}]"
    if f.period is not None:
        out += f" period={_t(f.period)}"
    if f.explain:
        out += f" explain_top={f.explain[0].stream}"
    return out


def describe_expect(e: Expect | ExpectNot) -> str:
    parts = [e.rule]
    for name in (
        "key",
        "severity",
        "count",
        "at",
        "after",
        "before",
        "window",
        "period",
        "explain_top",
    ):
        v = getattr(e, name, None)
        if v is not None:
            parts.append(f"{name}={v}")
    if isinstance(e, Expect) and (e.at is not None or e.window is not None or e.period):
        parts.append(f"tolerance={e.tolerance}")
    if isinstance(e, Expect) and e.count is None:
        parts.append("count>=1")
    return " ".join(parts)


def check(test: RuleTest, findings: list[Finding]) -> list[str]:
    """What is wrong with these findings for this test ([] = pass)."""
    problems: list[str] = []
    used: set[int] = set()
    for e in test.expect:
        hits = [i for i, f in enumerate(findings) if _matches(f, e, test.path)]
        used.update(hits)
        ok = len(hits) == e.count if e.count is not None else bool(hits)
        if ok:
            continue
        lines = [f"expected: {describe_expect(e)}", f"  matched {len(hits)}"]
        same_rule = [f for f in findings if f.rule == e.rule]
        lines.append(
            f"  produced {len(same_rule)} finding(s) of {e.rule}" + (":" if same_rule else "")
        )
        lines += [f"    - {describe_finding(f)}" for f in same_rule[:20]]
        if len(same_rule) > 20:
            lines.append(f"    ... and {len(same_rule) - 20} more")
        problems.append("\n".join(lines))
    for n in test.expect_not:
        bad = [f for f in findings if _not_matches(f, n, test.path)]
        if bad:
            lines = [f"expected no finding: {describe_expect(n)}", f"  produced {len(bad)}:"]
            lines += [f"    - {describe_finding(f)}" for f in bad[:20]]
            problems.append("\n".join(lines))
    if test.exact:
        extra = [f for i, f in enumerate(findings) if i not in used]
        if extra:
            lines = [f"exact: {len(extra)} finding(s) no [[expect]] accounts for:"]
            lines += [f"    - {describe_finding(f)}" for f in extra[:20]]
            problems.append("\n".join(lines))
    return problems


# ---- running ----


class _Collect:
    name = "test"

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    async def send(self, finding: Finding, notify: Sequence[str] | None = None) -> None:
        self.findings.append(finding)

    async def aclose(self) -> None:
        return None


def _inline_file(test: RuleTest, tmp: Path) -> Iterator[str]:
    if test.inline is not None:
        p = tmp / f"{test.path.name}.events.jsonl"
        p.write_text(test.inline, encoding="utf-8")
        yield str(p)


def run_test(test: RuleTest) -> TestOutcome:
    """Replay the test's trace through the pipeline and check the findings."""
    from .dsl import compile_paths
    from .replay import replay

    plan = compile_paths(test.rules)
    collect = _Collect()
    with tempfile.TemporaryDirectory(prefix="tracehound-test-") as tmp:
        traces = [*test.traces, *_inline_file(test, Path(tmp))]
        try:
            anyio.run(lambda: replay(traces, plan, collect, tick=test.tick))
        except TraceError as e:
            if e.file.startswith(tmp):
                raise _inline_error(test, e) from None
            raise
    findings = sorted(collect.findings, key=lambda f: (f.ts, f.rule))
    problems = check(test, findings)
    return TestOutcome(test, not problems, findings, problems)


def test_command(args: argparse.Namespace) -> int:
    """Exit 0: every test passed; 1: a test failed; 2: a test could not run."""
    files = find_tests(args.paths)
    if not files:
        raise RuleTestError("error: no *.test.toml files found in " + " ".join(args.paths))
    passed = failed = broken = 0
    for path in files:
        try:
            outcome = run_test(load_test(path))
        except TraceHoundError as e:
            broken += 1
            print(f"ERROR {path}\n{_indent(str(e))}")
            continue
        if outcome.passed:
            passed += 1
            print(f"PASS  {path} ({len(outcome.findings)} finding(s))")
        else:
            failed += 1
            print(f"FAIL  {path}")
            for p in outcome.problems:
                print(_indent(p))
    print(f"{passed} passed, {failed} failed, {broken} could not run", file=sys.stderr)
    if broken:
        return 2
    return 1 if failed else 0


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
