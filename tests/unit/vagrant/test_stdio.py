# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Vagrant tier keeps its standard streams blocking (issue: make test failed on a new machine).

O_NONBLOCK is a flag of the open file description that every process inheriting a descriptor shares.
The tier's KVM probe ran QEMU with `-serial stdio` on the tier's own stdin; QEMU set O_NONBLOCK on it,
was killed by the probe's timeout, and every later ansible command of the tier refused to start
("Ansible requires blocking IO on stdin/stdout/stderr"). Only an uncached run probes, so only a new
machine (or a removed box cache) showed it.

- the step runner (vagrant/steps.sh): a step still starts ansible after an earlier command left the
  shared stdin and stdout non-blocking (and the same ansible command fails without the runner, so the
  test can fail);
- the probe itself (vagrant/lab.sh probe, QEMU really run): the caller's stdin stays blocking. It needs
  QEMU, a writable /dev/kvm and the box's kernel; without them it is skipped, unless
  CNFS_REQUIRE_PROBE_TEST=1 (vagrant/test.sh runs this file so after building the box), which makes a
  missing prerequisite a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ANSIBLE = Path(sys.executable).with_name("ansible")
BREAK_STDIO = "import os; os.set_blocking(0, False); os.set_blocking(1, False)"
REFUSAL = "Ansible requires blocking IO"


def run_bash(script: str, stdin: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script, "_", str(REPO), sys.executable, str(ANSIBLE)],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def shared_stdin():
    """A /dev/null description that the test keeps, to look at its flags after the child is gone."""
    with open(os.devnull, "rb") as f:
        yield f.fileno()


def test_ansible_refuses_a_non_blocking_stdin(shared_stdin: int) -> None:
    """The failure itself, so that the next test is known to be able to fail."""
    r = run_bash(f'"$2" -c "{BREAK_STDIO}"; "$3" --version', shared_stdin)
    assert r.returncode != 0
    assert REFUSAL in r.stdout + r.stderr
    assert not os.get_blocking(shared_stdin)  # the flag is on the shared description


def test_step_starts_with_sane_stdio(shared_stdin: int) -> None:
    script = f"""
        . "$1/vagrant/steps.sh"
        "$2" -c "{BREAK_STDIO}"          # an earlier command, outside any step, breaks both streams
        step "ansible after a broken stdin" "$3" --version
        step "a step that breaks its own stdin" "$2" -c "{BREAK_STDIO}"
        step "ansible again" "$3" --version
        printf '%s\\n' "${{TIMES[@]}}"
    """
    r = run_bash(script, shared_stdin)
    assert r.returncode == 0, r.stdout + r.stderr
    assert REFUSAL not in r.stdout + r.stderr
    assert r.stdout.count("ansible [core") == 2
    # The runner says what it reset, and when.
    assert "stdin, stdout had been left non-blocking" in r.stderr
    assert "(before step: ansible after a broken stdin)" in r.stderr
    # Each step records its time.
    assert [line.split()[0] for line in r.stdout.splitlines() if line.endswith(" s")] == ["ansible", "a", "ansible"]


def test_sane_stdio_leaves_blocking_streams_alone(shared_stdin: int) -> None:
    r = subprocess.run(
        [sys.executable, str(REPO / "tests/utils/sane_stdio.py"), "now"],
        stdin=shared_stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    assert r.stderr == ""
    assert os.get_blocking(shared_stdin)


def _probe_kernel(vagrant_home: Path) -> Path:
    return vagrant_home / "boxes/cnfs-netlab-VAGRANTSLASH-debian12/0/libvirt/vmlinuz"


def test_kvm_probe_keeps_the_callers_stdin_blocking(shared_stdin: int, tmp_path: Path) -> None:
    cache = Path(os.environ.get("CNFS_VAGRANT_CACHE", Path.home() / ".cache/cnfs-netlab/vagrant"))
    vagrant_home = Path(os.environ.get("VAGRANT_HOME", cache / "vagrant.d"))
    missing = [
        what
        for what, ok in (
            ("qemu-system-x86_64", shutil.which("qemu-system-x86_64")),
            ("a writable /dev/kvm", os.access("/dev/kvm", os.W_OK)),
            (f"the box's kernel {_probe_kernel(vagrant_home)}", _probe_kernel(vagrant_home).is_file()),
        )
        if not ok
    ]
    if missing:
        if os.environ.get("CNFS_REQUIRE_PROBE_TEST") == "1":
            pytest.fail(f"the KVM probe cannot be tested: missing {', '.join(missing)}")
        pytest.skip(f"the KVM probe runs only with {', '.join(missing)} (make test-vagrant runs this test)")
    env = {k: v for k, v in os.environ.items() if k != "CNFS_VAGRANT_DRIVER"}
    # An empty probe cache of the test's own, so that the probe really boots QEMU; the box's kernel from
    # the real Vagrant home.
    env.update(CNFS_VAGRANT_ISOLATED="1", CNFS_VAGRANT_CACHE=str(tmp_path), VAGRANT_HOME=str(vagrant_home))
    r = subprocess.run(
        [str(REPO / "vagrant/lab.sh"), "probe"],
        stdin=shared_stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in ("kvm", "qemu")
    assert list(tmp_path.glob("kvm-probe.*")), "the probe did not run (no result cached)"
    assert os.get_blocking(shared_stdin), "the KVM probe left the caller's stdin non-blocking"
