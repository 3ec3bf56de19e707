# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""System tests of the talk's four stages on the built-in lab, on the real kernel.

Each stage's playbook is applied to a lab of its own (2 nodes; stages 3 and 4 also on 3 nodes), then:
applied again (changed=0), applied in check mode (changed=0), checked with playbooks/verify.yml (every check
PASSED, and exactly as many checks as the stage's matrix has), its kernel state read directly with nsenter/ip,
and torn down with playbooks/teardown.yml, after which every node is exactly as before: links, addresses,
routes, named namespaces, sysctls and processes compared with a snapshot taken before the stage.
A last test breaks a route behind Ansible's back and shows that verify FAILS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from labtools import Lab, Run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

STAGES = ["network_namespace", "single_node", "multi_node", "overlay"]
CONTAINERS = {
    "network_namespace": ["con1", "con2"],
    "single_node": ["con1", "con2"],
    "multi_node": ["con1", "con2"],
    "overlay": ["con1", "con2"],
}
SYSCTLS = [
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/rp_filter",
    "net/ipv4/conf/default/rp_filter",
    "net/ipv4/conf/eth1/rp_filter",
]


def expected_checks(stage: str, nodes: int, containers: int, dont_fragment: bool) -> int:
    """The size of the stage's matrix, counted independently of the verify role."""
    n, c = nodes, containers
    if stage == "network_namespace":  # node -> other nodes, own containers; container -> own node
        per_node = (n - 1) + c + c
    elif stage == "single_node":  # node -> other nodes, bridge, containers; container -> node, bridge, others
        per_node = (n - 1) + 1 + c + c * (1 + 1 + c - 1)
    else:  # node -> other nodes, every bridge and container; container -> every node, bridge, other container
        per_node = (n - 1) + n + n * c + c * (n + n + n * c - 1)
        if dont_fragment:  # container -> every container on the other nodes, full size, DF
            per_node += c * (n - 1) * c
    return n * per_node


# ---------------------------------------------------------------------------------- kernel state
def snapshot(lab: Lab) -> dict[str, Any]:
    """Everything a stage may change on the nodes, read with nsenter + ip, not through the collection."""
    state: dict[str, Any] = {}
    for node in lab.nodes:
        links = [
            (
                link["ifname"],
                link.get("link_type"),
                link.get("mtu"),
                sorted(link.get("flags", [])),
                link.get("master"),
                link.get("linkinfo", {}).get("info_kind"),
            )
            for link in lab.node_json(node, ["ip", "-j", "-d", "link", "show"])
        ]
        addresses = sorted(
            (link["ifname"], f"{a['local']}/{a['prefixlen']}")
            for link in lab.node_json(node, ["ip", "-j", "addr", "show"])
            for a in link.get("addr_info", [])
            # IPv6 link-local addresses come and go with the kernel's DAD on a fresh node, not with a stage
            if not (a.get("family") == "inet6" and a.get("scope") == "link")
        )
        routes = sorted(
            json.dumps({k: v for k, v in route.items() if k not in ("expires", "cacheinfo")}, sort_keys=True)
            for family in ("-4", "-6")
            for route in lab.node_json(node, ["ip", family, "-j", "route", "show", "table", "all"])
            if not (family == "-6" and route.get("protocol") == "kernel" and route.get("dev") == "eth1")
        )
        namespaces = netns_names(lab, node)
        sysctls = {key: lab.node_run(node, ["cat", f"/proc/sys/{key}"]).stdout.strip() for key in SYSCTLS}
        state[node] = {
            "links": links,
            "addresses": addresses,
            "routes": routes,
            "namespaces": namespaces,
            "sysctls": sysctls,
            "processes": node_processes(lab, node),
        }
    return state


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every node as it was, naming what differs."""
    diff = {
        f"{node} {key}": {"before": before[node][key], "after": after[node][key]}
        for node in before
        for key in before[node]
        if before[node][key] != after[node][key]
    }
    assert not diff, json.dumps(diff, indent=1, default=str)


def node_processes(lab: Lab, node: str) -> list[str]:
    """Command lines of the processes running in the node's network namespace or in a namespace inside it."""
    node_ns = os.stat(lab.files(node)["net"]).st_ino
    inner = set()
    for name in netns_names(lab, node):
        out = lab.node_run(node, ["stat", "-L", "-c", "%i", f"/run/netns/{name}"], check=False)
        if out.returncode == 0:
            inner.add(int(out.stdout))
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            ino = os.stat(f"/proc/{pid}/ns/net").st_ino
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if (ino == node_ns or ino in inner) and cmd and not cmd.startswith(("nsenter ", "ip ", "stat ", "cat ")):
            found.append(cmd)
    return sorted(found)


def netns_names(lab: Lab, node: str) -> list[str]:
    """Names under the node's /run/netns (`ip netns list` prints "con1 (id: 0)")."""
    return sorted(line.split()[0] for line in lab.node_run(node, ["ip", "netns", "list"]).stdout.splitlines() if line)


def routes(lab: Lab, node: str, netns: str | None = None) -> list[dict[str, Any]]:
    return lab.node_json(node, ["ip", *(["-n", netns] if netns else []), "-4", "-j", "route", "show"])


def addrs(lab: Lab, node: str, netns: str) -> dict[str, list[str]]:
    out = lab.node_json(node, ["ip", "-n", netns, "-4", "-j", "addr", "show"])
    return {link["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]] for link in out}


def link(lab: Lab, node: str, name: str, netns: str | None = None) -> dict[str, Any]:
    return lab.node_json(node, ["ip", *(["-n", netns] if netns else []), "-j", "-d", "link", "show", name])[0]


def sysctl(lab: Lab, node: str, key: str) -> str:
    return lab.node_run(node, ["cat", f"/proc/sys/{key.replace('.', '/')}"]).stdout.strip()


# ---------------------------------------------------------------------------------- helpers
def run_ok(run: Run) -> Run:
    assert run.rc == 0, run.output
    return run


def assert_no_change(lab: Lab, run: Run) -> None:
    run_ok(run)
    for node in lab.nodes:
        assert run.changed(node) == 0, run.output


def verify_total(run: Run) -> tuple[int, int, int]:
    match = re.search(r"TOTAL +stage (\w+), (\d+) checks, (\d+) PASSED, (\d+) FAILED", run.output)
    assert match, run.output
    return int(match.group(2)), int(match.group(3)), int(match.group(4))


def extra(**variables: Any) -> list[str]:
    return ["-e", json.dumps(variables)] if variables else []


def assert_stage_kernel_state(lab: Lab, stage: str, backend: str) -> None:
    """The talk's addresses and routes, read from the kernel."""
    n = len(lab.nodes)
    for i, node in enumerate(lab.nodes, start=1):
        namespaces = netns_names(lab, node)
        assert sorted(namespaces) == sorted(CONTAINERS[stage]), namespaces
        subnet = f"172.16.{i - 1}"
        node_ip = f"10.0.0.{10 * i}"
        if stage == "network_namespace":
            assert addrs(lab, node, "con1")["veth11"] == [f"{subnet}.1/32"]
            assert addrs(lab, node, "con2")["veth21"] == [f"{subnet}.2/32"]
            node_routes = routes(lab, node)
            assert any(r["dst"] == f"{subnet}.1" and r["dev"] == "veth10" for r in node_routes), node_routes
            con_routes = routes(lab, node, "con1")
            assert any(r["dst"] == "default" and r.get("gateway") == node_ip for r in con_routes), con_routes
            continue
        assert addrs(lab, node, "con1")["veth11"] == [f"{subnet}.2/24"]
        assert addrs(lab, node, "con2")["veth21"] == [f"{subnet}.3/24"]
        br0 = lab.node_json(node, ["ip", "-4", "-j", "addr", "show", "dev", "br0"])[0]
        assert [f"{a['local']}/{a['prefixlen']}" for a in br0["addr_info"]] == [f"{subnet}.1/24"]
        assert link(lab, node, "veth10")["master"] == "br0"
        for con in ("con1", "con2"):
            assert any(r["dst"] == "default" and r.get("gateway") == f"{subnet}.1" for r in routes(lab, node, con))
        node_routes = routes(lab, node)
        others = [(f"172.16.{j - 1}.0/24", f"10.0.0.{10 * j}") for j in range(1, n + 1) if j != i]
        if stage == "single_node":
            assert sysctl(lab, node, "net.ipv4.ip_forward") == "0"
            continue
        assert sysctl(lab, node, "net.ipv4.ip_forward") == "1"
        if stage == "multi_node":
            for dst, gateway in others:
                assert any(r["dst"] == dst and r.get("gateway") == gateway for r in node_routes), node_routes
            continue
        # overlay: no route to a container subnet over the underlay; the overlay devices carry them
        assert not any(r.get("gateway", "").startswith("10.0.0.") for r in node_routes), node_routes
        assert sysctl(lab, node, "net.ipv4.conf.all.rp_filter") == "2"
        mtu = 1472 if backend == "udp" else 1450
        assert link(lab, node, "veth11", "con1")["mtu"] == mtu
        for j, (dst, _gateway) in enumerate(others):
            peer = [lab.nodes[k] for k in range(n) if k != i - 1][j]
            dev = f"tun-{peer}" if backend == "udp" else "vxlan0"
            assert any(r["dst"] == dst and r["dev"] == dev for r in node_routes), node_routes
            assert link(lab, node, dev)["mtu"] == mtu
        if backend == "udp":
            tunnels = [p for p in node_processes(lab, node) if " cnfs-netlab-tunnel tun-" in p]
            devs = sorted(t.split(" cnfs-netlab-tunnel ")[1].split()[0] for t in tunnels)
            assert devs == sorted(f"tun-{p}" for p in lab.nodes if p != node), tunnels


def cycle(lab: Lab, stage: str, **variables: Any) -> None:
    """Apply, re-apply, check mode, verify, kernel state, teardown, compare."""
    backend = variables.get("cnfs_netlab_backend", "udp")
    # An unusual value the overlay stage changes: teardown must restore THIS value, not a default.
    lab.node_run(lab.nodes[-1], ["sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/all/rp_filter"])
    before = snapshot(lab)
    try:
        first = run_ok(lab.playbook(f"playbooks/{stage}.yml", *extra(**variables)))
        # one task changes each node: the node task, which also writes the record (no extra tasks per node)
        assert all(first.changed(node) == 1 for node in lab.nodes), first.output
        assert_no_change(lab, lab.playbook(f"playbooks/{stage}.yml", *extra(**variables)))
        assert_no_change(lab, lab.playbook(f"playbooks/{stage}.yml", "--check", "--diff", *extra(**variables)))
        check = run_ok(lab.playbook("playbooks/verify.yml"))
        total, passed, failed = verify_total(check)
        want = expected_checks(stage, len(lab.nodes), len(CONTAINERS[stage]), stage == "overlay")
        assert (total, passed, failed) == (want, want, 0), check.output
        assert f"TOTAL   stage {stage}," in check.output  # the stage recorded on the nodes, not told
        assert_stage_kernel_state(lab, stage, backend)
    finally:
        down = lab.playbook("playbooks/teardown.yml")
    run_ok(down)
    assert_same(before, snapshot(lab))
    assert_no_change(lab, lab.playbook("playbooks/teardown.yml"))


# ---------------------------------------------------------------------------------- labs
@pytest.fixture(scope="module")
def lab2(lab_module_factory: Any) -> Iterator[Lab]:
    lab = lab_module_factory(nodes=2)
    run_ok(lab.up())
    yield lab


@pytest.fixture(scope="module")
def lab3(lab_module_factory: Any) -> Iterator[Lab]:
    lab = lab_module_factory(nodes=3)
    run_ok(lab.up())
    yield lab


# ---------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("stage", STAGES)
def test_stage_on_two_nodes(lab2: Lab, stage: str) -> None:
    cycle(lab2, stage)


def test_overlay_vxlan_on_two_nodes(lab2: Lab) -> None:
    cycle(lab2, "overlay", cnfs_netlab_backend="vxlan")


@pytest.mark.parametrize("stage", ["multi_node", "overlay"])
def test_stage_on_three_nodes(lab3: Lab, stage: str) -> None:
    cycle(lab3, stage)


def test_verify_fails_when_a_route_is_deleted(lab2: Lab) -> None:
    """The verifier can fail: a route deleted behind Ansible's back shows as FAILED rows and fails the play."""
    try:
        run_ok(lab2.playbook("playbooks/multi_node.yml"))
        lab2.node_run("node1", ["ip", "route", "del", "172.16.1.0/24"])
        broken = lab2.playbook("playbooks/verify.yml")
        assert broken.rc != 0, broken.output
        total, passed, failed = verify_total(broken)
        assert failed > 0 and passed + failed == total == expected_checks("multi_node", 2, 2, False)
        assert re.search(r"FAILED +node1 con1 +-> +node2 con1 +172\.16\.1\.2", broken.output), broken.output
        assert re.search(r"PASSED +node1 con1 +-> +node1 con2 +172\.16\.0\.3", broken.output), broken.output
        assert "checks FAILED (see the table above)" in broken.output
        # The next converge repairs it (one change, on node1 only) and verify passes again.
        repair = run_ok(lab2.playbook("playbooks/multi_node.yml"))
        assert (repair.changed("node1"), repair.changed("node2")) == (1, 0), repair.output  # the record is the same
        assert verify_total(run_ok(lab2.playbook("playbooks/verify.yml")))[2] == 0
    finally:
        run_ok(lab2.playbook("playbooks/teardown.yml"))


def start_server(lab: Lab, node: str, con: str, port: int) -> subprocess.Popen:
    """The talk's `python3 -m http.server` in a container of a node; the caller stops it by its pid."""
    f = lab.files(node)
    argv = ["nsenter", f"--net={f['net']}", f"--mount={f['mnt']}", "--", "ip", "netns", "exec", con]
    proc = subprocess.Popen(
        [*argv, sys.executable, "-m", "http.server", str(port), "--bind", "0.0.0.0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/tmp",
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        listening = lab.node_run(node, ["ip", "netns", "exec", con, "ss", "-ltnH", f"sport = :{port}"], check=False)
        if listening.stdout.strip():
            return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"http.server did not listen in {node} {con}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def test_verify_tcp_checks(lab2: Lab) -> None:
    """verify_tcp_port adds a TCP connect to every container checked; a stopped server makes verify fail."""
    servers: dict[tuple[str, str], subprocess.Popen] = {}
    try:
        run_ok(lab2.playbook("playbooks/single_node.yml"))
        for node in lab2.nodes:
            for con in ("con1", "con2"):
                servers[node, con] = start_server(lab2, node, con, 8000)
        tcp = extra(verify_tcp_port=8000)
        good = run_ok(lab2.playbook("playbooks/verify.yml", *tcp))
        # single_node, 2 nodes x 2 containers: 20 echo checks + one TCP check per container target (8)
        assert verify_total(good) == (28, 28, 0), good.output
        assert re.search(r"PASSED +node1 con1 +-> +node1 con2 tcp/8000 +172\.16\.0\.3", good.output), good.output
        stop(servers["node1", "con2"])
        bad = lab2.playbook("playbooks/verify.yml", *tcp)
        assert bad.rc != 0
        assert verify_total(bad) == (28, 26, 2), bad.output
        assert re.search(r"FAILED +node1 con1 +-> +node1 con2 tcp/8000 +172\.16\.0\.3 +.*ECONNREFUSED", bad.output)
        assert re.search(r"FAILED +node1 +-> +node1 con2 tcp/8000 ", bad.output), bad.output
    finally:
        for proc in servers.values():
            stop(proc)
        run_ok(lab2.playbook("playbooks/teardown.yml"))


def test_wireguard_backend_fails_clearly_and_changes_nothing(lab2: Lab) -> None:
    before = snapshot(lab2)
    run = lab2.playbook("playbooks/overlay.yml", *extra(cnfs_netlab_backend="wireguard"))
    assert run.rc != 0
    assert "wireguard" in run.output.lower() and "FAILED!" in run.output
    assert_same(before, snapshot(lab2))


def test_verify_without_a_stage_says_what_to_do(lab2: Lab) -> None:
    run = lab2.playbook("playbooks/verify.yml")
    assert run.rc != 0
    assert "holds no applied stage" in run.output and "checks FAILED" in run.output
