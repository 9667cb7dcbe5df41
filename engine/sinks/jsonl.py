"""Findings appended to a JSON-lines file: the simplest hand-off to other tools.

Each line is written and flushed whole, so a reader tailing the file never sees
half a finding; the file is opened in append mode so restarts keep history.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from ..findings import Finding

__all__ = ["JsonlSink"]


class JsonlSink:
    def __init__(self, path: str | Path, name: str = "jsonl") -> None:
        self.name = name
        self.path = Path(path)
        self._f: IO[bytes] | None = None
        self._broken = False

    async def send(self, finding: Finding) -> None:
        if self._broken:
            return
        try:
            if self._f is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._f = open(self.path, "ab")  # noqa: SIM115 - kept open across findings
            self._f.write(finding.to_json() + b"\n")
            self._f.flush()
        except OSError as e:
            # A full disk must not stop the watchdog: say so once, keep going.
            self._broken = True
            print(f"tracehound: sink {self.name}: cannot write {self.path}: {e}", file=sys.stderr)

    async def aclose(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
