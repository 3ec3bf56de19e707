# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""make bench's targets (issue #15): ratios to the floor of the same run, met or not, and the load flag (pure)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parents[3] / "benchmarks" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("cnfs_bench_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cnfs_bench_run"] = module
    spec.loader.exec_module(module)
    return module


def runs(*walls, pss=0):
    return [{"wall": w, "cpu": w, "peak_pss_kib": pss, "maxrss_kib": 0, "profile": {}} for w in walls]


def results(stage4, scale_cold, scale_warm, down, pss_gib, load):
    return {
        "machine": {"loadavg_start": [load, 0.0, 0.0]},
        "args": {"sections": ["converge", "scale"], "scales": ["32x16"]},
        "converge": {
            "floor": runs(1.0, 1.0, 1.0),
            **{f"overlay {b} {p}": runs(stage4, stage4, stage4) for b in ("udp", "vxlan") for p in ("cold", "warm")},
        },
        "scale": {
            "32x16 floor": runs(4.0),
            "32x16 cold": runs(scale_cold, pss=int(pss_gib * 1024 * 1024)),
            "32x16 warm": runs(scale_warm),
            "32x16 lab up": runs(5.0),
            "32x16 lab down": runs(down),
        },
    }


def targets(bench, **kw):
    report = bench.Report(results(**kw), smoke=False)
    report.evaluate()
    return {t["target"]: t for t in report.targets}, report


def test_every_target_of_the_issue_is_a_ratio_with_its_limit(bench):
    found, report = targets(bench, stage4=1.2, scale_cold=6.0, scale_warm=5.0, down=2.0, pss_gib=1.2, load=0.3)
    expected = {
        "stage 4 (udp), 2 nodes, cold <= 1.5x floor": 1.2,
        "stage 4 (vxlan), 2 nodes, warm <= 1.3x floor": 1.2,
        "32x16 vxlan cold <= 1.6x its floor (32-node no-op)": 1.5,
        "32x16 vxlan warm <= 1.3x its floor (32-node no-op)": 1.25,
        "lab destroy of 32 nodes holding stage 4 <= 0.7x floor": 0.5,
    }
    for name, ratio in expected.items():
        assert found[name]["ratio"] == pytest.approx(ratio), name
        assert found[name]["met"] is True, name
    assert found["32x16 vxlan cold: peak tree PSS <= 1.34 GiB"]["met"] is True
    assert report.busy() is None


def test_missed_targets_and_a_busy_machine_are_reported(bench):
    found, report = targets(bench, stage4=1.6, scale_cold=7.0, scale_warm=5.3, down=3.0, pss_gib=1.8, load=7.5)
    for name in (
        "stage 4 (udp), 2 nodes, cold <= 1.5x floor",
        "stage 4 (udp), 2 nodes, warm <= 1.3x floor",
        "32x16 vxlan cold <= 1.6x its floor (32-node no-op)",
        "32x16 vxlan warm <= 1.3x its floor (32-node no-op)",
        "lab destroy of 32 nodes holding stage 4 <= 0.7x floor",
        "32x16 vxlan cold: peak tree PSS <= 1.34 GiB",
    ):
        assert found[name]["met"] is False, name
    assert report.busy() == 7.5


def test_data_plane_targets_are_ratios_of_the_same_rounds(bench):
    path = {"retransmits": [0], "rtt_ms": [0.1], "sent": 1, "full_size_df": True, "mtu": 1472, "fragments": None}
    dp = {
        "routed (stage 3)": {**path, "gbps": [10.0, 12.0, 11.0]},
        "overlay vxlan": {**path, "gbps": [9.0, 9.6, 8.8]},  # 0.90, 0.80, 0.80
        "overlay udp": {**path, "gbps": [0.70, 0.66, 0.90], "fragments": {"FragCreates": 0, "ReasmReqds": 0}},
        bench.TALK_PATH: {**path, "gbps": [0.70, 0.60, 1.0]},  # 1.00, 1.10, 0.90
    }
    r = {"machine": {"loadavg_start": [0.2, 0, 0]}, "args": {"sections": ["dataplane"], "scales": []}, "dataplane": dp}
    report = bench.Report(r, smoke=False)
    report.evaluate()
    found = {t["target"]: t for t in report.targets}
    vx = found[f"vxlan throughput >= {bench.VXLAN_LIMIT}x routed"]
    assert vx["ratio"] == pytest.approx(0.80) and vx["met"] is False
    udp = found[f"udp throughput >= {bench.UDP_LIMIT}x the talk's socat tunnel"]
    assert udp["ratio"] == pytest.approx(1.00) and udp["met"] is True
    assert found["udp: zero underlay fragments at full-size packets"]["met"] is True
    del dp[bench.TALK_PATH]
    report = bench.Report(r, smoke=False)
    report.evaluate()
    assert any(t["target"].startswith("udp throughput ...") and t["met"] is None for t in report.targets)
