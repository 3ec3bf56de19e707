# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node apply the kernel refuses midway puts back what it changed (issue 14); snapshots before and after."""

from __future__ import annotations

import subprocess

import pytest
from kernel import Namespaces, links, run_node, snapshot, sysctl

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError


def state(a: str, b: str, journal: str, **bad: object) -> dict[str, object]:
    return {
        "bridges": [{"name": "br0", "netns": a, "mtu": 1400, "stp": True}],
        "veths": [{"name": "v0", "netns": a, "peer": "eth0", "peer_netns": b, "bridge": "br0"}],
        "addresses": [{"dev": "eth0", "netns": b, "addresses": ["10.60.0.2/24", "fd00:60::2/64"]}],
        "routes": [{"dest": "10.61.0.0/16", "gateway": "10.60.0.1", "netns": b, "metric": 5, "table": "100"}],
        "sysctls": [
            {"name": "net.ipv4.ip_forward", "netns": b, "value": "1", "journal": journal},
            {
                "name": "net.ipv4.ip_local_port_range",
                "netns": b,
                "value": bad.get("ports", "32768 60999"),
                "journal": journal,
            },
        ],
        "links": [{"name": "lo", "netns": a, "mtu": bad.get("lo_mtu", 65536)}],
    }


def test_a_sysctl_value_the_kernel_rejects_rolls_back_the_whole_run(ns: Namespaces, journal: str) -> None:
    a, b = ns.make(2)
    subprocess.run(["ip", "-n", b, "link", "add", "keep0", "mtu", "1300", "type", "veth", "peer", "keep1"], check=True)
    before = snapshot([a, b])
    with pytest.raises(NetlabError) as err:
        run_node(**state(a, b, journal, ports="60000 50000"))
    message = str(err.value)
    assert "sysctl net.ipv4.ip_local_port_range in netns" in message and "EINVAL" in message
    assert "rolled back: " in message
    for key in (f"bridge br0 in netns {a}", f"veth v0 in netns {a}", f"address eth0 in netns {b}"):
        assert key in message
    assert f"sysctl net.ipv4.ip_forward in netns {b}" in message
    assert snapshot([a, b]) == before
    assert sysctl(b, "net.ipv4.ip_forward") == "0"
    assert links(b)["keep0"]["mtu"] == 1300


def test_new_namespaces_of_a_refused_run_are_removed(ns: Namespaces, journal: str) -> None:
    a, b = ns.name(), ns.name()
    params = state(a, b, journal, ports="60000 50000")
    params["links"] = []  # lo of a namespace the run creates is not known before the run
    with pytest.raises(NetlabError, match=rf"rolled back: .*netns {b}, netns {a}"):
        run_node(namespaces=[a, b], **params)
    assert snapshot([a, b]) == {a: None, b: None}


def test_an_mtu_above_the_device_maximum_rolls_back(ns: Namespaces, journal: str) -> None:
    """A veth end created by the same run: the check cannot read its maximum (65535) yet, the kernel refuses."""
    a, b = ns.make(2)
    params = state(a, b, journal)
    params["links"] = [{"name": "eth0", "netns": b, "mtu": 70000}]
    before = snapshot([a, b])
    with pytest.raises(NetlabError, match=r"link eth0 in netns .*: the kernel refused mtu 70000 .*rolled back: "):
        run_node(**params)
    assert snapshot([a, b]) == before


def test_rollback_false_leaves_what_the_run_did(ns: Namespaces, journal: str) -> None:
    a, b = ns.make(2)
    with pytest.raises(NetlabError) as err:
        run_node(rollback=False, **state(a, b, journal, ports="60000 50000"))
    assert "rolled back" not in str(err.value)
    assert links(a)["br0"]["mtu"] == 1400
    assert sysctl(b, "net.ipv4.ip_forward") == "1"
