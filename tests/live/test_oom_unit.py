"""oom.kill's cgroup bookkeeping on fake cgroupfs/proc trees (no kernel needed)."""

from __future__ import annotations

from pathlib import Path

from probes.oom import CgroupCounters, memory_cgroup, victim_cgroup


def test_memory_cgroup_prefers_v1_memory_line(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "cgroup").write_text(
        "12:pids:/x\n4:memory:/tenants/a\n1:name=systemd:/y\n0::/unified/z\n"
    )
    assert memory_cgroup(42, tmp_path) == "/tenants/a"


def test_memory_cgroup_v2_only_and_gone(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cgroup").write_text("0::/system.slice/app.service\n")
    assert memory_cgroup(7, tmp_path) == "/system.slice/app.service"
    assert memory_cgroup(8, tmp_path) is None


def _oom_control(d: Path, kills: int) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "memory.oom_control").write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {kills}\n")


def test_counters_find_the_deepest_cgroup_that_counted_a_kill(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    _oom_control(root, 3)
    _oom_control(root / "a", 1)
    _oom_control(root / "a" / "b", 0)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup {root} cgroup rw,relatime,memory 0 0\n")
    c = CgroupCounters(mounts)
    assert c.changes() == {}
    _oom_control(root, 4)  # counts propagate to ancestors
    _oom_control(root / "a", 2)
    _oom_control(root / "a" / "b", 1)
    ch = c.changes()
    assert ch == {"/": 1, "/a": 1, "/a/b": 1}
    assert victim_cgroup(ch) == "/a/b"
    assert c.changes() == {}, "changes are relative to the previous look"
    assert victim_cgroup({}) == "/"


def test_counters_read_cgroup2_memory_events(tmp_path: Path) -> None:
    root = tmp_path / "unified"
    (root / "svc").mkdir(parents=True)
    (root / "svc" / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 1\noom_kill 0\n")
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup2 {root} cgroup2 rw 0 0\n")
    c = CgroupCounters(mounts)
    (root / "svc" / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\n")
    assert victim_cgroup(c.changes()) == "/svc"
