# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the overlay model: validation, defaults, VTEP derivation, backend selection, desired state.

The kernel side (devices, processes, FDB, routes) is tested on the real kernel by the integration target
tests/integration/targets/overlay_module.
"""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils import _overlay, _overlay_wireguard
from ansible_collections.cnfs.netlab.plugins.module_utils._args import OVERLAY_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import state_dir, vtep_address, vtep_mac
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_backends import (
    BACKEND_CLASSES,
    normalise,
    select_backend,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_udp import UdpOverlay
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_vxlan import VxlanOverlay
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_wireguard import NEW_KEY, WireguardOverlay
from ansible_collections.cnfs.netlab.plugins.module_utils._wireguard import encode_key, public_key, write_key_file

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


# ------------------------------------------------------------------------ normalise
def test_defaults_per_backend():
    udp = normalise(spec())
    assert (udp["backend"], udp["name"], udp["port"], udp["mtu"]) == ("udp", "tun", 9000, None)
    vx = normalise(spec(backend="vxlan"))
    assert (vx["name"], vx["port"], vx["vni"]) == ("vxlan0", 4789, 1)
    assert normalise(spec(backend="wireguard", peers=[]))["name"] == "wg0"


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
    peers = [PEERS[0], {"name": "averyverylongname", "address": "10.0.0.9", "subnet": "172.16.9.0/24"}]
    assert normalise(spec(backend="vxlan", peers=peers))["peers"][0]["name"] == "averyverylongname"


def test_peers_without_this_node_are_refused():
    """A list of the others only most likely means a wrong local: refused, naming local (issue 14)."""
    with pytest.raises(NetlabError, match=r"peers has no entry of this node \(none with address 10\.0\.0\.1"):
        normalise(spec(peers=PEERS[1:]))
    assert normalise(spec(peers=[]))["peers"] == []


# ----------------------------------------------------------------------------- want
def test_want_udp_one_tunnel_per_peer():
    res = select_backend(spec(netns="node1"))
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
    res = select_backend(spec(peers=[PEERS[0]]))
    assert res.want(None) is None


def test_want_vxlan_like_flannel():
    res = select_backend(spec(backend="vxlan", vni=7, port=8472))
    res._mtu = 1450
    want = res.want(None)
    assert (want["vni"], want["port"], want["learning"], want["mac"]) == (7, 8472, False, "02:cf:0a:00:00:01")
    assert want["addresses"] == ["172.16.1.0/32"]
    assert want["fdb"] == {"02:cf:0a:00:00:02": "10.0.0.2", "02:cf:0a:00:00:03": "10.0.0.3"}
    assert want["neighbours"] == {"172.16.2.0": "02:cf:0a:00:00:02", "172.16.3.0": "02:cf:0a:00:00:03"}
    assert want["routes"] == {"172.16.2.0/24": "172.16.2.0", "172.16.3.0/24": "172.16.3.0"}
    assert want["underlay_dev"] is None


def test_want_vxlan_keeps_the_bound_underlay_device_when_not_given():
    res = select_backend(spec(backend="vxlan"))
    assert res.want({"underlay_dev": "eth1"})["underlay_dev"] == "eth1"
    assert select_backend(spec(backend="vxlan", underlay_dev="eth0")).want({"underlay_dev": "eth1"})[
        "underlay_dev"
    ] == ("eth0")


@pytest.mark.parametrize("backend", ["udp", "vxlan", "wireguard"])
def test_want_absent_is_none(backend):
    assert select_backend({"backend": backend, "state": "absent"}).want({"backend": backend}) is None


def test_key_names_backend_device_and_namespace():
    assert select_backend(spec(netns="node1")).key == "overlay udp tun in netns node1"
    assert select_backend(spec(backend="vxlan")).key == "overlay vxlan vxlan0"


# ------------------------------------------------------------------- check (no kernel change)
def test_check_needs_no_socat(monkeypatch):
    """The udp backend's tunnel process is the node's own Python: no program has to be on PATH."""
    monkeypatch.setenv("PATH", "/nonexistent")
    res = select_backend(spec())
    with CachedSession() as session:
        res.check(session)


@pytest.mark.parametrize("state", ["present", "key"])
def test_check_wireguard_without_kernel_support_fails_clearly(monkeypatch, tmp_path, state):
    monkeypatch.setattr(_overlay_wireguard, "wireguard_supported", lambda: False)
    key_file = tmp_path / "wg0.key"
    res = select_backend(wg_spec(state=state, key_file=str(key_file)))
    with CachedSession() as session, pytest.raises(NetlabError) as err:
        res.check(session)
    text = str(err.value)
    assert text.startswith("overlay wireguard wg0: the kernel of node ")
    assert "has no WireGuard support" in text and "CONFIG_WIREGUARD" in text
    assert not key_file.exists()  # no key is made on a node that cannot use it


def test_check_wireguard_on_this_kernel_matches_its_support(tmp_path):
    """The real probe: this machine's kernel has no WireGuard; the Vagrant VMs' kernel has it."""
    res = select_backend(wg_spec(state="key", key_file=str(tmp_path / "wg0.key")))
    with CachedSession() as session:
        if _overlay_wireguard.wireguard_supported():
            res.check(session)
        else:
            with pytest.raises(NetlabError, match="has no WireGuard support"):
                res.check(session)
    assert not (tmp_path / "wg0.key").exists()


def test_check_wireguard_absent_needs_no_kernel_support(monkeypatch):
    monkeypatch.setattr(_overlay_wireguard, "wireguard_supported", lambda: False)
    with CachedSession() as session:
        select_backend({"backend": "wireguard", "state": "absent"}).check(session)


def test_check_wireguard_refuses_a_peer_with_this_nodes_own_key(monkeypatch, tmp_path):
    monkeypatch.setattr(_overlay_wireguard, "wireguard_supported", lambda: True)
    key_file = str(tmp_path / "wg0.key")
    write_key_file(key_file, b"\x01" * 32)
    own = encode_key(public_key(b"\x01" * 32))
    peers = [dict(WG_PEERS[0]), dict(WG_PEERS[1], public_key=own), WG_PEERS[2]]
    res = select_backend(wg_spec(key_file=key_file, peers=peers))
    with CachedSession() as session, pytest.raises(NetlabError) as err:
        res.check(session)
    assert f"peer 'node2' has this node's own public key {own}" in str(err.value)
    assert "need a key_file of their own" in str(err.value)


def test_check_wireguard_refuses_a_key_file_without_a_key(monkeypatch, tmp_path):
    monkeypatch.setattr(_overlay_wireguard, "wireguard_supported", lambda: True)
    key_file = tmp_path / "wg0.key"
    key_file.write_text("garbage\n")
    with CachedSession() as session, pytest.raises(NetlabError) as err:
        select_backend(wg_spec(state="key", key_file=str(key_file))).check(session)
    assert f"key_file {key_file} does not hold a WireGuard private key" in str(err.value)
    assert key_file.read_text() == "garbage\n"


# ------------------------------------------------------------------------------ wireguard
KEYS = [encode_key(public_key(bytes([n]) * 32)) for n in (1, 2, 3)]
WG_PEERS = [dict(p, public_key=k) for p, k in zip(PEERS, KEYS, strict=True)]


def wg_spec(**kw):
    return spec(**{"backend": "wireguard", "peers": WG_PEERS, **kw})


def test_wireguard_defaults():
    cfg = normalise(wg_spec())
    assert (cfg["name"], cfg["port"], cfg["key_file"]) == ("wg0", 51820, "/etc/cnfs-netlab/wireguard/wg0.key")
    assert [p["public_key"] for p in cfg["peers"]] == KEYS[1:]
    assert normalise(wg_spec(netns="node1", name="wg1"))["key_file"] == "/etc/cnfs-netlab/wireguard/node1/wg1.key"
    assert normalise(wg_spec(key_file="/run/cnfs-netlab/wireguard/wg0.key"))["key_file"] == (
        "/run/cnfs-netlab/wireguard/wg0.key"
    )


def test_wireguard_own_entry_needs_no_key_and_keys_are_normalised():
    peers = [PEERS[0], dict(PEERS[1], public_key=f" {KEYS[1]}\n"), WG_PEERS[2]]
    assert [p["public_key"] for p in normalise(wg_spec(peers=peers))["peers"]] == KEYS[1:]


def test_state_key_needs_no_local_subnet_or_peers():
    cfg = normalise({"backend": "wireguard", "state": "key"})
    assert (cfg["state"], cfg["local"], cfg["peers"]) == ("key", None, [])


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"peers": PEERS}, "peer 'node2' has no public_key: the wireguard backend needs every peer's public key"),
        (
            {"peers": [dict(WG_PEERS[1], public_key="abc")]},
            "peer 'node2': public_key 'abc' is not a WireGuard key",
        ),
        (
            {"peers": [WG_PEERS[1], dict(WG_PEERS[2], public_key=KEYS[1])]},
            f"peer 'node3': public_key {KEYS[1]} is also the key of peer 'node2'",
        ),
        ({"key_file": "wg0.key"}, "key_file 'wg0.key' is not a clean absolute path"),
        ({"key_file": "/etc/../wg0.key"}, "is not a clean absolute path"),
        ({"remove_key": True}, "remove_key applies to state absent only"),
        ({"state": "maybe"}, "state 'maybe' is unknown: use present, absent or key"),
    ],
)
def test_wireguard_bad_input_is_named(kw, message):
    with pytest.raises(NetlabError) as err:
        normalise(wg_spec(**kw))
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"peers": WG_PEERS}, "public_key applies to backend wireguard only"),
        ({"state": "key"}, "state key applies to backend wireguard only"),
        ({"key_file": "/etc/k"}, "key_file applies to backend wireguard only: drop it"),
        ({"state": "absent", "remove_key": True}, "remove_key applies to backend wireguard only: drop it"),
        ({"vni": 0}, "vni applies to backend vxlan only: drop it"),
        ({"state": "maybe"}, "state 'maybe' is unknown: use present, absent or key"),
    ],
)
def test_wireguard_options_on_other_backends_are_refused(kw, message):
    with pytest.raises(NetlabError) as err:
        normalise(spec(**kw))
    assert message in str(err.value)


def test_argument_spec_fills_public_key_with_none_for_other_backends():
    peers = [dict(p, public_key=None) for p in PEERS]
    assert normalise(spec(backend="vxlan", peers=peers))["peers"][0] == PEERS[1]


def test_want_wireguard_device_peers_and_routes():
    res = select_backend(wg_spec(netns="node1"))
    res._mtu = 1440
    want = res.want(None)
    assert want["key"] == {
        "file": "/etc/cnfs-netlab/wireguard/node1/wg0.key",
        "mode": "0600",
        "public_key": NEW_KEY,
    }
    assert want["device"] == {
        "public_key": NEW_KEY,
        "port": 51820,
        "mtu": 1440,
        "up": True,
        "addresses": ["172.16.1.0/32"],
        "peers": {
            "node2": {
                "public_key": KEYS[1],
                "endpoint": "10.0.0.2:51820",
                "allowed_ips": ["10.0.0.2/32", "172.16.2.0/24"],
            },
            "node3": {
                "public_key": KEYS[2],
                "endpoint": "10.0.0.3:51820",
                "allowed_ips": ["10.0.0.3/32", "172.16.3.0/24"],
            },
        },
        "routes": ["172.16.2.0/24", "172.16.3.0/24"],
        "underlay_routes": ["10.0.0.2/32", "10.0.0.3/32"],
    }
    assert want["rules"] == ["from 172.16.1.0/24"]


def test_want_wireguard_keeps_an_existing_key_and_fixes_its_mode():
    res = select_backend(wg_spec())
    res._mtu = 1440
    current = {"key": {"file": "/etc/cnfs-netlab/wireguard/wg0.key", "mode": "0644", "public_key": KEYS[0]}}
    want = res.want(current)
    assert want["key"] == {"file": "/etc/cnfs-netlab/wireguard/wg0.key", "mode": "0600", "public_key": KEYS[0]}
    assert want["device"]["public_key"] == KEYS[0]


def test_want_wireguard_key_state_leaves_the_device_out():
    res = select_backend({"backend": "wireguard", "state": "key"})
    assert res.want(None)["device"] is None
    assert res.want(None)["rules"] is None
    assert res.want(None)["key"]["public_key"] == NEW_KEY


def test_want_wireguard_absent_keeps_the_key_unless_told():
    key = {"file": "/etc/cnfs-netlab/wireguard/wg0.key", "mode": "0600", "public_key": KEYS[0]}
    current = {"backend": "wireguard", "name": "wg0", "key": key, "device": {"public_key": KEYS[0]}}
    kept = select_backend({"backend": "wireguard", "state": "absent"}).want(current)
    assert kept == {"backend": "wireguard", "name": "wg0", "key": key, "device": None, "rules": []}
    assert select_backend({"backend": "wireguard", "state": "absent", "remove_key": True}).want(current) is None
    assert select_backend({"backend": "wireguard", "state": "absent"}).want(None) is None


def test_wireguard_state_never_holds_a_private_key(tmp_path, monkeypatch):
    """read() of a node with a key file and no device: the state carries the public key only."""
    monkeypatch.setattr(_overlay_wireguard, "wireguard_supported", lambda: True)
    key_file = str(tmp_path / "wg0.key")
    private = b"\x05" * 32
    write_key_file(key_file, private)
    res = select_backend({"backend": "wireguard", "state": "key", "key_file": key_file})
    with CachedSession() as session:
        res.check(session)
        state = res.read(session)
        assert state == {
            "backend": "wireguard",
            "name": "wg0",
            "key": {"file": key_file, "mode": "0600", "public_key": encode_key(public_key(private))},
            "device": None,
            "rules": None,
        }
        assert encode_key(private) not in repr(state)
        result = res.result(state)
    assert result["public_key"] == encode_key(public_key(private))
    assert encode_key(private) not in repr(result)


def test_state_key_makes_the_key_once(tmp_path, monkeypatch):
    """converge() with state=key: check mode makes nothing; the real run makes the key; the next changes nothing."""
    from ansible_collections.cnfs.netlab.plugins.module_utils._resource import converge

    monkeypatch.setattr(_overlay_wireguard, "wireguard_supported", lambda: True)
    key_file = tmp_path / "keys" / "wg0.key"
    spec_ = {"backend": "wireguard", "state": "key", "key_file": str(key_file)}
    with CachedSession() as session:
        res = select_backend(spec_)
        out = converge(session, [res], check_mode=True)
        assert out["changed"] and not key_file.exists()
        assert res.result(out["states"][0][1])["public_key"] is None
        res = select_backend(spec_)
        out = converge(session, [res], check_mode=False)
        assert out["changed"] and key_file.exists()
        made = res.result(out["states"][0][1])
        assert made["public_key"] == made["overlay"]["key"]["public_key"] != NEW_KEY
        out = converge(session, [select_backend(spec_)], check_mode=False)
        assert not out["changed"]
        os.chmod(key_file, 0o640)
        out = converge(session, [select_backend(spec_)], check_mode=False)
        assert out["changed"] and out["diff"]["before"]["overlay wireguard wg0"]["key"]["mode"] == "0640"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        res = select_backend(spec_)
        assert (
            res.result(converge(session, [res], check_mode=False)["states"][0][1])["public_key"] == made["public_key"]
        )
        # absent without remove_key keeps the key; with it, the key goes
        absent = {"backend": "wireguard", "state": "absent", "key_file": str(key_file)}
        assert not converge(session, [select_backend(absent)], check_mode=False)["changed"]
        assert key_file.exists()
        out = converge(session, [select_backend(dict(absent, remove_key=True))], check_mode=True)
        assert out["changed"] and key_file.exists()
        out = converge(session, [select_backend(dict(absent, remove_key=True))], check_mode=False)
        assert out["changed"] and not key_file.exists()
        assert not converge(session, [select_backend(dict(absent, remove_key=True))], check_mode=False)["changed"]


def test_wireguard_rule_arguments():
    assert _overlay_wireguard._rule_args("from 172.16.1.0/24") == {
        "family": 2,
        "table": _overlay_wireguard.WG_TABLE,
        "priority": _overlay_wireguard.WG_RULE_PRIORITY,
        "src": "172.16.1.0",
        "src_len": 24,
    }
    assert "src" not in _overlay_wireguard._rule_args("from all")
    assert _overlay_wireguard.WG_TABLE != 51820  # never wg-quick's table
    assert 0 < _overlay_wireguard.WG_RULE_PRIORITY < 32766  # before the main table's rule


# ------------------------------------------------------------------------ select_backend
@pytest.mark.parametrize(
    ("backend", "cls"),
    [(None, UdpOverlay), ("udp", UdpOverlay), ("vxlan", VxlanOverlay), ("wireguard", WireguardOverlay)],
)
def test_select_backend_picks_the_class_of_the_backend(backend, cls):
    res = select_backend({"backend": backend, "state": "absent"})
    assert isinstance(res, cls)
    assert res.backend == res.cfg["backend"] == (backend or "udp")


def test_select_backend_knows_every_backend_and_refuses_others():
    # the backends messages name (the base's subclasses) are the ones select_backend builds
    assert sorted(c.backend for c in _overlay.OverlayResource.__subclasses__()) == sorted(BACKEND_CLASSES)
    assert all(cls.backend == name for name, cls in BACKEND_CLASSES.items())
    assert list(BACKEND_CLASSES) == OVERLAY_SPEC["argument_spec"]["backend"]["choices"]
    states = {s for cls in BACKEND_CLASSES.values() for s in cls.states}
    assert sorted(states) == sorted(OVERLAY_SPEC["argument_spec"]["state"]["choices"])
    assert {cls.link_kind for cls in BACKEND_CLASSES.values()} == {"tun", "vxlan", "wireguard"}
    with pytest.raises(NetlabError, match="backend 'gre' is unknown: use one of udp, vxlan, wireguard"):
        select_backend({"backend": "gre"})


def test_backend_overheads_fit_their_headers():
    """udp: IP 20 + UDP 8; vxlan: + VXLAN 8 + Ethernet 14; wireguard: + data header 16 + tag 16."""
    assert (UdpOverlay.overhead, VxlanOverlay.overhead, WireguardOverlay.overhead) == (28, 50, 60)


def test_apply_refuses_a_desired_state_built_on_an_estimated_mtu():
    """read() estimated the MTU (the underlay was pending): apply() raises the underlay's error, changes nothing."""
    res = select_backend(spec(backend="vxlan"))
    res._mtu_estimated = NetlabError("overlay vxlan vxlan0: local 10.0.0.1 is not an address of node 'x'")
    with pytest.raises(NetlabError, match="is not an address of node"):
        res.apply(None, None, {"backend": "vxlan"})


def test_result_reports_the_changes_of_the_sub_resources():
    res = select_backend(spec(backend="vxlan"))
    assert "changes" not in res.result(None)
    res.changes.append({"resource": "route 172.16.2.0/24", "before": None, "after": {"dest": "172.16.2.0/24"}})
    assert res.result(None)["changes"] == res.changes
