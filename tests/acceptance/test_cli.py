# ruff: noqa: E501, RUF059
"""Command-line contracts (cli.md; events.md, Trace files; rules.md, Errors)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import MS, S, disk, ev, replay, run_cli, run_module, run_proc, write_trace

WARN = "rule w\n  when count(disk.io) >= 1 over 1s\n  severity warning\n"
CRIT = "rule c\n  when count(disk.io) >= 1 over 1s\n  severity critical\n"


def _caret_col(err: str, src_line: str) -> int:
    """Column (1-based) the caret under SRC_LINE points at, in check/replay stderr."""
    lines = err.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.endswith(src_line) and "^" in lines[i + 1] and "error" not in line:
            start = len(line) - len(src_line)
            return lines[i + 1].index("^") - start + 1
    raise AssertionError(f"no caret line under {src_line!r} in:\n{err}")


# ---- exit status ----


def test_exit_0_on_success(tmp_path: Path) -> None:
    r = replay(tmp_path, WARN, [disk(1 * S)])
    assert r.rc == 0 and len(r.findings) == 1


def test_exit_1_with_fail_on_critical(tmp_path: Path) -> None:
    r = replay(tmp_path, CRIT + WARN, [disk(1 * S)], "--fail-on", "critical")
    assert r.rc == 1
    assert {f["rule"] for f in r.findings} == {"c", "w"}


def test_fail_on_critical_with_warnings_only_is_0(tmp_path: Path) -> None:
    r = replay(tmp_path, WARN, [disk(1 * S)], "--fail-on", "critical")
    assert r.rc == 0


def test_critical_without_fail_on_is_0(tmp_path: Path) -> None:
    r = replay(tmp_path, CRIT, [disk(1 * S)])
    assert r.rc == 0


def test_bad_argument_exit_2(tmp_path: Path) -> None:
    r = run_cli(["replay", "--no-such-option"])
    assert r.rc == 2


def test_missing_trace_file_exit_2(tmp_path: Path) -> None:
    (tmp_path / "r.rules").write_text(WARN)
    r = run_cli(
        ["replay", str(tmp_path / "nope.jsonl"), "--rules", str(tmp_path / "r.rules"), "--json"]
    )
    assert r.rc == 2
    assert "Traceback" not in r.err
    assert r.out == ""


def test_missing_rules_file_exit_2(tmp_path: Path) -> None:
    tp = write_trace(tmp_path / "t.jsonl", [disk(1 * S)])
    r = run_cli(["replay", str(tp), "--rules", str(tmp_path / "nope.rules"), "--json"])
    assert r.rc == 2
    assert "Traceback" not in r.err


# ---- rule errors ----


def test_replay_with_bad_rules_exit_2_with_position(tmp_path: Path) -> None:
    rules = "rule r\n  when p99(disk.iox.latency) > 1ms\n  over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S)])
    assert r.rc == 2
    assert r.out == ""
    assert f"{tmp_path / 'r.rules'}:2:12: error:" in r.err


def _check(tmp_path: Path, text: str, name: str = "x.rules") -> tuple[int, str, str]:
    p = tmp_path / name
    p.write_text(text)
    r = run_cli(["check", str(p)])
    return r.rc, r.err, str(p)


def test_check_ok_exit_0(tmp_path: Path) -> None:
    rc, err, _ = _check(tmp_path, WARN + CRIT)
    assert rc == 0, err


def test_check_unknown_stream_suggests(tmp_path: Path) -> None:
    rc, err, p = _check(tmp_path, "rule r\n  when count(disk.iox) > 5 over 1s\n")
    assert rc == 2
    assert re.search(rf"^{re.escape(p)}:2:14: error: ", err, re.M), err
    assert "did you mean disk.io?" in err
    assert _caret_col(err, "when count(disk.iox) > 5 over 1s") == 14 - 2


def test_check_unknown_field_suggests(tmp_path: Path) -> None:
    rc, err, p = _check(tmp_path, "rule r\n  when p99(disk.io.latncy) > 1ms over 1s\n")
    assert rc == 2
    assert re.search(rf"^{re.escape(p)}:2:12: error: ", err, re.M), err
    assert "did you mean disk.io.latency?" in err


def test_check_syntax_error_at_first_bad_token(tmp_path: Path) -> None:
    src = "  when p99(disk.io.latency) > > 1ms"
    rc, err, p = _check(tmp_path, f"# a comment\nrule s\n{src}\n  over 1s\n")
    assert rc == 2
    assert re.search(rf"^{re.escape(p)}:3:31: error: ", err, re.M), err
    assert _caret_col(err, src.strip()) == 31 - 2
    assert "Traceback" not in err


def test_check_bad_severity_position(tmp_path: Path) -> None:
    rc, err, p = _check(tmp_path, "rule r\n  when count(disk.io) >= 1 over 1s\n  severity urgent\n")
    assert rc == 2
    assert re.search(rf"^{re.escape(p)}:3:12: error: ", err, re.M), err


def test_check_caret_line_format(tmp_path: Path) -> None:
    rc, err, p = _check(tmp_path, "rule r\n  when count(disk.iox) > 5 over 1s\n")
    lines = err.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(f"{p}:2:14: error:"))
    assert "count(disk.iox)" in lines[i + 1]
    assert lines[i + 2].strip() == "^"


@pytest.mark.parametrize(
    "text, line, col",
    [
        # unit mismatch: a duration with a size
        ("rule r\n  when p99(disk.io.latency) > 1MiB over 1s\n", 2, None),
        # a size with a plain non-zero number
        ("rule r\n  when sum(disk.io.bytes) > 5 over 1s\n", 2, None),
        # duplicate rule names
        (
            "rule r\n  when count(disk.io) > 5 over 1s\nrule r\n  when count(disk.io) > 5 over 1s\n",
            3,
            None,
        ),
        # two `when`
        ("rule r\n  when count(disk.io) > 5 over 1s\n  when count(disk.io) > 1\n", 3, None),
        # two correlation clauses
        (
            "rule r\n  when count(disk.io) > 5\n  during fs.commit\n  within 1s of oom.kill\n",
            4,
            None,
        ),
        # keyword as a define name
        ('define when = op == "write"\nrule r\n  when count(disk.io) > 5 over 1s\n', 1, 8),
        # define cycle
        (
            "define a = b\ndefine b = a\nrule r\n  when count(disk.io where a) > 5 over 1s\n",
            None,
            None,
        ),
        # a second define of the same name
        (
            'define a = op == "read"\ndefine a = op == "write"\nrule r\n  when count(disk.io where a) > 5 over 1s\n',
            2,
            None,
        ),
        # a define named like a field
        (
            'define latency = op == "read"\nrule r\n  when count(disk.io where latency) > 5 over 1s\n',
            1,
            None,
        ),
        # `by` field no stream carries
        ("rule r\n  when count(disk.io) > 5 over 1s\n  by pool\n", 3, None),
        # percentile Q out of range
        ("rule r\n  when percentile(disk.io.latency, 0) > 1ms over 1s\n", 2, None),
        ("rule r\n  when percentile(disk.io.latency, 100.5) > 1ms over 1s\n", 2, None),
        # unit with a space
        ("rule r\n  when p99(disk.io.latency) > 5 ms over 1s\n", 2, None),
        # unknown stream in trigger
        ("rule r\n  when count(disk.io) > 5\n  within 1s of zfs.txg.syncc\n", 3, 16),
    ],
)
def test_check_rejects(tmp_path: Path, text: str, line: int | None, col: int | None) -> None:
    rc, err, p = _check(tmp_path, text)
    assert rc == 2, err
    assert "Traceback" not in err
    m = re.search(rf"^{re.escape(p)}:(\d+):(\d+): error: ", err, re.M)
    assert m, err
    if line is not None:
        assert int(m.group(1)) == line, err
    if col is not None:
        assert int(m.group(2)) == col, err


@pytest.mark.parametrize(
    "text",
    [
        "",
        "rule",
        "rule r",
        "rule r\n when",
        "rule r when (((",
        'rule r when count(disk.io where comm matches "(") > 1 over 1s',
        "rule r when count(disk.io) > 1e999999 over 1s",
        "\x00\x01\x02",
        "rule r when p99(disk.io.latency) > 1ms over 0s",
        'define x = "unterminated',
        "rule r when count(disk.io) > 5 over 1s by",
        "rule r\n  when count(disk.io) >= 1 over 1s\n  cooldown -1s\n",
        "rule r when predict(memcg.usage) > 1 over 1s",
        "rule r when count(disk.io.latency) > 1 over 1s",
        "rule r when max(disk.io) > 1 over 1s",
        "rule 9r when count(disk.io) > 1 over 1s",
        "rule r when count(disk.io) > 1 over 1s for 2s during fs.commit",
    ],
)
def test_malformed_rules_never_traceback(tmp_path: Path, text: str) -> None:
    rc, err, _ = _check(tmp_path, text)
    assert "Traceback" not in err
    assert rc in (0, 2)
    if rc == 2:
        assert re.search(r":\d+:\d+: error: ", err), err


def test_check_folder_recursive_sorted(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    (d / "sub").mkdir(parents=True)
    (d / "a.rules").write_text("define slow = latency > 1ms\n")
    (d / "sub" / "b.rules").write_text("rule r\n  when count(disk.io where slow) > 1 over 1s\n")
    (d / "notes.txt").write_text("this is not a rule file")
    r = run_cli(["check", str(d)])
    assert r.rc == 0, r.err
    (d / "sub" / "c.rules").write_text("rule r\n  when count(disk.io) > 1 over 1s\n")
    r = run_cli(["check", str(d)])
    assert r.rc == 2
    assert f"{d / 'sub' / 'c.rules'}:1:" in r.err


def test_check_notify_not_validated_without_config(tmp_path: Path) -> None:
    rc, err, _ = _check(
        tmp_path, "rule r\n  when count(disk.io) > 1 over 1s\n  notify pager, nosuchsink\n"
    )
    assert rc == 0, err


def test_strings_keep_unknown_backslashes(tmp_path: Path) -> None:
    rules = 'rule r\n  when count(disk.io where comm matches "^k\\w+\\d$") >= 1 over 1s\n  labels re = "a\\d\\"q\\\\"\n'
    r = replay(tmp_path, rules, [disk(1 * S, comm="kworker7"), disk(1 * S, comm="kw")])
    assert r.rc == 0, r.err
    f = r.one
    assert f["values"] == {'count(disk.io where comm matches "^k\\w+\\d$")': 1}
    assert f["labels"] == {"re": 'a\\d"q\\'}


# ---- trace errors ----

GOOD = json.dumps(disk(1 * S))


@pytest.mark.parametrize(
    "bad",
    [
        "this is not json",
        json.dumps(
            {
                "stream": "disk.io",
                "dev": "a",
                "op": "read",
                "bytes": 1,
                "latency": 1,
                "pid": 1,
                "comm": "x",
            }
        ),
        json.dumps(
            {"ts": 1, "dev": "a", "op": "read", "bytes": 1, "latency": 1, "pid": 1, "comm": "x"}
        ),
        json.dumps({"ts": 1, "stream": "disk.nope"}),
        json.dumps(disk(1 * S, latency=1.5)),
        json.dumps(disk(1 * S, bytes="4096")),
        json.dumps({**disk(1 * S), "ts": 1.0e9}),
        json.dumps({k: v for k, v in disk(1 * S).items() if k != "latency"}),
        json.dumps(ev("zfs.txg.sync", 2 * S, 1 * S)),
        json.dumps({k: v for k, v in ev("zfs.txg.sync", 2 * S, 3 * S).items() if k != "end"}),
        json.dumps({**disk(1 * S), "dev": 5}),
        "[1, 2, 3]",
    ],
    ids=[
        "not-json",
        "no-ts",
        "no-stream",
        "unknown-stream",
        "float-latency",
        "string-bytes",
        "float-ts",
        "missing-field",
        "end-before-ts",
        "interval-no-end",
        "int-for-str",
        "not-object",
    ],
)
def test_bad_trace_line_exit_2_names_file_and_line(tmp_path: Path, bad: str) -> None:
    r = replay(tmp_path, WARN, [GOOD, "", "# comment", bad, GOOD])
    assert r.rc == 2, (r.rc, r.err)
    assert f"{tmp_path / 't.jsonl'}:4" in r.err
    assert "Traceback" not in r.err


def test_skip_bad_reports_each_and_goes_on(tmp_path: Path) -> None:
    evs = [
        GOOD,
        "oops",
        json.dumps({"ts": 2, "stream": "nope"}),
        json.dumps(disk(3 * S)),
        json.dumps(disk(4 * S, latency=0.5)),
    ]
    rules = "rule r\n  when count(disk.io) >= 2 over 5s\n"
    r = replay(tmp_path, rules, evs, "--skip-bad")
    assert r.rc == 0, r.err
    t = tmp_path / "t.jsonl"
    for n in (2, 3, 5):
        assert f"{t}:{n}" in r.err
    assert f"{t}:1" not in r.err and f"{t}:4" not in r.err
    f = r.one
    assert f["ts"] == 3 * S and f["values"] == {"count(disk.io)": 2}


def test_blank_and_comment_lines_ignored(tmp_path: Path) -> None:
    r = replay(tmp_path, WARN, ["", "   ", "# {not json", GOOD, "#"])
    assert r.rc == 0, r.err
    assert len(r.findings) == 1


def test_unknown_fields_ignored(tmp_path: Path) -> None:
    r = replay(tmp_path, WARN, [json.dumps({**disk(1 * S), "extra": [1, {"a": 2}], "x": 1.5})])
    assert r.rc == 0, r.err
    assert len(r.findings) == 1


def test_optional_field_absent_or_present(tmp_path: Path) -> None:
    rules = "rule r\n  when count(disk.io) >= 2 over 1s\n"
    r = replay(tmp_path, rules, [disk(1 * S), disk(1 * S, queue=10)])
    assert r.rc == 0, r.err
    assert len(r.findings) == 1


# ---- output, formats, merging ----


def test_json_stdout_carries_findings_only(tmp_path: Path) -> None:
    r = replay(tmp_path, WARN + CRIT, [disk(1 * S), "bad line", disk(3 * S)], "--skip-bad")
    assert r.rc == 0
    lines = r.out.splitlines()
    assert len(lines) == 4  # w and c, at 1s and again at 3s
    for line in lines:
        obj = json.loads(line)
        assert obj["rule"] in {"w", "c"}


def test_text_output_without_json(tmp_path: Path) -> None:
    (tmp_path / "r.rules").write_text(WARN)
    tp = write_trace(tmp_path / "t.jsonl", [disk(1 * S)])
    r = run_cli(["replay", str(tp), "--rules", str(tmp_path / "r.rules")])
    assert r.rc == 0
    assert "w" in r.out and r.out.strip()


def test_gzip_trace(tmp_path: Path) -> None:
    (tmp_path / "r.rules").write_text("rule r\n  when count(disk.io) >= 1\n  during fs.commit\n")
    tp = write_trace(
        tmp_path / "t.jsonl.gz",
        [disk(1500 * MS), ev("fs.commit", 1 * S, 2 * S), "", "# c"],
        gz=True,
    )
    r = run_cli(["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert r.rc == 0, r.err
    assert r.one["values"] == {"count(disk.io)": 1}


def test_gzip_bad_line_named(tmp_path: Path) -> None:
    (tmp_path / "r.rules").write_text(WARN)
    tp = write_trace(tmp_path / "t.jsonl.gz", [disk(1 * S), "junk"], gz=True)
    r = run_cli(["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert r.rc == 2
    assert f"{tp}:2" in r.err


def test_multi_file_merge(tmp_path: Path) -> None:
    (tmp_path / "r.rules").write_text("rule r\n  when count(disk.io) >= 2\n  during fs.commit\n")
    a = write_trace(tmp_path / "a.jsonl", [disk(1200 * MS), disk(1800 * MS), disk(2500 * MS)])
    b = write_trace(tmp_path / "b.jsonl.gz", [ev("fs.commit", 1 * S, 2 * S)], gz=True)
    r = run_cli(["replay", str(a), str(b), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert r.rc == 0, r.err
    assert r.one["values"] == {"count(disk.io)": 2}


@pytest.mark.parametrize("order, expected", [(("a", "b"), 2 * MS), (("b", "a"), 1 * MS)])
def test_merge_ties_keep_file_order(tmp_path: Path, order: tuple[str, str], expected: int) -> None:
    (tmp_path / "r.rules").write_text(
        "rule r\n  when last(disk.io.latency) > 0\n  during fs.commit\n"
    )
    files = {
        "a": write_trace(
            tmp_path / "a.jsonl", [disk(1500 * MS, 1 * MS), ev("fs.commit", 1 * S, 2 * S)]
        ),
        "b": write_trace(tmp_path / "b.jsonl", [disk(1500 * MS, 2 * MS)]),
    }
    r = run_cli(
        ["replay", *(str(files[k]) for k in order), "--rules", str(tmp_path / "r.rules"), "--json"]
    )
    assert r.rc == 0, r.err
    assert r.one["values"] == {"last(disk.io.latency)": expected}


def test_ties_keep_line_order(tmp_path: Path) -> None:
    rules = "rule r\n  when last(disk.io.latency) > 0 and delta(disk.io.latency) != 0\n  during fs.commit\n"
    evs = [
        disk(1500 * MS, 5 * MS),
        disk(1500 * MS, 2 * MS),
        disk(1500 * MS, 7 * MS),
        ev("fs.commit", 1 * S, 2 * S),
    ]
    r = replay(tmp_path, rules, evs)
    assert r.one["values"] == {"last(disk.io.latency)": 7 * MS, "delta(disk.io.latency)": 2 * MS}


# ---- the installed command, end to end ----


def test_subprocess_replay_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "r.rules").write_text(CRIT)
    tp = write_trace(tmp_path / "t.jsonl", [disk(1 * S), "bad"])
    p = run_proc(
        [
            "replay",
            str(tp),
            "--rules",
            str(tmp_path / "r.rules"),
            "--json",
            "--skip-bad",
            "--fail-on",
            "critical",
        ]
    )
    assert p.returncode == 1, p.stderr
    (line,) = p.stdout.splitlines()
    assert json.loads(line)["rule"] == "c"
    assert f"{tp}:2" in p.stderr


def test_subprocess_check_format(tmp_path: Path) -> None:
    (tmp_path / "x.rules").write_text("rule r\n  when count(disk.iox) > 5 over 1s\n")
    p = run_proc(["check", "x.rules"], cwd=tmp_path)
    assert p.returncode == 2
    text = p.stderr + p.stdout
    assert re.search(r"^x\.rules:2:14: error: ", text, re.M), text
    assert "Traceback" not in text


def test_python_m_engine(tmp_path: Path) -> None:
    (tmp_path / "r.rules").write_text(WARN)
    tp = write_trace(tmp_path / "t.jsonl", [disk(1 * S)])
    p = run_module(["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["rule"] == "w"


def test_help_exit_0() -> None:
    for args in (["--help"], ["replay", "--help"], ["check", "--help"]):
        p = run_proc(args)
        assert p.returncode == 0
        assert "usage" in p.stdout.lower()


def test_bad_trace_stops_at_first_bad_line(tmp_path: Path) -> None:
    r = replay(tmp_path, WARN, [GOOD, "bad one", GOOD, "bad two"])
    assert r.rc == 2
    t = tmp_path / "t.jsonl"
    assert f"{t}:2" in r.err
    assert f"{t}:4" not in r.err


def test_duplicate_rule_names_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.rules").write_text("rule r\n  when count(disk.io) > 5 over 1s\n")
    (tmp_path / "b.rules").write_text("# b\nrule r\n  when count(disk.io) > 6 over 1s\n")
    r = run_cli(["check", str(tmp_path / "a.rules"), str(tmp_path / "b.rules")])
    assert r.rc == 2
    assert f"{tmp_path / 'b.rules'}:2:" in r.err


def test_define_not_visible_in_files_loaded_before(tmp_path: Path) -> None:
    (tmp_path / "a.rules").write_text("define slow = latency > 1ms\n")
    (tmp_path / "b.rules").write_text("rule r\n  when count(disk.io where slow) >= 1 over 1s\n")
    r = run_cli(["check", str(tmp_path / "a.rules"), str(tmp_path / "b.rules")])
    assert r.rc == 0, r.err
    r = run_cli(["check", str(tmp_path / "b.rules"), str(tmp_path / "a.rules")])
    assert r.rc == 2
    assert f"{tmp_path / 'b.rules'}:2:" in r.err


def test_define_used_before_it_in_same_file(tmp_path: Path) -> None:
    (tmp_path / "a.rules").write_text(
        "rule r\n  when count(disk.io where slow) >= 1 over 1s\ndefine slow = latency > 1ms\n"
    )
    r = run_cli(["check", str(tmp_path / "a.rules")])
    assert r.rc == 0, r.err


def test_probes_lists_every_catalog_stream() -> None:
    r = run_cli(["probes"])
    assert r.rc == 0, r.err
    for s in [
        "disk.io",
        "zfs.txg.sync",
        "fs.commit",
        "memcg",
        "oom.kill",
        "sched.runq",
        "tcp.retransmit",
        "net.drop",
        "mm.reclaim",
        "proc.exec",
        "lost",
    ]:
        assert s in r.out, s


BAD_UTF8 = (
    b'{"ts": 2000000000, "stream": "disk.io", "dev": "\xff\xfe", "op": "write", '
    b'"bytes": 1, "latency": 1, "pid": 1, "comm": "x"}'
)


def _bytes_trace(tmp_path: Path, lines: list[bytes]) -> Path:
    p = tmp_path / "t.jsonl"
    p.write_bytes(b"".join(line + b"\n" for line in lines))
    (tmp_path / "r.rules").write_text(WARN)
    return p


def test_invalid_utf8_in_string_is_a_bad_line(tmp_path: Path) -> None:
    tp = _bytes_trace(tmp_path, [GOOD.encode(), BAD_UTF8])
    p = run_proc(["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert f"{tp}:2" in p.stderr


def test_invalid_utf8_in_string_skip_bad(tmp_path: Path) -> None:
    tp = _bytes_trace(tmp_path, [GOOD.encode(), BAD_UTF8, json.dumps(disk(3 * S)).encode()])
    p = run_proc(["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--json", "--skip-bad"])
    assert p.returncode == 0, p.stderr
    assert f"{tp}:2" in p.stderr
    assert len(p.stdout.splitlines()) == 2


def test_invalid_utf8_outside_strings_is_a_bad_line(tmp_path: Path) -> None:
    tp = _bytes_trace(tmp_path, [GOOD.encode(), b"\xff\xfe garbage"])
    p = run_proc(["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert p.returncode == 2, p.stderr
    assert f"{tp}:2" in p.stderr


def test_rule_file_invalid_utf8_position(tmp_path: Path) -> None:
    p = tmp_path / "x.rules"
    p.write_bytes(b'rule r\n  when count(disk.io) > 1 over 1s\n  summary "\xff\xfe"\n')
    r = run_cli(["check", str(p)])
    assert r.rc == 2
    assert re.search(rf"^{re.escape(str(p))}:3:\d+: error: ", r.err, re.M), r.err


@pytest.mark.parametrize(
    "cond",
    [
        "count(disk.io) > " + " + ".join(["1"] * 1000),
        "not " * 3000 + "count(disk.io) > 1",
    ],
)
def test_deep_expression_error_points_into_the_expression(tmp_path: Path, cond: str) -> None:
    p = tmp_path / "x.rules"
    p.write_text(f"rule r\n  when {cond} over 1s\n")
    r = run_cli(["check", str(p)])
    assert "Traceback" not in r.err
    assert r.rc == 0 or re.search(rf"^{re.escape(str(p))}:2:\d+: error: ", r.err, re.M), r.err


def test_text_output_renders_every_feature(tmp_path: Path) -> None:
    rules = """
rule t "with a description"
  when p99(disk.io.latency) > 1ms and rate(disk.io) > 0 and growth(disk.io.bytes) != 0
  within 200ms of zfs.txg.sync where pool == "tank"
  by dev
  severity critical
  labels team = "storage"
  summary "p99 {p99(disk.io.latency)} on {count(disk.io)} IOs"
  explain by fs.commit
rule p
  when max(disk.io.latency) > 5ms over 100ms
  periodic at least 3 times
  explain
"""
    evs = [
        ev("zfs.txg.sync", 1 * S, 1100 * MS),
        ev("fs.commit", 900 * MS, 950 * MS),
        ev("lost", 1050 * MS, count=2),
    ]
    evs += [disk(t * MS, 10 * MS, bytes=4096 * (t % 7 + 1)) for t in (950, 1000, 1050, 3050, 5050)]
    evs += [disk(t * MS, 0) for t in range(0, 6000, 100)]
    (tmp_path / "r.rules").write_text(rules)
    tp = write_trace(tmp_path / "t.jsonl", evs)
    r = run_cli(["replay", str(tp), "--rules", str(tmp_path / "r.rules")])
    assert r.rc == 0, r.err
    assert "Traceback" not in r.err
    assert "t" in r.out and "p" in r.out
    j = run_cli(["replay", str(tp), "--rules", str(tmp_path / "r.rules"), "--json"])
    assert {f["rule"] for f in j.findings} == {"t", "p"}
    (pf,) = j.by_rule("p")
    assert pf["period"] == 2050 * MS  # episodes 1.0, 3.1, 5.1
