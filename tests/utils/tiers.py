# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the tiers of `make test` in lanes: the lanes at the same time, the tiers of a lane one after another.

Usage: tiers.py [--logs DIR] LANE [LANE ...] [-- THEN ...]
    LANE   the make targets of one lane, comma-separated, e.g. lint,test-sanity,test-unit
    THEN   tiers run after every lane has passed, one after another (the Vagrant tier: its VMs want both cores)

Each tier is ``make TIER`` with a /dev/null of its own as stdin and its output in DIR/TIER.log (default
build/logs), so the lanes' outputs do not interleave; when a tier ends, its result, its time and its log (all of
it when it failed, the end when it passed) are printed. A tier that fails stops its own lane; the other lanes run
on, so that one run reports every failure, and THEN is not started. The exit status is 1 when any tier failed.

Why lanes: the checks (lint, sanity, unit, property, integration) and the labs (system, Molecule) spend much of
their time waiting on processes they start; two at once take about 0.7x the time of one after the other.

Afterwards, /run/netns goes again when the run made it and left it empty: the tests' namespaces there are made
the way `ip netns add` makes them, and the first one turns the directory into a shared bind mount of itself.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

PASSED_TAIL = 15  # lines of a passed tier's log printed at its end
NETNS_RUN_DIR = Path("/run/netns")
REPO = Path(__file__).resolve().parents[2]

_print_lock = threading.Lock()


def say(text: str) -> None:
    with _print_lock:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()


def run_tier(tier: str, logs: Path) -> bool:
    log = logs / f"{tier}.log"
    say(f"make test: {tier} started (log {log})")
    start = time.monotonic()
    with open(log, "wb") as out, open("/dev/null", "rb") as devnull:
        rc = subprocess.call(["make", tier], stdin=devnull, stdout=out, stderr=subprocess.STDOUT)
    took = time.monotonic() - start
    text = log.read_text(errors="replace")
    lines = text.splitlines()
    shown = lines if rc else lines[-PASSED_TAIL:]
    verdict = "PASSED" if rc == 0 else f"FAILED (exit status {rc})"
    header = f"===== make {tier}: {verdict} in {took:.0f} s"
    if len(shown) < len(lines):
        header += f"; the last {len(shown)} of {len(lines)} lines of {log}"
    say("\n".join([header + " =====", *shown, f"===== make test: {tier} took {took:.0f} s =====", ""]))
    return rc == 0


def run_lane(tiers: list[str], logs: Path, failed: list[str]) -> None:
    for tier in tiers:
        if not run_tier(tier, logs):
            failed.append(tier)
            rest = tiers[tiers.index(tier) + 1 :]
            if rest:
                say(f"make test: not run after {tier} failed: {', '.join(rest)}")
            return


def is_mount_point(path: Path) -> bool:
    """From the collection's reading of /proc/self/mountinfo (os.path.ismount misses a directory bind-mounted on
    itself: same device)."""
    collections = str(REPO / ".collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    from ansible_collections.cnfs.netlab.plugins.module_utils._labnode import (  # pylint: disable=import-outside-toplevel
        mounts,
    )

    return any(m.mountpoint == str(path) for m in mounts())


def remove_rundir_made(rundir: Path, existed_before: bool) -> bool:
    """Unmount and remove rundir if it did not exist before the run and is now an empty mount point (what the
    first namespace made there leaves). True if it was removed."""
    if existed_before or not rundir.is_dir() or not is_mount_point(rundir) or any(rundir.iterdir()):
        return False
    if subprocess.call(["umount", str(rundir)], stdin=subprocess.DEVNULL) != 0:
        return False
    with contextlib.suppress(OSError):
        rundir.rmdir()
    return not rundir.exists()


def main(argv: list[str]) -> int:
    lanes_argv, then = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--logs", type=Path, default=Path("build/logs"))
    parser.add_argument("lanes", nargs="+")
    args = parser.parse_args(lanes_argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    lanes = [[tier for tier in lane.split(",") if tier] for lane in args.lanes]
    start = time.monotonic()
    rundir_existed = NETNS_RUN_DIR.exists()
    failed: list[str] = []
    threads = [threading.Thread(target=run_lane, args=(lane, args.logs, failed)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        if then:
            say(f"make test: not run because {', '.join(failed)} failed: {', '.join(then)}")
    else:
        run_lane(then, args.logs, failed)
    if remove_rundir_made(NETNS_RUN_DIR, rundir_existed):
        say(f"make test: removed {NETNS_RUN_DIR}, the empty mount the tests' namespaces left")
    verdict = f"FAILED: {', '.join(failed)}" if failed else "PASSED"
    say(f"make test: {verdict} after {time.monotonic() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
