# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource model: one route.

State shape (module parameters, spec and ``read()`` alike)::

    {"netns": str | None, "dest": "default" | "10.0.0.0/24" | "fd00::/64", "family": "inet" | "inet6",
     "table": "main" | "local" | "default" | int, "metric": int, "type": "unicast" | "blackhole" | ...,
     "gateway": str | None, "dev": str | None, "scope": "universe" | "link" | "host" | "site" | "nowhere" | int,
     "onlink": bool, "proto": "static" | "boot" | "kernel" | ... | int}

Identity (what ``state`` matches), like the kernel's own key: ``family`` + ``table`` + ``dest`` +
``metric`` (and TOS 0). Everything else is compared and changed in place (NLM_F_REPLACE):

- ``type`` (default unicast), ``gateway`` (omitted = no gateway) and ``onlink`` (default false) are
  always compared;
- ``scope`` is compared; when omitted it is what ``ip route`` would choose (host for local routes,
  link for unicast routes without a gateway and for broadcast/anycast/multicast, universe otherwise;
  IPv6 routes are always universe);
- ``dev`` is compared only when given (otherwise the kernel picks it from the gateway);
- ``proto`` is compared only when given; new routes get ``static``.
"""

from __future__ import annotations

import errno
import ipaddress
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._address import address_view, link_names
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_message,
    keyed,
    validate_netns,
    where,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import Route
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ROUTE_TYPES, ifname

AF_INET = 2
AF_INET6 = 10
FAMILIES = {"inet": AF_INET, "inet6": AF_INET6}
FAMILY_OF_VERSION = {4: "inet", 6: "inet6"}
RTNH_F_ONLINK = 4
U32_MAX = 2**32 - 1
IP6_RT_PRIO_USER = 1024  # the kernel's metric for IPv6 routes given without one (or with 0)

TABLES = {"default": 253, "main": 254, "local": 255}
TYPES = ROUTE_TYPES
NO_NEXTHOP = ("blackhole", "unreachable", "prohibit", "throw")
SCOPES = {"universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
# iproute2's /etc/iproute2/rt_protos (pyroute2's rt_proto lacks the routing daemons' numbers from 18 on)
PROTOS = {
    "unspec": 0,
    "redirect": 1,
    "kernel": 2,
    "boot": 3,
    "static": 4,
    "gated": 8,
    "ra": 9,
    "mrt": 10,
    "zebra": 11,
    "bird": 12,
    "dnrouted": 13,
    "xorp": 14,
    "ntk": 15,
    "dhcp": 16,
    "keepalived": 18,
    "babel": 42,
    "openr": 99,
    "bgp": 186,
    "isis": 187,
    "ospf": 188,
    "rip": 189,
    "eigrp": 192,
}


# ---------------------------------------------------------------------------- pure helpers
def _name_of(table: dict[str, int], value: int) -> str | int:
    for name, number in table.items():
        if number == value:
            return name
    return value


def _parse_named(value: Any, names: dict[str, int], what: str, maximum: int, hint: str) -> int:
    """A name of ``names`` or a number 0..maximum (also as a string)."""
    if isinstance(value, bool):
        raise NetlabError(f"{what} {value!r} is not valid: {hint}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if text in names:
            return names[text]
        if not text.isdigit():
            raise NetlabError(f"{what} {value!r} is not known: {hint}")
        number = int(text)
    if not 0 <= number <= maximum:
        raise NetlabError(f"{what} {value!r} is out of range: {hint}")
    return number


def parse_table(value: Any, what: str = "route") -> int:
    hint = "use main, local, default or a number from 1 to 4294967295"
    number = _parse_named(value, TABLES, f"{what}: table", U32_MAX, hint)
    if number == 0:
        raise NetlabError(f"{what}: table 0 is not a table: {hint}")
    return number


def table_name(number: int) -> str | int:
    return _name_of(TABLES, number)


def parse_proto(value: Any, what: str = "route") -> int:
    return _parse_named(value, PROTOS, f"{what}: proto", 255, "use static, boot, kernel, ... or a number 0-255")


def proto_name(number: int) -> str | int:
    return _name_of(PROTOS, number)


def parse_scope(value: Any, what: str = "route") -> int:
    """A scope by name or number; ``global`` (how ``ip address`` prints scope 0) is taken for ``universe``."""
    if isinstance(value, str) and value.strip() == "global":
        return SCOPES["universe"]
    return _parse_named(value, SCOPES, f"{what}: scope", 255, "use universe, site, link, host, nowhere or 0-255")


def scope_name(number: int) -> str | int:
    return _name_of(SCOPES, number)


def type_name(number: int) -> str | int:
    return _name_of(TYPES, number)


def parse_dest(value: Any, what: str = "route") -> tuple[str, int | None]:
    """('default' | normalised network, IP version or None when the family is not told by the text)."""
    text = str(value).strip() if value is not None else ""
    hint = "write 'default' or a network in CIDR form, like 10.0.0.0/24 or fd00::/64"
    if not text:
        raise NetlabError(f"{what}: dest is required: {hint}")
    if text == "default":
        return "default", None
    candidate = text if "/" in text else text + ("/128" if ":" in text else "/32")
    try:
        net = ipaddress.ip_network(candidate)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(candidate, strict=False)
        except ValueError:
            raise NetlabError(f"{what}: dest {value!r} is not a valid destination ({exc}): {hint}") from None
        raise NetlabError(
            f"{what}: dest {value!r} has host bits set: write the network, {loose.with_prefixlen}"
        ) from None
    if net.prefixlen == 0:
        return "default", net.version
    return net.with_prefixlen, net.version


def parse_gateway(value: Any, what: str = "route") -> tuple[str, int] | None:
    if value is None or value == "":
        return None
    try:
        ip = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise NetlabError(f"{what}: gateway {value!r} is not an IP address, like 10.0.0.1 or fd00::1") from None
    return str(ip), ip.version


def default_scope(family: str, rtype: str, gateway: str | None) -> str:
    """The scope ``ip route add`` gives a route when none is given."""
    if family == "inet6":
        return "universe"
    if rtype == "local":
        return "host"
    if rtype in ("broadcast", "multicast", "anycast"):
        return "link"
    if rtype == "unicast" and gateway is None:
        return "link"
    return "universe"


def _check_nexthop(what: str, family: str, rtype: str, gateway: str | None, dev: str | None, onlink: bool) -> None:
    """Whether gateway, dev and onlink make sense together for this type of route."""
    if rtype in NO_NEXTHOP:
        if gateway is not None or dev is not None or onlink:
            raise NetlabError(f"{what}: a {rtype} route has no gateway, dev or onlink: remove them")
    elif rtype == "unicast":
        if gateway is None and dev is None:
            raise NetlabError(f"{what}: a unicast route needs a gateway or a dev (or choose type blackhole)")
    elif dev is None:
        raise NetlabError(f"{what}: a {rtype} route needs dev")
    if onlink and (dev is None or gateway is None):
        raise NetlabError(
            f"{what}: onlink needs both gateway and dev: it tells the kernel the gateway is on dev's link"
        )
    if family == "inet6" and gateway and ipaddress.ip_address(gateway).is_link_local and dev is None:
        raise NetlabError(f"{what}: gateway {gateway} is link-local: give dev, the interface it is reached through")


def normalise_route(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate a route spec (pure) and return it normalised.

    Returned keys: netns, dest, family, table (int), metric (int), type, gateway, dev, scope (name/int or
    None = default), onlink (bool), proto (name/int or None = keep / static).
    """
    netns = spec.get("netns")
    validate_netns(netns)
    raw_dest = spec.get("dest")
    what = f"route {raw_dest}" if raw_dest not in (None, "") else "route"
    dest, dest_version = parse_dest(raw_dest, what)
    gw = parse_gateway(spec.get("gateway"), what)
    gateway, gw_version = gw if gw else (None, None)
    if dest_version and gw_version and dest_version != gw_version:
        raise NetlabError(
            f"{what}: gateway {gateway} is IPv{gw_version} but dest {raw_dest} is IPv{dest_version}: "
            "use a gateway of the same family"
        )
    version = dest_version or gw_version
    family = spec.get("family")
    if family is not None:
        if family not in FAMILIES:
            raise NetlabError(f"{what}: family {family!r} is not inet or inet6")
        if version and FAMILY_OF_VERSION[version] != family:
            told = f"dest {raw_dest}" if dest_version else f"gateway {gateway}"
            raise NetlabError(
                f"{what}: family {family} does not match {told} (IPv{version}): drop family or correct it"
            )
    else:
        family = FAMILY_OF_VERSION[version] if version else "inet"
    rtype = spec.get("type") or "unicast"
    if rtype not in TYPES:
        raise NetlabError(f"{what}: type {rtype!r} is not one of {', '.join(TYPES)}")
    dev = spec.get("dev") or None
    if dev is not None:
        try:
            ifname(dev, "dev")
        except NetlabError as exc:
            raise NetlabError(f"{what}: {exc}") from None
    onlink = spec.get("onlink")
    if spec.get("state") != "absent":  # removal matches the key only: family, table, dest, metric
        _check_nexthop(what, family, rtype, gateway, dev, bool(onlink))
    metric = spec.get("metric")
    if metric is None:
        metric = IP6_RT_PRIO_USER if family == "inet6" else 0
    elif isinstance(metric, bool) or not isinstance(metric, int) or not 0 <= metric <= U32_MAX:
        raise NetlabError(f"{what}: metric {metric!r} is not a number from 0 to 4294967295")
    if family == "inet6" and metric == 0:
        metric = IP6_RT_PRIO_USER
    table = parse_table(spec["table"] if spec.get("table") not in (None, "") else "main", what)
    scope = spec.get("scope")
    if scope is not None:
        scope = scope_name(parse_scope(scope, what))
        if family == "inet6" and scope != "universe":
            raise NetlabError(f"{what}: scope applies to IPv4 routes only (IPv6 routes are always universe): drop it")
    proto = spec.get("proto")
    if proto is not None:
        proto = proto_name(parse_proto(proto, what))
    return {
        "netns": netns,
        "dest": dest,
        "family": family,
        "table": table,
        "metric": metric,
        "type": rtype,
        "gateway": gateway,
        "dev": dev,
        "scope": scope,
        "onlink": bool(onlink),
        "proto": proto,
    }


def route_state(msg: Route, names: dict[int, str], netns: str | None) -> dict[str, Any]:
    """The state shape of a route record."""
    family = "inet6" if msg.family == AF_INET6 else "inet"
    dst_len = msg.dst_len
    dest = "default" if dst_len == 0 else ipaddress.ip_network(f"{msg.dst}/{dst_len}").with_prefixlen
    rtype = type_name(msg.type)
    gateway = msg.gateway
    oif = msg.oif
    flags = msg.flags
    if gateway is None and oif is None:
        multipath = msg.multipath
        if multipath:
            # Not managed as such: shown (and replaced) as its first hop.
            hop = multipath[0]
            gateway = hop.gateway
            oif = hop.oif
            flags |= hop.flags
    if rtype in NO_NEXTHOP:
        gateway = oif = None
    metric = msg.metric
    table = msg.table
    return {
        "netns": netns,
        "dest": dest,
        "family": family,
        "table": table_name(table),
        "metric": metric,
        "type": rtype,
        "gateway": str(ipaddress.ip_address(gateway)) if gateway else None,
        "dev": names.get(oif, str(oif)) if oif is not None else None,
        "scope": scope_name(msg.scope),
        "onlink": bool(flags & RTNH_F_ONLINK),
        "proto": proto_name(msg.proto),
    }


def desired_route(norm: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The route to have, given the normalised spec and the route now at its key (pure)."""
    gateway = norm["gateway"]
    dev = norm["dev"]
    if dev is None and current is not None and norm["type"] not in NO_NEXTHOP and current["gateway"] == gateway:
        dev = current["dev"]  # the kernel's choice for this gateway stands
    proto = norm["proto"]
    if proto is None:
        proto = current["proto"] if current is not None else "static"
    scope = norm["scope"] if norm["scope"] is not None else default_scope(norm["family"], norm["type"], gateway)
    return {
        "netns": norm["netns"],
        "dest": norm["dest"],
        "family": norm["family"],
        "table": table_name(norm["table"]),
        "metric": norm["metric"],
        "type": norm["type"],
        "gateway": gateway,
        "dev": dev,
        "scope": scope,
        "onlink": norm["onlink"],
        "proto": proto,
    }


def _number(value: Any, names: dict[str, int]) -> int:
    return names[value] if isinstance(value, str) else int(value)


def netlink_args(state: dict[str, Any], index: int | None) -> dict[str, Any]:
    """Keyword arguments of ``IPRoute.route()`` for a state (``index``: the ifindex of ``dev``)."""
    family = FAMILIES[state["family"]]
    args: dict[str, Any] = {
        "family": family,
        "table": _number(state["table"], TABLES),
        "priority": state["metric"],
        "type": TYPES[state["type"]],
        "scope": _number(state["scope"], SCOPES),
        "proto": _number(state["proto"], PROTOS),
        "tos": 0,
    }
    if state["dest"] == "default":
        args["dst_len"] = 0
    else:
        net = ipaddress.ip_network(state["dest"])
        args["dst"] = str(net.network_address)
        args["dst_len"] = net.prefixlen
    if state["gateway"]:
        args["gateway"] = state["gateway"]
    if index is not None:
        args["oif"] = index
    if state["onlink"]:
        args["flags"] = RTNH_F_ONLINK
    return args


def unreachable_message(gateway: str, dev: str | None, netns: str | None) -> str:
    src = f"dev {dev}" if dev else "any interface"
    return (
        f"gateway {gateway} is not reachable from {src} {where(netns)}; "
        "add an address in its subnet first or use onlink"
    )


# ---------------------------------------------------------------------------- the resource
class RouteResource(Resource):
    """One route, identified by family + table + dest + metric."""

    kind = "route"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        if self.state not in ("present", "absent"):
            raise NetlabError(f"route {spec.get('dest')}: state {self.state!r} is not one of present, absent")
        self.norm = normalise_route(spec)

    @property
    def key(self) -> str:
        n = self.norm
        family = f" ({n['family']})" if n["dest"] == "default" else ""
        return keyed(f"route {n['dest']}{family} table {table_name(n['table'])} metric {n['metric']}", self.netns)

    def check(self, session: Session) -> None:
        if self.state != "present":
            return
        session.require_netns(self.netns, self.key)
        n = self.norm
        view = address_view(session, self.netns)
        if n["dev"] is not None and n["dev"] not in view:
            raise NetlabError(
                f"{self.key}: dev {n['dev']} does not exist {where(self.netns)}; create it first "
                "(cnfs.netlab.veth, cnfs.netlab.bridge or cnfs.netlab.link) or correct dev"
            )
        if n["gateway"] and not n["onlink"] and n["type"] == "unicast" and not self._reachable(session, view):
            raise NetlabError(f"{self.key}: {unreachable_message(n['gateway'], n['dev'], self.netns)}")

    def _reachable(self, session: Session, view: dict[str, list[str]]) -> bool:
        """Whether the gateway is on a link: a subnet of an address (now or planned by this run) or a route
        without gateway contains it. Deliberately lenient: the kernel has the last word at apply time."""
        n = self.norm
        gw = ipaddress.ip_address(n["gateway"])
        if gw.is_link_local:
            return True  # with dev (checked in normalise_route): the kernel resolves it on that link
        devs = [n["dev"]] if n["dev"] else list(view)
        for dev in devs:
            for cidr in view.get(dev, []):
                if gw in ipaddress.ip_interface(cidr).network:
                    return True
        ipr = session.ipr(self.netns)
        if ipr is None:
            return False
        names = link_names(ipr)
        for msg in ipr.routes(family=FAMILIES[n["family"]]):
            route = route_state(msg, names, self.netns)
            if route["gateway"] or route["type"] not in ("unicast", "local"):
                continue
            if n["dev"] and route["dev"] != n["dev"]:
                continue
            if route["dest"] != "default" and gw in ipaddress.ip_network(route["dest"]):
                return True
        return False

    def read(self, session: Session) -> State:
        ipr = session.ipr(self.netns)
        if ipr is None:
            return None
        n = self.norm
        dst_len = 0 if n["dest"] == "default" else ipaddress.ip_network(n["dest"]).prefixlen
        dst = None if n["dest"] == "default" else ipaddress.ip_network(n["dest"]).network_address
        names: dict[int, str] | None = None
        for msg in ipr.routes(family=FAMILIES[n["family"]], table=n["table"]):
            if msg.dst_len != dst_len or msg.tos != 0 or msg.src_len != 0 or msg.metric != n["metric"]:
                continue
            if dst is not None and ipaddress.ip_address(msg.dst) != dst:
                continue
            if names is None:
                names = link_names(ipr)
            return route_state(msg, names, self.netns)
        return None

    def want(self, current: State) -> State:
        if self.state == "absent":
            return None
        return desired_route(self.norm, current)

    def apply(self, session: Session, current: State, desired: State) -> None:
        ipr = session.ipr(self.netns)
        if ipr is None:
            raise NetlabError(f"{self.key}: network namespace {self.netns!r} does not exist")
        target = desired if desired is not None else current
        if target is None:  # never: converge applies only when before != after
            return
        index = None
        if target["dev"] is not None:
            link = ipr.get_link(name=target["dev"])
            if link is None:
                raise NetlabError(f"{self.key}: dev {target['dev']} does not exist {where(self.netns)}")
            index = link.index
        args = netlink_args(target, index)
        if desired is None:
            command = "del"
        elif current is None:
            command = "add"
        else:
            command = "replace"
        try:
            ipr.route(command, **args)
        except NetlinkError as exc:
            gateway = target["gateway"]
            if exc.code in (errno.ENETUNREACH, errno.EHOSTUNREACH) and gateway and desired is not None:
                raise NetlabError(f"{self.key}: {unreachable_message(gateway, target['dev'], self.netns)}") from None
            if exc.code == errno.ENETDOWN and target["dev"]:
                raise NetlabError(
                    f"{self.key}: dev {target['dev']} is down {where(self.netns)}; bring it up first"
                ) from None
            raise NetlabError(
                f"{self.key}: the kernel refused to {command} the route ({kernel_message(exc)})"
            ) from None

    def result(self, after: State) -> dict[str, Any]:
        return {"route": after or {}}
