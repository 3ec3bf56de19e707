# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only gathering of links, addresses, routes and sysctls, in the shapes the modules take.

Private module_utils of cnfs.netlab, used by ``netlink_info``. Nothing here creates or changes
anything: namespaces are entered through :class:`Session` (a missing one is reported, never
created) and only netlink dumps and ``/proc/sys/net`` reads are made.

Two views of the same facts are built:

``namespaces``
    keyed by namespace (``""`` is the namespace the module runs in), each with ``links``
    (every link, with its kind and kind-specific details), ``addresses``, ``routes`` and ``sysctls``.
``node``
    the options of the ``node`` module that recreate those namespaces: ``namespaces``, ``bridges``,
    ``veths`` (each pair once), ``links`` (attributes of the other veth ends), ``addresses``,
    ``routes``, ``sysctls``. Feeding it to ``cnfs.netlab.node`` rebuilds what was gathered.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._address import addr_cidr, sort_addresses
from ansible_collections.cnfs.netlab.plugins.module_utils._link import nsid_of, peer_namespace
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_message,
    keyed,
    list_netns,
    validate_netns,
    where,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import Address, Link, Route
from ansible_collections.cnfs.netlab.plugins.module_utils._route import parse_table, route_state
from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import is_namespaced, parse_name

OWN = ""  # the key of the namespace the module runs in
INCLUDE_CHOICES = ("links", "addresses", "routes", "sysctls")
DEFAULT_SYSCTLS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")

IFA_F_PERMANENT = 0x80
RTNH_F_ONLINK = 0x4
RTM_F_CLONED = 0x200

# Routes the kernel makes by itself (for addresses, link-local, router advertisements).
KERNEL_PROTOS = {"kernel", "ra", "redirect"}
KERNEL_TYPES = {"local", "broadcast", "multicast", "anycast"}


# ------------------------------------------------------------------ options


def table_id(value: Any) -> int:
    """A routing table given as a number or as one of the names main, local, default."""
    return parse_table(value, "route_tables")


def sysctl_path(name: str) -> str:
    """The /proc/sys file of a per-namespace sysctl, named as the sysctl module takes it (_sysctl.parse_name)."""
    try:
        dotted, path = parse_name(name)
    except NetlabError:
        dotted, path = "", ""
    if not is_namespaced(dotted) or "/" not in path:
        raise NetlabError(
            f"sysctl {name!r} is not a per-namespace sysctl: give a name under net., like net.ipv4.ip_forward "
            "(an interface name with a dot: net.ipv4.conf.eth0/1.rp_filter or net/ipv4/conf/eth0.1/rp_filter)"
        )
    return os.path.join("/proc/sys", path)


def requested_netns(netns: list[str] | None) -> list[str]:
    """The namespaces to report: the given ones (validated, '' = own), or own + every one under /run/netns."""
    if not netns:
        return [OWN, *list_netns()]
    out: list[str] = []
    for name in netns:
        if name != OWN:
            validate_netns(name, "netns")
        if name not in out:
            out.append(name)
    return out


def _ns(key: str) -> str | None:
    """The module-shape `netns` value of a report key: None for the own namespace."""
    return key or None


# ------------------------------------------------------------------ normalising netlink messages


def link_facts(msg: Link) -> dict[str, Any]:
    """One link as reported under `links` (kind-specific keys added later), plus private _keys for matching."""
    kind = msg.kind
    if kind is None:
        kind = "loopback" if msg.loopback else "device"
    facts: dict[str, Any] = {
        "name": msg.name,
        "index": msg.index,
        "kind": kind,
        "mtu": msg.mtu,
        "up": msg.up,
        "operstate": (msg.operstate or "unknown").lower(),
        "mac": msg.mac,
        "_master": msg.master,
        "_link": msg.link,
        "_nsid": msg.link_netnsid,
    }
    if kind == "bridge":
        facts["stp"] = bool(msg.data().get("stp_state"))
    elif kind == "vxlan":
        data = msg.data()
        if data:
            facts["vxlan"] = {
                "id": data["id"],
                "port": data["port"],
                "local": data["local"] or data["local6"],
                "group": data["group"] or data["group6"],
                "_dev": data["link"],
                "learning": bool(data["learning"]),
            }
    return facts


def finish_links(links: list[dict[str, Any]]) -> None:
    """Resolve indexes within one namespace: master names, bridge ports, vxlan underlay device."""
    by_index = {link["index"]: link for link in links}
    for link in links:
        master = by_index.get(link["_master"]) if link["_master"] else None
        link["master"] = master["name"] if master else ""
        if link["kind"] == "bridge":
            link["ports"] = sorted(p["name"] for p in links if p["_master"] == link["index"])
        if "vxlan" in link:
            dev = by_index.get(link["vxlan"].pop("_dev") or 0)
            link["vxlan"]["dev"] = dev["name"] if dev else None


def address_facts(
    msgs: Iterable[Address], names: dict[int, str], netns: str | None, kernel: bool
) -> list[dict[str, Any]]:
    """Addresses grouped per device in the AddressResource shape {netns, dev, addresses} (sorted like it)."""
    per_dev: dict[str, list[str]] = {}
    for msg in msgs:
        dev = names.get(msg.index)
        if dev is None:
            continue
        cidr = addr_cidr(msg)
        flags = msg.flags
        if not kernel and is_kernel_address(dev, cidr, flags):
            continue
        per_dev.setdefault(dev, []).append(cidr)
    return [{"netns": netns, "dev": dev, "addresses": sort_addresses(addrs)} for dev, addrs in sorted(per_dev.items())]


def is_kernel_address(dev: str, cidr: str, flags: int) -> bool:
    """Addresses the kernel makes by itself: loopback's, IPv6 link-local, autoconfigured (not permanent) ones."""
    iface = ipaddress.ip_interface(cidr)
    if iface.ip.is_loopback and dev == "lo":
        return True
    return iface.version == 6 and (iface.ip.is_link_local or not flags & IFA_F_PERMANENT)


def route_facts(
    msgs: Iterable[Route], names: dict[int, str], netns: str | None, tables: set[int] | None, kernel: bool
) -> list[dict[str, Any]]:
    """Routes in the RouteResource shape (its own reading of a route); `tables` None means every table."""
    out = []
    for msg in msgs:
        if msg.flags & RTM_F_CLONED:
            continue
        if tables is not None and msg.table not in tables:
            continue
        route = route_state(msg, names, netns)
        if not kernel and (route["proto"] in KERNEL_PROTOS or route["type"] in KERNEL_TYPES):
            continue
        multipath = msg.multipath
        if multipath:
            route["nexthops"] = [
                {"gateway": hop.gateway, "dev": names.get(hop.oif), "weight": hop.hops + 1} for hop in multipath
            ]
        out.append(route)
    out.sort(key=lambda r: (r["family"], str(r["table"]), r["dest"] != "default", r["dest"], r["metric"]))
    return out


# ------------------------------------------------------------------ veth peers across namespaces


def resolve_peers(
    links: dict[str, list[dict[str, Any]]],
    same_ns: Callable[[str, int, str], bool],
    outside: Callable[[str, dict[str, Any]], tuple[str, str] | None] | None = None,
) -> None:
    """Fill `peer` and `peer_netns` of every veth.

    A veth's IFLA_LINK is its peer's index, in the namespace IFLA_LINK_NETNSID names (relative to the
    veth's own namespace, absent when the peer is in the same one). Indexes repeat across namespaces, so
    each candidate (a veth whose index is our IFLA_LINK and whose IFLA_LINK is our index) is confirmed
    by ``same_ns(ns, nsid, candidate_ns)``: does nsid, as seen from ns, name candidate_ns? A peer in a
    namespace that is not reported is looked up by ``outside(ns, veth)`` -> (namespace, peer name).
    """
    by_index: dict[str, dict[int, dict[str, Any]]] = {
        ns: {link["index"]: link for link in items} for ns, items in links.items()
    }
    for ns, items in links.items():
        for veth in items:
            if veth["kind"] != "veth":
                continue
            veth["peer"] = veth["peer_netns"] = None
            peer_index, nsid = veth["_link"], veth["_nsid"]
            if not peer_index:
                continue
            if nsid is None:
                peer = by_index[ns].get(peer_index)
                if peer is not None:
                    veth["peer"], veth["peer_netns"] = peer["name"], _ns(ns)
                continue
            for other, index_map in by_index.items():
                if other == ns:
                    continue
                cand = index_map.get(peer_index)
                if (
                    cand is not None
                    and cand["kind"] == "veth"
                    and cand["_link"] == veth["index"]
                    and cand["_nsid"] is not None
                    and same_ns(ns, nsid, other)
                ):
                    veth["peer"], veth["peer_netns"] = cand["name"], _ns(other)
                    break
            else:
                found = outside(ns, veth) if outside is not None else None
                if found is not None:
                    veth["peer_netns"], veth["peer"] = _ns(found[0]), found[1]


# ------------------------------------------------------------------ the node view


def _public(link: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in link.items() if not k.startswith("_")}


def node_view(namespaces: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The `node` module's options that recreate the reported namespaces (pure).

    A veth pair appears once, named from the end in the module's own namespace if there is one, else
    from the end whose (namespace, name) sorts first. The veth model sets `mtu` and `up` on both
    ends: `mtu` is given when both ends agree (else a `links` item sets each end's), `up` is the
    named end's and a `links` item sets the peer's when it differs (such a pair is recreated
    exactly, but re-applying it changes the peer twice per run: the veth model cannot leave `up`
    alone). A `links` item also sets a master that is not the veth's bridge. Kinds `node` cannot
    create (vxlan, tun, physical devices) and veths whose peer is not reported are left out, and so
    are the addresses and routes on them, and multipath routes.
    """
    node: dict[str, list[Any]] = {
        "namespaces": [],
        "bridges": [],
        "veths": [],
        "links": [],
        "addresses": [],
        "routes": [],
        "sysctls": [],
    }
    kinds: dict[tuple[str | None, str], dict[str, Any]] = {}
    for key, facts in namespaces.items():
        if key and not key.startswith("/"):
            node["namespaces"].append(key)
        for link in facts.get("links", []):
            kinds[(_ns(key), link["name"])] = link
    managed: set[tuple[str | None, str]] = set()

    def order(item: tuple[str | None, str]) -> tuple[bool, str, str]:
        return (item[0] is not None, item[0] or "", item[1])

    for (netns, name), link in sorted(kinds.items(), key=lambda kv: order(kv[0])):
        if link["kind"] == "bridge":
            node["bridges"].append(
                {"name": name, "netns": netns, "mtu": link["mtu"], "stp": link["stp"], "up": link["up"]}
            )
            managed.add((netns, name))
        elif link["kind"] == "loopback":
            managed.add((netns, name))
        elif link["kind"] == "veth" and link.get("peer") and (netns, name) not in managed:
            pkey = (link["peer_netns"], link["peer"])
            peer = kinds.get(pkey)
            if peer is None:
                continue  # the other end is in a namespace that is not reported: the pair cannot be recreated
            managed.update({(netns, name), pkey})
            master = kinds.get((netns, link["master"])) if link["master"] else None
            bridged = master is not None and master["kind"] == "bridge"
            same_mtu = link["mtu"] if link["mtu"] == peer["mtu"] else None
            node["veths"].append(
                {
                    "name": name,
                    "netns": netns,
                    "peer": link["peer"],
                    "peer_netns": link["peer_netns"],
                    "mtu": same_mtu,
                    "up": link["up"],
                    "bridge": link["master"] if bridged or not link["master"] else None,
                }
            )
            ends = (
                (link, None, None if bridged else link["master"] or None),
                (peer, peer["up"] if peer["up"] != link["up"] else None, peer["master"] or None),
            )
            for end, up, master in ends:
                item = {
                    "name": end["name"],
                    "netns": end["netns"],
                    "up": up,
                    "mtu": end["mtu"] if same_mtu is None else None,
                    "master": master,
                }
                if any(item[key] is not None for key in ("up", "mtu", "master")):
                    node["links"].append(item)
    for key, facts in namespaces.items():
        for item in facts.get("addresses", []):
            if (item["netns"], item["dev"]) in managed:
                node["addresses"].append(dict(item))
        for route in facts.get("routes", []):
            if route.get("nexthops"):
                continue
            if route["dev"] is None or (route["netns"], route["dev"]) in managed:
                node["routes"].append(dict(route))
        for name, value in facts.get("sysctls", {}).items():
            if value is not None:
                node["sysctls"].append({"name": name, "value": value, "netns": _ns(key)})
    return node


# ------------------------------------------------------------------ gathering


class Gatherer:
    """Reads the requested namespaces through one Session; never creates anything."""

    def __init__(
        self,
        session: Session,
        include: Iterable[str] = ("links", "addresses", "routes"),
        tables: Iterable[Any] | None = ("main",),
        kernel: bool = False,
        sysctls: Iterable[str] = DEFAULT_SYSCTLS,
    ) -> None:
        self.session = session
        self.include = set(include)
        unknown = self.include - set(INCLUDE_CHOICES)
        if unknown:
            raise NetlabError(f"include: {sorted(unknown)} are not known; choose from {list(INCLUDE_CHOICES)}")
        self.tables = None if tables is None or "all" in tables else {table_id(t) for t in tables}
        self.kernel = kernel
        self.sysctls = {name: sysctl_path(name) for name in sysctls}
        self._nsid_cache: dict[tuple[str, str], int | None] = {}

    def gather(self, netns: list[str] | None = None) -> dict[str, Any]:
        names = requested_netns(netns)
        present: dict[str, Any] = {}
        missing: list[str] = []
        for key in names:
            ipr = self.session.ipr(_ns(key))
            if ipr is None:
                missing.append(key)
            else:
                present[key] = ipr
        raw_links: dict[str, list[dict[str, Any]]] = {}
        result: dict[str, dict[str, Any]] = {}
        for key, ipr in present.items():
            try:
                links = [link_facts(m) for m in ipr.links()]
            except NetlinkError as exc:
                raise NetlabError(f"cannot read the links {where(key)} ({kernel_message(exc)})") from None
            finish_links(links)
            raw_links[key] = links
        resolve_peers(raw_links, self._same_ns, self._outside)
        for key, ipr in present.items():
            netns_value = _ns(key)
            names_by_index = {link["index"]: link["name"] for link in raw_links[key]}
            facts: dict[str, Any] = {}
            if "links" in self.include:
                facts["links"] = [_public(link) for link in sorted(raw_links[key], key=lambda x: x["index"])]
                for link in facts["links"]:
                    link["netns"] = netns_value
            try:
                if "addresses" in self.include:
                    facts["addresses"] = address_facts(ipr.addresses(), names_by_index, netns_value, self.kernel)
                if "routes" in self.include:
                    facts["routes"] = route_facts(ipr.routes(), names_by_index, netns_value, self.tables, self.kernel)
            except NetlinkError as exc:
                raise NetlabError(f"cannot read the state {where(key)} ({kernel_message(exc)})") from None
            if "sysctls" in self.include:
                facts["sysctls"] = self._read_sysctls(netns_value)
            result[key] = facts
        return {"namespaces": result, "missing": missing, "node": node_view(result)}

    def _read_sysctls(self, netns: str | None) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        with self.session.inside(netns):
            for name, path in self.sysctls.items():
                try:
                    with open(path, encoding="utf-8") as handle:
                        out[name] = " ".join(handle.read().split())
                except FileNotFoundError:
                    out[name] = None
                except OSError as exc:
                    raise NetlabError(f"{keyed('sysctl ' + name, netns)}: cannot read ({exc.strerror})") from None
        return out

    def _same_ns(self, ns: str, nsid: int, other: str) -> bool:
        """Whether `nsid` (an id assigned inside `ns`) names the namespace `other`."""
        return self._nsid(self.session, _ns(ns), _ns(other)) == nsid

    def _nsid(self, session: Session, netns: str | None, other: str | None) -> int | None:
        # Cached: a read-only run asks the same pairs for every veth, and no nsid changes meanwhile.
        key = (netns or OWN, other or OWN)
        if key not in self._nsid_cache:
            self._nsid_cache[key] = nsid_of(session, netns, other)
        return self._nsid_cache[key]

    def _outside(self, ns: str, veth: dict[str, Any]) -> tuple[str, str] | None:
        """Find the peer of a veth in a namespace that was not asked for (own or under /run/netns)."""
        found = peer_namespace(self.session, _ns(ns), veth["_nsid"], nsid_of=self._nsid)
        if found is None:
            return None
        other = found[0]
        ipr = self.session.ipr(other)
        if ipr is None:
            return None
        peer = ipr.get_link(index=veth["_link"])
        return None if peer is None else (other or OWN, peer.name)
