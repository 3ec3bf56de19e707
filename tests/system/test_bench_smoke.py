# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmarks keep working: `benchmarks/run.py --smoke` builds a 2-node lab of its own, measures a small
subset once, writes its tables, and leaves nothing behind. Never asserts on a timing (the machine is shared)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the benchmarks build labs of namespaces: needs root")


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_smoke_run_writes_its_tables(tmp_path: Path) -> None:
    out, results = tmp_path / "performance.md", tmp_path / "results"
    before = netns_names()
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--out", str(out), "--results", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()

    # The machine, and one table per measured section, each with a header and at least one data row.
    assert re.search(r"^\| nproc \| \d+ \|$", text, re.M), text
    assert re.search(r"^\| ansible-core \| \S+ \|$", text, re.M), text
    for heading, row in [
        ("## Targets", r"^\| stage 4 \(vxlan\), 2 nodes, cold <= 1\.5x floor \|"),
        ("## Targets", r"^\| controller-side planning, 32x16 .* \| [0-9.]+ s \(best of 5"),
        ("## 1. Converge time on 2 nodes", r"^\| floor \(benchmarks/floor\.yml\) \| [0-9.]+"),
        ("## 1. Converge time on 2 nodes", r"^\| overlay vxlan \(playbooks/overlay\.yml\) \| [0-9.]+"),
        ("## 1. Converge time on 2 nodes", r"^\| shell vxlan \(benchmarks/stage4\.sh\) \| [0-9.]+"),
        ("## 3. Data plane", r"^\| veth pair \| 1500 \| [0-9.]+"),
    ]:
        assert heading in text, text
        assert re.search(row, text, re.M), f"no row {row!r} in:\n{text}"

    # The raw results hold every run; the stage converged and its re-run changed nothing.
    raw = json.loads((results / "smoke.json").read_text())
    conv = raw["converge"]
    assert conv["overlay vxlan cold"][0]["changed"] > 0
    assert conv["overlay vxlan warm"][0]["changed"] == 0
    assert raw["dataplane"]["veth pair"]["gbps"][0] > 0
    assert len(raw["planner"]["32x16"]) == 5 and min(raw["planner"]["32x16"]) > 0

    # Nothing left behind: the lab, the veth pair's namespaces, the lock.
    lab = raw["args"]["lab"]
    assert not Path(f"/run/cnfs-netlab/{lab}").exists()
    assert not {n for n in netns_names() - before if n.startswith("cnfsbench-")}
