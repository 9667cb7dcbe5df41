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
    return _not_yet("watch")


def _cmd_replay(args: argparse.Namespace) -> int:
    return _not_yet("replay")


def _cmd_check(args: argparse.Namespace) -> int:
    return _not_yet("check")


def _cmd_record(args: argparse.Namespace) -> int:
    return _not_yet("record")


def _cmd_probes(args: argparse.Namespace) -> int:
    return _not_yet("probes")


def _cmd_test(args: argparse.Namespace) -> int:
    return _not_yet("test")


def _cmd_findings(args: argparse.Namespace) -> int:
    return _not_yet("findings")


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
