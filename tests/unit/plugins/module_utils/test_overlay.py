# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the overlay model: validation, defaults, VTEP derivation, socat command lines, desired state.

The kernel side (devices, processes, FDB, routes) is tested on the real kernel by the integration target
tests/integration/targets/overlay_module.
"""

from __future__ import annotations

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils import _overlay
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, Session
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import (
    OverlayResource,
    normalise,
    parse_socat_argv,
    socat_argv,
    state_dir,
    vtep_address,
    vtep_mac,
)

PEERS = [
    {"name": "node1", "address": "10.0.0.1", "subnet": "172.16.1.0/24"},
    {"name": "node2", "address": "10.0.0.2", "subnet": "172.16.2.0/24"},
    {"name": "node3", "address": "10.0.0.3", "subnet": "172.16.3.0/24"},
]


def spec(**kw):
    base = {"local": "10.0.0.1", "subnet": "172.16.1.0/24", "peers": PEERS}
    base.update(kw)
    return base


# ----------------------------------------------------------------------- derivations
def test_vtep_mac_is_locally_administered_unicast_and_carries_the_address():
    mac = vtep_mac("10.0.0.2")
    assert mac == "02:cf:0a:00:00:02"
    first = int(mac[:2], 16)
    assert first & 0x02 and not first & 0x01
    assert vtep_mac("192.168.255.1") == "02:cf:c0:a8:ff:01"


def test_vtep_address_is_the_network_address_of_the_subnet():
    assert vtep_address("172.16.2.0/24") == "172.16.2.0"
    assert vtep_address("10.244.8.0/21") == "10.244.8.0"


def test_state_dir_separates_namespaces_and_paths():
    assert state_dir(None) == "/run/cnfs-netlab/overlay"
    assert state_dir("node1") == "/run/cnfs-netlab/overlay/node1"
    assert state_dir("/proc/42/ns/net") == "/run/cnfs-netlab/overlay/proc_42_ns_net"


def test_socat_command_uses_an_unconnected_shared_socket_and_no_packet_info():
    argv = socat_argv("/usr/bin/socat", "tun-node2", "10.0.0.1", "10.0.0.2", 9000)
    assert "UDP4-DATAGRAM:10.0.0.2:9000,bind=10.0.0.1:9000,reuseport" in argv
    assert "TUN,tun-name=tun-node2,tun-type=tun,iff-no-pi" in argv
    assert parse_socat_argv(argv, "tun-node2") == {"remote": "10.0.0.2", "local": "10.0.0.1", "port": 9000}


def test_parse_socat_rejects_other_processes_and_other_devices():
    argv = socat_argv("/usr/bin/socat", "tun-node2", "10.0.0.1", "10.0.0.2", 9000)
    assert parse_socat_argv(argv, "tun-node3") is None
    assert parse_socat_argv(["/usr/bin/sleep", *argv[1:]], "tun-node2") is None
    assert parse_socat_argv([], "tun-node2") is None


# ------------------------------------------------------------------------ normalise
def test_defaults_per_backend():
    udp = normalise(spec())
    assert (udp["backend"], udp["name"], udp["port"], udp["mtu"]) == ("udp", "tun", 9000, None)
    vx = normalise(spec(backend="vxlan"))
    assert (vx["name"], vx["port"], vx["vni"]) == ("vxlan0", 4789, 1)
    assert normalise(spec(backend="wireguard"))["name"] == "wg0"


def test_own_entry_is_skipped_and_peers_sorted():
    cfg = normalise(spec(peers=list(reversed(PEERS))))
    assert [p["name"] for p in cfg["peers"]] == ["node2", "node3"]


def test_absent_needs_neither_local_nor_subnet():
    cfg = normalise({"state": "absent", "backend": "vxlan"})
    assert cfg["peers"] == [] and cfg["local"] is None


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"backend": "gre"}, "backend 'gre' is unknown"),
        ({"local": None}, "local (this node's underlay address) is required"),
        ({"subnet": None}, "subnet (this node's container subnet) is required"),
        ({"local": "fd00::1"}, "local 'fd00::1' is not an IPv4 address"),
        ({"subnet": "172.16.1.0"}, "subnet '172.16.1.0' has no prefix length"),
        ({"subnet": "172.16.1.0/33"}, "subnet '172.16.1.0/33' is not an IPv4 network"),
        ({"subnet": "172.16.1.1/24"}, "subnet '172.16.1.1/24' is not an IPv4 network"),
        ({"subnet": "172.16.1.0/31"}, "is too small for containers"),
        ({"port": 0}, "port 0 is out of range: use 1..65535"),
        ({"port": "x"}, "port 'x' is not a number"),
        ({"mtu": 67}, "mtu 67 is out of range: use 68..65535"),
        ({"vni": 5}, "vni applies to backend vxlan only"),
        ({"backend": "vxlan", "vni": 2**24}, "vni 16777216 is out of range"),
        ({"name": "tun-a"}, "drop the '-'"),
        ({"backend": "vxlan", "name": "a" * 16}, "is 16 bytes long; Linux allows at most 15"),
        ({"underlay_dev": "eth 0"}, "underlay_dev name 'eth 0' is illegal"),
        ({"peers": "node2"}, "peers must be a list"),
        ({"peers": [{"name": "n2", "address": "10.0.0.2"}]}, "peers[1] lacks subnet"),
        ({"peers": [{"name": "n2", "address": "10.0.0.2", "subnet": "172.16.2.0/24", "x": 1}]}, "unknown keys x"),
        (
            {"peers": [{"name": "n1", "address": "10.0.0.1", "subnet": "172.16.9.0/24"}]},
            "has this node's address 10.0.0.1 but subnet 172.16.9.0/24",
        ),
        (
            {"peers": [PEERS[1], {"name": "node2", "address": "10.0.0.9", "subnet": "172.16.9.0/24"}]},
            "peer 'node2' is listed twice",
        ),
        (
            {"peers": [PEERS[1], {"name": "node9", "address": "10.0.0.2", "subnet": "172.16.9.0/24"}]},
            "address 10.0.0.2 is used by another peer",
        ),
        (
            {"peers": [PEERS[1], {"name": "node9", "address": "10.0.0.9", "subnet": "172.16.2.128/25"}]},
            "subnet 172.16.2.128/25 overlaps 172.16.2.0/24 of peer 'node2'",
        ),
        (
            {"peers": [{"name": "averyverylongname", "address": "10.0.0.9", "subnet": "172.16.9.0/24"}]},
            "tunnel device name 'tun-averyverylongname' is 21 bytes long",
        ),
    ],
)
def test_bad_input_is_named(kw, message):
    with pytest.raises(NetlabError) as err:
        normalise(spec(**kw))
    assert message in str(err.value)


def test_long_peer_names_are_fine_for_vxlan():
    peers = [{"name": "averyverylongname", "address": "10.0.0.9", "subnet": "172.16.9.0/24"}]
    assert normalise(spec(backend="vxlan", peers=peers))["peers"][0]["name"] == "averyverylongname"


# ----------------------------------------------------------------------------- want
def test_want_udp_one_tunnel_per_peer():
    res = OverlayResource(spec(netns="node1"))
    res._mtu = 1472
    want = res.want(None)
    assert want["backend"] == "udp"
    assert sorted(want["tunnels"]) == ["tun-node2", "tun-node3"]
    tunnel = want["tunnels"]["tun-node2"]
    assert tunnel == {
        "peer": "node2",
        "remote": "10.0.0.2",
        "local": "10.0.0.1",
        "port": 9000,
        "mtu": 1472,
        "up": True,
        "addresses": ["172.16.1.0/32"],
        "routes": ["172.16.2.0/24"],
        "ipv6": "disabled",
        "rp_filter": 2,
        "process": "running",
    }


def test_want_udp_without_peers_is_nothing():
    res = OverlayResource(spec(peers=[PEERS[0]]))
    assert res.want(None) is None


def test_want_vxlan_like_flannel():
    res = OverlayResource(spec(backend="vxlan", vni=7, port=8472))
    res._mtu = 1450
    want = res.want(None)
    assert (want["vni"], want["port"], want["learning"], want["mac"]) == (7, 8472, False, "02:cf:0a:00:00:01")
    assert want["addresses"] == ["172.16.1.0/32"]
    assert want["fdb"] == {"02:cf:0a:00:00:02": "10.0.0.2", "02:cf:0a:00:00:03": "10.0.0.3"}
    assert want["neighbours"] == {"172.16.2.0": "02:cf:0a:00:00:02", "172.16.3.0": "02:cf:0a:00:00:03"}
    assert want["routes"] == {"172.16.2.0/24": "172.16.2.0", "172.16.3.0/24": "172.16.3.0"}
    assert want["underlay_dev"] is None


def test_want_vxlan_keeps_the_bound_underlay_device_when_not_given():
    res = OverlayResource(spec(backend="vxlan"))
    assert res.want({"underlay_dev": "eth1"})["underlay_dev"] == "eth1"
    assert OverlayResource(spec(backend="vxlan", underlay_dev="eth0")).want({"underlay_dev": "eth1"})[
        "underlay_dev"
    ] == ("eth0")


@pytest.mark.parametrize("backend", ["udp", "vxlan", "wireguard"])
def test_want_absent_is_none(backend):
    assert OverlayResource({"backend": backend, "state": "absent"}).want({"backend": backend}) is None


def test_key_names_backend_device_and_namespace():
    assert OverlayResource(spec(netns="node1")).key == "overlay udp tun in netns node1"
    assert OverlayResource(spec(backend="vxlan")).key == "overlay vxlan vxlan0"


# ------------------------------------------------------------------- check (no kernel change)
def test_check_reports_missing_socat(monkeypatch):
    monkeypatch.setattr(_overlay, "_find_socat", lambda: None)
    res = OverlayResource(spec())
    with Session() as session, pytest.raises(NetlabError) as err:
        res.check(session)
    assert "socat is not installed on node" in str(err.value)
    assert "apt-get install socat" in str(err.value)


def test_check_wireguard_fails_clearly_whatever_the_kernel():
    res = OverlayResource(spec(backend="wireguard"))
    with Session() as session, pytest.raises(NetlabError) as err:
        res.check(session)
    text = str(err.value)
    if _overlay.wireguard_supported():
        assert "not implemented in this release" in text
    else:
        assert "has no WireGuard support" in text
        assert "CONFIG_WIREGUARD" in text
