# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Testinfra verifier of the stage scenarios (the stage comes from CNFS_STAGE, set in molecule.yml).

Testinfra reaches each lab node through Ansible, with the node's own connection (cnfs.netlab.nsenter): the
node's connection type is not one testinfra maps to a backend of its own, so every command runs as an
``ansible -m shell`` through that plugin, exactly the way the converge reached the node. The kernel state is
read with ``ip -j`` and /proc, and connectivity with ping, independently of the collection's modules.
To keep that fast, each node is read with one command (cached per node) and pinged with one more.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

STAGE = os.environ.get("CNFS_STAGE", "overlay")
BACKEND = os.environ.get("CNFS_OVERLAY_BACKEND", "udp")
# The overlay's MTU on a 1500-byte underlay: outer IPv4 + UDP (udp), + VXLAN header and inner Ethernet (vxlan),
# + WireGuard's header and tag (wireguard).
OVERLAY_MTU = {"udp": 1472, "vxlan": 1450, "wireguard": 1440}[BACKEND]
CONTAINERS = ["con"] if STAGE == "network_namespace" else ["con1", "con2"]

testinfra_hosts = ["nodes"]

READ_STATE = r"""
printf '{"links":%s,"addrs":%s,"routes":%s,"rules":%s,"sysctl":{"ip_forward":"%s","rp_filter":"%s"},"netns":{' \
  "$(ip -j -d link show)" "$(ip -j addr show)" "$(ip -4 -j route show)" "$(ip -4 -j rule show)" \
  "$(cat /proc/sys/net/ipv4/ip_forward)" "$(cat /proc/sys/net/ipv4/conf/all/rp_filter)"
sep=
for ns in $(ip netns list | cut -d' ' -f1); do
  printf '%s"%s":{"links":%s,"addrs":%s,"routes":%s}' "$sep" "$ns" \
    "$(ip -n "$ns" -j link show)" "$(ip -n "$ns" -j addr show)" "$(ip -n "$ns" -4 -j route show)"
  sep=,
done
printf '}}'
"""


@functools.cache
def _state(name: str, host: Any) -> dict[str, Any]:
    return json.loads(host.check_output(READ_STATE))


def state(host: Any) -> dict[str, Any]:
    return _state(host.backend.get_hostname(), host)


def plain(value: Any) -> Any:
    """A value as ansible-inventory prints it, without its ``{"__ansible_unsafe": ...}`` wrapper."""
    return value["__ansible_unsafe"] if isinstance(value, dict) and "__ansible_unsafe" in value else value


def hostvars(host: Any) -> dict[str, Any]:
    return {key: plain(value) for key, value in host.backend.get_variables().items()}


def index(host: Any) -> int:
    return int(hostvars(host)["node_index"])


def all_nodes(host: Any) -> list[dict[str, Any]]:
    """Every node of the lab: name, index, underlay address, from the inventory."""
    runner = host.backend.ansible_runner
    nodes = []
    for name in hostvars(host)["groups"]["nodes"]:
        variables = runner.get_variables(name)
        nodes.append(
            {
                "name": name,
                "index": int(plain(variables["node_index"])),
                "ip": plain(variables["underlay_address"]).split("/")[0],
            }
        )
    return nodes


def addresses(addr_json: list[dict[str, Any]], ifname: str) -> list[str]:
    return [
        f"{a['local']}/{a['prefixlen']}"
        for link in addr_json
        if link["ifname"] == ifname
        for a in link.get("addr_info", [])
        if a.get("family") == "inet"
    ]


def link(links: list[dict[str, Any]], ifname: str) -> dict[str, Any]:
    found = [x for x in links if x["ifname"] == ifname]
    assert found, f"no link {ifname}: {[x['ifname'] for x in links]}"
    return found[0]


# ---------------------------------------------------------------------------------- kernel state
def test_container_namespaces(host: Any) -> None:
    assert sorted(state(host)["netns"]) == CONTAINERS


def test_container_addresses_and_routes(host: Any) -> None:
    s, i = state(host), index(host)
    subnet, node_ip = f"172.16.{i - 1}", hostvars(host)["underlay_address"].split("/")[0]
    if STAGE == "network_namespace":
        con = s["netns"]["con"]
        assert addresses(con["addrs"], "veth11") == [f"{subnet}.1/32"]
        assert {"dst": "default", "gateway": node_ip, "dev": "veth11"}.items() <= next(
            r for r in con["routes"] if r["dst"] == "default"
        ).items()
        assert any(r["dst"] == f"{subnet}.1" and r["dev"] == "veth10" for r in s["routes"])
        assert link(s["links"], "veth10")["operstate"] == "UP"
        return
    for k, con in enumerate(CONTAINERS, start=1):
        ns = s["netns"][con]
        assert addresses(ns["addrs"], f"veth{k}1") == [f"{subnet}.{k + 1}/24"]
        default = next(r for r in ns["routes"] if r["dst"] == "default")
        assert default["gateway"] == f"{subnet}.1"
        assert link(s["links"], f"veth{k}0").get("master") == "br0"
    assert addresses(s["addrs"], "br0") == [f"{subnet}.1/24"]


def test_routes_between_nodes(host: Any) -> None:
    s, i = state(host), index(host)
    others = [n for n in all_nodes(host) if n["index"] != i]
    # Routes through a gateway on the underlay: not the default route (a real VM has its management network's)
    # nor the overlay's own (vxlan routes a peer's subnet onlink via the peer's VTEP address on vxlan0).
    via_underlay = {
        r["dst"]: r.get("gateway")
        for r in s["routes"]
        if r.get("gateway") and r["dst"] != "default" and not r.get("dev", "").startswith(("tun-", "vxlan", "wg"))
    }
    if STAGE in ("network_namespace", "single_node"):
        assert via_underlay == {}
    elif STAGE == "multi_node":
        assert via_underlay == {f"172.16.{n['index'] - 1}.0/24": n["ip"] for n in others}
    else:  # overlay: the underlay carries no container routes; the overlay devices do
        assert via_underlay == {}
        for n in others:
            dev = {"udp": f"tun-{n['name']}", "vxlan": "vxlan0", "wireguard": "wg0"}[BACKEND]
            assert any(r["dst"] == f"172.16.{n['index'] - 1}.0/24" and r["dev"] == dev for r in s["routes"])
            assert "LOWER_UP" in link(s["links"], dev)["flags"]  # udp: the tunnel process is attached to the tun
        if BACKEND == "wireguard":  # container traffic to the peer nodes goes into the tunnel too
            wg = link(s["links"], "wg0")
            assert wg["linkinfo"]["info_kind"] == "wireguard"
            assert any(
                r.get("src") == f"172.16.{i - 1}.0" and r.get("srclen") == 24 and r.get("table") == "52000"
                for r in s["rules"]
            ), s["rules"]


def test_sysctls(host: Any) -> None:
    forwarding = "1" if STAGE in ("multi_node", "overlay") else "0"
    assert state(host)["sysctl"]["ip_forward"] == forwarding
    if STAGE == "overlay":
        assert state(host)["sysctl"]["rp_filter"] == "2"


# ---------------------------------------------------------------------------------- connectivity
def test_connectivity(host: Any) -> None:
    """Ping the stage's matrix from the node and from each of its containers (one command per node); on the
    overlay also full-size don't-fragment echoes from every container to the containers of the other nodes."""
    i, nodes = index(host), all_nodes(host)
    me = next(n for n in nodes if n["index"] == i)
    others = [n for n in nodes if n["index"] != i]
    own = [f"172.16.{i - 1}.{k}" for k in (range(1, 2) if STAGE == "network_namespace" else range(1, 4))]
    checks: list[tuple[str, str]] = [("", n["ip"]) for n in others] + [("", a) for a in own]
    for k, con in enumerate(CONTAINERS, start=1):
        checks.append((con, me["ip"]))
        if STAGE != "network_namespace":
            checks += [(con, a) for a in own if a != f"172.16.{i - 1}.{k + 1}"]
        if STAGE in ("multi_node", "overlay"):
            for n in others:
                checks += [(con, n["ip"])] + [(con, f"172.16.{n['index'] - 1}.{h}") for h in (1, 2, 3)]
    probes = [(src, dst, "") for src, dst in checks]
    if STAGE == "overlay":  # full-size, don't fragment: the overlay MTU leaves room for its header
        size = OVERLAY_MTU - 28
        for n in others:
            probes += [(con, f"172.16.{n['index'] - 1}.{h}", f"-M do -s {size} ") for con in CONTAINERS for h in (2, 3)]
    script = "; ".join(
        f"{'ip netns exec ' + src + ' ' if src else ''}ping {df}-c 1 -W 1 -q {dst} >/dev/null 2>&1"
        f" && echo 'PASSED {src or 'node'} {dst} {df}' || echo 'FAILED {src or 'node'} {dst} {df}'"
        for src, dst, df in probes
    )
    out = host.check_output(script).splitlines()
    assert len(out) == len(probes)
    assert [line for line in out if not line.startswith("PASSED")] == []


def test_overlay_mtu(host: Any) -> None:
    if STAGE != "overlay":
        return
    s = state(host)
    mtu = OVERLAY_MTU
    for k, con in enumerate(CONTAINERS, start=1):
        assert link(s["netns"][con]["links"], f"veth{k}1")["mtu"] == mtu
        assert link(s["links"], f"veth{k}0")["mtu"] == mtu
