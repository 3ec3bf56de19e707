# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""System tests of the built-in lab on the real kernel: the lab module and playbooks, the nsenter
connection, the lab inventory plugin. Every test has labs of its own (unique names); the fixtures
remove them even when a test fails. State is read with nsenter/ip directly, not through the plugins."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from labtools import (
    Lab,
    alive,
    host_links,
    live_netns_cookies,
    mountpoints,
    netns_cookie,
    pids_of,
    write_inventory,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


def addresses(lab: Lab, node: str, dev: str = "eth1") -> list[str]:
    links = lab.node_json(node, ["ip", "-j", "addr", "show", "dev", dev])
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in links[0]["addr_info"] if a.get("scope") == "global")


def switch_ports(lab: Lab) -> list[str]:
    links = lab.underlay_json(["ip", "-j", "link", "show", "master", "underlay"])
    return sorted(link["ifname"] for link in links)


def read(lab: Lab, node: str, path: str) -> str:
    return lab.node_run(node, ["cat", path]).stdout.strip()


def assert_gone(lab: Lab, cookies: set[int]) -> None:
    """Nothing of the lab is left: no mounts, no files, none of its network namespaces anywhere."""
    assert lab.mounts() == []
    assert not os.path.exists(lab.dir)
    assert cookies and not cookies & live_netns_cookies()


def lab_cookies(lab: Lab) -> set[int]:
    cookies = {netns_cookie(lab.files(node)["net"]) for node in lab.nodes} | {netns_cookie(lab.underlay)}
    assert None not in cookies
    return cookies  # type: ignore[return-value]


@pytest.fixture(scope="module")
def lab(lab_module_factory: Any) -> Lab:
    """The talk's two nodes, up for the tests of this module that only read or add and remove their own."""
    made = lab_module_factory(nodes=2)
    run = made.up()
    assert run.rc == 0, run.output
    return made


# ---------------------------------------------------------------------------------- the nodes
def test_node_isolation(lab: Lab) -> None:
    expected = {"node1": "10.0.0.10/24", "node2": "10.0.0.20/24"}
    for node, address in expected.items():
        assert lab.node_run(node, ["hostname"]).stdout.strip() == node
        assert lab.node_run(node, ["ls", "/sys/class/net"]).stdout.split() == ["eth1", "lo"]
        assert lab.node_run(node, ["ip", "netns", "list"]).stdout == ""
        assert read(lab, node, "/proc/sys/net/ipv4/ip_forward") == "0"
        assert read(lab, node, "/proc/sys/net/ipv4/conf/all/rp_filter") == "1"
        assert read(lab, node, "/proc/sys/net/ipv4/conf/default/rp_filter") == "1"
        assert lab.node_run(node, ["findmnt", "-n", "-o", "FSTYPE", "/run"]).stdout.strip() == "tmpfs"
        assert lab.node_run(node, ["findmnt", "-n", "-o", "FSTYPE", "/sys"]).stdout.strip() == "sysfs"
        assert lab.node_run(node, ["findmnt", "-n", "-o", "PROPAGATION", "/"]).stdout.strip() == "private"
        lab.node_run(node, ["sh", "-c", "test -d /run/netns && test -d /run/lock"])  # fails when missing
        # Copies of other namespaces' bind mounts (other nodes', the host's /run/netns) were unmounted.
        assert lab.node_run(node, ["findmnt", "-n", "-t", "nsfs"], check=False).stdout == ""
        assert addresses(lab, node) == [address]
    assert switch_ports(lab) == ["node1", "node2"]
    ping = lab.node_run("node1", ["ping", "-c", "1", "-W", "2", "10.0.0.20"], check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr


def test_container_namespaces_are_per_node(lab: Lab) -> None:
    name = f"cnfst-con-{uuid.uuid4().hex[:6]}"
    lab.node_run("node1", ["ip", "netns", "add", name])
    try:
        assert lab.node_run("node1", ["ip", "netns", "list"]).stdout.split()[0] == name
        assert lab.node_run("node2", ["ip", "netns", "list"]).stdout == ""
        assert not os.path.exists(f"/run/netns/{name}")
        # A tun device made inside a node lands in the node's network namespace.
        lab.node_run("node2", ["ip", "tuntap", "add", "cnfsttun", "mode", "tun"])
        assert "cnfsttun" in lab.node_run("node2", ["ls", "/sys/class/net"]).stdout.split()
        assert "cnfsttun" not in lab.node_run("node1", ["ls", "/sys/class/net"]).stdout.split()
        assert not os.path.exists("/sys/class/net/cnfsttun")
    finally:
        lab.node_run("node1", ["ip", "netns", "delete", name], check=False)
        lab.node_run("node2", ["ip", "link", "delete", "cnfsttun"], check=False)


def test_host_namespace_untouched(lab_factory: Any) -> None:
    before = {link["ifname"] for link in host_links()}
    new = lab_factory(nodes=2)
    run = new.up()
    assert run.rc == 0, run.output
    after = host_links()
    assert not ({link["ifname"] for link in after} - before) & {"node1", "node2", "eth1", "underlay"}
    underlay = ipaddress.ip_network("10.0.0.0/24")
    for link in after:
        for addr in link.get("addr_info", []):
            assert ipaddress.ip_address(addr["local"]) not in underlay, link


# ---------------------------------------------------------------------------------- up and down
def test_up_and_down_are_idempotent_with_check_mode(lab_factory: Any) -> None:
    new = lab_factory(nodes=2)

    run = new.up("--check")
    assert run.rc == 0, run.output
    assert run.changed() == 1
    assert not os.path.exists(new.dir) and new.mounts() == []

    run = new.up("--diff")
    assert run.rc == 0, run.output
    assert run.changed() == 1
    assert f"node node1 of lab {new.name}" in run.output  # the diff names every part
    assert run.changed("node1") == 0 and run.changed("node2") == 0  # both pinged
    cookies = lab_cookies(new)

    for args in ((), ("--check",)):
        run = new.up(*args)
        assert run.rc == 0, run.output
        assert run.changed() == 0, run.output
    assert lab_cookies(new) == cookies  # nothing rebuilt

    run = new.down("--check")
    assert run.rc == 0, run.output
    assert run.changed() == 1
    assert lab_cookies(new) == cookies
    assert new.node_run("node1", ["hostname"]).stdout.strip() == "node1"

    run = new.down()
    assert run.rc == 0, run.output
    assert run.changed() == 1
    assert_gone(new, cookies)

    for args in ((), ("--check",)):
        run = new.down(*args)
        assert run.rc == 0, run.output
        assert run.changed() == 0


def test_down_leaves_no_residue(lab_factory: Any) -> None:
    new = lab_factory(nodes=2)
    run = new.up("--skip-tags", "ping")
    assert run.rc == 0, run.output
    tag = str(70000 + int(uuid.uuid4().hex[:4], 16))
    # A process started by a task through the connection, as a role starts a tunnel daemon.
    run = new.adhoc("node1", "ansible.builtin.shell", f"setsid -f sleep {tag}1 </dev/null >/dev/null 2>&1")
    assert run.rc == 0, run.output
    # A container namespace inside node1, with a veth to the node and a process in it.
    new.node_run(
        "node1",
        [
            "sh",
            "-ec",
            "ip netns add con && ip link add c0 type veth peer name ceth netns con && "
            f"ip -n con link set ceth up && setsid -f ip netns exec con sleep {tag}2 </dev/null >/dev/null 2>&1",
        ],
    )
    # A UDP daemon and a tun device in node2.
    new.node_run(
        "node2",
        [
            "sh",
            "-ec",
            "ip tuntap add tun0 mode tun && "
            f"setsid -f socat -u UDP-RECV:{tag[:4]} /dev/null </dev/null >/dev/null 2>&1",
        ],
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = pids_of(rf"^sleep {tag}[12]$") + pids_of(rf"^socat -u UDP-RECV:{tag[:4]} ")
        if len(pids) == 3:
            break
        time.sleep(0.05)
    assert len(pids) == 3, pids
    con_pid = pids_of(rf"^sleep {tag}2$")[0]
    cookies = lab_cookies(new) | {netns_cookie(f"/proc/{con_pid}/ns/net")}  # type: ignore[operator]
    assert None not in cookies
    # A process of the host in a mount namespace made while the lab is up: it holds copies of the lab's
    # namespace files; removing the files detaches those copies too (so they keep nothing alive), and the
    # process itself is left alone.
    bystander = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", f"{tag}3"])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not pids_of(rf"^sleep {tag}3$"):
            time.sleep(0.05)
        assert new.files("node1")["net"] in mountpoints(str(bystander.pid))

        run = new.down()
        assert run.rc == 0, run.output
        assert run.changed() == 1
        assert not [pid for pid in pids if alive(pid)]
        assert_gone(new, cookies)  # type: ignore[arg-type]
        assert bystander.poll() is None
        assert not [m for m in mountpoints(str(bystander.pid)) if m.startswith(new.dir)]
    finally:
        bystander.kill()
        bystander.wait()
    run = new.down()
    assert run.rc == 0 and run.changed() == 0, run.output


def test_ten_nodes(lab_factory: Any) -> None:
    new = lab_factory(nodes=10)
    started = time.monotonic()
    run = new.up()
    took = time.monotonic() - started
    assert run.rc == 0, run.output
    print(f"10-node lab up and pinged in {took:.1f} s")
    for i in range(1, 11):
        assert run.changed(f"node{i}") == 0  # every node answered the ping
        assert addresses(new, f"node{i}") == [f"10.0.0.{10 * i}/24"]
    assert switch_ports(new) == sorted(f"node{i}" for i in range(1, 11))
    ping = new.node_run("node10", ["ping", "-c", "1", "-W", "2", "10.0.0.10"], check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    cookies = lab_cookies(new)
    run = new.down()
    assert run.rc == 0, run.output
    assert_gone(new, cookies)


def test_resize_repair_and_what_up_keeps(lab_factory: Any) -> None:
    new = lab_factory(nodes=3)
    run = new.up("--skip-tags", "ping")
    assert run.rc == 0, run.output
    node1 = netns_cookie(new.files("node1")["net"])
    node3 = netns_cookie(new.files("node3")["net"])

    # One line changed in the lab description: node3 goes, node1 and node2 stay as they are.
    write_inventory(new.inventory, new.name, 2)
    run = new.up("--skip-tags", "ping")
    assert run.rc == 0, run.output
    assert run.changed() == 1
    assert not os.path.exists(os.path.join(new.dir, "node3"))
    assert switch_ports(new) == ["node1", "node2"]
    assert netns_cookie(new.files("node1")["net"]) == node1
    assert node3 not in live_netns_cookies()
    new.nodes = ["node1", "node2"]

    # What roles change inside a running node (sysctls) is kept; the lab's own settings are repaired.
    new.node_run("node1", ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    run = new.up("--skip-tags", "ping")
    assert run.rc == 0 and run.changed() == 0, run.output
    assert read(new, "node1", "/proc/sys/net/ipv4/ip_forward") == "1"

    new.node_run("node1", ["hostname", "renamed"])
    new.node_run("node2", ["ip", "addr", "add", "10.0.0.99/24", "dev", "eth1"])
    run = new.up("--skip-tags", "ping")
    assert run.rc == 0 and run.changed() == 1, run.output
    assert new.node_run("node1", ["hostname"]).stdout.strip() == "node1"
    assert addresses(new, "node2") == ["10.0.0.20/24"]

    # A half-built node (a namespace file unmounted behind the lab's back) is rebuilt.
    node2 = netns_cookie(new.files("node2")["net"])
    subprocess.run(["umount", new.files("node2")["uts"]], check=True)
    run = new.up()
    assert run.rc == 0 and run.changed() == 1, run.output
    assert run.changed("node2") == 0  # and reachable again
    assert new.node_run("node2", ["hostname"]).stdout.strip() == "node2"
    assert netns_cookie(new.files("node2")["net"]) != node2
    assert addresses(new, "node2") == ["10.0.0.20/24"]


# ---------------------------------------------------------------------------------- the connection
def test_connection_runs_modules_inside_the_node(lab: Lab) -> None:
    run = lab.adhoc("nodes", "ansible.builtin.command", "hostname")
    assert run.rc == 0, run.output
    assert {host: res["stdout"] for host, res in run.results.items()} == {"node1": "node1", "node2": "node2"}

    run = lab.adhoc("node1", "ansible.builtin.raw", "cat /proc/sys/kernel/hostname")
    assert run.rc == 0 and run.results["node1"]["stdout"].strip() == "node1", run.output

    name = f"cnfst-c-{uuid.uuid4().hex[:6]}"
    try:
        run = lab.adhoc("node1", "cnfs.netlab.netns", f"name={name}")
        assert run.rc == 0 and run.results["node1"]["changed"] is True, run.output
        assert lab.node_run("node1", ["ip", "netns", "list"]).stdout.split()[0] == name
        assert not os.path.exists(f"/run/netns/{name}")
        run = lab.adhoc("node1", "cnfs.netlab.netns", f"name={name}")
        assert run.rc == 0 and run.results["node1"]["changed"] is False, run.output
    finally:
        run = lab.adhoc("node1", "cnfs.netlab.netns", f"name={name} state=absent")
    assert run.rc == 0 and run.results["node1"]["changed"] is True, run.output
    assert lab.node_run("node1", ["ip", "netns", "list"]).stdout == ""


def test_connection_returns_the_rc_of_a_failing_command(lab: Lab) -> None:
    run = lab.adhoc("node2", "ansible.builtin.command", "sh -c 'echo oops >&2; exit 3'")
    assert run.rc != 0
    result = run.results["node2"]
    assert result["rc"] == 3 and result["stderr"] == "oops" and result["msg"] == "non-zero return code", result
    assert "node2 | FAILED | rc=3" in run.output
    run = lab.adhoc("node2", "ansible.builtin.raw", "exit 4")
    assert run.results["node2"]["rc"] == 4


@pytest.mark.parametrize("pipelining", ["True", "False"])
def test_connection_files_with_odd_names(lab: Lab, tmp_path: Path, pipelining: str) -> None:
    env = {"ANSIBLE_PIPELINING": pipelining}
    remote_dir = f"/run/cnfst dir {pipelining} é"
    remote_tmp = f"/run/cnfst tmp {pipelining} ü"  # put_file writes under it: spaces and non-ASCII
    remote = f"{remote_dir}/ünï côde 'file' $x.bin"
    payload = os.urandom(200_000)
    local = tmp_path / "lôcal file with spaces.bin"
    local.write_bytes(payload)
    try:
        directory = {"path": remote_dir, "state": "directory", "mode": "0750"}
        run = lab.adhoc("node1", "ansible.builtin.file", directory, env=env)
        assert run.rc == 0 and run.results["node1"]["changed"] is True, run.output
        run = lab.adhoc(
            "node1",
            "ansible.builtin.copy",
            {"src": str(local), "dest": remote, "mode": "0640"},
            "-e",
            f"ansible_remote_tmp='{remote_tmp}'",
            "-vvv",
            env=env,
        )
        assert run.rc == 0 and run.results["node1"]["changed"] is True, run.output
        # The source file is always copied in (PUT into the odd remote_tmp); the module itself only without
        # pipelining; with pipelining it is fed to python's stdin.
        assert re.search(r"PUT .* TO /run/cnfst tmp \S+ ü/ansible-tmp-[^/]+/\.source", run.output), run.output
        assert bool(re.search(r"PUT .* TO .*/AnsiballZ_copy\.py", run.output)) is (pipelining == "False")
        assert "nsenter --net=" in run.output
        node_sum = lab.node_run("node1", ["sha256sum", remote]).stdout.split()[0]
        assert node_sum == hashlib.sha256(payload).hexdigest()
        assert lab.node_run("node1", ["stat", "-c", "%a", remote]).stdout.strip() == "640"
        assert lab.node_run("node2", ["test", "-e", remote], check=False).returncode == 1  # node2 has its own /run
        assert not os.path.exists(remote_dir)  # so has the host

        run = lab.adhoc("node1", "ansible.builtin.stat", {"path": remote, "get_checksum": True}, env=env)
        stat = run.results["node1"]["stat"]
        assert stat["exists"] and stat["size"] == len(payload) and stat["mode"] == "0640", run.output

        fetched = tmp_path / "fétched copy.bin"
        run = lab.adhoc("node1", "ansible.builtin.fetch", {"src": remote, "dest": str(fetched), "flat": True}, env=env)
        assert run.rc == 0, run.output
        assert fetched.read_bytes() == payload

        run = lab.adhoc("node1", "ansible.builtin.file", {"path": remote, "state": "absent"}, env=env)
        assert run.rc == 0 and run.results["node1"]["changed"] is True, run.output
        assert lab.node_run("node1", ["test", "-e", remote], check=False).returncode == 1
    finally:
        lab.node_run("node1", ["rm", "-rf", remote_dir, remote_tmp], check=False)


def test_connection_to_a_node_that_is_not_running(tmp_path: Path) -> None:
    name = f"cnfst-never-{uuid.uuid4().hex[:6]}"
    never = Lab(name=name, inventory=write_inventory(tmp_path / "inv", name, 1), nodes=["node1"])
    run = never.adhoc("node1", "ansible.builtin.ping")
    assert run.rc != 0
    assert "UNREACHABLE" in run.output
    assert f"node1 of lab {name} is not running: run ansible-playbook -i" in run.output
    assert "playbooks/lab.yml" in run.output
