# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's ``vxlan`` backend: one VXLAN device the way flannel builds it.

Learning off, a deterministic VTEP MAC derived from the underlay address (:func:`vtep_mac`), this node's
VTEP address ``<subnet network>/32`` on the device, and per peer a static FDB entry (peer VTEP MAC -> peer
underlay address), a permanent neighbour (peer VTEP address -> peer VTEP MAC) and an onlink route for the
peer's subnet via the peer's VTEP address. Entries of peers no longer listed are deleted.

State: ``{"backend": "vxlan", "name", "vni", "local", "port", "learning", "underlay_dev", "mac", "mtu",
"up", "addresses", "fdb": {mac: underlay address}, "neighbours": {vtep: mac}, "routes": {subnet: vtep}}``.
"""

from __future__ import annotations

import socket
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._link import find_link
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import Session
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import (
    MARK,
    OverlayResource,
    bounded_int,
    device_routes,
    ipv4_addresses,
    route_dest,
    vtep_address,
    vtep_mac,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import State

NUD_PERMANENT = 0x80
NTF_SELF = 0x02


class VxlanOverlay(OverlayResource):
    """One VXLAN device with static FDB entries, neighbours and routes per peer."""

    backend = "vxlan"
    link_kind = "vxlan"
    # outer IP 20 + UDP 8 + the VXLAN header 8 + the inner Ethernet header 14.
    overhead = 50
    default_name = "vxlan0"
    default_port = 4789
    options = ("vni",)

    @classmethod
    def normalise_options(cls, cfg: dict[str, Any], spec: dict[str, Any], obj: str) -> None:
        vni = spec.get("vni")
        cfg["vni"] = bounded_int(vni, f"{obj}: vni", 0, 2**24 - 1) if vni is not None else 1

    def read_backend(self, session: Session, ipr: Any) -> State:
        if ipr is None or not self.existing_devs(ipr):
            return None
        msg = find_link(ipr, self.name)
        index = msg.index
        data = msg.data()
        lower = ipr.get_link(index=data["link"]) if data.get("link") else None
        underlay = lower.name if lower is not None else None
        fdb = {entry.lladdr: entry.dst for entry in ipr.fdb_entries(index) if entry.dst}
        neighbours = {n.dst: n.lladdr for n in ipr.neighbours(index, socket.AF_INET) if n.state & NUD_PERMANENT}
        routes = {route_dest(r): r.gateway for r in device_routes(ipr, index)}
        return {
            "backend": "vxlan",
            "name": self.name,
            "vni": data.get("id"),
            "local": data.get("local"),
            "port": data.get("port"),
            "learning": bool(data.get("learning")),
            "underlay_dev": underlay,
            "mac": msg.mac,
            "mtu": msg.mtu,
            "up": msg.up,
            "addresses": ipv4_addresses(ipr, index),
            "fdb": dict(sorted(fdb.items())),
            "neighbours": dict(sorted(neighbours.items())),
            "routes": dict(sorted(routes.items())),
        }

    def want(self, current: State) -> State:
        if self.state == "absent":
            return None
        cfg = self.cfg
        peers = cfg["peers"]
        return {
            "backend": "vxlan",
            "name": self.name,
            "vni": cfg["vni"],
            "local": cfg["local"],
            "port": cfg["port"],
            "learning": False,
            "underlay_dev": cfg["underlay_dev"] if cfg["underlay_dev"] else (current or {}).get("underlay_dev"),
            "mac": vtep_mac(cfg["local"]),
            "mtu": self._mtu,
            "up": True,
            "addresses": [f"{vtep_address(cfg['subnet'])}/32"],
            "fdb": dict(sorted((vtep_mac(p["address"]), p["address"]) for p in peers)),
            "neighbours": dict(sorted((vtep_address(p["subnet"]), vtep_mac(p["address"])) for p in peers)),
            "routes": dict(sorted((p["subnet"], vtep_address(p["subnet"])) for p in peers)),
        }

    def apply_backend(self, session: Session, current: State, desired: State) -> None:
        ipr = session.ipr(self.netns)
        msg = find_link(ipr, self.name) if current is not None else None
        if desired is None:
            if msg is not None:
                ipr.link("del", index=msg.index)  # fdb, neighbours, routes and addresses go with it
            return
        fixed = ("vni", "local", "port", "learning", "underlay_dev")
        if msg is not None and any(current[k] != desired[k] for k in fixed):
            ipr.link("del", index=msg.index)
            msg = None
            current = None
        if msg is None:
            attrs: dict[str, Any] = {
                "ifname": self.name,
                "kind": "vxlan",
                "vxlan_id": desired["vni"],
                "vxlan_local": desired["local"],
                "vxlan_port": desired["port"],
                "vxlan_learning": 0,
                "address": desired["mac"],
                "mtu": desired["mtu"],
            }
            if desired["underlay_dev"]:
                attrs["vxlan_link"] = find_link(ipr, desired["underlay_dev"]).index
            ipr.link("add", **attrs)
            msg = find_link(ipr, self.name)
            ipr.link("set", index=msg.index, ifalias=MARK)
        index = msg.index
        # Only what differs: setting the MAC, even to the same value, flushes every neighbour of the device.
        if msg.mtu != desired["mtu"]:
            ipr.link("set", index=index, mtu=desired["mtu"])
        if msg.mac != desired["mac"]:
            ipr.link("set", index=index, address=desired["mac"])
            current = dict(current, neighbours={}) if current is not None else None
        self.set_addresses(ipr, index, desired["addresses"])
        ipr.link("set", index=index, state="up")
        have = current or {"fdb": {}, "neighbours": {}, "routes": {}}
        # Remove what no listed peer needs, routes first (they point at the neighbours).
        for dest, gateway in have["routes"].items():
            if desired["routes"].get(dest) != gateway:
                self.converge_sub(session, self.route(dest, state="absent"))
        for vtep, mac in have["neighbours"].items():
            if desired["neighbours"].get(vtep) != mac:
                ipr.neigh("del", ifindex=index, dst=vtep, lladdr=mac)
        for mac, dst in have["fdb"].items():
            if desired["fdb"].get(mac) != dst:
                ipr.fdb("del", ifindex=index, lladdr=mac, dst=dst)
        for mac, dst in desired["fdb"].items():
            if have["fdb"].get(mac) != dst:
                ipr.fdb("append", ifindex=index, lladdr=mac, dst=dst, state=NUD_PERMANENT, flags=NTF_SELF)
        for vtep, mac in desired["neighbours"].items():
            if have["neighbours"].get(vtep) != mac:
                ipr.neigh("replace", ifindex=index, dst=vtep, lladdr=mac, state=NUD_PERMANENT)
        for dest, gateway in desired["routes"].items():
            if have["routes"].get(dest) != gateway:
                spec = {"gateway": gateway, "dev": self.name, "onlink": True, "proto": "static"}
                self.converge_sub(session, self.route(dest, **spec))
