"""One exception tree. Every error a user can cause carries where it happened.

The CLI turns these into `FILE:LINE:COL: error: ...` lines and exit codes; anything
that is not a `TraceHoundError` reaching the CLI is a bug in tracehound.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "HostError",
    "RuleError",
    "RuleErrors",
    "SourceSpan",
    "TraceError",
    "TraceHoundError",
    "UsageError",
]


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """A place in a text file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class TraceHoundError(Exception):
    """Base of every error tracehound reports to a user. `exit_code` is the CLI's."""

    exit_code = 2


class UsageError(TraceHoundError):
    """Bad command-line arguments."""


class RuleError(TraceHoundError):
    """A rule file that does not compile.

    `text` is the offending source line (shown with a caret under `span.col`);
    `hint` is an optional suggestion ("did you mean disk.io?").
    """

    def __init__(self, message: str, span: SourceSpan, text: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.text = text
        self.hint = hint

    def render(self) -> str:
        out = [f"{self.span}: error: {self.message}"]
        if self.text:
            line = self.text.rstrip("\n")
            out.append(f"  {line}")
            # Keep tabs so the caret lines up under tabbed source.
            pad = "".join("\t" if ch == "\t" else " " for ch in line[: max(self.span.col - 1, 0)])
            out.append(f"  {pad}^")
        if self.hint:
            out.append(f"  {self.hint}")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.render()


class RuleErrors(TraceHoundError):
    """Several rule errors at once (the compiler reports all it can find)."""

    def __init__(self, errors: list[RuleError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class TraceError(TraceHoundError):
    """A bad line in a trace file."""

    def __init__(self, message: str, file: str, line: int) -> None:
        super().__init__(f"{file}:{line}: error: {message}")
        self.message = message
        self.file = file
        self.line = line


class ConfigError(TraceHoundError):
    """A configuration file that does not load; names the key."""


class HostError(TraceHoundError):
    """The host cannot run what was asked (no privilege, no BPF, missing probe)."""

    exit_code = 3
