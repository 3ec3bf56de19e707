# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""netlink_info's pure logic: options, kernel-made addresses, veth peers across namespaces, the node view."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._info import (
    finish_links,
    is_kernel_address,
    node_view,
    requested_netns,
    resolve_peers,
    sysctl_path,
    table_id,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import parse_name


def link(
    index: int,
    name: str,
    kind: str = "veth",
    link_index: int | None = None,
    nsid: int | None = None,
    master: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out = {
        "index": index,
        "name": name,
        "kind": kind,
        "mtu": 1500,
        "up": True,
        "_master": master,
        "_link": link_index,
        "_nsid": nsid,
    }
    out.update(extra)
    return out


# ------------------------------------------------------------------ options
def test_sysctl_paths() -> None:
    assert sysctl_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    assert sysctl_path("net/ipv4/conf/eth0.1/rp_filter") == "/proc/sys/net/ipv4/conf/eth0.1/rp_filter"
    # the sysctl module's rules (one parser, _sysctl.parse_name): '/' inside a dotted component is a '.'
    assert sysctl_path("net.ipv4.conf.eth0/100.rp_filter") == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"
    assert parse_name("net.ipv4.conf.eth0/100.rp_filter")[1] == "net/ipv4/conf/eth0.100/rp_filter"
    for bad in ("kernel.hostname", "net", "net..x", "net/../../etc", "netfilter.x", "", " "):
        with pytest.raises(NetlabError, match="not a per-namespace sysctl"):
            sysctl_path(bad)


def test_tables() -> None:
    assert table_id("main") == 254
    assert table_id("100") == 100
    assert table_id(7) == 7
    with pytest.raises(NetlabError, match="route_tables: table 'nope' is not known"):
        table_id("nope")


def test_requested_netns_keeps_order_and_drops_duplicates() -> None:
    assert requested_netns(["b", "", "a", "b"]) == ["b", "", "a"]
    with pytest.raises(NetlabError, match="is not a legal namespace name"):
        requested_netns(["a/b"])


@pytest.mark.parametrize(
    ("dev", "cidr", "flags", "kernel"),
    [
        ("lo", "127.0.0.1/8", 0x80, True),
        ("lo", "::1/128", 0x80, True),
        ("lo", "10.9.9.9/32", 0x80, False),  # an address given to lo by the user
        ("eth0", "fe80::1/64", 0x80, True),
        ("eth0", "fd00::10/64", 0x00, True),  # autoconfigured: not permanent
        ("eth0", "fd00::10/64", 0x80, False),
        ("eth0", "10.0.0.1/24", 0x00, False),
    ],
)
def test_kernel_addresses(dev: str, cidr: str, flags: int, kernel: bool) -> None:
    assert is_kernel_address(dev, cidr, flags) is kernel


# ------------------------------------------------------------------ links
def test_finish_links_names_masters_and_ports() -> None:
    links = [link(3, "br0", "bridge", stp=False), link(4, "v1", master=3), link(5, "v2", master=3), link(6, "v3")]
    finish_links(links)
    assert links[0]["ports"] == ["v1", "v2"]
    assert links[1]["master"] == "br0"
    assert links[3]["master"] == ""


def test_resolve_peers_in_the_same_namespace() -> None:
    links = {"a": [link(4, "p0", link_index=5), link(5, "p1", link_index=4)]}
    resolve_peers(links, lambda ns, nsid, other: False)
    assert (links["a"][0]["peer"], links["a"][0]["peer_netns"]) == ("p1", "a")


def test_resolve_peers_across_namespaces_with_the_same_indexes() -> None:
    # Two pairs whose ends have the same indexes: only the namespace ids tell them apart.
    links = {
        "": [link(7, "veth-a", link_index=2, nsid=0), link(8, "veth-b", link_index=2, nsid=1)],
        "a": [link(2, "eth0", link_index=7, nsid=0)],
        "b": [link(2, "eth0", link_index=8, nsid=0)],
    }
    nsids = {("", "a"): 0, ("", "b"): 1, ("a", ""): 0, ("b", ""): 0}
    resolve_peers(links, lambda ns, nsid, other: nsids.get((ns, other)) == nsid)
    assert (links[""][0]["peer"], links[""][0]["peer_netns"]) == ("eth0", "a")
    assert (links[""][1]["peer"], links[""][1]["peer_netns"]) == ("eth0", "b")
    assert (links["a"][0]["peer"], links["a"][0]["peer_netns"]) == ("veth-a", None)  # None: the module's own
    assert (links["b"][0]["peer"], links["b"][0]["peer_netns"]) == ("veth-b", None)


def test_resolve_peers_outside_the_report() -> None:
    links = {"a": [link(2, "eth0", link_index=9, nsid=3)]}
    resolve_peers(links, lambda *_: False, lambda ns, veth: ("host", "veth9") if veth["_nsid"] == 3 else None)
    assert (links["a"][0]["peer"], links["a"][0]["peer_netns"]) == ("veth9", "host")
    links = {"a": [link(2, "eth0", link_index=9, nsid=3)]}
    resolve_peers(links, lambda *_: False)
    assert links["a"][0]["peer"] is None


# ------------------------------------------------------------------ the node view
def facts_link(name: str, netns: str | None, kind: str, **extra: Any) -> dict[str, Any]:
    out = {"name": name, "netns": netns, "kind": kind, "mtu": 1500, "up": True, "master": ""}
    out.update(extra)
    return out


def sample() -> dict[str, Any]:
    return {
        "": {
            "links": [
                facts_link("lo", None, "loopback", mtu=65536),
                facts_link("br0", None, "bridge", stp=False, ports=["veth-c1"]),
                facts_link("veth-c1", None, "veth", master="br0", peer="eth0", peer_netns="c1"),
                facts_link("vx0", None, "vxlan"),
                facts_link("eth9", None, "device"),
            ],
            "addresses": [
                {"netns": None, "dev": "br0", "addresses": ["10.0.0.1/24"]},
                {"netns": None, "dev": "vx0", "addresses": ["10.1.0.0/32"]},
                {"netns": None, "dev": "eth9", "addresses": ["192.168.9.9/24"]},
            ],
            "routes": [
                {"netns": None, "dest": "10.2.0.0/24", "dev": "vx0", "gateway": "10.1.0.1"},
                {"netns": None, "dest": "10.3.0.0/24", "dev": None, "type": "blackhole"},
                {"netns": None, "dest": "10.4.0.0/24", "dev": "br0", "nexthops": [{}, {}]},
            ],
            "sysctls": {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": None},
        },
        "c1": {
            "links": [
                facts_link("lo", "c1", "loopback", mtu=65536),
                facts_link("eth0", "c1", "veth", peer="veth-c1", peer_netns=None, mtu=1450),
                facts_link("p0", "c1", "veth", peer="p1", peer_netns="c1"),
                facts_link("p1", "c1", "veth", peer="p0", peer_netns="c1", up=False),
                facts_link("orphan", "c1", "veth", peer="x", peer_netns="c9"),
            ],
            "addresses": [{"netns": "c1", "dev": "eth0", "addresses": ["10.0.0.10/24"]}],
            "routes": [{"netns": "c1", "dest": "default", "dev": "eth0", "gateway": "10.0.0.1"}],
        },
    }


def test_node_view_namespaces_bridges_and_each_pair_once() -> None:
    view = node_view(sample())
    assert view["namespaces"] == ["c1"]
    assert view["bridges"] == [{"name": "br0", "netns": None, "mtu": 1500, "stp": False, "up": True}]
    assert view["veths"] == [
        # named from the end in the module's own namespace; the ends' MTUs differ: set per end below
        {
            "name": "veth-c1",
            "netns": None,
            "peer": "eth0",
            "peer_netns": "c1",
            "mtu": None,
            "up": True,
            "bridge": "br0",
        },
        {"name": "p0", "netns": "c1", "peer": "p1", "peer_netns": "c1", "mtu": 1500, "up": True, "bridge": ""},
    ]
    assert view["links"] == [
        {"name": "veth-c1", "netns": None, "up": None, "mtu": 1500, "master": None},
        {"name": "eth0", "netns": "c1", "up": None, "mtu": 1450, "master": None},
        {"name": "p1", "netns": "c1", "up": False, "mtu": None, "master": None},
    ]


def test_node_view_leaves_out_what_node_cannot_create() -> None:
    view = node_view(sample())
    assert [a["dev"] for a in view["addresses"]] == ["br0", "eth0"]
    assert [r["dest"] for r in view["routes"]] == ["10.3.0.0/24", "default"]
    assert view["sysctls"] == [{"name": "net.ipv4.ip_forward", "value": "1", "netns": None}]
    assert all(v["name"] != "orphan" for v in view["veths"])


def test_node_view_of_nothing() -> None:
    assert node_view({}) == {
        key: [] for key in ("namespaces", "bridges", "veths", "links", "addresses", "routes", "sysctls")
    }
