"""Building rule errors: the offending line, and "did you mean" suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ..errors import RuleError, SourceSpan

__all__ = ["Sources", "did_you_mean", "suggest"]


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate, if any is close enough to be a likely typo."""
    pool = list(dict.fromkeys(candidates))
    best = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not best and "." in word:
        # `disk.latency` -> `disk.io.latency`: compare the last part alone too.
        tail = word.rsplit(".", 1)[1]
        by_tail = [c for c in pool if c.rsplit(".", 1)[-1] == tail]
        if len(by_tail) == 1:
            return by_tail[0]
    return best[0] if best else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    s = suggest(word, candidates)
    return f"did you mean {s}?" if s else ""


class Sources:
    """The text of every loaded file, to quote the offending line in an error."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}

    def add(self, file: str, text: str) -> None:
        self._lines[file] = text.split("\n")

    def line(self, span: SourceSpan) -> str:
        lines = self._lines.get(span.file)
        if lines is None or not 1 <= span.line <= len(lines):
            return ""
        return lines[span.line - 1].rstrip("\r")

    def error(self, message: str, span: SourceSpan, hint: str = "") -> RuleError:
        return RuleError(message, span, self.line(span), hint)
