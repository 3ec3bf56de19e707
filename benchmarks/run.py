# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge-speed and data-plane benchmarks of cnfs.netlab on the built-in lab (``make bench``).

Everything is measured in one run and reported as a ratio to a baseline measured in the same run, because
the machine is shared and noisy:

1. converge   each stage playbook on 2 nodes, cold (fresh nodes) and warm (the idempotent re-run), against
              the floor (benchmarks/floor.yml: the same ansible-playbook invocation running one no-op module
              per node), the plain shell script (benchmarks/stage4.sh) and the naive playbook
              (benchmarks/naive_overlay.yml, one `command: ip` task per command and object);
2. scale      stage 4 (vxlan) on NODESxCONTAINERS labs, cold and warm, with the peak memory of the
              ansible-playbook process tree, lab up/down times, the floor and the shell script per size;
3. dataplane  iperf3 TCP throughput and ping RTT per path (bare veth pair, two containers on a bridge,
              routed across nodes, overlay udp, overlay vxlan) with the underlay's IP fragment counters.

Writes docs/performance.md, docs/img/perf-*.png and the raw numbers (benchmarks/results/latest.json).
``--smoke`` is a few-second run (2 nodes, 1 repetition, a short subset, no plots) for tests/system.

Run as root from anywhere: ``.venv/bin/python benchmarks/run.py [--smoke] [--reps N] [--sections ...]``.
Labs are named ``bench`` (``bench-smoke-<pid>`` in smoke mode) and are removed at the end, even on error.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import functools
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
RESULTS = BENCH / "results"
STATE_DIR = "/run/cnfs-netlab"
# The targets (issue #15), as ratios to the floor of the same run: one no-op task on the same nodes.
STAGE4_COLD_LIMIT, STAGE4_WARM_LIMIT = 1.5, 1.3  # stage 4 on 2 nodes
SCALE_COLD_LIMIT, SCALE_WARM_LIMIT = 1.6, 1.3  # 32 nodes x 16 containers, vxlan
LAB_DOWN_LIMIT = 0.7  # lab destroy of 32 nodes holding stage 4
PSS_LIMIT_GIB = 1.34  # peak PSS of the ansible-playbook tree, 32x16 cold
VXLAN_LIMIT = 0.85  # vxlan / routed TCP throughput
TALK_PATH = "talk's socat tunnel"
UDP_LIMIT = 1.0  # udp backend / the talk's own socat tunnel (benchmarks/stage4.sh -b talk), TCP throughput
IDLE_LOAD = 1.5  # a run that starts above this 1-minute load average is flagged: its ratios are not worth much
BIN = Path(sys.executable).parent
UNDERLAY = "10.0.0.0/24"
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def tool(name: str) -> str:
    candidate = BIN / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


# ======================================================================================= lab layout
def node_names(count: int) -> list[str]:
    return [f"node{i}" for i in range(1, count + 1)]


def address_step(count: int) -> int:
    """The talk's .10, .20 ... up to 24 nodes; beyond that consecutive addresses (.10, .11, ...)."""
    return 10 if count <= 24 else 1


def node_addresses(count: int) -> list[tuple[str, str]]:
    step = address_step(count)
    return [(name, f"10.0.0.{10 + step * i}") for i, name in enumerate(node_names(count))]


@dataclass
class Lab:
    name: str
    nodes: int
    inventory: Path

    def files(self, node: str) -> dict[str, str]:
        return {kind: f"{STATE_DIR}/{self.name}/{node}/{kind}" for kind in ("net", "mnt", "uts")}

    def node_argv(self, node: str, netns: str | None = None) -> list[str]:
        """Prefix that runs a command inside a node (and inside a container namespace of that node)."""
        f = self.files(node)
        argv = ["nsenter", f"--net={f['net']}", f"--mount={f['mnt']}", f"--uts={f['uts']}", "--"]
        if netns:
            argv += ["nsenter", f"--net=/run/netns/{netns}", "--"]
        return argv


def write_inventory(lab: str, count: int, workdir: Path) -> Lab:
    directory = workdir / "inventory" / f"{lab}-{count}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lab.yml").write_text(
        "\n".join(
            [
                "# Written by benchmarks/run.py",
                "plugin: cnfs.netlab.lab",
                f"lab: {lab}",
                f"nodes: {count}",
                f"underlay: {UNDERLAY}",
                "address_start: 10",
                f"address_step: {address_step(count)}",
            ]
        )
        + "\n"
    )
    return Lab(lab, count, directory)


def lab_ctl(action: str, lab: Lab | str, count: int = 0) -> None:
    """Build (``up``), remove (``down``) or rebuild (``reset``) a lab directly with the lab model, outside
    Ansible: the untimed resets between cold runs. A child process, so no namespace is ever entered here."""
    name = lab.name if isinstance(lab, Lab) else lab
    count = lab.nodes if isinstance(lab, Lab) else count
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--lab-ctl", action, name, str(count)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lab {action} {name} failed: {proc.stdout}{proc.stderr}")


def planner_seconds(nodes: int, containers: int, reps: int = 5) -> list[float]:
    """Wall seconds of all the controller-side planning of a stage apply and a verify, ``reps`` times."""
    sys.path.insert(0, str(REPO / ".collections"))
    from ansible_collections.cnfs.netlab.plugins.plugin_utils import _stage

    hostvars = {
        f"node{i}": {
            "node_index": i,
            "underlay_ip": f"10.0.{i // 250}.{i % 250 + 1}",
            "cnfs_netlab_container_count": containers,
            "cnfs_netlab_backend": "vxlan",
        }
        for i in range(1, nodes + 1)
    }
    names = list(hostvars)
    out = []
    for _rep in range(reps):
        # (the removal of what a node's record holds beyond its plan runs on the node, in the node module)
        start = time.perf_counter()
        plans = _stage.plan_stage("overlay", names, hostvars)
        for plan in plans.values():
            _stage.record("overlay", plan)
        out.append(time.perf_counter() - start)
    return out


def verify_seconds(nodes: int, containers: int) -> float:
    """Wall seconds of verify's Python at that size: every node's targets and the table of all results."""
    sys.path.insert(0, str(REPO / ".collections"))
    from ansible_collections.cnfs.netlab.plugins.plugin_utils import _stage, _verify

    hostvars = {
        f"node{i}": {"node_index": i, "underlay_ip": f"10.0.0.{i}", "cnfs_netlab_container_count": containers}
        for i in range(1, nodes + 1)
    }
    plans = _stage.plan_stage("overlay", list(hostvars), hostvars)
    start = time.perf_counter()
    reach = {h: {"results": [{**t, "ok": True, "rtt_ms": 0.1} for t in _verify.checks(plans, h)]} for h in plans}
    _verify.table(list(plans), plans, reach)
    return time.perf_counter() - start


def _lab_ctl_main(action: str, name: str, count: int) -> int:
    sys.path.insert(0, str(REPO / ".collections"))
    from ansible_collections.cnfs.netlab.plugins.module_utils._labnode import build_resources
    from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
    from ansible_collections.cnfs.netlab.plugins.module_utils._resource import converge

    steps = {"up": ["present"], "down": ["absent"], "reset": ["absent", "present"]}[action]
    for state in steps:
        params: dict[str, Any] = {"name": name, "state": state, "state_dir": STATE_DIR, "stop_timeout": 2}
        if state == "present":
            params["nodes"] = [{"name": n, "underlay_address": f"{a}/24"} for n, a in node_addresses(count)]
        _paths, resources, _nodes = build_resources(params)
        with CachedSession() as session:
            converge(session, resources, check_mode=False)
    return 0


# ======================================================================================= one measured run
@dataclass
class Run:
    label: str
    wall: float
    rc: int
    maxrss_kib: int  # largest single process of the tree (wait4)
    peak_pss_kib: int  # largest sum of PSS over the process tree (sampled)
    peak_rss_kib: int  # largest sum of RSS over the process tree (sampled; shared pages counted per process)
    cpu: float = 0.0  # user + system CPU seconds of the process and every descendant it reaped (wait4)
    changed: int | None = None  # sum of changed= in the recap (Ansible runs)
    profile: dict[str, Any] | None = None
    tail: str = ""


def _tree_memory(root: int) -> tuple[int, int]:
    """Sums of PSS and RSS (KiB) over ``root`` and all its descendants (by parent pid: Ansible's workers
    start sessions of their own). Daemons the run leaves behind (tunnel processes) are re-parented and drop out."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])  # state ppid ...
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    pss = rss = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
                for line in fh:
                    if line.startswith(b"Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith(b"Pss:"):
                        pss += int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
    return pss, rss


def run_measured(
    label: str, argv: list[str], env: dict[str, str] | None = None, timeout: float = 900, sample: float = 0.2
) -> Run:
    """Run ``argv`` in a new session; wall time, CPU and max RSS (wait4), sampled peak PSS/RSS of the tree."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        peak = [0, 0]
        done = threading.Event()

        def sampler() -> None:
            nonlocal peak
            while not done.is_set():
                pss, rss = _tree_memory(proc.pid)
                peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
                done.wait(sample)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.01)
        wall = time.perf_counter() - start
        done.set()
        thread.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    changed = None
    recap = re.findall(r"^\S+\s*:\s*ok=\d+\s+changed=(\d+)", text, re.M)
    if recap:
        changed = sum(int(c) for c in recap)
    cpu = usage.ru_utime + usage.ru_stime if usage else 0.0
    maxrss = int(usage.ru_maxrss) if usage else 0
    return Run(label, wall, proc.returncode, maxrss, peak[0], peak[1], cpu, changed, None, text[-3000:])


class Ansible:
    """ansible-playbook runs with the checkout's ansible.cfg and collection, profiled by our callback."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0

    def env(self, profile: Path) -> dict[str, str]:
        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
            "ANSIBLE_CALLBACK_PLUGINS": str(BENCH / "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "cnfs_bench_profile",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "CNFS_BENCH_PROFILE": str(profile),
            "CNFS_BENCH_T0": repr(time.time()),
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        }

    def playbook(self, label: str, lab: Lab, playbook: str, extra: dict[str, Any] | None = None, *args: str) -> Run:
        self.count += 1
        profile = self.workdir / "profiles" / f"{self.count:04d}.json"
        profile.parent.mkdir(parents=True, exist_ok=True)
        argv = [tool("ansible-playbook"), "-i", str(lab.inventory), str(REPO / playbook), *args]
        if extra:
            argv += ["-e", json.dumps(extra)]
        run = run_measured(label, argv, env=self.env(profile))
        if profile.exists():
            run.profile = json.loads(profile.read_text())
        if run.rc != 0:
            raise RuntimeError(f"{label}: ansible-playbook {playbook} failed (rc {run.rc}):\n{run.tail}")
        return run


def shell_stage4(label: str, lab: Lab, backend: str, containers: int) -> Run:
    argv = ["bash", str(BENCH / "stage4.sh"), "-p", "-l", lab.name, "-s", STATE_DIR, "-b", backend]
    argv += ["-c", str(containers), *[f"{n}={a}" for n, a in node_addresses(lab.nodes)]]
    run = run_measured(label, argv)
    if run.rc != 0:
        raise RuntimeError(f"{label}: stage4.sh failed (rc {run.rc}):\n{run.tail}")
    return run


# ======================================================================================= statistics
def med(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def fmt(x: float, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def spread(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return fmt(values[0], digits)
    return f"{fmt(med(values), digits)} ({fmt(min(values), digits)}-{fmt(max(values), digits)})"


def profile_split(run: Run) -> dict[str, Any]:
    """Startup (process start -> playbook start), per task time, and the end (last task -> exit)."""
    p = run.profile or {}
    t0, start, end = p.get("t0"), p.get("playbook_start"), p.get("end")
    out: dict[str, Any] = {"wall": run.wall, "startup": None, "tasks": [], "exit": None}
    if not (t0 and start and end):
        return out
    out["startup"] = start - t0
    out["exit"] = max(0.0, t0 + run.wall - end)
    for task in p.get("tasks", []):
        hosts = task.get("hosts") or {}
        per_host = [h[1] - h[0] for h in hosts.values()]
        tend = task.get("end") or task["start"]
        out["tasks"].append(
            {
                "name": task["name"],
                "action": task["action"],
                "time": max(0.0, tend - task["start"]),
                "host_median": med(per_host) if per_host else None,
                "host_max": max(per_host) if per_host else None,
                "hosts": len(hosts),
                "status": sorted({h[2] for h in hosts.values()}),
            }
        )
    return out


CONTROLLER_ACTIONS = {
    "set_fact",
    "fail",
    "assert",
    "debug",
    "validate_argument_spec",
    "include_role",
    "import_role",
    "include_tasks",
    "package",
    "meta",
}


def split_tasks(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Task time of a profile split into controller-side tasks (set_fact, fail, assert, argument validation,
    skipped ones) and modules run on the nodes."""
    out: dict[str, Any] = {"controller": 0.0, "controller_n": 0, "module": 0.0, "module_host": 0.0}
    for task in tasks:
        action = task["action"].rsplit(".", 1)[-1]
        if action in CONTROLLER_ACTIONS or task["status"] == ["skipped"]:
            out["controller"] += task["time"]
            out["controller_n"] += 1
        else:
            out["module"] += task["time"]
            out["module_host"] += task["host_median"] or 0.0
    return out


IPERF_PORT = 5201


@dataclass
class DataPath:
    """One data-plane path: the client and server namespaces (argv prefixes) and what was measured."""

    key: str
    lab: Lab | None
    client: list[str]
    server: list[str]
    address: str
    dev: str  # the client's interface (its MTU is the path's full size)
    mtu: int = 1500
    before: dict[str, dict[str, int]] = field(default_factory=dict)
    server_proc: subprocess.Popen | None = None
    gbps: list[float] = field(default_factory=list)
    retransmits: list[int] = field(default_factory=list)
    rtts: list[float] = field(default_factory=list)
    sent: int = 0
    full_size_df: bool = False
    failed: bool = False


# ======================================================================================= the benchmark
@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)
    labs: list[Lab] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ansible = Ansible(self.workdir)

    # ------------------------------------------------------------------ helpers
    def lab(self, count: int) -> Lab:
        lab = write_inventory(self.args.lab, count, self.workdir)
        self.labs.append(lab)
        return lab

    def attempt(self, what: str, measure: Callable[[], None], retries: int = 1) -> None:
        """Run one measurement (which records its results only when all of it worked). A failure is recorded
        and reported; the measurement is tried again ``retries`` times from a fresh lab, then given up, and the
        benchmark goes on with the next one."""
        for attempt in range(retries + 1):
            try:
                measure()
                return
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
                log(f"FAILED {what} (attempt {attempt + 1}): {str(exc)[:2000]}")
                final = attempt == retries
                self.results.setdefault("errors", []).append(
                    {"what": what, "attempt": attempt + 1, "final": final, "error": str(exc)}
                )

    def record(self, section: str, key: str, run: Run) -> None:
        self.results.setdefault(section, {}).setdefault(key, []).append(
            {k: v for k, v in asdict(run).items() if k not in ("tail", "profile")} | {"profile": profile_split(run)}
        )

    # ------------------------------------------------------------------ 0. the controller-side planner
    def planner(self) -> None:
        """The stage planner's Python at 32 nodes x 16 containers (no lab): the plans of every node, each node's
        lists against a recorded plan of another stage and the records; and, for information, verify's checks and
        table (its matrix grows with the square of the lab: ~600,000 rows at 32x16)."""
        seconds = planner_seconds(32, 16, reps=5)
        log(f"planner: 32x16 in {min(seconds):.3f} s (best of {len(seconds)})")
        self.results["planner"] = {"32x16": seconds, "verify 32x16": verify_seconds(32, 16)}

    # ------------------------------------------------------------------ 1. converge on 2 nodes
    def converge(self) -> None:
        smoke = self.args.smoke
        lab = self.lab(2)
        log(f"converge: lab {lab.name} with 2 nodes")
        stages = [
            ("network_namespace", "playbooks/network_namespace.yml", {}),
            ("single_node", "playbooks/single_node.yml", {}),
            ("multi_node", "playbooks/multi_node.yml", {}),
            ("overlay udp", "playbooks/overlay.yml", {"cnfs_netlab_backend": "udp"}),
            ("overlay vxlan", "playbooks/overlay.yml", {"cnfs_netlab_backend": "vxlan"}),
        ]
        naive = [
            ("naive udp", "benchmarks/naive_overlay.yml", {"naive_backend": "udp"}),
            ("naive vxlan", "benchmarks/naive_overlay.yml", {"naive_backend": "vxlan"}),
        ]
        if smoke:
            stages = [s for s in stages if s[0] == "overlay vxlan"]
            naive = []
        backends = ["vxlan"] if smoke else ["udp", "vxlan"]
        lab_ctl("reset", lab)
        for rep in range(self.args.reps):
            log(f"converge: repetition {rep + 1}/{self.args.reps}")
            for _floor in range(2):
                self.record("converge", "floor", self.ansible.playbook("floor", lab, "benchmarks/floor.yml"))
            plays = stages + (naive if rep < self.args.naive_reps else [])
            for key, playbook, extra in plays:
                self.attempt(
                    f"converge {key}, repetition {rep + 1}",
                    lambda key=key, playbook=playbook, extra=extra: self._cold_warm(
                        "converge", key, lab, lambda label: self.ansible.playbook(label, lab, playbook, extra)
                    ),
                )
            for backend in backends:
                self.attempt(
                    f"converge shell {backend}, repetition {rep + 1}",
                    lambda backend=backend: self._cold_warm(
                        "converge", f"shell {backend}", lab, lambda label: shell_stage4(label, lab, backend, 2)
                    ),
                )
        lab_ctl("down", lab)

    # ------------------------------------------------------------------ 2. scale sweep (vxlan)
    def scale(self) -> None:
        for spec in self.args.scales:
            self.attempt(f"scale {spec}", lambda spec=spec: self._scale_point(spec), retries=0)

    def _cold_warm(self, section: str, key: str, lab: Lab, measure: Callable[[str], Run], prefix: str = "") -> None:
        """On freshly built nodes: the cold run, then the warm one; recorded when both worked."""
        lab_ctl("reset", lab)
        runs = [measure(f"{prefix}{key} {phase}") for phase in ("cold", "warm")]
        for phase, run in zip(("cold", "warm"), runs, strict=True):
            self.record(section, f"{prefix}{key} {phase}", run)
            changed = "" if run.changed is None else f", changed={run.changed}"
            log(f"  {prefix}{key} {phase}: {run.wall:.2f} s, CPU {run.cpu:.2f} s{changed}")

    def _scale_point(self, spec: str) -> None:
        nodes, containers = (int(x) for x in spec.split("x"))
        key = f"{nodes}x{containers}"
        lab = self.lab(nodes)
        extra = {"cnfs_netlab_backend": "vxlan", "cnfs_netlab_container_count": containers}
        reps = self.args.scale_reps if nodes * containers <= 64 else self.args.large_reps
        log(f"scale {key}: lab up")
        lab_ctl("down", lab)
        run = self.ansible.playbook(f"lab up {key}", lab, "playbooks/lab.yml")
        self.record("scale", f"{key} lab up", run)
        for rep in range(reps):
            self.record("scale", f"{key} floor", self.ansible.playbook(f"floor {key}", lab, "benchmarks/floor.yml"))
            if rep > 0:
                lab_ctl("reset", lab)
            for phase in ("cold", "warm"):
                run = self.ansible.playbook(f"overlay vxlan {key} {phase}", lab, "playbooks/overlay.yml", extra)
                self.record("scale", f"{key} {phase}", run)
                log(f"  {key} {phase}: {run.wall:.2f} s, peak PSS {run.peak_pss_kib / 1024:.0f} MiB")
            lab_ctl("reset", lab)
            # The shell script's warm run is as slow as its cold one (it runs every command again): measured
            # up to 64 container namespaces. Above, to keep the whole benchmark near 15 minutes, only its cold
            # run, in the last repetition (it is no target), so that the lab goes down holding stage 4.
            if nodes * containers <= 64:
                phases: tuple[str, ...] = ("cold", "warm")
            else:
                phases = ("cold",) if rep == reps - 1 else ()
            for phase in phases:
                run = shell_stage4(f"shell vxlan {key} {phase}", lab, "vxlan", containers)
                self.record("scale", f"{key} shell {phase}", run)
                log(f"  {key} shell {phase}: {run.wall:.2f} s")
        # The lab goes away with stage 4 on it (built by the shell script: the same kernel objects).
        run = self.ansible.playbook(f"lab down {key}", lab, "playbooks/lab_destroy.yml")
        self.record("scale", f"{key} lab down", run)
        leftovers = os.path.exists(f"{STATE_DIR}/{lab.name}")
        self.results.setdefault("scale_clean", {})[key] = not leftovers
        log(f"  {key} lab down: {run.wall:.2f} s, cleaned up: {not leftovers}")

    # ------------------------------------------------------------------ 3. data plane
    def _snmp(self, lab: Lab, node: str) -> dict[str, int]:
        out = subprocess.run(
            [*lab.node_argv(node), "cat", "/proc/net/snmp"], capture_output=True, text=True, check=False
        )
        lines = [line.split() for line in out.stdout.splitlines() if line.startswith("Ip:")]
        if len(lines) < 2:
            return {}
        return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:], strict=False)}

    def _frag(self, lab: Lab | None, before: dict[str, dict[str, int]]) -> dict[str, int] | None:
        if lab is None:
            return None
        keys = ("FragCreates", "FragOKs", "FragFails", "ReasmReqds", "ReasmOKs")
        total = dict.fromkeys(keys, 0)
        for node, counters in before.items():
            now = self._snmp(lab, node)
            for k in keys:
                total[k] += now.get(k, 0) - counters.get(k, 0)
        return total

    def _iperf_once(self, path: DataPath) -> None:
        """One iperf3 run of ``path`` against its running server (retried while the server starts)."""
        seconds = self.args.dp_seconds
        for attempt in range(30):
            out = subprocess.run(
                [*path.client, "iperf3", "-c", path.address, "-p", str(IPERF_PORT), "-t", str(seconds), "-O", "1",
                 "-J"],
                capture_output=True,
                text=True,
                timeout=seconds + 30, check=False)  # fmt: skip
            data = json.loads(out.stdout) if out.stdout.strip().startswith("{") else {}
            if out.returncode == 0 and "sum_received" in data.get("end", {}):
                path.gbps.append(data["end"]["sum_received"]["bits_per_second"] / 1e9)
                path.retransmits.append(data["end"]["sum_sent"].get("retransmits", 0))
                return
            if attempt == 29 or (path.server_proc is not None and path.server_proc.poll() is not None):
                raise RuntimeError(
                    f"iperf3 to {path.address} failed (rc {out.returncode}): "
                    f"{data.get('error') or out.stderr or out.stdout[-500:]}"
                )
            time.sleep(0.2)

    def _ping_once(self, path: DataPath) -> None:
        count = 5 if self.args.smoke else 20
        out = subprocess.run(
            [*path.client, "ping", "-n", "-c", str(count), "-i", "0.02", "-W", "1", path.address],
            capture_output=True,
            text=True,
            check=False,
        )
        path.sent += count
        path.rtts += [float(x) for x in re.findall(r"time=([0-9.]+) ms", out.stdout)]

    def _full_size(self, path: DataPath) -> bool:
        full = subprocess.run(
            [*path.client, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", "-M", "do", "-s", str(path.mtu - 28),
             path.address],
            capture_output=True,
            text=True, check=False)  # fmt: skip
        return full.returncode == 0

    def _mtu(self, argv: list[str], dev: str) -> int:
        out = subprocess.run(
            [*argv, "ip", "-j", "link", "show", "dev", dev], capture_output=True, text=True, check=False
        )
        try:
            return int(json.loads(out.stdout)[0]["mtu"])
        except (ValueError, IndexError, KeyError):
            return 1500

    def _veth_pair(self) -> DataPath:
        a, b = f"cnfsbench-{os.getpid()}-a", f"cnfsbench-{os.getpid()}-b"
        # `ip netns add` makes /run/netns a bind mount of itself; it goes again if this made it (make test's rule).
        sys.path.insert(0, str(REPO / "tests" / "utils"))
        from tiers import NETNS_RUN_DIR, remove_rundir_made  # pylint: disable=import-outside-toplevel

        rundir_existed = NETNS_RUN_DIR.exists()

        def remove() -> None:
            for ns in (a, b):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
            remove_rundir_made(NETNS_RUN_DIR, rundir_existed)

        self.cleanups.append(remove)
        cmds = [
            ["ip", "netns", "add", a],
            ["ip", "netns", "add", b],
            ["ip", "link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vb", "netns", b],
            ["ip", "-n", a, "addr", "add", "10.255.0.1/30", "dev", "va"],
            ["ip", "-n", b, "addr", "add", "10.255.0.2/30", "dev", "vb"],
            ["ip", "-n", a, "link", "set", "va", "up"],
            ["ip", "-n", b, "link", "set", "vb", "up"],
            ["ip", "-n", a, "link", "set", "lo", "up"],
            ["ip", "-n", b, "link", "set", "lo", "up"],
        ]
        for cmd in cmds:
            subprocess.run(cmd, capture_output=True, text=True, check=True)
        return DataPath("veth pair", None, ["ip", "netns", "exec", b], ["ip", "netns", "exec", a], "10.255.0.1", "vb")

    def _stage_path(self, suffix: str, key: str, playbook: str, extra: dict[str, Any], paths: list[DataPath]) -> None:
        """A 2-node lab of its own with the stage built by its role; the path node1 con1 -> node2 con1
        (stage 2: node1 con2 -> node1 con1)."""
        lab = write_inventory(f"{self.args.lab}-{suffix}", 2, self.workdir)
        self.labs.append(lab)
        lab_ctl("reset", lab)
        self.ansible.playbook(f"build {key}", lab, playbook, extra)
        if suffix == "dp2":
            client, server, address, dev = ("node1", "con2"), ("node1", "con1"), "172.16.0.2", "veth21"
        else:
            client, server, address, dev = ("node1", "con1"), ("node2", "con1"), "172.16.1.2", "veth11"
        paths.append(DataPath(key, lab, lab.node_argv(*client), lab.node_argv(*server), address, dev))

    def _talk_path(self, paths: list[DataPath]) -> None:
        """The talk's own tunnel (benchmarks/stage4.sh -b talk: its socat command, same TUN devices and MTU as
        the udp backend) in a 2-node lab of its own; the path node1 con1 -> node2 con1."""
        lab = write_inventory(f"{self.args.lab}-dp4t", 2, self.workdir)
        self.labs.append(lab)
        lab_ctl("reset", lab)
        shell_stage4("build talk's socat tunnel", lab, "talk", 2)
        client, server = lab.node_argv("node1", "con1"), lab.node_argv("node2", "con1")
        paths.append(DataPath(TALK_PATH, lab, client, server, "172.16.1.2", "veth11"))

    def dataplane(self) -> None:
        """Every path is built first (the veth pair and one 2-node lab per stage), then measured round-robin:
        iperf3 run 1 of every path, run 2 of every path, ... so that load from elsewhere on the machine falls
        on all paths alike."""
        paths: list[DataPath] = []
        self.attempt("dataplane veth pair", lambda: paths.append(self._veth_pair()), retries=0)
        if not self.args.smoke:
            stages = [
                ("dp2", "bridge (stage 2)", "playbooks/single_node.yml", {}),
                ("dp3", "routed (stage 3)", "playbooks/multi_node.yml", {}),
                ("dp4u", "overlay udp", "playbooks/overlay.yml", {"cnfs_netlab_backend": "udp"}),
                ("dp4v", "overlay vxlan", "playbooks/overlay.yml", {"cnfs_netlab_backend": "vxlan"}),
            ]
            for suffix, key, playbook, extra in stages:
                self.attempt(
                    f"dataplane {key}: build", functools.partial(self._stage_path, suffix, key, playbook, extra, paths)
                )
            self.attempt(f"dataplane {TALK_PATH}: build", functools.partial(self._talk_path, paths))
        for path in paths:
            path.mtu = self._mtu(path.client, path.dev)
            path.before = {n: self._snmp(path.lab, n) for n in node_names(path.lab.nodes)} if path.lab else {}
            proc = subprocess.Popen(
                [*path.server, "iperf3", "-s", "-p", str(IPERF_PORT)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            path.server_proc = proc
            self.cleanups.append(functools.partial(_stop, proc))
        try:
            for run in range(self.args.dp_runs):
                log(f"dataplane: iperf3 round {run + 1}/{self.args.dp_runs}")
                # Every other round in reverse order: no path always runs right after the same other one.
                for path in [p for p in (paths if run % 2 == 0 else paths[::-1]) if not p.failed]:
                    self.attempt(f"dataplane {path.key}: iperf3", functools.partial(self._iperf_once, path), retries=0)
                    path.failed = len(path.gbps) < run + 1
            for _round in range(1 if self.args.smoke else 3):
                for path in [p for p in paths if not p.failed]:
                    self._ping_once(path)
            for path in [p for p in paths if not p.failed]:
                path.full_size_df = self._full_size(path)
        finally:
            for path in paths:
                if path.server_proc is not None:
                    _stop(path.server_proc)
        for path in [p for p in paths if not p.failed]:
            result = {
                "gbps": path.gbps,
                "retransmits": path.retransmits,
                "rtt_ms": path.rtts,
                "sent": path.sent,
                "full_size_df": path.full_size_df,
                "mtu": path.mtu,
                "fragments": self._frag(path.lab, path.before),
            }
            self.results.setdefault("dataplane", {})[path.key] = result
            log(
                f"  {path.key}: {med(path.gbps):.2f} Gbit/s, rtt {med(path.rtts):.3f} ms, mtu {path.mtu}, "
                f"full-size DF {'ok' if path.full_size_df else 'FAILED'}, fragments {result['fragments']}"
            )
        for path in paths:
            if path.lab is not None:
                with contextlib.suppress(RuntimeError):
                    lab_ctl("down", path.lab)
        for cleanup in list(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        self.cleanups.clear()

    # ------------------------------------------------------------------ all of it
    def cleanup(self) -> None:
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        self.cleanups.clear()
        for lab in {lab.name: lab for lab in self.labs}.values():
            try:
                lab_ctl("down", lab)
            except Exception as exc:  # keep going: report, the next run starts with a reset anyway
                log(f"cleanup: {exc}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process we started, by its pid: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


# ======================================================================================= machine
def _version(cmd: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "?"


def machine() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"

    def pkg(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "ansible-core": pkg("ansible-core"),
        "pyroute2": pkg("pyroute2"),
        "iperf3": _version(["iperf3", "--version"], r"iperf (\S+)"),
        "socat": _version(["socat", "-V"], r"socat version (\S+)"),
        "iproute2": _version(["ip", "-V"], r"iproute2-([0-9.]+)"),
        "forks": _forks(),
        "commit": _commit(),
        "loadavg_start": os.getloadavg(),
    }


def _commit() -> str:
    """HEAD of the checkout, and the measured files that differ from it (other engineers' work in progress)."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "plugins", "roles", "playbooks", "benchmarks"],
        capture_output=True, text=True, check=False,
    ).stdout.split("\n")  # fmt: skip
    changed = sorted({line[3:] for line in dirty if line.strip()})
    return head + (f" + uncommitted changes to {', '.join(changed)}" if changed else "") if head else "?"


def _os_name() -> str:
    with contextlib.suppress(OSError), open("/etc/os-release") as fh:
        for line in fh:
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "?"


def _forks() -> str:
    with contextlib.suppress(OSError), open(REPO / "ansible.cfg") as fh:
        for line in fh:
            match = re.match(r"\s*forks\s*=\s*(\d+)", line)
            if match:
                return match.group(1)
    return "5"


# ======================================================================================= report
def short_task(name: str) -> str:
    """``cnfs.netlab.overlay : Plan the overlay to ...`` -> ``overlay: Plan the overlay to ...`` (at most 60 chars)."""
    name = re.sub(r"^cnfs\.netlab\.(\w+) : ", r"\1: ", name)
    name = re.sub(r"Validating arguments against arg spec '(\w+)'.*", r"validate the role's arguments (\1)", name)
    return name if len(name) <= 60 else name[:57] + "..."


def round_ratio(values: list[float], base: list[float]) -> float:
    """Median of the ratios of measurements taken in the same round (next to each other in time)."""
    return med([v / b for v, b in zip(values, base, strict=False) if b]) if base else math.nan


def walls(section: dict[str, list[dict[str, Any]]], key: str) -> list[float]:
    return [r["wall"] for r in section.get(key, [])]


def cpus(section: dict[str, list[dict[str, Any]]], key: str) -> list[float]:
    return [r["cpu"] for r in section.get(key, [])]


def median_run(section: dict[str, list[dict[str, Any]]], key: str) -> dict[str, Any] | None:
    runs = sorted(section.get(key, []), key=lambda r: r["wall"])
    return runs[(len(runs) - 1) // 2] if runs else None


def mib(kib: float) -> str:
    return f"{kib / 1024:.0f}" if kib else "-"


class Report:
    def __init__(self, results: dict[str, Any], smoke: bool) -> None:
        self.r = results
        self.smoke = smoke
        self.targets: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ targets
    def target(self, name: str, measured: str, ratio: float | None, limit: float | None, met: bool | None, why: str):
        self.targets.append(
            {"target": name, "measured": measured, "ratio": ratio, "limit": limit, "met": met, "why": why}
        )

    def evaluate(self) -> None:
        self._evaluate()
        sections = self.r["args"]["sections"]
        expected = []
        if "converge" in sections:
            expected += ["stage 4 (vxlan), 2 nodes, cold"]
            if not self.smoke:
                expected += ["stage 4 (udp), 2 nodes, cold"]
        if "scale" in sections and "32x16" in self.r["args"]["scales"]:
            expected += ["32x16 vxlan cold"]
        if "dataplane" in sections and not self.smoke:
            expected += ["vxlan throughput", "udp throughput", "udp: zero underlay fragments"]
        for prefix in expected:
            if not any(t["target"].startswith(prefix) for t in self.targets):
                self.target(
                    prefix + " ...", "not measured: the measurement failed (see Failures)", None, None, None, ""
                )

    def _evaluate(self) -> None:
        planner = self.r.get("planner", {}).get("32x16")
        if planner:
            best = min(planner)
            self.target(
                "controller-side planning, 32x16 (every node's plan and record)",
                f"{best:.3f} s (best of {len(planner)}; verify's checks and table "
                f"{self.r['planner'].get('verify 32x16', float('nan')):.2f} s)",
                None,
                0.3,
                best <= 0.3,
                "",
            )
        conv = self.r.get("converge", {})
        floor = med(walls(conv, "floor"))
        for backend in ("udp", "vxlan"):
            cold = med(walls(conv, f"overlay {backend} cold"))
            warm = med(walls(conv, f"overlay {backend} warm"))
            if math.isnan(cold):
                continue
            for phase, value, limit in (("cold", cold, STAGE4_COLD_LIMIT), ("warm", warm, STAGE4_WARM_LIMIT)):
                self.target(
                    f"stage 4 ({backend}), 2 nodes, {phase} <= {limit}x floor",
                    f"{value:.2f} s vs floor {floor:.2f} s",
                    value / floor,
                    limit,
                    value / floor <= limit,
                    self._why("converge", f"overlay {backend} {phase}"),
                )
            for phase, value in (("cold", cold), ("warm", warm)):
                naive = med(walls(conv, f"naive {backend} {phase}"))
                if math.isnan(naive):
                    continue
                self.target(
                    f"stage 4 ({backend}), 2 nodes, {phase}: faster than the naive playbook",
                    f"{value:.2f} s vs naive {naive:.2f} s",
                    value / naive,
                    1.0,
                    value < naive,
                    "",
                )
        scale = self.r.get("scale", {})
        if "32x16 cold" in scale:
            cold, warm = med(walls(scale, "32x16 cold")), med(walls(scale, "32x16 warm"))
            fl = med(walls(scale, "32x16 floor"))
            for phase, value, limit in (("cold", cold, SCALE_COLD_LIMIT), ("warm", warm, SCALE_WARM_LIMIT)):
                self.target(
                    f"32x16 vxlan {phase} <= {limit}x its floor (32-node no-op)",
                    f"{value:.1f} s vs floor {fl:.1f} s",
                    value / fl,
                    limit,
                    value / fl <= limit,
                    self._why("scale", f"32x16 {phase}"),
                )
            pss = max((r["peak_pss_kib"] for r in scale["32x16 cold"]), default=0) / 1024 / 1024
            self.target(
                f"32x16 vxlan cold: peak tree PSS <= {PSS_LIMIT_GIB} GiB",
                f"{pss:.2f} GiB",
                pss / PSS_LIMIT_GIB,
                1.0,
                pss <= PSS_LIMIT_GIB,
                "",
            )
            down = med(walls(scale, "32x16 lab down"))
            if not math.isnan(down):
                self.target(
                    f"lab destroy of 32 nodes holding stage 4 <= {LAB_DOWN_LIMIT}x floor",
                    f"{down:.2f} s vs floor {fl:.1f} s (lab up {med(walls(scale, '32x16 lab up')):.1f} s)",
                    down / fl,
                    LAB_DOWN_LIMIT,
                    down / fl <= LAB_DOWN_LIMIT,
                    "",
                )
        sizes = self.scale_sizes()
        if len(sizes) >= 2:
            for phase in ("cold", "warm"):
                (n1, k1), (n2, k2) = sizes[-2], sizes[-1]
                t1, t2 = med(walls(scale, f"{n1}x{k1} {phase}")), med(walls(scale, f"{n2}x{k2} {phase}"))
                growth, size = t2 / t1, (n2 * k2) / (n1 * k1)
                slope = math.log(growth) / math.log(size)
                self.target(
                    f"{phase} time grows no faster than linearly in nodes x containers",
                    f"{n1}x{k1} -> {n2}x{k2}: size x{size:.0f}, time x{growth:.1f} (log-log slope {slope:.2f})",
                    slope,
                    1.0,
                    slope <= 1.0,
                    "",
                )
        dp = self.r.get("dataplane", {})
        # (path, the path it is measured against, limit, the target's words), each ratio from the same rounds
        for path, base, limit, words in (
            ("overlay vxlan", "routed (stage 3)", VXLAN_LIMIT, f"vxlan throughput >= {VXLAN_LIMIT}x routed"),
            ("overlay udp", TALK_PATH, UDP_LIMIT, f"udp throughput >= {UDP_LIMIT}x the talk's socat tunnel"),
        ):
            if path in dp and base in dp:
                ours, theirs = dp[path]["gbps"], dp[base]["gbps"]
                ratio = round_ratio(ours, theirs)
                self.target(
                    words,
                    f"{med(ours):.2f} vs {med(theirs):.2f} Gbit/s (median of the per-round ratios "
                    f"{', '.join(f'{a / b:.2f}' for a, b in zip(ours, theirs, strict=False))})",
                    ratio, limit, ratio >= limit, "",
                )  # fmt: skip
        if "overlay udp" in dp:
            frag = dp["overlay udp"]["fragments"] or {}
            n = frag.get("FragCreates", 0) + frag.get("ReasmReqds", 0)
            self.target(
                "udp: zero underlay fragments at full-size packets",
                f"{frag.get('FragCreates', 0)} fragments created, {frag.get('ReasmReqds', 0)} reassemblies "
                f"(MTU {dp['overlay udp']['mtu']}, full-size DF ping "
                f"{'passed' if dp['overlay udp']['full_size_df'] else 'FAILED'})",
                None,
                0,
                n == 0 and dp["overlay udp"]["full_size_df"],
                "",
            )

    def busy(self) -> float | None:
        """The 1-minute load average at the start when it was above IDLE_LOAD, else None."""
        load = self.r.get("machine", {}).get("loadavg_start", [0.0])[0]
        return load if load > IDLE_LOAD else None

    def _why(self, section: str, key: str) -> str:
        """The median run against the median floor run of the same lab: where the extra time goes."""
        data = self.r.get(section, {})
        floor_key = "floor" if section == "converge" else f"{key.split()[0]} floor"
        run, floor = median_run(data, key), median_run(data, floor_key)
        if not run or not floor or run["profile"].get("startup") is None or floor["profile"].get("startup") is None:
            return ""
        p, f = run["profile"], floor["profile"]
        parts = split_tasks(p["tasks"])
        fparts = split_tasks(f["tasks"])
        cpu = f"; CPU {run['cpu']:.1f} s vs the floor's {floor['cpu']:.1f} s ({run['cpu'] / floor['cpu']:.1f}x)"
        return (
            f"a median run of {run['wall']:.1f} s against a median floor run of {floor['wall']:.1f} s: "
            f"startup {p['startup']:.1f} s "
            f"(floor {f['startup']:.1f}) + {parts['controller_n']} controller-side tasks {parts['controller']:.1f} s "
            f"(planning, argument validation, skipped tasks; floor {fparts['controller']:.1f}) + the module on the "
            f"nodes {parts['module']:.1f} s (per node median {parts['module_host']:.2f} s; the floor's ping "
            f"{fparts['module']:.1f} s, per node {fparts['module_host']:.2f} s) + end {p['exit']:.1f} s" + cpu
        )

    def scale_sizes(self) -> list[tuple[int, int]]:
        sizes = []
        for key in self.r.get("scale", {}):
            match = re.match(r"^(\d+)x(\d+) cold$", key)
            if match:
                sizes.append((int(match.group(1)), int(match.group(2))))
        return sorted(sizes, key=lambda s: s[0] * s[1])

    # ------------------------------------------------------------------ tables
    def machine_table(self) -> list[str]:
        m = self.r["machine"]
        la0 = " ".join(f"{x:.2f}" for x in m["loadavg_start"])
        la1 = " ".join(f"{x:.2f}" for x in m.get("loadavg_end", []))
        rows = [
            ("date", m["date"]),
            ("commit", m.get("commit", "?")),
            ("duration of the run", f"{self.r.get('duration', 0) / 60:.1f} min"),
            ("nproc", m["nproc"]),
            ("cpu", m["cpu"]),
            ("memory", m["memory"]),
            ("os / kernel", f"{m['os']} / {m['kernel']}"),
            ("python", m["python"]),
            ("ansible-core", m["ansible-core"]),
            ("pyroute2", m["pyroute2"]),
            ("iproute2 / iperf3 / socat", f"{m['iproute2']} / {m['iperf3']} / {m['socat']}"),
            ("ansible forks (ansible.cfg)", m["forks"]),
            ("load average at start / end (1, 5, 15 min)", f"{la0} / {la1}"),
        ]
        return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]

    def targets_table(self) -> list[str]:
        lines = ["| target | measured | ratio | limit | met |", "|---|---|---|---|---|"]
        for t in self.targets:
            met = "n/a" if t["met"] is None else ("**met**" if t["met"] else "**NOT met**")
            ratio = "-" if t["ratio"] is None else f"{t['ratio']:.2f}"
            limit = "-" if t["limit"] is None else f"{t['limit']:g}"
            lines.append(f"| {t['target']} | {t['measured']} | {ratio} | {limit} | {met} |")
        return lines

    def converge_table(self) -> list[str]:
        conv = self.r.get("converge", {})
        floor, floor_cpu = med(walls(conv, "floor")), med(cpus(conv, "floor"))
        fl = conv.get("floor", [])
        lines = [
            "| what | cold s | cold / floor | warm s | warm / floor | CPU s cold / warm | CPU / floor's cold / warm | "
            "changed cold / warm | peak tree PSS / RSS MiB | max process RSS MiB |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| floor (benchmarks/floor.yml) | {spread(walls(conv, 'floor'))} | 1.00 | | | {fmt(floor_cpu)} | 1.00 | "
            "- | "
            f"{mib(max((r['peak_pss_kib'] for r in fl), default=0))} / "
            f"{mib(max((r.get('peak_rss_kib', 0) for r in fl), default=0))} | "
            f"{mib(max((r['maxrss_kib'] for r in fl), default=0))} |",
        ]
        names = [key[: -len(" cold")] for key in conv if key.endswith(" cold")]
        for name in names:
            cold, warm = walls(conv, f"{name} cold"), walls(conv, f"{name} warm")
            ccpu, wcpu = med(cpus(conv, f"{name} cold")), med(cpus(conv, f"{name} warm"))
            ch = [r["changed"] for r in conv[f"{name} cold"]], [r["changed"] for r in conv.get(f"{name} warm", [])]
            changed = "-" if ch[0][0] is None else f"{_uniq(ch[0])} / {_uniq(ch[1])}"
            runs = conv[f"{name} cold"] + conv.get(f"{name} warm", [])
            label = {
                "shell udp": "shell udp (benchmarks/stage4.sh)",
                "shell vxlan": "shell vxlan (benchmarks/stage4.sh)",
                "naive udp": "naive udp (benchmarks/naive_overlay.yml)",
                "naive vxlan": "naive vxlan (benchmarks/naive_overlay.yml)",
            }.get(name, f"{name} (playbooks/{name.split()[0]}.yml)")
            lines.append(
                f"| {label} | {spread(cold)} | {fmt(med(cold) / floor)} | {spread(warm)} | {fmt(med(warm) / floor)} | "
                f"{fmt(ccpu)} / {fmt(wcpu)} | {fmt(ccpu / floor_cpu)} / {fmt(wcpu / floor_cpu)} | "
                f"{changed} | {mib(max(r['peak_pss_kib'] for r in runs))} / "
                f"{mib(max(r.get('peak_rss_kib', 0) for r in runs))} | "
                f"{mib(max(r['maxrss_kib'] for r in runs))} |"
            )
        return lines

    def profile_table(self, section: str, keys: list[str]) -> list[str]:
        lines = ["| run | wall s | startup s | task: time s (per host median / max) | end s |", "|---|---|---|---|---|"]
        for key in keys:
            run = median_run(self.r.get(section, {}), key)
            if not run or run["profile"].get("startup") is None:
                continue
            p = run["profile"]
            # The 8 longest tasks (at least 0.05 s) in playbook order; the others summed.
            longest = sorted((t for t in p["tasks"] if t["time"] >= 0.05), key=lambda t: -t["time"])[:8]
            tasks = [t for t in p["tasks"] if any(t is x for x in longest)]
            cells = []
            for t in tasks:
                host = ""
                if t["host_median"] is not None and t["hosts"]:
                    host = f" ({t['host_median']:.2f} / {t['host_max']:.2f})"
                cells.append(f"{short_task(t['name'])}: {t['time']:.2f}{host}")
            rest = [t for t in p["tasks"] if not any(t is x for x in tasks)]
            if rest:
                cells.append(f"{len(rest)} more tasks: {sum(t['time'] for t in rest):.2f}")
            lines.append(f"| {key} | {run['wall']:.2f} | {p['startup']:.2f} | {'<br>'.join(cells)} | {p['exit']:.2f} |")
        return lines

    def scale_table(self) -> list[str]:
        scale = self.r.get("scale", {})
        lines = [
            "| nodes x containers | container namespaces | lab up s | floor s (CPU s) | cold s | cold / floor | "
            "warm s | warm / floor | CPU s cold / warm | shell cold / warm s | cold / shell | "
            "peak tree PSS / RSS MiB (cold) | max process RSS MiB | lab down s | cleaned up |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for n, k in self.scale_sizes():
            key = f"{n}x{k}"
            fl = med(walls(scale, f"{key} floor"))
            cold, warm = walls(scale, f"{key} cold"), walls(scale, f"{key} warm")
            sc, sw = med(walls(scale, f"{key} shell cold")), med(walls(scale, f"{key} shell warm"))
            runs = scale.get(f"{key} cold", [])
            clean = self.r.get("scale_clean", {}).get(key)
            lines.append(
                f"| {key} | {n * k} | {fmt(med(walls(scale, f'{key} lab up')))} | {fmt(fl)} "
                f"({fmt(med(cpus(scale, f'{key} floor')))}) | {spread(cold)} | "
                f"{fmt(med(cold) / fl)} | {spread(warm)} | {fmt(med(warm) / fl)} | "
                f"{fmt(med(cpus(scale, f'{key} cold')))} / {fmt(med(cpus(scale, f'{key} warm')))} | "
                f"{fmt(sc)} / {fmt(sw)} | "
                f"{fmt(med(cold) / sc, 1)} | {mib(max(r['peak_pss_kib'] for r in runs))} / "
                f"{mib(max(r.get('peak_rss_kib', 0) for r in runs))} | "
                f"{mib(max(r['maxrss_kib'] for r in runs))} | {fmt(med(walls(scale, f'{key} lab down')))} | "
                f"{'yes' if clean else 'NO' if clean is not None else '-'} |"
            )
        return lines

    def dataplane_table(self) -> list[str]:
        dp = self.r.get("dataplane", {})
        base = dp.get("veth pair", {}).get("gbps", [])
        lines = [
            "| path | MTU | TCP Gbit/s median (min-max) | / veth pair (median of per-round ratios) | retransmits | "
            "RTT ms median (min-max) | full-size DF ping | underlay fragments created / reassembled |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, d in dp.items():
            frag = d["fragments"]
            frags = "n/a (no underlay)" if frag is None else f"{frag['FragCreates']} / {frag['ReasmReqds']}"
            if key.startswith("bridge") and frag is not None:
                frags += " (node-local path)"
            rtt = d["rtt_ms"]
            lines.append(
                f"| {key} | {d['mtu']} | {spread(d['gbps'])} | {fmt(round_ratio(d['gbps'], base))} | "
                f"{_uniq(d['retransmits'])} | {spread(rtt, 3)} | {'passed' if d['full_size_df'] else 'FAILED'} | "
                f"{frags} |"
            )
        return lines

    # ------------------------------------------------------------------ the document
    def markdown(self, images: dict[str, str]) -> str:
        self.evaluate()
        a = self.r["args"]
        out: list[str] = [
            "# Performance",
            "",
            "<!-- Generated by benchmarks/run.py (make bench); do not edit by hand, run it again. -->",
            "",
            "How fast cnfs.netlab converges the talk's stages and how fast packets cross the paths they build, on",
            "the built-in lab (nodes are namespaces on this host). Every number below comes from the ONE run",
            "described here; each is also given as a ratio to a baseline measured in the same run, because the",
            "machine is shared and noisy (see the load average): compare ratios, not seconds, across runs.",
            "",
        ]
        if self.smoke:
            out += ["**Smoke run** (`--smoke`): 2 nodes, one repetition, a subset; the numbers mean nothing.", ""]
        out += ["## Machine and run", "", *self.machine_table(), ""]
        out += [
            f"Repetitions: {a['reps']} of each converge measurement (the floor twice per repetition; the naive "
            f"playbook {a['naive_reps']}), {a['scale_reps']} of each scale point up to 64 container namespaces and "
            f"{a.get('large_reps', 1)} above; medians, with min-max in brackets. iperf3: {a['dp_runs']} rounds of "
            f"{a['dp_seconds']} s (after 1 s omitted) per path.",
            "",
        ]
        errors = self.r.get("errors", [])
        if errors:
            out += [
                "## Failures",
                "",
                "Measurements that failed. A measurement is tried once more on fresh nodes; *given up* means its",
                "rows are missing below, *retried* means the second try worked and is what the tables show.",
                "",
            ]
            for e in errors:
                first = " ".join(e["error"].split())[:600]
                state = "given up" if e.get("final", True) else "retried"
                out += [f"- **{e['what']}** (attempt {e.get('attempt', 1)}, {state}): {first}"]
            out += [""]
        if self.targets:
            out += ["## Targets", ""]
            if self.busy():
                out += [
                    f"**This run started at load {self.busy():.2f} (above {IDLE_LOAD}): the machine was not idle,",
                    "so its ratios are not the idle machine's.**",
                    "",
                ]
            out += [*self.targets_table(), ""]
            missed = [t for t in self.targets if t["met"] is False and t["why"]]
            if missed:
                out += ["Where the time of the missed converge targets goes (median run):", ""]
                out += [f"- {t['target']}: {t['why']}." for t in missed]
                out += [""]
        if "converge" in self.r:
            out += [
                "## 1. Converge time on 2 nodes",
                "",
                "Wall time of one `ansible-playbook -i <2-node lab> PLAYBOOK` (or of `benchmarks/stage4.sh`), from",
                "fork to exit. **cold**: on freshly built nodes; **warm**: the same command again right after",
                "(idempotent re-run; *changed* must be 0). **floor**: `benchmarks/floor.yml`, the same invocation",
                "running one no-op module (`ansible.builtin.ping`) on every node: the cost of Ansible itself",
                "(start, inventory, one module round trip per node through the nsenter connection). The role",
                "defaults: 2 containers per node (stage 1: one). *CPU*: user + system seconds of the whole process",
                "tree (wait4), the measure least disturbed by other load. *peak tree PSS / RSS*: largest sums of",
                "the proportional and of the resident set sizes over the process tree (ansible-playbook, its",
                "workers, the modules), sampled every 0.2 s: RSS counts pages shared by forked workers once per",
                "process (an upper bound), PSS splits them (a lower bound); *max process RSS*: the largest",
                "single process (wait4).",
                "",
                *self.converge_table(),
                "",
                "Where the time goes (the median run of each; from the `cnfs_bench_profile` callback in",
                "`benchmarks/callback_plugins`: *startup* is fork to playbook start, *end* is the last task's",
                "end to exit; per task the 8 longest, the others summed):",
                "",
                *self.profile_table(
                    "converge",
                    [
                        "floor",
                        "overlay udp cold",
                        "overlay udp warm",
                        "overlay vxlan cold",
                        "overlay vxlan warm",
                        "naive vxlan cold",
                    ],
                ),
                "",
            ]
            if "converge" in images:
                out += [f"![converge time as multiples of the floor]({images['converge']})", ""]
        if "scale" in self.r:
            out += [
                "## 2. Scale: stage 4 (vxlan), nodes x containers per node",
                "",
                "`playbooks/overlay.yml -e cnfs_netlab_backend=vxlan -e cnfs_netlab_container_count=K` on an N-node "
                "lab",
                "(inventory plugin `cnfs.netlab.lab`, `nodes: N`). *floor* is `benchmarks/floor.yml` on the same N",
                "nodes; *shell* is `benchmarks/stage4.sh -p` (nodes in parallel). *lab up* / *lab down* are",
                "`playbooks/lab.yml` and `playbooks/lab_destroy.yml` (the latter with stage 4 on the nodes, built",
                "by the shell script); *cleaned up*: nothing of the lab left under /run/cnfs-netlab.",
                "",
                *self.scale_table(),
                "",
                "Where the time goes at the largest size:",
                "",
                *self.profile_table(
                    "scale",
                    [f"{n}x{k} {p}" for n, k in self.scale_sizes()[-1:] for p in ("floor", "cold", "warm")]
                    + [f"{n}x{k} lab up" for n, k in self.scale_sizes()[-1:]]
                    + [f"{n}x{k} lab down" for n, k in self.scale_sizes()[-1:]],
                ),
                "",
            ]
            if "scale" in images:
                out += [f"![converge time against nodes x containers]({images['scale']})", ""]
        if "dataplane" in self.r:
            out += [
                "## 3. Data plane",
                "",
                "iperf3 TCP (one stream) from a client to a server namespace, and ping RTT (20 echoes, 3 times).",
                "*veth pair*: two namespaces joined by one veth pair, nothing else (the limit). *bridge*: node1",
                "con2 -> con1 over br0 (stage 2). *routed*, *overlay udp*, *overlay vxlan*: node1 con1 -> node2",
                "con1 (stages 3 and 4). Each stage is built by its role, with the defaults, in a 2-node lab of its",
                "own. *talk's socat tunnel*: the same path over the talk's own tunnel (`benchmarks/stage4.sh -b",
                "talk`: its socat command, a connected UDP socket with socat's defaults, on the TUN devices and MTU",
                "of the udp backend), the reference of the udp backend's target. All paths exist at once and are",
                "measured round-robin (iperf3 run 1 of every path, then run 2, ...), so that load from elsewhere",
                "falls on all of them alike. *MTU*: the client interface's.",
                "*full-size DF ping*: an echo of exactly that MTU with don't-fragment set. *fragments*: the",
                "difference of `Ip: FragCreates` / `ReasmReqds` of /proc/net/snmp, summed over both nodes'",
                "namespaces, across the iperf3 and ping runs. The iperf3 servers are started and stopped by pid.",
                "",
                *self.dataplane_table(),
                "",
            ]
            if "dataplane" in images:
                out += [f"![throughput and RTT per path]({images['dataplane']})", ""]
        out += [
            "## Reproduce",
            "",
            "```",
            "make bench                                   # everything, about 15 minutes; rewrites this file",
            ".venv/bin/python benchmarks/run.py --smoke --out /tmp/perf.md   # a quick check that it works",
            ".venv/bin/python benchmarks/run.py --sections dataplane --out /tmp/dp.md --img-dir /tmp",
            "```",
            "",
            "Raw numbers of this run (every repetition, every task's timing): `benchmarks/results/latest.json`",
            "(not committed).",
            "",
        ]
        return "\n".join(out)

    # ------------------------------------------------------------------ plots
    def plots(self, img_dir: Path, rel: Path) -> dict[str, str]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        img_dir.mkdir(parents=True, exist_ok=True)
        made: dict[str, str] = {}
        conv = self.r.get("converge", {})
        if conv:
            floor = med(walls(conv, "floor"))
            names = [k[: -len(" cold")] for k in conv if k.endswith(" cold")]
            fig, ax = plt.subplots(figsize=(10, 4.5))
            xs = range(len(names))
            cold = [med(walls(conv, f"{n} cold")) / floor for n in names]
            warm = [med(walls(conv, f"{n} warm")) / floor for n in names]
            ax.bar([x - 0.2 for x in xs], cold, 0.4, label="cold")
            ax.bar([x + 0.2 for x in xs], warm, 0.4, label="warm")
            ax.axhline(1.0, color="black", lw=1, label="floor (one no-op module per node)")
            ax.axhline(
                STAGE4_COLD_LIMIT,
                color="tab:red",
                ls="--",
                lw=1,
                label=f"target: stage 4 cold <= {STAGE4_COLD_LIMIT}x floor",
            )
            ax.axhline(
                STAGE4_WARM_LIMIT,
                color="tab:purple",
                ls=":",
                lw=1,
                label=f"target: stage 4 warm <= {STAGE4_WARM_LIMIT}x floor",
            )
            ax.set_yscale("log")
            ax.set_xticks(list(xs), [n.replace(" ", "\n") for n in names], fontsize=8)
            ax.set_ylabel(f"wall time / floor ({floor:.2f} s)")
            ax.set_title("Converge time on 2 nodes, as multiples of the floor measured in the same run")
            ax.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(img_dir / "perf-converge.png", dpi=110)
            plt.close(fig)
            made["converge"] = str(rel / "perf-converge.png")
        sizes = self.scale_sizes()
        scale = self.r.get("scale", {})
        if sizes:
            fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
            x = [n * k for n, k in sizes]
            labels = [f"{n}x{k}" for n, k in sizes]
            for key, label, style in (
                ("cold", "stage 4 vxlan cold", "o-"),
                ("warm", "stage 4 vxlan warm", "s-"),
                ("floor", "floor (one no-op module per node)", "^--"),
                ("shell cold", "stage4.sh cold", "v:"),
            ):
                ax.plot(x, [med(walls(scale, f"{lb} {key}")) for lb in labels], style, label=label)
            ref = med(walls(scale, f"{labels[0]} cold"))
            ax.plot(x, [ref * v / x[0] for v in x], color="grey", lw=0.8, label="linear from the smallest (cold)")
            fl32 = med(walls(scale, "32x16 floor"))
            if not math.isnan(fl32):
                for phase, limit, color, ls in (
                    ("cold", SCALE_COLD_LIMIT, "tab:red", "--"),
                    ("warm", SCALE_WARM_LIMIT, "tab:purple", ":"),
                ):
                    ax.axhline(limit * fl32, color=color, ls=ls, lw=1, label=f"target 32x16 {phase} {limit}x floor")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(x, [f"{lb}\n({v})" for lb, v in zip(labels, x, strict=True)], fontsize=8)
            ax.set_xlabel("nodes x containers per node (container namespaces)")
            ax.set_ylabel("wall time, s")
            ax.set_title("Converge time against lab size")
            ax.legend(fontsize=7)
            for key, field_, label, style in (
                ("cold", "peak_rss_kib", "stage 4 cold: peak RSS sum of the tree", "o-"),
                ("cold", "peak_pss_kib", "stage 4 cold: peak PSS sum of the tree", "o--"),
                ("cold", "maxrss_kib", "stage 4 cold: largest process (max RSS)", "o:"),
                ("floor", "peak_rss_kib", "floor: peak RSS sum of the tree", "^-"),
                ("floor", "peak_pss_kib", "floor: peak PSS sum of the tree", "^--"),
            ):
                values = [max(r.get(field_, 0) for r in scale[f"{lb} {key}"]) / 1024 for lb in labels]
                ax2.plot(x, values, style, label=label)
            ax2.set_ylim(bottom=0)
            ax2.set_xscale("log")
            ax2.set_xticks(x, labels, fontsize=8)
            ax2.set_ylabel("MiB")
            ax2.set_title("Peak memory of ansible-playbook and its children")
            ax2.legend(fontsize=7)
            fig.tight_layout()
            fig.savefig(img_dir / "perf-scale.png", dpi=110)
            plt.close(fig)
            made["scale"] = str(rel / "perf-scale.png")
        dp = self.r.get("dataplane", {})
        if dp:
            names = list(dp)
            fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
            gb = [med(dp[n]["gbps"]) for n in names]
            ax.bar(names, gb)
            for i, n in enumerate(names):
                ax.errorbar(
                    i,
                    gb[i],
                    yerr=[[gb[i] - min(dp[n]["gbps"])], [max(dp[n]["gbps"]) - gb[i]]],
                    color="black",
                    capsize=3,
                )
            ax.set_ylabel("TCP throughput, Gbit/s (median, min-max)")
            ax.set_title("iperf3, one stream")
            ax.tick_params(axis="x", labelsize=7, rotation=20)
            ax2.bar(names, [med(dp[n]["rtt_ms"]) * 1000 for n in names], color="tab:orange")
            ax2.set_ylabel("ping RTT, microseconds (median)")
            ax2.set_title("ping")
            ax2.tick_params(axis="x", labelsize=7, rotation=20)
            fig.tight_layout()
            fig.savefig(img_dir / "perf-dataplane.png", dpi=110)
            plt.close(fig)
            made["dataplane"] = str(rel / "perf-dataplane.png")
        return made


def _uniq(values: list[Any]) -> str:
    seen = sorted(set(values), key=lambda v: (v is None, v))
    return ", ".join("-" if v is None else str(v) for v in seen)


# ======================================================================================= main
def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n", maxsplit=1)[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--smoke", action="store_true", help="a few seconds: 2 nodes, 1 repetition, a subset, no plots")
    p.add_argument("--sections", default="planner,converge,scale,dataplane", help="comma-separated subset to run")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each converge measurement")
    p.add_argument("--naive-reps", type=int, default=1, help="repetitions of the naive playbook (slow)")
    p.add_argument("--scale-reps", type=int, default=1, help="repetitions of scale points up to 64 containers")
    p.add_argument(
        "--large-reps",
        type=int,
        default=3,
        help="repetitions of scale points above 64 containers (32x16: its cold and warm times are targets)",
    )
    p.add_argument("--scales", default="2x2,8x8,32x16", help="NODESxCONTAINERS, comma-separated")
    p.add_argument("--dp-runs", type=int, default=5, help="iperf3 runs (rounds) per path")
    p.add_argument("--dp-seconds", type=int, default=3, help="seconds per iperf3 run")
    p.add_argument("--lab", default=None, help="lab name (default bench, bench-smoke-<pid> with --smoke)")
    p.add_argument("--out", type=Path, default=None, help="markdown report (default docs/performance.md)")
    p.add_argument("--img-dir", type=Path, default=None, help="plots (default docs/img)")
    p.add_argument("--results", type=Path, default=RESULTS, help="raw results and profiles")
    p.add_argument("--from-json", type=Path, help="only write the report (and plots) again from saved raw results")
    p.add_argument("--lab-ctl", nargs=3, metavar=("ACTION", "LAB", "NODES"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.smoke:
        args.reps, args.naive_reps, args.scale_reps, args.large_reps, args.dp_runs, args.dp_seconds = 1, 0, 1, 1, 1, 2
        if args.sections == p.get_default("sections"):
            args.sections = "planner,converge,dataplane"
        args.lab = args.lab or f"bench-smoke-{os.getpid()}"
        args.out = args.out or args.results / "smoke" / "performance.md"
    args.lab = args.lab or "bench"
    args.out = args.out or REPO / "docs" / "performance.md"
    args.img_dir = args.img_dir or REPO / "docs" / "img"
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    args.scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    unknown = set(args.sections) - {"planner", "converge", "scale", "dataplane"}
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}: use planner, converge, scale, dataplane")
    for spec in args.scales:
        if not re.fullmatch(r"\d+x\d+", spec):
            p.error(f"scale {spec!r} must look like 8x8 (nodes x containers per node)")
    return args


@contextlib.contextmanager
def exclusive(results: Path, lab: str) -> Iterator[None]:
    """One benchmark per lab name at a time (a second `make bench` would reset the first one's lab)."""
    results.mkdir(parents=True, exist_ok=True)
    with open(results / f".{lab}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another benchmark is running with lab {lab} (lock {results}/.{lab}.lock)") from None
        yield


def write_report(results: dict[str, Any], args: argparse.Namespace, smoke: bool) -> Report:
    report = Report(results, smoke)
    images: dict[str, str] = {}
    if not smoke:
        rel = Path(os.path.relpath(args.img_dir, args.out.parent))
        images = report.plots(args.img_dir, rel)
    text = report.markdown(images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return report


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.lab_ctl:
        action, name, count = args.lab_ctl
        return _lab_ctl_main(action, name, int(count))
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        saved.pop("targets", None)
        write_report(saved, args, args.smoke)
        return 0
    if os.geteuid() != 0:
        raise SystemExit("the benchmarks build labs of namespaces: run them as root")
    for needed in ("iperf3", "socat", "nsenter", "ip", "ping"):
        if shutil.which(needed) is None:
            raise SystemExit(f"{needed} is not installed: run make setup (it installs the OS packages)")

    # SIGTERM (a CI timeout) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    with exclusive(args.results, args.lab):
        workdir = Path(tempfile.mkdtemp(prefix=f"cnfs-bench-{args.lab}-"))
        bench = Bench(args, workdir)
        bench.results = {"machine": machine(), "args": {k: v for k, v in vars(args).items() if k != "lab_ctl"}}
        bench.results["args"] = json.loads(json.dumps(bench.results["args"], default=str))
        try:
            for section in ("planner", "converge", "scale", "dataplane"):
                if section in args.sections:
                    getattr(bench, section)()
        finally:
            bench.cleanup()
            shutil.rmtree(workdir, ignore_errors=True)
        bench.results["machine"]["loadavg_end"] = os.getloadavg()
        bench.results["duration"] = time.monotonic() - started

    report = write_report(bench.results, args, args.smoke)
    raw = args.results / ("smoke.json" if args.smoke else "latest.json")
    raw.write_text(json.dumps(bench.results | {"targets": report.targets}, indent=1, default=str))
    log(f"wrote {args.out} and {raw} in {(time.monotonic() - started) / 60:.1f} min")
    if report.busy():
        log(f"this run started at load {report.busy():.2f}, above {IDLE_LOAD}: not an idle machine, ratios unreliable")
    for t in report.targets:
        state = "not measured" if t["met"] is None else "met" if t["met"] else "NOT met"
        ratio = f" ({t['ratio']:.2f}x, limit {t['limit']})" if t["ratio"] is not None and t["limit"] else ""
        log(f"target {state}: {t['target']}: {t['measured']}{ratio}")
    given_up = [e for e in bench.results.get("errors", []) if e.get("final", True)]
    for e in bench.results.get("errors", []):
        log(f"FAILED: {e['what']} (attempt {e.get('attempt', 1)}{', given up' if e in given_up else ', retried'})")
    return 1 if given_up else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
