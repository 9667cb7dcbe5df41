"""Host checks: each failure names what is missing and how to fix it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from probes import host


def _status(tmp_path: Path, capeff: int) -> Path:
    p = tmp_path / "status"
    p.write_text(f"Name:\tpython\nCapInh:\t0000000000000000\nCapEff:\t{capeff:016x}\n")
    return p


def test_privilege_root(tmp_path: Path) -> None:
    assert host.check_privilege(_status(tmp_path, 0x1FFFEFFFFFF)).ok


def test_privilege_cap_bpf_and_perfmon(tmp_path: Path) -> None:
    caps = 1 << host.CAP_BPF | 1 << host.CAP_PERFMON
    assert host.check_privilege(_status(tmp_path, caps)).ok


def test_privilege_cap_bpf_alone_is_not_enough(tmp_path: Path) -> None:
    c = host.check_privilege(_status(tmp_path, 1 << host.CAP_BPF))
    assert not c.ok
    assert "root" in c.fix and "CAP_PERFMON" in c.fix


def test_privilege_none(tmp_path: Path) -> None:
    c = host.check_privilege(_status(tmp_path, 0))
    assert not c.ok
    assert "fix:" in c.message()


def test_privilege_unreadable(tmp_path: Path) -> None:
    assert not host.check_privilege(tmp_path / "missing").ok


def test_privilege_of_this_process_matches_euid() -> None:
    if os.geteuid() == 0:
        assert host.check_privilege().ok
    else:
        pytest.skip("running unprivileged: nothing to compare")


def _tracefs(tmp_path: Path) -> Path:
    root = tmp_path / "tracing"
    (root / "events" / "sched" / "sched_switch").mkdir(parents=True)
    return root


def test_tracefs_found_and_missing(tmp_path: Path) -> None:
    assert host.check_tracefs(_tracefs(tmp_path)).ok
    empty = tmp_path / "empty"
    empty.mkdir()
    c = host.check_tracefs(empty)
    assert not c.ok
    assert "mount -t tracefs" in c.fix


def test_tracepoint_present_and_missing(tmp_path: Path) -> None:
    root = _tracefs(tmp_path)
    assert host.check_tracepoint("sched:sched_switch", root).ok
    c = host.check_tracepoint("zfs:zfs_txg__syncing", root)
    assert not c.ok
    assert "zfs:zfs_txg__syncing" in c.reason


def test_kprobe_disabled_and_enabled(tmp_path: Path) -> None:
    root = _tracefs(tmp_path)
    c = host.check_kprobe("spa_sync", root)
    assert not c.ok and "CONFIG_KPROBES" in c.reason
    (root / "kprobe_events").write_text("")
    (root / "available_filter_functions").write_text("txg_sync_thread [zfs]\nspa_sync [zfs]\n")
    assert host.check_kprobe("spa_sync", root).ok
    assert not host.check_kprobe("spa_sync_pass", root).ok


def test_headers(tmp_path: Path) -> None:
    rel = "6.18.0-test"
    c = host.check_headers(rel, tmp_path)
    assert not c.ok and "make setup" in c.fix
    src = tmp_path / "src"
    (tmp_path / rel).mkdir()
    (src / "amd64").mkdir(parents=True)
    (src / "amd64" / "Makefile").write_text("")
    (tmp_path / rel / "build").symlink_to(src / "amd64")
    c = host.check_headers(rel, tmp_path)
    assert not c.ok and "kconfig.h" in c.reason  # Debian's kconfig.h lives in -common
    (src / "common" / "include" / "linux").mkdir(parents=True)
    (src / "common" / "include" / "linux" / "kconfig.h").write_text("")
    (tmp_path / rel / "source").symlink_to(src / "common")
    assert host.check_headers(rel, tmp_path).ok


def test_bcc_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host.importlib.util, "find_spec", lambda name: None)
    c = host.check_bcc()
    assert not c.ok and "python3-bpfcc" in c.fix


def test_file_check(tmp_path: Path) -> None:
    assert host.check_file(tmp_path, "dir", "make it").ok
    c = host.check_file(tmp_path / "nope", "kstat", "load zfs")
    assert not c.ok and c.fix == "load zfs"


def test_bpf_syscall_agrees_with_privilege() -> None:
    # As root here the trivial program must load; unprivileged it must say why not.
    c = host.check_bpf_syscall()
    if host.check_privilege().ok:
        assert c.ok, c.message()
    else:
        assert c.ok or c.fix


def test_first_failure_order() -> None:
    a, b = host.Check(False, "a", "fa"), host.Check(False, "b", "fb")
    assert host.first_failure([host.Check(True, "x"), a, b]) is a
    assert host.first_failure([host.Check(True, "x")]) is None


def test_tracefs_mounts_where_allowed(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting tracefs needs root")
    where = tmp_path / "tracing"
    where.mkdir()
    assert not host.check_tracefs(where).ok
    try:
        c = host.check_tracefs(where, mount=True)
        if not c.ok:
            pytest.skip(f"tracefs cannot be mounted here: {c.reason}")
        assert (where / "events" / "sched").is_dir()
        assert host.check_tracepoint("sched:sched_switch", where).ok
    finally:
        subprocess.run(["umount", str(where)], capture_output=True, check=False)
