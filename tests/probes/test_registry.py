"""The probe registry and `tracehound probes`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Mapping
from typing import Any

import pytest

import probes
from engine.cli import main
from engine.errors import HostError
from engine.model import CATALOG


def test_every_catalog_stream_but_lost_has_a_probe() -> None:
    assert set(probes.PROBES) == set(CATALOG) - {"lost"}
    for stream, info in probes.PROBES.items():
        assert info.stream == stream
        assert info.kind in ("tracepoint", "kprobe", "poller")
        assert info.module.isidentifier()
        if info.kind == "tracepoint":
            assert info.tracepoints and all(":" in tp for tp in info.tracepoints)


def test_registry_tracepoints_match_the_probe_modules() -> None:
    import importlib

    for info in probes.PROBES.values():
        if not probes._module_exists(info.module):
            continue  # not written yet: reported "not implemented"
        declared = getattr(importlib.import_module(f"probes.{info.module}"), "TRACEPOINTS", None)
        if declared is not None:
            assert set(declared) == set(info.tracepoints), info.module


def test_registry_does_not_import_bcc() -> None:
    code = "import sys, probes; probes.available('memcg'); print('bcc' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_module_is_not_implemented(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = probes.ProbeInfo("memcg", "no_such_module_xyz", "poller", (), "test")
    monkeypatch.setitem(probes.PROBES, "memcg", fake)
    ok, why = probes.available("memcg")
    assert not ok and "not implemented" in why
    with pytest.raises(HostError, match="not implemented"):
        probes.load("memcg")


def test_unknown_stream() -> None:
    ok, why = probes.available("no.such.stream")
    assert not ok and "no.such.stream" in why
    with pytest.raises(HostError):
        probes.load("no.such.stream")


class _FakeSource:
    name = "fake"

    def __init__(self, streams: frozenset[str], options: Mapping[str, Any]) -> None:
        self.streams = streams
        self.options = dict(options)


def _install_fake(monkeypatch: pytest.MonkeyPatch, check: Any) -> None:
    mod = types.ModuleType("probes.fake_probe_for_tests")
    mod.make_source = _FakeSource  # type: ignore[attr-defined]
    mod.check = check  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "probes.fake_probe_for_tests", mod)
    monkeypatch.setattr(probes, "_module_exists", lambda m: m == "fake_probe_for_tests")
    for s in ("memcg", "zfs.txg.sync"):
        monkeypatch.setitem(
            probes.PROBES, s, probes.ProbeInfo(s, "fake_probe_for_tests", "poller", (), "")
        )


def test_load_groups_streams_by_module(monkeypatch: pytest.MonkeyPatch) -> None:
    _install_fake(monkeypatch, lambda: (True, "fine"))
    assert probes.available("memcg") == (True, "fine")
    srcs = probes.load_many(["memcg", "zfs.txg.sync"], {"memcg": {"interval": "2s"}})
    assert len(srcs) == 1
    src = srcs[0]
    assert isinstance(src, _FakeSource)
    assert src.streams == frozenset({"memcg", "zfs.txg.sync"})
    assert src.options == {"interval": "2s"}
    one = probes.load("memcg", root="/x")
    assert isinstance(one, _FakeSource) and one.options == {"root": "/x"}


def test_broken_check_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> tuple[bool, str]:
        raise RuntimeError("kaput")

    _install_fake(monkeypatch, boom)
    ok, why = probes.available("memcg")
    assert not ok and "kaput" in why


def test_tracepoint_probe_reports_missing_tracepoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    _install_fake(monkeypatch, lambda: (True, "fine"))
    monkeypatch.setitem(
        probes.PROBES,
        "memcg",
        probes.ProbeInfo("memcg", "fake_probe_for_tests", "tracepoint", ("nogroup:noevent",), ""),
    )
    (tmp_path / "events").mkdir()
    monkeypatch.setattr(probes.host, "tracefs_root", lambda *a: tmp_path)
    monkeypatch.setattr(probes.host, "check_tracefs", lambda *a, **k: probes.host.Check(True, ""))
    monkeypatch.setattr(probes.host, "check_privilege", lambda *a: probes.host.Check(True, ""))
    monkeypatch.setattr(probes.host, "check_bcc", lambda: probes.host.Check(True, ""))
    ok, why = probes.available("memcg")
    assert not ok and "nogroup:noevent" in why


def test_probes_cli_lists_every_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probes"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[0] for line in out) == sorted(CATALOG)
    for line in out:
        assert line.split()[1] in ("yes", "no")


def test_probes_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probes", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["stream"] for r in rows] == list(CATALOG)
    by = {r["stream"]: r for r in rows}
    for stream, r in by.items():
        assert isinstance(r["available"], bool)
        if stream != "lost":
            assert (r["available"], r["reason"]) == probes.available(stream)
        if not r["available"]:
            assert r["reason"]


def _as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as an ordinary user")
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    if r.returncode == 126 or "can't open file" in r.stderr or "No module named" in r.stderr:
        pytest.skip(f"this Python cannot run as nobody here: {r.stderr[:200]}")
    return r


def test_probes_cli_unprivileged_says_why_without_traceback() -> None:
    r = _as_nobody("-m", "engine", "probes", "--json")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    rows = {row["stream"]: row for row in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == set(CATALOG)
    for stream, info in probes.PROBES.items():
        if info.kind == "tracepoint":
            assert rows[stream]["available"] is False
            assert "root" in rows[stream]["reason"], rows[stream]


def test_bpf_syscall_refused_unprivileged() -> None:
    code = (
        "from probes import host; c = host.check_bpf_syscall(); "
        "print(c.ok, c.fix != ''); print(host.check_privilege().ok)"
    )
    r = _as_nobody("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True", "False"]
