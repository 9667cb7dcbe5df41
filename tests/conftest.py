"""Shared test helpers: skip live tests with the reason the host cannot run them.

Use `@needs_root_bpf` (or the `bpf_host` fixture) on tests that load BPF programs,
and `@needs_root` on tests that only need root (cgroupfs writes, mounts).
"""

from __future__ import annotations

import os

import pytest

from probes import host


def bpf_skip_reason() -> str | None:
    """Why this host cannot load bcc tracepoint probes, or None when it can."""
    checks = [
        host.check_privilege(),
        host.check_bcc(),
        host.check_tracefs(),
        host.check_headers(),
    ]
    bad = host.first_failure(checks)
    if bad is None:
        bad = host.first_failure([host.check_bpf_syscall()])
    return None if bad is None else bad.message()


_BPF_REASON = bpf_skip_reason()

needs_root_bpf = pytest.mark.skipif(
    _BPF_REASON is not None, reason=f"needs root + BPF + bcc: {_BPF_REASON}"
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def bpf_host() -> None:
    """Skip the test (with the reason) unless bcc probes can load here."""
    if _BPF_REASON is not None:
        pytest.skip(f"needs root + BPF + bcc: {_BPF_REASON}")
