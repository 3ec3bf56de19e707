# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's ``wireguard`` backend: one WireGuard device (``wg0``), keys made on the node.

This node's VTEP address ``<subnet network>/32`` on the device, its private key made on the node and kept
in a key file (``_wireguard.py``; only public keys leave the node), the listen port, and per peer: its
public key, its endpoint (underlay address:port), its allowed IPs (its container subnet, which holds its
VTEP address, and its underlay address /32: a peer node answers a container of this node through the
tunnel from that address) and a route to its subnet through the device. Peers no longer listed are
removed. ``state: key`` only makes sure the key exists and returns its public key, so that a play can
collect every node's public key before it builds the overlay. Kernels without WireGuard are refused with
a clear message before any change.

State: ``{"backend": "wireguard", "name", "key": {"file", "mode", "public_key"} or None, "device":
{"public_key", "port", "mtu", "up", "addresses", "peers": {peer name (or public key when unlisted):
{"public_key", "endpoint", "allowed_ips"}}, "routes": [subnet], "underlay_routes": [cidr]} or None,
"rules": [rule] or None}`` -- the key file's public key and the device's (derived by the kernel from the
private key it holds) are compared; no private key is ever part of a state.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._link import find_link
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_calls,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import Route
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import (
    MARK,
    OverlayResource,
    device_routes,
    ipv4_addresses,
    route_dest,
    vtep_address,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import State
from ansible_collections.cnfs.netlab.plugins.module_utils._wireguard import (
    KEY_MODE,
    default_key_file,
    encode_key,
    generate_private_key,
    normalise_key,
    open_wireguard,
    public_key,
    read_device,
    read_key_file,
    remove_key_file,
    set_device,
    sort_cidrs,
    write_key_file,
)

# Traffic from this node's container subnet to a peer's underlay address is routed into the tunnel by a rule
# ``from <subnet> lookup WG_TABLE`` (priority WG_RULE_PRIORITY, before main) and a route per peer
# ``<peer address>/32 dev wg0`` in that table. Not wg-quick's 51820, so that the two never share a table.
WG_TABLE = 52000
WG_RULE_PRIORITY = 32000
# The public key of a key that the run will make (check mode, or the diff of the run that makes it).
NEW_KEY = "(new key, made on the node)"


def wireguard_supported() -> bool:
    """Whether the kernel knows WireGuard: module loaded, or its generic netlink family resolvable
    (the lookup makes the kernel try to load the module, like `ip link add type wireguard` would)."""
    if os.path.isdir("/sys/module/wireguard"):
        return True
    from pyroute2.netlink import genlmsg
    from pyroute2.netlink.generic import GenericNetlinkSocket

    sock = GenericNetlinkSocket()
    try:
        with kernel_calls():
            sock.bind("wireguard", genlmsg)
    except NetlinkError:
        return False
    finally:
        sock.close()
    return True


def _table_routes(ipr: Any, index: int, table: int) -> list[Route]:
    """IPv4 routes of ``table`` through the device."""
    return [r for r in ipr.routes(family=socket.AF_INET, table=table) if r.oif == index]


def _wg_rules(ipr: Any) -> list[str]:
    """The rules that send traffic to the wireguard table: ``from <cidr>`` (or ``from all``), sorted."""
    out = []
    for rule in ipr.get_rules(family=socket.AF_INET):
        table = rule.get("FRA_TABLE") or rule["table"]
        if table == WG_TABLE and (rule.get("FRA_PRIORITY") or 0) == WG_RULE_PRIORITY:
            src = rule.get("FRA_SRC")
            out.append(f"from {src}/{rule['src_len']}" if src else "from all")
    return sorted(out)


def _rule_args(rule: str) -> dict[str, Any]:
    """pyroute2 arguments of a ``from <cidr>`` rule of the wireguard table."""
    args: dict[str, Any] = {"family": socket.AF_INET, "table": WG_TABLE, "priority": WG_RULE_PRIORITY}
    source = rule.split(" ", 1)[1]
    if source != "all":
        address, plen = source.split("/")
        args.update(src=address, src_len=int(plen))
    return args


def _cidr_order(cidr: str) -> Any:
    return ipaddress.ip_network(cidr)


class WireguardOverlay(OverlayResource):
    """One WireGuard device, its key file, a route per peer and the policy rule of its table."""

    backend = "wireguard"
    link_kind = "wireguard"
    # outer IP 20 + UDP 8 + the data header 16 (type 4, receiver 4, counter 8) + the Poly1305 tag 16; its
    # padding to 16 bytes never makes a packet larger than the device MTU.
    overhead = 60
    default_name = "wg0"
    default_port = 51820
    states = ("present", "absent", "key")
    options = ("key_file", "remove_key")
    peer_options = ("public_key",)

    @classmethod
    def normalise_options(cls, cfg: dict[str, Any], spec: dict[str, Any], obj: str) -> None:
        key_file = spec.get("key_file")
        if key_file is None:
            key_file = default_key_file(cfg["name"], cfg["netns"])
        else:
            key_file = str(key_file)
            if not key_file.startswith("/") or os.path.normpath(key_file) != key_file or key_file.endswith("/"):
                raise NetlabError(
                    f"{obj}: key_file {key_file!r} is not a clean absolute path: write it like /etc/wg0.key"
                )
        cfg["key_file"] = key_file
        cfg["remove_key"] = bool(spec.get("remove_key"))
        if cfg["remove_key"] and cfg["state"] != "absent":
            raise NetlabError(f"{obj}: remove_key applies to state absent only: drop it")

    @classmethod
    def normalise_peer(cls, entry: dict[str, Any], peer: dict[str, Any], what: str, cfg: dict[str, Any]) -> None:
        if not peer.get("public_key"):
            raise NetlabError(
                f"{what} has no public_key: the wireguard backend needs every peer's public key (run this module "
                "with state=key on the peer, it returns public_key)"
            )
        pkey = normalise_key(peer["public_key"], f"{what}: public_key {peer['public_key']!r}")
        for other in cfg["peers"]:
            if other["public_key"] == pkey:
                raise NetlabError(
                    f"{what}: public_key {pkey} is also the key of peer {other['name']!r}: every node needs its own "
                    "key (nodes that share a file system need their own key_file)"
                )
        entry["public_key"] = pkey

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self._own_key: str | None = None  # the public key of the key file, when it exists

    def check_host(self) -> None:
        """The kernel has WireGuard; the key file, when it exists, holds a key that no peer has."""
        if self.state == "absent":
            if self.cfg["remove_key"]:
                read_key_file(self.cfg["key_file"], self.key)  # only ever removes a key file
            return
        if not wireguard_supported():
            raise NetlabError(
                f"{self.key}: the kernel of {self.node} has no WireGuard support (modprobe wireguard failed / "
                "link type unknown): use backend vxlan or udp, or a kernel with CONFIG_WIREGUARD"
            )
        key = read_key_file(self.cfg["key_file"], self.key)
        self._own_key = encode_key(public_key(key[0])) if key else None
        for peer in self.cfg["peers"]:
            if peer["public_key"] == self._own_key:
                raise NetlabError(
                    f"{self.key}: peer {peer['name']!r} has this node's own public key {self._own_key} (key_file "
                    f"{self.cfg['key_file']}): every node needs its own key; nodes that share a file system (the "
                    "built-in lab's) need a key_file of their own, for example under /run"
                )

    def _read_key(self) -> dict[str, Any] | None:
        key = read_key_file(self.cfg["key_file"], self.key)
        if key is None:
            return None
        return {"file": self.cfg["key_file"], "mode": f"{key[1]:04o}", "public_key": encode_key(public_key(key[0]))}

    def read_backend(self, session: Session, ipr: Any) -> State:
        key = self._read_key()
        device = None
        rules = None if self.state == "key" else []
        if rules is not None and ipr is not None:
            rules = _wg_rules(ipr)
        # state=key looks at the key file only: the device is neither read nor changed.
        if self.state != "key" and ipr is not None and self.existing_devs(ipr):
            msg = find_link(ipr, self.name)
            index = msg.index
            with session.inside(self.netns):
                wg = open_wireguard()
            try:
                config = read_device(wg, self.name)
            finally:
                wg.close()
            names = {p["public_key"]: p["name"] for p in self.cfg["peers"]}
            peers = {
                names.get(pkey, pkey): {"public_key": pkey, **entry} for pkey, entry in sorted(config["peers"].items())
            }
            device = {
                "public_key": config["public_key"],
                "port": config["port"],
                "mtu": msg.mtu,
                "up": msg.up,
                "addresses": ipv4_addresses(ipr, index),
                "peers": dict(sorted(peers.items())),
                "routes": sorted(route_dest(r) for r in device_routes(ipr, index)),
                "underlay_routes": sorted(route_dest(r) for r in _table_routes(ipr, index, WG_TABLE)),
            }
        if key is None and device is None and not rules:
            return None
        return {"backend": "wireguard", "name": self.name, "key": key, "device": device, "rules": rules}

    def want(self, current: State) -> State:
        cfg = self.cfg
        have_key = (current or {}).get("key")
        if self.state == "absent":
            key = None if cfg["remove_key"] else have_key
            if key is None:
                return None
            return {"backend": "wireguard", "name": self.name, "key": key, "device": None, "rules": []}
        key = {
            "file": cfg["key_file"],
            "mode": f"{KEY_MODE:04o}",
            "public_key": have_key["public_key"] if have_key else NEW_KEY,
        }
        rules: list[str] | None = None  # state=key leaves the rules as they are
        if self.state == "key":
            device = None
        else:
            rules = [f"from {cfg['subnet']}"]
            device = {
                "public_key": key["public_key"],
                "port": cfg["port"],
                "mtu": self._mtu,
                "up": True,
                "addresses": [f"{vtep_address(cfg['subnet'])}/32"],
                "peers": {
                    p["name"]: {
                        "public_key": p["public_key"],
                        "endpoint": f"{p['address']}:{cfg['port']}",
                        "allowed_ips": sort_cidrs([p["subnet"], f"{p['address']}/32"]),
                    }
                    for p in cfg["peers"]
                },
                "routes": sorted(p["subnet"] for p in cfg["peers"]),
                "underlay_routes": sorted((f"{p['address']}/32" for p in cfg["peers"]), key=_cidr_order),
            }
        return {"backend": "wireguard", "name": self.name, "key": key, "device": device, "rules": rules}

    def apply_backend(self, session: Session, current: State, desired: State) -> None:
        have = current or {}
        want = desired or {}
        ipr = session.ipr(self.netns)
        # The key file first: it is all that state=key asks, and the device needs it.
        key_file = self.cfg["key_file"]
        if want.get("key") is None:
            if have.get("key") is not None:
                remove_key_file(key_file)
        elif have.get("key") is None:
            write_key_file(key_file, generate_private_key())
        elif have["key"]["mode"] != want["key"]["mode"]:
            os.chmod(key_file, KEY_MODE)
        device = want.get("device")
        if self.state == "key":
            return
        msg = find_link(ipr, self.name) if ipr is not None and have.get("device") is not None else None
        if device is None:
            if msg is not None:
                ipr.link("del", index=msg.index)  # its peers, routes (in every table) and addresses go with it
            self._set_rules(ipr, have.get("rules") or [], [])
            return
        private = read_key_file(key_file, self.key)
        if private is None:  # pragma: no cover - written above
            raise NetlabError(f"{self.key}: key_file {key_file} vanished while the overlay was built")
        own = encode_key(public_key(private[0]))
        before = have.get("device") if msg is not None else None
        if msg is None:
            ipr.link("add", ifname=self.name, kind="wireguard")
            msg = find_link(ipr, self.name)
            ipr.link("set", index=msg.index, ifalias=MARK)
            before = None
        index = msg.index
        if msg.mtu != device["mtu"]:
            ipr.link("set", index=index, mtu=device["mtu"])
        self.set_addresses(ipr, index, device["addresses"])
        with session.inside(self.netns):
            wg = open_wireguard()
        try:
            settings: dict[str, Any] = {}
            if (before or {}).get("public_key") != own:
                settings["private_key"] = encode_key(private[0])  # to the kernel only, never returned
            if (before or {}).get("port") != device["port"]:
                settings["listen_port"] = device["port"]
            if settings:
                set_device(wg, self.name, **settings)
            old_peers = {p["public_key"]: p for p in (before or {}).get("peers", {}).values()}
            new_peers = {p["public_key"]: p for p in device["peers"].values()}
            for pkey in sorted(set(old_peers) - set(new_peers)):
                set_device(wg, self.name, peer={"public_key": pkey, "remove": True})
            for pkey, peer in new_peers.items():
                old = old_peers.get(pkey)
                if old is not None and (old["endpoint"], old["allowed_ips"]) == (peer["endpoint"], peer["allowed_ips"]):
                    continue
                address, port = peer["endpoint"].rsplit(":", 1)
                spec = {
                    "public_key": pkey,
                    "endpoint_addr": address,
                    "endpoint_port": int(port),
                    "allowed_ips": peer["allowed_ips"],
                    "replace_allowed_ips": True,
                }
                set_device(wg, self.name, peer=spec)
        finally:
            wg.close()
        ipr.link("set", index=index, state="up")
        self.converge_device_routes(session, ipr, index, self.name, device["routes"])
        table = str(WG_TABLE)
        for route in _table_routes(ipr, index, WG_TABLE):
            if route_dest(route) not in device["underlay_routes"]:
                self.converge_sub(session, self.route(route_dest(route), state="absent", table=table))
        for dest in device["underlay_routes"]:
            spec = {"dev": self.name, "scope": "link", "proto": "static", "table": table}
            self.converge_sub(session, self.route(dest, **spec))
        self._set_rules(ipr, have.get("rules") or [], want["rules"])

    @staticmethod
    def _set_rules(ipr: Any, have: list[str], want: list[str]) -> None:
        """The policy rules of the tunnel's table: ``from <subnet>`` entries, priority WG_RULE_PRIORITY."""
        if ipr is None:
            return
        for rule in have:
            if rule not in want:
                ipr.rule("del", **_rule_args(rule))
        for rule in want:
            if rule not in have:
                ipr.rule("add", **_rule_args(rule))

    def _current_public_key(self) -> str | None:
        """The key file's public key now (None when there is none: check mode before the key is made)."""
        try:
            key = read_key_file(self.cfg["key_file"], self.key)
        except NetlabError:
            return None
        return encode_key(public_key(key[0])) if key else None

    def result(self, after: State) -> dict[str, Any]:
        out = super().result(after)
        out["key_file"] = self.cfg["key_file"]
        out["public_key"] = self._current_public_key()
        if after and out["public_key"]:  # the run made the key: its public key replaces the placeholder
            after = dict(after)
            for part in ("key", "device"):
                if after.get(part) and after[part].get("public_key") == NEW_KEY:
                    after[part] = dict(after[part], public_key=out["public_key"])
            out["overlay"] = after
        return out
