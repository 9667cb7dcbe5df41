"""Findings on the terminal: readable text with histograms, or JSON lines (`--json`).

With `--json`, standard output carries findings only, one object per line, flushed
per finding so a pipe reader sees each as it happens.
"""

from __future__ import annotations

import sys
from typing import TextIO

from ..findings import Finding
from ..render import render_finding

__all__ = ["ConsoleSink"]


class ConsoleSink:
    def __init__(
        self, *, json: bool = False, out: TextIO | None = None, name: str = "console"
    ) -> None:
        self.name = name
        self.json = json
        self.out = out if out is not None else sys.stdout
        self._first = True

    async def send(self, finding: Finding) -> None:
        if self.json:
            self.out.write(finding.to_json().decode() + "\n")
        else:
            if not self._first:
                self.out.write("\n")
            self.out.write(render_finding(finding) + "\n")
        self._first = False
        self.out.flush()

    async def aclose(self) -> None:
        self.out.flush()
