# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the kernel tests: run the modules' real code path in-process, read the kernel with `ip -j`.

A small module is its argument spec (module_utils/_args.py, defaults applied as AnsibleModule does)
plus ``run_module``'s one converge over its Resource; ``node`` is ``build_resources`` plus one
converge in a CachedSession, as ``run_node`` does. Every namespace a test makes has a name of its own
(:func:`Namespaces`) and is removed afterwards; nothing is made in the host's namespace.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._args import (
    ADDRESS_SPEC,
    BRIDGE_SPEC,
    LINK_SPEC,
    NETNS_SPEC,
    ROUTE_SPEC,
    SYSCTL_SPEC,
    VETH_SPEC,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
from ansible_collections.cnfs.netlab.plugins.module_utils._node import build_resources
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import converge


def _models() -> dict[str, tuple[dict[str, Any], Any]]:
    from ansible_collections.cnfs.netlab.plugins.module_utils._address import AddressResource
    from ansible_collections.cnfs.netlab.plugins.module_utils._link import BridgeResource, LinkResource, VethResource
    from ansible_collections.cnfs.netlab.plugins.module_utils._netns import NetnsResource
    from ansible_collections.cnfs.netlab.plugins.module_utils._route import RouteResource
    from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import SysctlResource

    return {
        "netns": (NETNS_SPEC, NetnsResource),
        "bridge": (BRIDGE_SPEC, BridgeResource),
        "veth": (VETH_SPEC, VethResource),
        "link": (LINK_SPEC, LinkResource),
        "address": (ADDRESS_SPEC, AddressResource),
        "route": (ROUTE_SPEC, RouteResource),
        "sysctl": (SYSCTL_SPEC, SysctlResource),
    }


def module_params(module: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters as AnsibleModule hands them to the module (validated, defaults filled in)."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec, _model = _models()[module]
    constraints = {k: v for k, v in spec.items() if k != "argument_spec"}
    checked = ArgumentSpecValidator(spec["argument_spec"], **constraints).validate(params)
    if checked.error_messages:
        raise ValueError(f"{module}: {checked.error_messages}")
    return dict(checked.validated_parameters)


def run(module: str, params: dict[str, Any], check: bool = False) -> dict[str, Any]:
    """One small module's run: its converge; returns changed, before, after (NetlabError propagates)."""
    _spec, model = _models()[module]
    resource = model(module_params(module, params))
    with CachedSession() as session:
        outcome = converge(session, [resource], check)
    return {
        "changed": outcome["changed"],
        "before": outcome["diff"]["before"][resource.key],
        "after": outcome["diff"]["after"][resource.key],
    }


def node_params(**params: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "netns": None,
        "namespaces": [],
        "state": "present",
        "purge_namespaces": False,
        "rollback": True,
    }
    base.update(params)
    for option in ("bridges", "veths", "links", "addresses", "routes", "sysctls", "overlays"):
        base.setdefault(option, [])
    return base


def run_node(check: bool = False, **params: Any) -> dict[str, Any]:
    """The node module's run: build_resources + one converge in a CachedSession (rollback on, its default)."""
    full = node_params(**params)
    resources = build_resources(full)
    with CachedSession() as session:
        outcome = converge(session, resources, check, rollback=full["rollback"])
    return {"changed": outcome["changed"], "diff": outcome["diff"]}


# ------------------------------------------------------------------ the kernel, read independently
def ip(netns: str | None, *args: str) -> Any:
    """`ip -j -d <args>` in ``netns`` (None: this namespace), parsed."""
    cmd = ["ip", "-j", "-d"] + (["-n", netns] if netns else []) + list(args)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


def links(netns: str) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in ip(netns, "link", "show")}


def addresses(netns: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for link in ip(netns, "address", "show"):
        out[link["ifname"]] = sorted(
            f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", []) if a.get("scope") != "link"
        )
    return out


def routes(netns: str) -> list[dict[str, Any]]:
    found = []
    for family in ("-4", "-6"):
        for table in ("all",):
            found += ip(netns, family, "route", "show", "table", table)
    return sorted((r for r in found if r.get("protocol") not in ("kernel",)), key=json.dumps)


def sysctl(netns: str, name: str) -> str:
    path = "/proc/sys/" + name.replace(".", "/")
    return subprocess.run(
        ["ip", "netns", "exec", netns, "cat", path], check=True, capture_output=True, text=True
    ).stdout.strip()


def link_view(link: dict[str, Any]) -> dict[str, Any]:
    """What a test compares of a link (not counters or timers, which move by themselves)."""
    info = link.get("linkinfo") or {}
    data = info.get("info_data") or {}
    return {
        "mtu": link.get("mtu"),
        "up": "UP" in link.get("flags", []),
        "master": link.get("master"),
        "kind": info.get("info_kind"),
        "stp": data.get("stp_state"),
        "peer": link.get("link"),
    }


def snapshot(names: list[str]) -> dict[str, Any]:
    """Everything a test compares before and after: namespaces, links, addresses, routes of each."""
    present = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    out: dict[str, Any] = {}
    for name in names:
        if name not in present:
            out[name] = None
            continue
        out[name] = {
            "links": {k: link_view(v) for k, v in links(name).items()},
            "addresses": addresses(name),
            "routes": routes(name),
            "forwarding": sysctl(name, "net.ipv4.ip_forward"),
        }
    return out


_counter = itertools.count(1)


class Namespaces:
    """Unique namespace names for one test (``cnfsk<pid>-<n>``); :meth:`cleanup` removes them."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def name(self) -> str:
        name = f"cnfsk{os.getpid()}-{next(_counter)}"
        self.names.append(name)
        return name

    def make(self, count: int = 1) -> list[str]:
        names = [self.name() for _number in range(count)]
        for name in names:
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        return names

    def cleanup(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
