# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource models of links: veth pairs, bridges, and the settings of existing interfaces.

State shapes (the same dicts the modules take, so that netlink_info can return them and
the whole-node apply can feed them back):

``VethResource``
    ``{"name", "netns", "peer", "peer_netns", "mtu", "up", "bridge"}``. ``mtu`` and ``up`` are
    those of both ends (``None`` when the two ends differ); ``bridge`` is the master of end A
    (``""`` when it has none); ``peer_netns`` is the string given for it when it names the
    peer's namespace, else the namespace found holding the peer.
``BridgeResource``
    ``{"name", "netns", "mtu", "stp", "up", "ports"}``, ``ports`` sorted.
``LinkResource``
    ``{"name", "netns", "up", "mtu", "master"}``, ``master`` is ``""`` when the link has none.

Input options left out (``None``) keep their current values. Links that earlier resources of
the same run will create or delete are recorded in the run's plan (``session.plan``, _plan.py),
so that a bridge's ports or a veth's
bridge can be validated against the state the run is heading to, before anything changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Optional

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_message,
    list_netns,
    validate_netns,
    where,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import Link
from ansible_collections.cnfs.netlab.plugins.module_utils._plan import UNPLANNED, ns_key
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State, merge
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ifname

NSID_NOT_ASSIGNED = (-1, 0xFFFFFFFF)
ETH_MIN_MTU = 68
ETH_MAX_MTU = 65535
# Kinds of link the kernel lets other links join (IFLA_MASTER).
MASTER_KINDS = ("bridge", "bond", "team", "vrf")
DEFAULT_MTU = 1500  # ETH_DATA_LEN: what the kernel gives a new veth or an empty bridge

VETH_KEYS = ("name", "netns", "peer", "peer_netns", "mtu", "up", "bridge")
BRIDGE_KEYS = ("name", "netns", "mtu", "stp", "up", "ports")
LINK_KEYS = ("name", "netns", "up", "mtu", "master")


# ---------------------------------------------------------------------------------- helpers
def _boolean(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    from ansible.module_utils.parsing.convert_bool import boolean

    try:
        return boolean(value, strict=True)
    except TypeError:
        raise NetlabError(f"{what} must be a boolean (true/false), not {value!r}") from None


def mtu_value(value: Any, what: str, low: int = ETH_MIN_MTU, high: int | None = ETH_MAX_MTU) -> int | None:
    """An MTU as an int within ``low..high`` (``high`` None: no upper limit), or None when not given."""
    if value is None:
        return None
    try:
        mtu = int(value)
    except (TypeError, ValueError):
        raise NetlabError(f"{what}: mtu {value!r} is not a number") from None
    if isinstance(value, bool) or mtu < low or (high is not None and mtu > high):
        upper = f"..{high}" if high is not None else " or more"
        raise NetlabError(f"{what}: mtu {value!r} is out of range; use {low}{upper}")
    return mtu


def find_link(ipr: Any | None, name: str) -> Link | None:
    """The link called ``name`` on the handle, or None (also when the namespace does not exist)."""
    return None if ipr is None else ipr.get_link(name=name)


def link_kind(msg: Link) -> str:
    """The rtnl kind of a link ('veth', 'bridge', ...; 'device' for one without a kind, like lo or eth0)."""
    return msg.kind or "device"


def master_name(ipr: Any, msg: Link) -> str:
    """Name of the link's master (bridge, bond, vrf), '' when it has none."""
    master = ipr.get_link(index=msg.master) if msg.master else None
    return master.name if master is not None else ""


def plan_link(session: Session, netns: str | None, name: str, kind: str | None) -> None:
    """Record that ``name`` in ``netns`` will exist as a link of ``kind`` after this resource (None: be gone)."""
    session.plan.set_link(netns, name, kind)


def link_kind_will_be(session: Session, netns: str | None, name: str) -> str | None:
    """The kind of link ``name`` in ``netns`` once the earlier resources of the run are applied; None: absent."""
    planned = session.plan.link(netns, name)
    if planned is not UNPLANNED:
        return planned
    if session.plan.namespace(netns) is False:
        return None
    msg = find_link(session.ipr(netns), name)
    return None if msg is None else link_kind(msg)


def link_will_exist(session: Session, netns: str | None, name: str) -> bool:
    """Whether ``name`` exists in ``netns`` now or will, by an earlier resource of the run."""
    return link_kind_will_be(session, netns, name) is not None


def _ns_ident(session: Session, netns: str | None) -> tuple[int, int] | None:
    try:
        fd = session.fd(netns)
    except (NetlabError, OSError):
        return None
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino)
    finally:
        os.close(fd)


def nsid_of(session: Session, netns: str | None, other: str | None) -> int | None:
    """The id under which ``netns`` knows the namespace ``other`` (None: not assigned, or either is missing)."""
    ipr = session.ipr(netns)
    if ipr is None:
        return None
    try:
        fd = session.fd(other)
    except (NetlabError, OSError):
        return None
    try:
        nsid = ipr.nsid_of(fd)
    except NetlinkError:
        return None
    finally:
        os.close(fd)
    return None if nsid is None or nsid in NSID_NOT_ASSIGNED else nsid


NsidOf = Callable[[Session, Optional[str], Optional[str]], Optional[int]]  # noqa: UP045 - a runtime alias


def peer_namespace(
    session: Session,
    netns: str | None,
    nsid: int | None,
    hints: tuple[str | None, ...] = (),
    nsid_of: NsidOf = nsid_of,
) -> tuple[str | None] | None:
    """The namespace a link in ``netns`` points to by IFLA_LINK_NETNSID ``nsid``, as ``(name,)``.

    ``nsid`` None means ``netns`` itself. The name is the first of ``hints``, ``netns``, the
    module's own namespace and the names under /run/netns that is that namespace; None when none
    is. This one search serves the veth models (``veth_peer``) and netlink_info (``_info.py``).
    """

    def candidates() -> Iterator[str | None]:
        # Lazily: the hints almost always name the peer's namespace, and listing /run/netns for
        # every veth makes a run with hundreds of namespaces quadratic.
        seen: list[str | None] = []
        for group in ((*hints, netns, None), list_netns):
            for cand in group() if callable(group) else group:
                if cand not in seen:
                    seen.append(cand)
                    yield cand

    if nsid is None:
        mine = _ns_ident(session, netns)
        for cand in candidates():
            if _ns_ident(session, cand) == mine:
                return (cand,)
        return None
    for cand in candidates():
        if nsid_of(session, netns, cand) == nsid:
            return (cand,)
    return None


def veth_peer(
    session: Session, netns: str | None, msg: Link, hints: tuple[str | None, ...] = ()
) -> tuple[Link, str | None] | None:
    """The peer end of the veth ``msg`` (living in ``netns``) and the namespace holding it.

    A veth reports its peer as an ifindex (IFLA_LINK) in the namespace with id IFLA_LINK_NETNSID
    (absent when both ends share a namespace); ``peer_namespace`` names that namespace.
    Returns None when the peer's namespace has no name this session can find.
    """
    index = msg.link
    if not index:
        return None
    found = peer_namespace(session, netns, msg.link_netnsid, hints)
    if found is None:
        return None
    peer_ns = found[0]
    peer_ipr = session.ipr(peer_ns)
    if peer_ipr is None:
        return None
    peer = peer_ipr.get_link(index=index)
    return None if peer is None else (peer, peer_ns)


def _same(a: Any, b: Any) -> Any:
    """The common value of both ends, None when they differ."""
    return a if a == b else None


def _check_master(session: Session, netns: str | None, master: str | None, obj: str, option: str) -> None:
    if not master:
        return
    kind = link_kind_will_be(session, netns, master)
    if kind is None:
        raise NetlabError(
            f"{obj}: {option} {master!r} does not exist {where(netns)}; create it first "
            f"(cnfs.netlab.bridge name={master}) or correct {option}"
        )
    if option == "bridge" and kind != "bridge":
        raise NetlabError(f"{obj}: {option} {master!r} {where(netns)} is a {kind}, not a bridge; name a bridge")
    if kind not in MASTER_KINDS:
        raise NetlabError(
            f"{obj}: {option} {master!r} {where(netns)} is a {kind}, which cannot have ports; "
            f"name a {', '.join(MASTER_KINDS[:-1])} or {MASTER_KINDS[-1]}, or use {option}='' for none"
        )


def _index(ipr: Any, name: str, netns: str | None, obj: str) -> int:
    msg = find_link(ipr, name)
    if msg is None:
        raise NetlabError(f"{obj}: interface {name!r} does not exist {where(netns)}")
    return msg.index


def _set(ipr: Any, index: int, obj: str, **attrs: Any) -> None:
    """RTM_NEWLINK set requests: the MTU first and alone, so that the kernel's refusal of it gets its own message."""
    if "mtu" in attrs:
        mtu = attrs.pop("mtu")
        try:
            ipr.link("set", index=index, mtu=mtu)
        except NetlinkError as exc:
            raise NetlabError(f"{obj}: the kernel refused mtu {mtu} ({kernel_message(exc)})") from None
    if attrs:
        ipr.link("set", index=index, **attrs)


def pin_bridge_mtu(ipr: Any, index: int, mtu: int, now: int | None, obj: str) -> None:
    """Set a new bridge's MTU so that the kernel keeps it when ports join or leave.

    The bridge driver keeps an MTU only when it was changed through a set request (it then stops
    following its ports); a set to the value the bridge already has is a no-op for the kernel, so
    such an MTU is first moved by one and then set.
    """
    if now == mtu:
        _set(ipr, index, obj, mtu=mtu + 1 if mtu < ETH_MAX_MTU else mtu - 1)
    _set(ipr, index, obj, mtu=mtu)


def _end_changes(
    ipr: Any, msg: Link, mtu: int | None, up: bool | None, master: str | None, netns: str | None, obj: str
) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if mtu is not None and msg.mtu != mtu:
        attrs["mtu"] = mtu
    if master is not None and master_name(ipr, msg) != master:
        attrs["master"] = _index(ipr, master, netns, obj) if master else 0
    if up is not None and msg.up != up:
        attrs["state"] = "up" if up else "down"
    return attrs


def _mac(value: Any, what: str) -> str | None:
    """A unicast Ethernet address, normalised to lower case with colons; None when not given."""
    if value is None:
        return None
    text = str(value).strip().lower().replace("-", ":")
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise NetlabError(f"{what} {value!r} is not a MAC address like 0a:58:ac:10:00:02")
    if int(parts[0], 16) & 1 or text == "00:00:00:00:00:00":
        raise NetlabError(f"{what} {value!r} is a multicast or zero address; use a unicast one (like 0a:58:...)")
    return text


def _ordered(state: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The state with its keys in the documented order (diffs read better)."""
    return {key: state.get(key) for key in keys}


def _check_state(spec: dict[str, Any], obj: str) -> str:
    state = spec.get("state") or "present"
    if state not in ("present", "absent"):
        raise NetlabError(f"{obj}: state {state!r} is not one of present, absent")
    return state


# ---------------------------------------------------------------------------------- veth
class _Unknown:
    def __repr__(self) -> str:
        return "<unknown namespace>"


_UNKNOWN = _Unknown()


class VethResource(Resource):
    """A veth pair: end ``name`` in ``netns`` and end ``peer`` in ``peer_netns`` (default: ``netns``).

    Both ends are created in their namespaces by one netlink request (no create-then-move window).
    An existing ``name`` that is not a veth, or whose peer is not ``peer`` in ``peer_netns``, is an
    error: nothing is recreated behind the user's back.
    """

    kind = "veth"

    def __init__(self, spec: dict[str, Any]) -> None:
        spec = {"up": True, **spec}
        super().__init__(spec)
        self.name = ifname(spec.get("name"), "veth")
        if self.name is None:
            raise NetlabError("veth: name is required")
        obj = self.key
        self.state = _check_state(spec, obj)
        validate_netns(spec.get("netns"), f"{obj}: netns")
        validate_netns(spec.get("peer_netns"), f"{obj}: peer_netns")
        self.peer_netns: str | None = spec.get("peer_netns") or spec.get("netns")
        self.peer = ifname(spec.get("peer"), f"{obj}: peer")
        if self.state == "present" and not self.peer:
            raise NetlabError(f"{obj}: peer is required with state=present; name the other end of the pair")
        if self.peer == self.name and ns_key(self.peer_netns) == ns_key(self.netns):
            raise NetlabError(
                f"{obj}: peer {self.peer!r} is the same interface as name; both ends are {where(self.netns)}, "
                "so give them different names or put the peer in another namespace (peer_netns)"
            )
        self.mtu = mtu_value(spec.get("mtu"), obj)
        self.up = _boolean(spec.get("up"), f"{obj}: up")
        bridge = spec.get("bridge")
        self.bridge: str | None = None if bridge is None else (ifname(bridge, f"{obj}: bridge") if bridge else "")
        self.mac = _mac(spec.get("mac"), f"{obj}: mac")
        self.peer_mac = _mac(spec.get("peer_mac"), f"{obj}: peer_mac")

    def _macs(self, state: dict[str, Any], msg: Link | None, peer_msg: Link | None) -> dict[str, Any]:
        """The MACs, reported only when asked for (so that the state of a pair without them stays as it was)."""
        if self.mac is not None:
            state["mac"] = msg.mac if msg is not None else None
        if self.peer_mac is not None:
            state["peer_mac"] = peer_msg.mac if peer_msg is not None else None
        return state

    def _peer_text(self, peer: str | None, peer_netns: str | None) -> str:
        return f"{peer!r} {where(peer_netns)}"

    def check(self, session: Session) -> None:
        obj = self.key
        if self.state == "present":
            session.require_netns(self.netns, obj)
            session.require_netns(self.peer_netns, f"{obj}: peer {self.peer}")
        current = self._existing(session)
        if current is not None:
            peer, peer_ns = current
            if self.peer is not None and (
                peer != self.peer or peer_ns is _UNKNOWN or not self._same_ns(session, peer_ns, self.peer_netns)
            ):
                found = "in a namespace without a name" if peer_ns is _UNKNOWN else self._peer_text(peer, peer_ns)
                wanted = self._peer_text(self.peer, self.peer_netns)
                raise NetlabError(
                    f"{obj} already exists, but its peer is {found}, not {wanted}; "
                    f"delete the pair first (cnfs.netlab.veth name={self.name} state=absent) or correct peer/peer_netns"
                )
        elif self.state == "present":
            kind = link_kind_will_be(session, self.peer_netns, self.peer)
            if kind is not None:
                raise NetlabError(
                    f"{obj}: cannot create the pair, the peer name {self.peer!r} is already taken "
                    f"{where(self.peer_netns)} by a {kind}; delete that interface or choose another peer name"
                )
        if self.state == "present":
            _check_master(session, self.netns, self.bridge, obj, "bridge")
            plan_link(session, self.netns, self.name, "veth")
            plan_link(session, self.peer_netns, self.peer, "veth")
        else:
            plan_link(session, self.netns, self.name, None)
            if current is not None and current[1] is not _UNKNOWN:
                plan_link(session, current[1], current[0], None)

    def _same_ns(self, session: Session, a: str | None, b: str | None) -> bool:
        return ns_key(a) == ns_key(b) or _ns_ident(session, a) == _ns_ident(session, b)

    def _existing(self, session: Session) -> tuple[str | None, Any] | None:
        """(peer name, peer namespace or _UNKNOWN) of an existing end A; None when A does not (or will not) exist."""
        planned = session.plan.link(self.netns, self.name)
        if planned is not UNPLANNED:
            if planned is None:
                return None
            if planned != "veth":
                raise NetlabError(f"{self.key}: an earlier task of this run makes {self.name!r} a {planned}")
        if self.netns is not None and not session.netns_exists(self.netns):
            return None
        msg = find_link(session.ipr(self.netns), self.name)
        if msg is None:
            return None
        kind = link_kind(msg)
        if kind != "veth":
            raise NetlabError(
                f"{self.key}: an interface named {self.name!r} already exists {where(self.netns)} and is a "
                f"{kind}, not a veth; delete it or choose another name"
            )
        found = veth_peer(session, self.netns, msg, (self.peer_netns,))
        if found is None:
            return (None, _UNKNOWN)
        return (found[0].name, found[1])

    def read(self, session: Session) -> State:
        ipr = session.ipr(self.netns)
        msg = find_link(ipr, self.name)
        if msg is None:
            return None
        if link_kind(msg) != "veth":
            raise NetlabError(f"{self.key}: {self.name!r} is a {link_kind(msg)}, not a veth")
        found = veth_peer(session, self.netns, msg, (self.peer_netns,))
        state: dict[str, Any] = {
            "name": self.name,
            "netns": self.netns,
            "peer": None,
            "peer_netns": None,
            "mtu": msg.mtu,
            "up": msg.up,
            "bridge": master_name(ipr, msg),
        }
        if found is not None:
            peer_msg, peer_ns = found
            state["peer"] = peer_msg.name
            state["peer_netns"] = peer_ns
            state["mtu"] = _same(state["mtu"], peer_msg.mtu)
            state["up"] = _same(state["up"], peer_msg.up)
        return self._macs(state, msg, found[0] if found is not None else None)

    def want(self, current: State) -> State:
        if self.state == "absent":
            return None
        desired = {
            "name": self.name,
            "netns": self.netns,
            "peer": self.peer,
            "peer_netns": self.peer_netns,
            "mtu": self.mtu,
            "up": self.up,
            "bridge": self.bridge,
        }
        if current is None:  # what the kernel gives a new pair for what is left out
            current = {"mtu": DEFAULT_MTU, "up": False, "bridge": ""}
        keys = VETH_KEYS + tuple(k for k in ("mac", "peer_mac") if getattr(self, k) is not None)
        return _ordered(merge(current, {**desired, "mac": self.mac, "peer_mac": self.peer_mac}), keys)

    def apply(self, session: Session, current: State, desired: State) -> None:
        obj = self.key
        ipr = session.ipr(self.netns)
        if desired is None:
            msg = find_link(ipr, self.name)
            if msg is not None:
                ipr.link("del", index=msg.index)  # the kernel deletes the peer in the same operation
            return
        if current is None:
            self._create(session, desired)
        msg = find_link(ipr, self.name)
        if msg is None:
            raise NetlabError(f"{obj}: the pair vanished while it was being configured; run again")
        found = veth_peer(session, self.netns, msg, (self.peer_netns,))
        if found is None:
            raise NetlabError(f"{obj}: cannot find the peer {self.peer!r} {where(self.peer_netns)}")
        peer_msg, peer_ns = found
        peer_ipr = session.ipr(peer_ns)
        mtu, up = desired["mtu"], desired["up"]
        changes = _end_changes(ipr, msg, mtu, up, desired["bridge"], self.netns, obj)
        peer_changes = _end_changes(peer_ipr, peer_msg, mtu, up, None, peer_ns, obj)
        if self.mac is not None and msg.mac != self.mac:
            changes["address"] = self.mac
        if self.peer_mac is not None and peer_msg.mac != self.peer_mac:
            peer_changes["address"] = self.peer_mac
        _set(ipr, msg.index, obj, **changes)
        _set(peer_ipr, peer_msg.index, obj, **peer_changes)

    def _create(self, session: Session, desired: dict[str, Any]) -> None:
        """Both ends, each directly in its namespace, in one RTM_NEWLINK request."""
        fd_a = session.fd(self.netns)
        try:
            fd_b = session.fd(self.peer_netns)
        except NetlabError:
            os.close(fd_a)
            raise
        peer: dict[str, Any] = {"ifname": self.peer, "net_ns_fd": fd_b}
        extra: dict[str, Any] = {}
        if desired.get("mtu") is not None:
            peer["mtu"] = extra["mtu"] = desired["mtu"]
        if self.mac is not None:
            extra["address"] = self.mac
        if self.peer_mac is not None:
            peer["address"] = self.peer_mac
        try:
            session.ipr(self.netns).link("add", ifname=self.name, kind="veth", net_ns_fd=fd_a, peer=peer, **extra)
        except NetlinkError as exc:
            raise NetlabError(
                f"{self.key}: the kernel refused to create the pair with peer {self.peer!r} "
                f"{where(self.peer_netns)} ({kernel_message(exc)})"
            ) from None
        finally:
            os.close(fd_a)
            os.close(fd_b)

    def result(self, after: State) -> dict[str, Any]:
        return {"veth": after or {}}


# ---------------------------------------------------------------------------------- bridge
class BridgeResource(Resource):
    """A Linux bridge, its STP switch, its MTU, its up state and its ports (in the same namespace)."""

    kind = "bridge"

    def __init__(self, spec: dict[str, Any]) -> None:
        spec = {"up": True, "ports_exclusive": False, **spec}
        super().__init__(spec)
        self.name = ifname(spec.get("name"), "bridge")
        if self.name is None:
            raise NetlabError("bridge: name is required")
        obj = self.key
        self.state = _check_state(spec, obj)
        validate_netns(spec.get("netns"), f"{obj}: netns")
        self.mtu = mtu_value(spec.get("mtu"), obj)
        self.stp = _boolean(spec.get("stp"), f"{obj}: stp")
        self.up = _boolean(spec.get("up"), f"{obj}: up")
        self.exclusive = bool(_boolean(spec.get("ports_exclusive"), f"{obj}: ports_exclusive"))
        ports = spec.get("ports")
        if ports is not None and not isinstance(ports, list | tuple):
            raise NetlabError(f"{obj}: ports must be a list of interface names, not {ports!r}")
        self.ports: list[str] | None = None
        if ports is not None:
            self.ports = sorted({ifname(str(p), f"{obj}: port") or "" for p in ports})
            if self.name in self.ports:
                raise NetlabError(f"{obj}: a bridge cannot be its own port; remove {self.name!r} from ports")
        self._new_mtu = DEFAULT_MTU

    def check(self, session: Session) -> None:
        obj = self.key
        if self.state == "absent":
            kind = link_kind_will_be(session, self.netns, self.name)
            if kind not in (None, "bridge"):
                raise NetlabError(
                    f"{obj}: {self.name!r} {where(self.netns)} is a {kind}, not a bridge; refusing to delete it"
                )
            plan_link(session, self.netns, self.name, None)
            return
        session.require_netns(self.netns, obj)
        kind = link_kind_will_be(session, self.netns, self.name)
        if kind not in (None, "bridge"):
            raise NetlabError(
                f"{obj}: an interface named {self.name!r} already exists {where(self.netns)} and is a {kind}, "
                "not a bridge; delete it or choose another name"
            )
        port_mtus = []
        for port in self.ports or []:
            if not link_will_exist(session, self.netns, port):
                raise NetlabError(
                    f"{obj}: port {port!r} does not exist {where(self.netns)}; create it first "
                    "(for example cnfs.netlab.veth) or remove it from ports"
                )
            msg = find_link(session.ipr(self.netns), port)
            if msg is not None:
                port_mtus.append(msg.mtu)
        # With no mtu of its own, a bridge follows the smallest MTU of its ports.
        self._new_mtu = min(port_mtus) if port_mtus else DEFAULT_MTU
        plan_link(session, self.netns, self.name, "bridge")

    def read(self, session: Session) -> State:
        ipr = session.ipr(self.netns)
        msg = find_link(ipr, self.name)
        if msg is None:
            return None
        if link_kind(msg) != "bridge":
            raise NetlabError(f"{self.key}: {self.name!r} is a {link_kind(msg)}, not a bridge")
        stp = msg.data().get("stp_state")
        index = msg.index
        ports = sorted(link.name for link in ipr.links() if link.master == index)
        return {
            "name": self.name,
            "netns": self.netns,
            "mtu": msg.mtu,
            "stp": bool(stp),
            "up": msg.up,
            "ports": ports,
        }

    def want(self, current: State) -> State:
        if self.state == "absent":
            return None
        ports = self.ports
        if ports is not None and not self.exclusive and current is not None:
            ports = sorted(set(ports) | set(current["ports"]))
        desired = {
            "name": self.name,
            "netns": self.netns,
            "mtu": self.mtu,
            "stp": self.stp,
            "up": self.up,
            "ports": ports,
        }
        if current is None:  # what the kernel gives a new bridge for what is left out
            current = {"mtu": self._new_mtu, "stp": False, "up": False, "ports": []}
        return _ordered(merge(current, desired), BRIDGE_KEYS)

    def apply(self, session: Session, current: State, desired: State) -> None:
        obj = self.key
        ipr = session.ipr(self.netns)
        if desired is None:
            msg = find_link(ipr, self.name)
            if msg is not None:
                ipr.link("del", index=msg.index)  # the kernel releases its ports
            return
        created = current is None
        if current is None:
            # Created without an MTU: an MTU given in RTM_NEWLINK is not "set by the user" for the bridge
            # driver, which then follows its ports' MTU as soon as one joins (and the run reports a value
            # the kernel no longer has). An MTU set afterwards sticks, whatever the ports.
            ipr.link("add", ifname=self.name, kind="bridge", br_stp_state=1 if desired["stp"] else 0)
            current = self.read(session)
            if current is None:
                raise NetlabError(f"{obj}: the bridge vanished while it was being configured; run again")
        msg = find_link(ipr, self.name)
        if msg is None:
            raise NetlabError(f"{obj}: the bridge vanished while it was being configured; run again")
        index = msg.index
        if desired["stp"] != current["stp"]:
            ipr.link("set", index=index, kind="bridge", br_stp_state=1 if desired["stp"] else 0)
        if created and self.mtu is not None:
            pin_bridge_mtu(ipr, index, self.mtu, current["mtu"], obj)
        elif desired["mtu"] != current["mtu"]:
            _set(ipr, index, obj, mtu=desired["mtu"])
        for port in sorted(set(current["ports"]) - set(desired["ports"])):
            _set(ipr, _index(ipr, port, self.netns, obj), obj, master=0)
        for port in sorted(set(desired["ports"]) - set(current["ports"])):
            try:
                _set(ipr, _index(ipr, port, self.netns, obj), obj, master=index)
            except NetlinkError as exc:
                raise NetlabError(f"{obj}: the kernel refused port {port!r} ({kernel_message(exc)})") from None
        msg = find_link(ipr, self.name)
        if msg is not None and msg.mtu != desired["mtu"]:
            # A bridge without an MTU of the user's follows its ports: a port that joined moved it.
            _set(ipr, index, obj, mtu=desired["mtu"])
        if desired["up"] != current["up"]:
            _set(ipr, index, obj, state="up" if desired["up"] else "down")

    def result(self, after: State) -> dict[str, Any]:
        return {"bridge": after or {}}


# ---------------------------------------------------------------------------------- link
class LinkResource(Resource):
    """Settings of an existing interface (up, mtu, master). Never creates or deletes anything."""

    kind = "link"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.name = ifname(spec.get("name"), "link")
        if self.name is None:
            raise NetlabError("link: name is required")
        obj = self.key
        if (spec.get("state") or "present") != "present":
            raise NetlabError(f"{obj}: this resource only changes existing interfaces; it has no state=absent")
        self.state = "present"
        validate_netns(spec.get("netns"), f"{obj}: netns")
        self.mtu = mtu_value(spec.get("mtu"), obj, low=1, high=None)
        self.up = _boolean(spec.get("up"), f"{obj}: up")
        master = spec.get("master")
        self.master: str | None = None if master is None else (ifname(master, f"{obj}: master") if master else "")
        if self.master == self.name:
            raise NetlabError(f"{obj}: an interface cannot be its own master; name a bridge or use master=''")
        self.expect_kind: str | None = spec.get("kind") or None

    def check(self, session: Session) -> None:
        obj = self.key
        session.require_netns(self.netns, obj)
        if not link_will_exist(session, self.netns, self.name):
            raise NetlabError(
                f"{obj}: interface {self.name!r} does not exist {where(self.netns)}; this module only changes "
                "existing interfaces: create it first (cnfs.netlab.veth, cnfs.netlab.bridge) or correct name/netns"
            )
        msg = find_link(session.ipr(self.netns), self.name)
        if self.expect_kind is not None:
            kind = link_kind_will_be(session, self.netns, self.name)
            if msg is not None and kind == "device" and msg.loopback:
                kind = "loopback"  # netlink_info's name for lo
            if kind != self.expect_kind:
                raise NetlabError(
                    f"{obj}: interface {self.name!r} {where(self.netns)} is a {kind}, not a {self.expect_kind}; "
                    "correct kind or name (or leave kind out)"
                )
        if msg is not None and self.mtu is not None:
            low, high = msg.min_mtu or 0, msg.max_mtu or 0
            if self.mtu < low or (high and self.mtu > high):
                raise NetlabError(
                    f"{obj}: mtu {self.mtu} is out of range for this {link_kind(msg)}; "
                    f"the kernel allows {low}..{high if high else 'any'}"
                )
        _check_master(session, self.netns, self.master, obj, "master")

    def read(self, session: Session) -> State:
        ipr = session.ipr(self.netns)
        msg = find_link(ipr, self.name)
        if msg is None:
            return None
        return {
            "name": self.name,
            "netns": self.netns,
            "up": msg.up,
            "mtu": msg.mtu,
            "master": master_name(ipr, msg),
        }

    def want(self, current: State) -> State:
        return merge(
            current, {"name": self.name, "netns": self.netns, "up": self.up, "mtu": self.mtu, "master": self.master}
        )

    def apply(self, session: Session, current: State, desired: State) -> None:
        obj = self.key
        ipr = session.ipr(self.netns)
        msg = find_link(ipr, self.name)
        if msg is None or desired is None:
            raise NetlabError(f"{obj}: interface {self.name!r} does not exist {where(self.netns)}")
        _set(
            ipr,
            msg.index,
            obj,
            **_end_changes(ipr, msg, desired["mtu"], desired["up"], desired["master"], self.netns, obj),
        )

    def rollback(self, session: Session, before: State) -> None:
        if before is not None:  # None: a link an earlier resource created, which its own rollback removes
            super().rollback(session, before)

    def result(self, after: State) -> dict[str, Any]:
        return {"link": after or {}}
