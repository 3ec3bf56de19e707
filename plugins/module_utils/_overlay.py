# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource model: this node's end of an overlay among the nodes of a play (stage 4 of the talk), the shared part.

:class:`OverlayResource` is the base of the three backends, each in its own file: ``_overlay_udp.py``
(the talk's user-space UDP/TUN tunnels), ``_overlay_vxlan.py`` (flannel's VXLAN) and ``_overlay_wireguard.py``;
``_overlay_backends.py`` picks one (:func:`select_backend`). Here: the validation of the module's
parameters (:func:`normalise`), the derivations every node makes for every peer (:func:`vtep_mac`,
:func:`vtep_address`), the underlay MTU, and the checks every backend shares (never touch a device this
module did not create). A backend implements ``read_backend``, ``want`` and ``apply_backend``; its state
shape is described in its file (``None`` when nothing of the overlay exists).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._link import find_link, link_kind, plan_link
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_message,
    keyed,
    validate_netns,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import Link, Route
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State, converge_one
from ansible_collections.cnfs.netlab.plugins.module_utils._route import RouteResource
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ifname

# The options that only some backends take (a backend lists its own in ``options``); the others refuse them.
BACKEND_OPTIONS = ("vni", "key_file", "remove_key")
FALLBACK_UNDERLAY_MTU = 1500
MARK = "cnfs.netlab overlay"  # the ifalias of every device this module creates
RUN_DIR = "/run/cnfs-netlab/overlay"
VTEP_MAC_PREFIX = (0x02, 0xCF)  # locally administered, unicast

# Kernel constants
RTPROT_KERNEL = 2
MAIN_TABLE = 254


# ---------------------------------------------------------------------------------- pure helpers
def vtep_mac(underlay: str) -> str:
    """The VTEP MAC of the node with this underlay address: 02:cf + the four bytes of the IPv4 address.

    Every node computes every peer's MAC from the peer's underlay address: no round trip, no learning.
    """
    packed = ipaddress.IPv4Address(underlay).packed
    return ":".join(f"{b:02x}" for b in (*VTEP_MAC_PREFIX, *packed))


def vtep_address(subnet: str) -> str:
    """The VTEP address of a node: the network address of its container subnet (flannel's choice)."""
    return str(ipaddress.IPv4Network(subnet).network_address)


def node_label(netns: str | None) -> str:
    """How messages name the node: its namespace, or the host name of the managed node."""
    return f"node {netns!r}" if netns else f"node {socket.gethostname()!r}"


def state_dir(netns: str | None) -> str:
    """Where pid and log files live: one directory per namespace, so emulated nodes never collide."""
    if not netns:
        return RUN_DIR
    safe = netns.strip("/").replace("/", "_") if netns.startswith("/") else netns
    return os.path.join(RUN_DIR, safe)


def _ipv4(value: Any, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value).strip()))
    except ValueError:
        raise NetlabError(f"{what} {value!r} is not an IPv4 address (the overlay runs over IPv4)") from None


def _net4(value: Any, what: str) -> str:
    text = str(value).strip()
    if "/" not in text:
        raise NetlabError(f"{what} {value!r} has no prefix length: write it like 172.16.1.0/24")
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise NetlabError(f"{what} {value!r} is not an IPv4 network: {exc}") from None
    if net.prefixlen > 30:
        raise NetlabError(f"{what} {value!r} is too small for containers: use a /30 or larger")
    return net.with_prefixlen


def bounded_int(value: Any, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise NetlabError(f"{what} {value!r} is not a number") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise NetlabError(f"{what} {value!r} is out of range: use {low}..{high}")
    return number


# ---------------------------------------------------------------------------------- kernel helpers
def fresh(session: Session, netns: str | None) -> None:
    """Forget cached netlink reads of ``netns`` after a change made outside netlink (a tun created by ioctl,
    its tunnel process attaching to it): the whole-node apply's session caches link dumps."""
    drop = getattr(session, "drop_caches", None)
    if drop is not None:
        drop(netns)


def alias(msg: Link) -> str | None:
    return msg.alias


def ipv4_addresses(ipr: Any, index: int) -> list[str]:
    return sorted(f"{a.address}/{a.prefixlen}" for a in ipr.addresses(family=socket.AF_INET, index=index))


def device_routes(ipr: Any, index: int) -> list[Route]:
    """IPv4 routes of the main table through the device that are not the kernel's own."""
    return [
        r
        for r in ipr.routes(family=socket.AF_INET, table=MAIN_TABLE)
        if r.oif == index and r.proto != RTPROT_KERNEL and r.type == 1
    ]


def route_dest(route: Route) -> str:
    return f"{route.dst or '0.0.0.0'}/{route.dst_len}"


def link_mtu(ipr: Any, index: int | None, what: str) -> int:
    """The MTU of the link ``index``; NetlabError naming ``what`` when it is gone."""
    link = ipr.get_link(index=index) if index else None
    if link is None:
        raise NetlabError(f"{what}: the interface with index {index} disappeared during the run")
    return int(link.mtu)


def _backends() -> list[type[OverlayResource]]:
    """The backend classes: the base's subclasses (every backend module imports this one)."""
    return OverlayResource.__subclasses__()


def _owners(takes: Any) -> str:
    """The backends for which ``takes(cls)`` holds, for messages: ``wireguard``, ``udp or vxlan`` ("": none)."""
    return " or ".join(c.backend for c in _backends() if takes(c))


# ---------------------------------------------------------------------------------- the base
class OverlayResource(Resource):
    """This node's end of the overlay; a backend class sets the class attributes and the backend steps."""

    kind = "overlay"
    backend = ""  # the backend's name, as in the module's ``backend`` option
    link_kind = ""  # the kind of the devices it creates
    overhead = 0  # bytes the underlay adds to each inner packet
    default_name = ""  # of the device (udp: the prefix of its devices)
    default_port = 0  # UDP
    states: tuple[str, ...] = ("present", "absent")
    options: tuple[str, ...] = ()  # which of BACKEND_OPTIONS it takes
    peer_options: tuple[str, ...] = ()  # keys of a peer beyond name, address and subnet

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.cfg = self.normalise(spec)
        self.state = self.cfg["state"]
        self.name: str = self.cfg["name"]
        self._mtu: int | None = None  # the tunnel MTU, resolved by read()
        # read() could only estimate the MTU (earlier resources of the run still pending): why, for apply()
        self._mtu_estimated: NetlabError | None = None
        self.changes: list[dict[str, Any]] = []  # the shared-model resources (routes, sysctls) apply changed

    @property
    def netns(self) -> str | None:
        return self.cfg["netns"]

    @property
    def key(self) -> str:
        return keyed(f"overlay {self.backend} {self.name}", self.netns)

    @property
    def node(self) -> str:
        return node_label(self.netns)

    # -- the parameters ---------------------------------------------------------------------
    @classmethod
    def normalise(cls, spec: dict[str, Any]) -> dict[str, Any]:
        """Validate and normalise the module parameters (pure). Raises NetlabError naming the bad input.

        The shared options are checked here; a backend's own (``options``, ``peer_options``) by its
        ``normalise_options`` and ``normalise_peer``. Options of another backend are refused.
        """
        state = spec.get("state") or "present"
        name = spec.get("name") or cls.default_name
        obj = f"overlay {cls.backend} {name}"
        if state not in cls.states:
            owners = _owners(lambda c: state in c.states)
            if owners:
                raise NetlabError(f"{obj}: state {state} applies to backend {owners} only")
            every = list(dict.fromkeys(s for c in (cls, *_backends()) for s in c.states))
            raise NetlabError(f"{obj}: state {state!r} is unknown: use {', '.join(every[:-1])} or {every[-1]}")
        netns = spec.get("netns")
        validate_netns(netns)
        ifname(name, f"{obj}: device")
        for option in BACKEND_OPTIONS:
            value = spec.get(option)
            if option not in cls.options and value is not None and value is not False:  # remove_key defaults to false
                owners = _owners(lambda c, o=option: o in c.options)
                raise NetlabError(f"{obj}: {option} applies to backend {owners} only: drop it")
        cfg: dict[str, Any] = {
            "backend": cls.backend,
            "name": name,
            "state": state,
            "netns": netns,
            "port": bounded_int(spec["port"], f"{obj}: port", 1, 65535)
            if spec.get("port") is not None
            else cls.default_port,
            "vni": None,
            "mtu": bounded_int(spec["mtu"], f"{obj}: mtu", 68, 65535) if spec.get("mtu") is not None else None,
            "underlay_dev": ifname(spec.get("underlay_dev"), f"{obj}: underlay_dev"),
            "local": None,
            "subnet": None,
            "peers": [],
            "key_file": None,
            "remove_key": False,
        }
        cls.normalise_options(cfg, spec, obj)
        if state != "present":
            return cfg
        if not spec.get("local"):
            raise NetlabError(f"{obj}: local (this node's underlay address) is required when state is present")
        if not spec.get("subnet"):
            raise NetlabError(f"{obj}: subnet (this node's container subnet) is required when state is present")
        local = cfg["local"] = _ipv4(spec["local"], f"{obj}: local")
        subnet = cfg["subnet"] = _net4(spec["subnet"], f"{obj}: subnet")
        peers_in = spec.get("peers") or []
        if not isinstance(peers_in, list):
            raise NetlabError(f"{obj}: peers must be a list of {{name, address, subnet}}")
        nets = {subnet: "this node"}
        names: set[str] = set()
        addresses: set[str] = {local}
        own_entry = False
        known = {"name", "address", "subnet", *(o for c in _backends() for o in c.peer_options)}
        for number, peer in enumerate(peers_in, 1):
            what = f"{obj}: peers[{number}]"
            if not isinstance(peer, dict):
                raise NetlabError(f"{what} must be a dict with name, address and subnet, not {peer!r}")
            unknown = sorted(k for k in set(peer) - known if peer[k] is not None)
            if unknown:
                raise NetlabError(
                    f"{what} has unknown keys {', '.join(unknown)}: use name, address, subnet"
                    + "".join(f" (and {o})" for o in sorted(known - {"name", "address", "subnet"}))
                )
            for option in sorted(known - {"name", "address", "subnet"} - set(cls.peer_options)):
                if peer.get(option) is not None:
                    owners = _owners(lambda c, o=option: o in c.peer_options)
                    raise NetlabError(f"{what}: {option} applies to backend {owners} only: drop it")
            missing = [k for k in ("name", "address", "subnet") if not peer.get(k)]
            if missing:
                raise NetlabError(f"{what} lacks {', '.join(missing)}: every peer needs name, address and subnet")
            pname = str(peer["name"])
            what = f"{obj}: peer {pname!r}"
            address = _ipv4(peer["address"], f"{what}: address")
            psubnet = _net4(peer["subnet"], f"{what}: subnet")
            if address == local:  # this node's own entry of the inventory
                own_entry = True
                if psubnet != subnet:
                    raise NetlabError(
                        f"{what} has this node's address {local} but subnet {psubnet}, not {subnet}: fix the inventory"
                    )
                continue
            if pname in names:
                raise NetlabError(f"{what} is listed twice: peer names must be unique")
            if address in addresses:
                raise NetlabError(
                    f"{what}: address {address} is used by another peer: underlay addresses must be unique"
                )
            for other, owner in nets.items():
                if ipaddress.IPv4Network(psubnet).overlaps(ipaddress.IPv4Network(other)):
                    raise NetlabError(
                        f"{what}: subnet {psubnet} overlaps {other} of {owner}; container subnets must not overlap: "
                        "give each node a subnet of its own"
                    )
            entry = {"name": pname, "address": address, "subnet": psubnet}
            cls.normalise_peer(entry, peer, what, cfg)
            names.add(pname)
            addresses.add(address)
            nets[psubnet] = f"peer {pname!r}"
            cfg["peers"].append(entry)
        if peers_in and not own_entry:
            raise NetlabError(
                f"{obj}: peers has no entry of this node (none with address {local}, the local address); list every "
                "node of the overlay, this one included, with the same peers on every node, or correct local"
            )
        cfg["peers"].sort(key=lambda p: p["name"])
        return cfg

    @classmethod
    def normalise_options(cls, cfg: dict[str, Any], spec: dict[str, Any], obj: str) -> None:
        """Check and set the backend's own options (``options``) and name rules in ``cfg``."""

    @classmethod
    def normalise_peer(cls, entry: dict[str, Any], peer: dict[str, Any], what: str, cfg: dict[str, Any]) -> None:
        """Check a peer for the backend and add its own keys (``peer_options``) to ``entry``.

        ``cfg["peers"]`` holds the peers accepted so far, in the order given.
        """

    # -- check ------------------------------------------------------------------------------
    def check(self, session: Session) -> None:
        if self.state == "present":
            session.require_netns(self.netns, self.key)
        self.check_host()
        if self.state == "key":  # the key file only: the device is left as it is
            return
        if not session.netns_exists(self.netns):
            return
        ipr = session.ipr(self.netns)
        self._check_foreign(ipr)
        self._plan(session, ipr)

    def check_host(self) -> None:
        """What the node itself must offer (a program, a device, kernel support); raise NetlabError."""

    def wanted_devs(self) -> list[str]:
        return [] if self.state == "absent" else [self.name]

    def existing_devs(self, ipr: Any) -> list[str]:
        """Names of the devices of this overlay that exist now."""
        if ipr is None:
            return []
        msg = find_link(ipr, self.name)
        if msg is not None and link_kind(msg) == self.link_kind and alias(msg) == MARK:
            return [self.name]
        return []

    def _check_foreign(self, ipr: Any) -> None:
        """A device with one of our names that this module did not create is never touched."""
        for dev in self.wanted_devs():
            msg = find_link(ipr, dev)
            if msg is None:
                continue
            if link_kind(msg) != self.link_kind or alias(msg) != MARK:
                raise NetlabError(
                    f"{self.key}: {dev} already exists in {self.node} as a {link_kind(msg)} this module did not "
                    f"create: delete it or choose another name"
                )

    def _plan(self, session: Session, ipr: Any) -> None:
        for dev in self.wanted_devs():
            plan_link(session, self.netns, dev, self.link_kind)
        for dev in self.existing_devs(ipr):
            if dev not in self.wanted_devs():
                plan_link(session, self.netns, dev, None)

    # -- underlay ---------------------------------------------------------------------------
    def _underlay_mtu(self, session: Session) -> int:
        """The smallest MTU of the underlay devices towards the peers (or of ``underlay_dev``).

        A failure falls back to 1500 when earlier resources of the run will still change links of this
        namespace (a whole-node apply in check mode): the value is then an estimate, and apply() refuses it.
        """
        try:
            return self._resolve_underlay_mtu(session)
        except NetlabError as exc:
            pending = not session.netns_exists(self.netns) or session.plan.touches(self.netns)
            if not pending:
                raise
            self._mtu_estimated = exc
            return FALLBACK_UNDERLAY_MTU

    def _resolve_underlay_mtu(self, session: Session) -> int:
        ipr = session.ipr(self.netns)
        if ipr is None:
            raise NetlabError(f"{self.key}: network namespace {self.netns!r} does not exist")
        local = self.cfg["local"]
        if not any(a.address == local for a in ipr.addresses(family=socket.AF_INET)):
            raise NetlabError(
                f"{self.key}: local {local} is not an address of {self.node}: give the node's underlay address "
                "(or assign it first with cnfs.netlab.address)"
            )
        if self.cfg["underlay_dev"]:
            msg = find_link(ipr, self.cfg["underlay_dev"])
            if msg is None:
                raise NetlabError(
                    f"{self.key}: underlay_dev {self.cfg['underlay_dev']} does not exist in {self.node}: "
                    "name the device that carries the underlay, or leave underlay_dev out"
                )
            return int(msg.mtu)
        mtus = []
        for peer in self.cfg["peers"]:
            try:
                route = ipr.route_to(peer["address"])
            except NetlinkError as exc:
                raise NetlabError(
                    f"{self.key}: peer {peer['name']!r} ({peer['address']}) is unreachable from {self.node} "
                    f"({kernel_message(exc)}): fix the underlay first"
                ) from None
            mtus.append(link_mtu(ipr, route.oif, self.key))
        if not mtus:  # no peers yet: the device that holds the local address
            for addr in ipr.addresses(family=socket.AF_INET):
                if addr.address == local:
                    mtus.append(link_mtu(ipr, addr.index, self.key))
        return min(mtus)

    def _tunnel_mtu(self, session: Session) -> int:
        if self.cfg["mtu"] is not None:
            return self.cfg["mtu"]
        return self._underlay_mtu(session) - self.overhead

    # -- the steps --------------------------------------------------------------------------
    def read(self, session: Session) -> State:
        self._mtu_estimated = None
        if self.state == "present":
            self._mtu = self._tunnel_mtu(session)
        return self.read_backend(session, session.ipr(self.netns))

    def read_backend(self, session: Session, ipr: Any) -> State:
        """The backend's state; ``ipr`` is None when the namespace does not exist."""
        raise NotImplementedError

    def apply(self, session: Session, current: State, desired: State) -> None:
        if self._mtu_estimated is not None:
            # ``desired`` holds an estimated MTU and nothing changed since read(): the underlay's error stands.
            raise self._mtu_estimated
        self.changes = []
        self.apply_backend(session, current, desired)

    def apply_backend(self, session: Session, current: State, desired: State) -> None:
        raise NotImplementedError

    def result(self, after: State) -> dict[str, Any]:
        out: dict[str, Any] = {"overlay": after or {}}
        if self.changes:
            out["changes"] = self.changes
        return out

    # -- shared by the backends -------------------------------------------------------------
    def converge_sub(self, session: Session, resource: Resource) -> None:
        """Bring one shared-model resource (a route, a sysctl) to its state through converge's own step;
        a change is recorded in ``changes`` (returned by the module)."""
        resource.check(session)
        before, after = converge_one(session, resource, False, [])
        if before != after:
            self.changes.append({"resource": resource.key, "before": before, "after": after})

    def route(self, dest: str, state: str = "present", **attrs: Any) -> RouteResource:
        return RouteResource({"netns": self.netns, "dest": dest, "state": state, **attrs})

    def converge_device_routes(self, session: Session, ipr: Any, index: int, dev: str, wanted: list[str]) -> None:
        """The main table's routes through ``dev``: exactly ``wanted`` (link scope, proto static)."""
        for have in device_routes(ipr, index):
            if route_dest(have) not in wanted:
                self.converge_sub(session, self.route(route_dest(have), state="absent"))
        for dest in wanted:
            self.converge_sub(session, self.route(dest, dev=dev, scope="link", proto="static"))

    @staticmethod
    def set_addresses(ipr: Any, index: int, wanted: list[str]) -> None:
        """The device's IPv4 addresses: exactly ``wanted``."""
        have = ipv4_addresses(ipr, index)
        for cidr in have:
            if cidr not in wanted:
                address, plen = cidr.split("/")
                ipr.addr("del", index=index, address=address, prefixlen=int(plen))
        for cidr in wanted:
            if cidr not in have:
                address, plen = cidr.split("/")
                ipr.addr("add", index=index, address=address, prefixlen=int(plen))
