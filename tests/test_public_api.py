"""The engine's public API: every exported name resolves, and importing the catalog
(what probes do) does not drag in the compiler or the runtime."""

from __future__ import annotations

import subprocess
import sys

import pytest

import engine


@pytest.mark.parametrize("name", engine.__all__)
def test_exported_name_resolves(name: str) -> None:
    assert getattr(engine, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        engine.no_such_thing  # noqa: B018


def test_probes_side_imports_stay_light() -> None:
    code = (
        "import sys, engine.model, engine.batch, engine.source, probes; "
        "heavy = [m for m in ('engine.runtime', 'engine.dsl.grammar', 'pyparsing', 'bcc') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
