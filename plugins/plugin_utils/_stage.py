# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stages' plans, computed on the controller from ONE lab description (pure, unit-tested).

The lab description is a set of ``cnfs_netlab_*`` variables (:data:`LAB_DEFAULTS`), read per node from its
host variables (group_vars, the lab inventory, ``-e``), with a stage's overrides (``<stage>_lab``) on top.
:func:`plan_stage` turns it into one plan per node: the resources of the ``cnfs.netlab.node`` module plus
what verify and the diagram need (containers, bridge, subnet, peers).

:func:`record` is what the apply records on the node. The node module itself (``prune``,
module_utils/_record.py) removes what the previous record holds and the new plan does not, so that a stage
applied over any earlier stage leaves what a fresh apply leaves, and refuses a plan that would move a node's
index (the record's ``fixed`` values).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._record import RECORD_PATH
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ifname

STAGES = ("network_namespace", "single_node", "multi_node", "overlay")
BACKENDS = ("udp", "vxlan", "wireguard")
# Bytes the backend's encapsulation adds: the overlay devices and the containers' veths get the MTU minus it.
OVERHEAD = {"udp": 28, "vxlan": 50, "wireguard": 60}
# The overlay device's name when cnfs_netlab_overlay_device is null (the overlay module's defaults); the plan
# always names it, so that the record's and the new plan's items compare by name.
OVERLAY_NAME = {"udp": "tun", "vxlan": "vxlan0", "wireguard": "wg0"}
# The kernel link kind of each backend's devices.
OVERLAY_KIND = {"udp": "tun", "vxlan": "vxlan", "wireguard": "wireguard"}
RECORD_VERSION = 2
# The error of a plan that would move a node's index (the record's fixed_message, formatted by the node module).
RENUMBER_MESSAGE = (
    "{label}: cnfs_netlab_node_index: the node was applied with index {old} and would now get {new} (its subnet "
    "would move): set node_index: {old} for it in the inventory, or run with -e cnfs_netlab_renumber=true"
)
# Where the apply records the plan on the node (the node's own /run: gone after a reboot, like the state).
RECORD_FILE = RECORD_PATH

# The lab description: variable suffix (cnfs_netlab_<key>) -> default. Documented in docs/lab-description.md
# and in the stage_plans filter's documentation.
LAB_DEFAULTS: dict[str, Any] = {
    "subnet_base": "172.16.0.0/16",
    "subnet_prefix": 24,
    "container_names": [],
    "container_count": 2,
    "container_prefix": "con",
    "node_ifname": "veth%d0",
    "container_ifname": "veth%d1",
    "bridge": "br0",
    "mtu": 1500,
    "backend": "udp",
    "overlay_device": None,
    "overlay_port": None,
    "overlay_vni": None,
    "underlay_dev": None,
    "rp_filter": 2,
    "node_index": None,
    "node_address": None,
}
VAR_PREFIX = "cnfs_netlab_"


def _err(setting: str, node: str | None, text: str) -> NetlabError:
    where = f"{node}: " if node else ""
    return NetlabError(f"{where}{VAR_PREFIX}{setting}: {text}")


def _int(value: Any, setting: str, node: str | None, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise _err(setting, node, f"{value!r} is not a number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _err(setting, node, f"{value!r} is not a number") from None
    if number < low or number > high:
        raise _err(setting, node, f"{number} is out of range; use {low} to {high}")
    return number


def _format_ifname(pattern: Any, k: int, setting: str, node: str) -> str:
    if not isinstance(pattern, str) or pattern.count("%d") != 1 or "%" in pattern.replace("%d", ""):
        raise _err(setting, node, f"{pattern!r} must hold %d once (container k's number), like veth%d0")
    name = pattern.replace("%d", str(k))
    try:
        ifname(name, setting)
    except NetlabError as exc:
        raise _err(setting, node, f"container {k}: {exc}") from None
    return name


def settings_for(values: dict[str, Any], node: str) -> dict[str, Any]:
    """Validate one node's lab description (values: key -> value, the defaults filled in)."""
    s = {**LAB_DEFAULTS, **{k: v for k, v in values.items() if k in LAB_DEFAULTS}}
    unknown = sorted(set(values) - set(LAB_DEFAULTS))
    if unknown:
        raise _err(unknown[0], node, f"is not a setting of the lab description (known: {', '.join(LAB_DEFAULTS)})")
    out: dict[str, Any] = {}
    out["subnet_prefix"] = _int(s["subnet_prefix"], "subnet_prefix", node, 1, 30)
    try:
        base = ipaddress.ip_network(str(s["subnet_base"]).strip())
    except ValueError as exc:
        raise _err("subnet_base", node, f"{s['subnet_base']!r} is not a network like 172.16.0.0/16 ({exc})") from None
    if base.version != 4:
        raise _err("subnet_base", node, f"{s['subnet_base']!r} is not an IPv4 network")
    if base.prefixlen > out["subnet_prefix"]:
        raise _err(
            "subnet_base",
            node,
            f"{base} is smaller than one /{out['subnet_prefix']} subnet; use a shorter prefix than "
            f"{VAR_PREFIX}subnet_prefix {out['subnet_prefix']}",
        )
    out["subnet_base"] = base
    names = s["container_names"]
    if names:
        if not isinstance(names, list):
            raise _err("container_names", node, f"{names!r} is not a list of names")
        names = [str(n) for n in names]
    else:
        count = _int(s["container_count"], "container_count", node, 1, 4096)
        prefix = s["container_prefix"]
        if not isinstance(prefix, str) or not prefix:
            raise _err("container_prefix", node, f"{prefix!r} is not a name prefix")
        names = [f"{prefix}{k}" for k in range(1, count + 1)]
    if len(set(names)) != len(names):
        raise _err("container_names", node, f"container names must be unique, got {', '.join(names)}")
    for name in names:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name) or len(name) > 64:
            raise _err("container_names", node, f"{name!r} is not a namespace name (letters, digits, - _ .)")
    out["container_names"] = names
    out["bridge"] = s["bridge"]
    try:
        ifname(str(s["bridge"]), f"{VAR_PREFIX}bridge")
    except NetlabError as exc:
        raise _err("bridge", node, str(exc)) from None
    out["node_ifname"] = s["node_ifname"]
    out["container_ifname"] = s["container_ifname"]
    out["mtu"] = _int(s["mtu"], "mtu", node, 1280, 65535)
    if s["backend"] not in BACKENDS:
        raise _err("backend", node, f"{s['backend']!r} is not one of {', '.join(BACKENDS)}")
    out["backend"] = s["backend"]
    out["overlay_device"] = s["overlay_device"] or None
    if out["overlay_device"] is not None:
        try:
            ifname(str(out["overlay_device"]), f"{VAR_PREFIX}overlay_device")
        except NetlabError as exc:
            raise _err("overlay_device", node, str(exc)) from None
    out["overlay_port"] = None if s["overlay_port"] is None else _int(s["overlay_port"], "overlay_port", node, 1, 65535)
    out["overlay_vni"] = None if s["overlay_vni"] is None else _int(s["overlay_vni"], "overlay_vni", node, 0, 16777215)
    out["underlay_dev"] = s["underlay_dev"] or None
    if str(s["rp_filter"]) not in ("0", "2"):
        raise _err("rp_filter", node, f"{s['rp_filter']!r} must be 2 (loose) or 0 (off)")
    out["rp_filter"] = str(s["rp_filter"])
    out["node_index"] = s["node_index"]
    out["node_address"] = s["node_address"]
    return out


def container_mac(address: str, node_end: bool = False) -> str:
    """The MAC of a container's end of its veth pair: 0a:58 and the four bytes of its IPv4 address (like the
    Kubernetes bridge plugin), 0a:59 for the node's end. Derived, not random: a pair recreated by a repair gets the
    same MACs, so the neighbour entries of the bridge and the other containers stay valid."""
    prefix = (0x0A, 0x59 if node_end else 0x58)
    return ":".join(f"{b:02x}" for b in (*prefix, *ipaddress.IPv4Address(address).packed))


def _node_plan(host: str, index: int, address: str, s: dict[str, Any], bridged: bool) -> dict[str, Any]:
    plen = s["subnet_prefix"]
    base: ipaddress.IPv4Network = s["subnet_base"]
    available = 2 ** (plen - base.prefixlen)
    if index < 1 or index > available:
        raise _err(
            "node_index",
            host,
            f"node index {index} has no subnet: {base} holds {available} subnets of /{plen}; use a larger "
            f"{VAR_PREFIX}subnet_base or a longer {VAR_PREFIX}subnet_prefix",
        )
    size = 2 ** (32 - plen)
    net = ipaddress.IPv4Network((int(base.network_address) + (index - 1) * size, plen))
    first = 2 if bridged else 1
    names = s["container_names"]
    if first + len(names) > size - 1:
        raise _err(
            "container_count",
            host,
            f"{len(names)} containers do not fit in a /{plen} subnet; use fewer containers or a shorter "
            f"{VAR_PREFIX}subnet_prefix",
        )
    gateway = str(net.network_address + 1)
    res: dict[str, list[Any]] = {
        "namespaces": [],
        "bridges": [],
        "veths": [],
        "addresses": [],
        "routes": [],
        "sysctls": [],
        "overlays": [],
    }
    containers = []
    bridge = None
    if bridged:
        bridge = {"name": s["bridge"], "address": gateway, "prefix": plen}
        res["bridges"].append({"name": s["bridge"], "up": True})
        res["addresses"].append({"dev": s["bridge"], "addresses": [f"{gateway}/{plen}"], "purge": True})
    for k, name in enumerate(names, start=1):
        node_if = _format_ifname(s["node_ifname"], k, "node_ifname", host)
        cont_if = _format_ifname(s["container_ifname"], k, "container_ifname", host)
        addr = str(net.network_address + first + k - 1)
        prefix = plen if bridged else 32
        containers.append(
            {
                "name": name,
                "netns": name,
                "node_ifname": node_if,
                "ifname": cont_if,
                "address": addr,
                "prefix": prefix,
                "mac": container_mac(addr),
            }
        )
        res["namespaces"].append({"name": name})
        veth: dict[str, Any] = {
            "name": node_if,
            "peer": cont_if,
            "peer_netns": name,
            "up": True,
            "mtu": s["mtu"],
            "mac": container_mac(addr, node_end=True),
            "peer_mac": container_mac(addr),
        }
        if bridged:
            veth["bridge"] = s["bridge"]
        res["veths"].append(veth)
        res["addresses"].append({"netns": name, "dev": cont_if, "addresses": [f"{addr}/{prefix}"], "purge": True})
        if bridged:
            res["routes"].append({"netns": name, "dest": "default", "gateway": gateway})
        else:
            res["routes"].append({"dest": f"{addr}/32", "dev": node_if})
            res["routes"].append({"netns": name, "dest": f"{address}/32", "dev": cont_if, "scope": "link"})
            res["routes"].append({"netns": name, "dest": "default", "dev": cont_if, "onlink": True, "gateway": address})
    return {
        "node": host,
        "index": index,
        "node_address": address,
        "subnet": str(net),
        "bridge": bridge,
        "containers": containers,
        "peers": [],
        "mtu": s["mtu"],
        "resources": res,
    }


def _address_of(host: str, hv: dict[str, Any], given: Any) -> str:
    value = given
    if value is None:
        for key in ("underlay_ip", "underlay_address", "ansible_host"):
            if hv.get(key):
                value = hv[key]
                break
        else:
            value = host
    text = str(value).split("/", maxsplit=1)[0].strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _err("node_address", host, f"{value!r} is not an IP address (set it, or underlay_ip)") from None


def plan_stage(
    stage: str,
    nodes: list[str],
    hostvars: dict[str, dict[str, Any]],
    overrides: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The plan of ``stage`` for every node of ``nodes`` (in that order: the peers of every node).

    ``hostvars``: host -> its variables (the ``cnfs_netlab_*`` settings, ``node_index``, ``underlay_ip`` ...).
    ``overrides``: settings that win over every node's (a stage's ``<stage>_lab``).
    Every plan holds ``node_indexes`` (host -> index of every node): the record fixes them (see :func:`record`).
    """
    if stage not in STAGES:
        raise NetlabError(f"stage {stage!r} is not one of {', '.join(STAGES)}")
    if not nodes:
        raise NetlabError("no nodes to plan: the play has no hosts (inventory group nodes)")
    overrides = overrides or {}
    bridged = stage != "network_namespace"
    plans: dict[str, dict[str, Any]] = {}
    settings: dict[str, dict[str, Any]] = {}
    for position, host in enumerate(nodes, start=1):
        hv = hostvars.get(host) or {}
        values = {k: hv[VAR_PREFIX + k] for k in LAB_DEFAULTS if VAR_PREFIX + k in hv}
        values.update(overrides)
        s = settings_for(values, host)
        index = s["node_index"] if s["node_index"] is not None else hv.get("node_index", position)
        index = _int(index, "node_index", host, 1, 1 << 24)
        settings[host] = s
        plans[host] = _node_plan(host, index, _address_of(host, hv, s["node_address"]), s, bridged)
        plans[host]["stage"] = stage
    seen: dict[str, str] = {}
    for host, plan in plans.items():
        if plan["subnet"] in seen:
            raise _err(
                "node_index",
                host,
                f"{host} and {seen[plan['subnet']]} have the same container subnet {plan['subnet']}: give every "
                "node its own node index",
            )
        seen[plan["subnet"]] = host
    indexes = {host: plan["index"] for host, plan in plans.items()}
    for plan in plans.values():
        plan["node_indexes"] = dict(indexes)
    if stage == "multi_node":
        for host, plan in plans.items():
            plan["peers"] = [p for p in nodes if p != host]
            for peer in plan["peers"]:
                plan["resources"]["routes"].append(
                    {"dest": plans[peer]["subnet"], "gateway": plans[peer]["node_address"]}
                )
            plan["resources"]["sysctls"].append({"name": "net.ipv4.ip_forward", "value": "1"})
    elif stage == "overlay":
        for host, plan in plans.items():
            s = settings[host]
            mtu = s["mtu"] - OVERHEAD[s["backend"]]
            plan["mtu"] = mtu
            plan["backend"] = s["backend"]
            plan["peers"] = [p for p in nodes if p != host]
            for veth in plan["resources"]["veths"]:
                veth["mtu"] = mtu
            mesh = [{"name": p, "address": plans[p]["node_address"], "subnet": plans[p]["subnet"]} for p in nodes]
            overlay: dict[str, Any] = {
                "backend": s["backend"],
                "local": plan["node_address"],
                "subnet": plan["subnet"],
                "peers": mesh,
                "mtu": mtu,
                "name": s["overlay_device"] or OVERLAY_NAME[s["backend"]],
            }
            for key, option in (
                ("overlay_port", "port"),
                ("overlay_vni", "vni"),
                ("underlay_dev", "underlay_dev"),
            ):
                if s[key] is not None:
                    overlay[option] = s[key]
            plan["resources"]["overlays"].append(overlay)
            plan["resources"]["sysctls"] += [
                {"name": "net.ipv4.ip_forward", "value": "1"},
                {"name": "net.ipv4.conf.all.rp_filter", "value": s["rp_filter"]},
            ]
    return plans


def record(stage: str, plan: dict[str, Any]) -> dict[str, Any]:
    """What the apply records in :data:`RECORD_FILE` on the node: the plan without its resources (the node module
    adds ``resources``, the lists it applied; :func:`recorded_plan` puts them back), and ``fixed``, every node's
    index, which no apply changes unless ``cnfs_netlab_renumber`` (on every node that knew the renumbered one, so
    the whole play refuses it and nothing changes). The plan's resources are not recorded twice: every node's
    plan carries its record (filter stage_plans), and on 32 nodes x 16 containers Ansible took 0.5 s to walk
    the duplicate."""
    return {
        "version": RECORD_VERSION,
        "stage": stage,
        "plan": {k: v for k, v in plan.items() if k != "resources"},
        "fixed": dict(plan.get("node_indexes") or {plan["node"]: plan["index"]}),
        "fixed_message": RENUMBER_MESSAGE,
    }


def recorded_plan(record: dict[str, Any]) -> dict[str, Any]:
    """The plan of a record read from a node, with its resources: the lists the apply recorded (an earlier
    release recorded them inside the plan too)."""
    plan = dict(record["plan"])
    resources = record.get("resources")
    if isinstance(resources, dict):
        plan["resources"] = resources
    else:
        plan.setdefault("resources", {})
    return plan
