"""The `tracehound` command: the only place that wires sources, runtime and sinks.

Each subcommand is one `_cmd_*` function returning an exit status. User mistakes
arrive as `TraceHoundError` and leave as a message and exit 2 (or 3 for the host);
never as a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import TraceHoundError

EXIT_OK = 0
EXIT_CRITICAL = 1
EXIT_BAD_INPUT = 2
EXIT_HOST = 3


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments already; keep its message, drop nothing else."""


def _add_rules_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        nargs="+",
        metavar="PATH",
        help="rule files or folders; replaces the built-in library and configured paths",
    )
    p.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    p.add_argument("--json", action="store_true", help="findings as JSON lines on stdout")
    p.add_argument(
        "--fail-on",
        choices=["info", "warning", "critical"],
        metavar="SEVERITY",
        help="exit 1 when a finding of this severity or above is reported",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tracehound",
        description="An eBPF watchdog: rules that correlate kernel event streams in time.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("watch", help="attach probes and evaluate rules live")
    _add_rules_opts(p)
    p.add_argument("--duration", metavar="D", help="stop after D (e.g. 30s, 10m)")
    p.add_argument(
        "--record",
        metavar="FILE",
        help="also write every event evaluated to this trace file (.jsonl or .jsonl.gz)",
    )
    p.set_defaults(func=_cmd_watch)

    p = sub.add_parser("replay", help="evaluate rules over recorded trace files")
    p.add_argument("traces", nargs="+", metavar="TRACE", help=".jsonl or .jsonl.gz files")
    _add_rules_opts(p)
    p.add_argument("--skip-bad", action="store_true", help="report bad lines and go on")
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser("check", help="compile rule files and report errors")
    p.add_argument("paths", nargs="+", metavar="PATH", help="rule files or folders")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("record", help="record live events to a trace file")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help=".jsonl or .jsonl.gz")
    p.add_argument("--streams", nargs="+", metavar="S", help="streams to record (default all)")
    p.add_argument("--duration", metavar="D", help="stop after D")
    p.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    p.set_defaults(func=_cmd_record)

    p = sub.add_parser("probes", help="list streams and whether this host can provide them")
    p.add_argument("--json", action="store_true", help="one JSON object per stream")
    p.set_defaults(func=_cmd_probes)

    p = sub.add_parser("test", help="run rule tests (traces with expected findings)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="test files or folders")
    p.set_defaults(func=_cmd_test)

    p = sub.add_parser("findings", help="list stored findings")
    p.add_argument("--since", metavar="D", help="only findings newer than D")
    p.add_argument("--rule", metavar="NAME", help="only this rule's findings")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    p.set_defaults(func=_cmd_findings)
    return parser


def _not_yet(what: str) -> int:
    print(f"tracehound: {what} is not available in this version yet", file=sys.stderr)
    return EXIT_HOST


def _cmd_watch(args: argparse.Namespace) -> int:
    from .config import load_config
    from .live import parse_duration_arg, watch

    duration = parse_duration_arg(args.duration)
    config = load_config(args.config)
    return watch(
        args.rules,
        config,
        json=args.json,
        duration=duration,
        fail_on=args.fail_on,
        record=args.record,
    )


def _cmd_replay(args: argparse.Namespace) -> int:
    from .replay import replay_command

    return replay_command(args)


def _cmd_check(args: argparse.Namespace) -> int:
    import os

    from .dsl import compile_paths
    from .errors import RuleErrors

    missing = [p for p in args.paths if not os.path.exists(p)]
    for p in missing:
        print(f"tracehound check: {p}: no such file or directory", file=sys.stderr)
    if missing:
        return EXIT_BAD_INPUT
    try:
        plan = compile_paths(args.paths)
    except RuleErrors as e:
        for err in e.errors:
            print(err.render(), file=sys.stderr)
        n = len(e.errors)
        print(f"{n} error{'s' if n != 1 else ''}", file=sys.stderr)
        return EXIT_BAD_INPUT
    n = len(plan.rules)
    print(f"{n} rule{'s' if n != 1 else ''} OK", file=sys.stderr)
    return EXIT_OK


def _cmd_record(args: argparse.Namespace) -> int:
    from .config import load_config
    from .live import parse_duration_arg, record

    duration = parse_duration_arg(args.duration)
    load_config(args.config)  # a bad file is still an error, even though record reads no key
    return record(args.output, args.streams, duration=duration)


def _cmd_probes(args: argparse.Namespace) -> int:
    import json

    from probes import PROBES, available

    from .model import CATALOG

    rows: list[dict[str, str | bool]] = []
    for stream in CATALOG:
        if stream == "lost":
            why = "produced by the drain: samples a probe lost (docs/probes.md)"
            ok, kind, module = True, "drain", ""
        elif stream in PROBES:
            info = PROBES[stream]
            ok, why = available(stream)
            kind, module = info.kind, f"probes/{info.module}.py"
        else:
            ok, why, kind, module = False, "no probe provides this stream", "", ""
        rows.append(
            {"stream": stream, "available": ok, "reason": why, "kind": kind, "probe": module}
        )
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return EXIT_OK
    width = max(len(str(r["stream"])) for r in rows)
    for r in rows:
        mark = "yes" if r["available"] else "no "
        print(f"{r['stream']:<{width}}  {mark}  {r['kind']:<10}  {r['reason']}")
    return EXIT_OK


def _cmd_test(args: argparse.Namespace) -> int:
    from .ruletest import test_command

    return test_command(args)


def _cmd_findings(args: argparse.Namespace) -> int:
    import time
    from datetime import datetime
    from pathlib import Path

    from .config import load_config
    from .errors import UsageError
    from .render import key_text
    from .sinks.store import DB_NAME, Store
    from .units import parse_duration

    since = None
    if args.since is not None:
        try:
            since = time.time_ns() - parse_duration(args.since)
        except ValueError as e:
            raise UsageError(f"tracehound findings: error: --since: {e}") from None
    config = load_config(args.config)
    db = Path(config.engine.state_dir) / DB_NAME
    if not db.is_file():
        print(f"tracehound: no findings stored yet (no {db})", file=sys.stderr)
        return EXIT_OK
    store = Store(db, readonly=True)
    try:
        rows = store.findings(since_ns=since, rule=args.rule)
    finally:
        store.close()
    for r in rows:
        if args.json:
            sys.stdout.write(r.json.decode() + "\n")
            continue
        f = r.finding
        when = datetime.fromtimestamp(r.time / 1e9).astimezone().isoformat(timespec="seconds")
        key = key_text(f.key)
        print(f"{when}  {f.severity:<8} {f.rule}{' ' + key if key else ''}: {f.summary}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TraceHoundError as e:
        print(str(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
