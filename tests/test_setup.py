"""The set-up: host script, the venv's view of bcc, and CI running the README's command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "probes" / "host-setup.sh"
DEBIAN_BCC = Path("/usr/lib/python3/dist-packages/bcc")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme
    assert "set -euo pipefail" in ci
    assert "make test" in ci.split("set -euo pipefail", 1)[1]
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_makefile_has_the_documented_targets() -> None:
    text = (ROOT / "Makefile").read_text()
    for target in ("setup:", "watch:", "test:", "bench:"):
        assert f"\n{target}" in text


def test_script_is_valid_bash() -> None:
    assert _run("bash", "-n", str(SCRIPT)).returncode == 0


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run the script as an ordinary user",
)
def test_script_unprivileged_explains_and_skips() -> None:
    r = _run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(SCRIPT))
    assert r.returncode == 0
    assert "not root" in r.stdout and "python3-bpfcc" in r.stdout


def _closest_headers() -> Path | None:
    found = sorted(Path("/usr/src").glob("linux-headers-*-amd64"))
    return found[-1] if found else None


@pytest.mark.skipif(os.geteuid() != 0, reason="the script only acts as root")
def test_script_links_closest_headers_and_is_idempotent(tmp_path: Path) -> None:
    headers = _closest_headers()
    if headers is None or shutil.which("dpkg-query") is None:
        pytest.skip("no Debian linux-headers-*-amd64 installed here")
    env = {"TRACEHOUND_MODULES_ROOT": str(tmp_path)}
    first = _run("bash", str(SCRIPT), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    build = tmp_path / os.uname().release / "build"
    source = tmp_path / os.uname().release / "source"
    if not build.is_symlink():
        pytest.skip(f"an exact headers package exists for this kernel: {first.stdout}")
    assert build.resolve() == headers.resolve()
    assert (source / "include" / "linux" / "kconfig.h").exists()
    second = _run("bash", str(SCRIPT), env=env)
    assert second.returncode == 0
    assert "kernel headers present" in second.stdout
    assert "linked" not in second.stdout and "installing" not in second.stdout


@pytest.mark.skipif(not DEBIAN_BCC.is_dir(), reason="python3-bpfcc not installed")
def test_venv_sees_bcc_but_not_the_rest_of_dist_packages() -> None:
    if sys.prefix == sys.base_prefix:
        pytest.skip("not running inside the set-up's virtual environment")
    code = (
        "import importlib.util as u; print(u.find_spec('bcc') is not None,"
        " u.find_spec('apt_pkg') is not None)"
    )
    r = _run(sys.executable, "-c", code)
    # apt_pkg lives only in Debian's dist-packages: it must not leak into the venv
    assert r.stdout.split() == ["True", "False"], r.stdout + r.stderr
