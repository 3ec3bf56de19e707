# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lane runner of `make test` (tests/utils/tiers.py), on a Makefile of the test's own.

The lanes run at the same time, the tiers of a lane in order; a failed tier stops its lane only, its whole log is
printed, the tiers after the lanes run only when every lane passed, and the exit status says whether all passed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
TIERS = REPO / "tests" / "utils" / "tiers.py"

MAKEFILE = """\
slow-a:
\t@sleep 1; echo a >> order; echo done-slow-a
slow-b:
\t@sleep 1; echo b >> order; echo done-slow-b
fail:
\t@echo the-reason-it-failed; for i in $$(seq 40); do echo line $$i; done; exit 3
after-fail:
\t@echo after-fail >> order
then:
\t@echo then >> order
stdin:
\t@test ! -t 0 && [ -z "$$(cat)" ] && echo stdin-is-empty
"""


def run(tmp: Path, *argv: str) -> tuple[subprocess.CompletedProcess[str], float]:
    (tmp / "Makefile").write_text(MAKEFILE)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(TIERS), "--logs", str(tmp / "logs"), *argv],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, time.monotonic() - start


def test_lanes_run_at_the_same_time_and_then_the_rest(tmp_path: Path) -> None:
    done, took = run(tmp_path, "slow-a", "slow-b", "--", "then")
    assert done.returncode == 0, done.stdout + done.stderr
    assert took < 1.9, f"two 1 s lanes took {took:.1f} s: not at the same time"
    assert sorted((tmp_path / "order").read_text().split()[:2]) == ["a", "b"]
    assert (tmp_path / "order").read_text().split()[2:] == ["then"]
    assert "===== make slow-a: PASSED" in done.stdout and "done-slow-a" in done.stdout
    assert (tmp_path / "logs" / "slow-b.log").read_text() == "done-slow-b\n"
    assert done.stdout.rstrip().splitlines()[-1].startswith("make test: PASSED after")


def test_a_failed_tier_stops_its_lane_only_and_fails_the_run(tmp_path: Path) -> None:
    done, _took = run(tmp_path, "fail,after-fail", "slow-b", "--", "then")
    assert done.returncode == 1
    order = (tmp_path / "order").read_text().split()
    assert order == ["b"], "after-fail and then must not run; the other lane must"
    assert "===== make fail: FAILED (exit status 2)" in done.stdout
    # the whole log of a failed tier, not only its end
    assert "the-reason-it-failed" in done.stdout and "line 40" in done.stdout
    assert "not run after fail failed: after-fail" in done.stdout
    assert "not run because fail failed: then" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("make test: FAILED: fail after")


def test_a_tier_gets_an_empty_stdin_of_its_own(tmp_path: Path) -> None:
    done, _took = run(tmp_path, "stdin")
    assert done.returncode == 0, done.stdout
    assert (tmp_path / "logs" / "stdin.log").read_text() == "stdin-is-empty\n"


def test_a_passed_tier_shows_the_end_of_its_log(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text(MAKEFILE + "long:\n\t@for i in $$(seq 100); do echo row $$i; done\n")
    done = subprocess.run(
        [sys.executable, str(TIERS), "--logs", str(tmp_path / "logs"), "long"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "row 100" in done.stdout and "row 80\n" not in done.stdout
    assert "the last 15 of 100 lines" in done.stdout


def test_the_empty_rundir_the_run_made_goes_and_nothing_else(tmp_path: Path) -> None:
    sys.path.insert(0, str(TIERS.parent))
    import tiers  # pylint: disable=import-outside-toplevel

    rundir = tmp_path / "netns"
    rundir.mkdir()
    assert not tiers.remove_rundir_made(rundir, existed_before=False), "not a mount point: left alone"
    subprocess.run(["mount", "--bind", str(rundir), str(rundir)], check=True)
    try:
        assert not tiers.remove_rundir_made(rundir, existed_before=True), "it was there before the run"
        (rundir / "con1").write_text("")
        assert not tiers.remove_rundir_made(rundir, existed_before=False), "not empty"
        (rundir / "con1").unlink()
        assert tiers.remove_rundir_made(rundir, existed_before=False)
        assert not rundir.exists()
    finally:
        if tiers.is_mount_point(rundir):
            subprocess.run(["umount", str(rundir)], check=False)
