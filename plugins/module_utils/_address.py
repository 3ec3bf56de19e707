# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource model: the IP addresses of one interface.

State shape (module parameters, spec and ``read()`` alike)::

    {"netns": str | None, "dev": str, "addresses": ["10.0.0.10/24", "fd00::10/64", ...]}

``addresses`` is sorted (IPv4 before IPv6, then numerically), so the order the user wrote
does not matter. An IP address is held at most once per interface: its identity is the IP,
the prefix length is an attribute (listing 10.0.0.1/24 where 10.0.0.1/16 is configured
replaces the /16).

The address list an interface will have after this resource goes into the run's plan
(``session.plan``, _plan.py), so that later resources of the same run, and routes, are checked against
what the run is heading to; links that earlier resources create or delete are taken from it too.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
from collections.abc import Iterable
from typing import Any, Union

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_message,
    keyed,
    validate_netns,
    where,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import Address
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ifname, interface_cidr

IFA_F_SECONDARY = 0x01

IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]  # noqa: UP007 - a runtime alias


# ---------------------------------------------------------------------------- pure helpers
@functools.lru_cache(maxsize=8192)
def _iface(cidr: str) -> IPInterface:
    # Cached: a run of hundreds of containers parses the same few strings thousands of times.
    return ipaddress.ip_interface(cidr)


def _sort_key(cidr: str) -> tuple[int, int, int]:
    iface = _iface(cidr)
    return (iface.version, int(iface.ip), iface.network.prefixlen)


def sort_addresses(cidrs: Iterable[str]) -> list[str]:
    """Normalised, de-duplicated and sorted: IPv4 first, then by address, then by prefix length."""
    return sorted({_iface(c).with_prefixlen for c in cidrs}, key=_sort_key)


def ip_of(cidr: str) -> str:
    return str(_iface(cidr).ip)


def is_link_local(cidr: str) -> bool:
    """IPv6 link-local (fe80::/10): the kernel adds one per interface; purge leaves them alone."""
    iface = _iface(cidr)
    return iface.version == 6 and iface.ip.is_link_local


def normalise_addresses(values: Iterable[Any] | None, what: str) -> list[str]:
    """Validate and normalise a list of 'addr/prefix'; the same IP twice with different prefixes is refused."""
    seen: dict[str, str] = {}
    for value in values or []:
        cidr = interface_cidr(value, what=f"{what}: address")
        ip = ip_of(cidr)
        if ip in seen and seen[ip] != cidr:
            raise NetlabError(
                f"{what}: {ip} is listed twice, as {seen[ip]} and {cidr}; an interface holds an IP address once: "
                "keep one of them"
            )
        seen[ip] = cidr
    return sort_addresses(seen.values())


def desired_addresses(current: list[str], listed: list[str], state: str, purge: bool) -> list[str]:
    """The addresses the interface should have, given what it has (pure).

    present: ``current`` plus ``listed``; a listed IP replaces the same IP with another prefix;
    with ``purge`` every address not listed goes, except IPv6 link-local ones.
    absent: ``current`` minus the listed IPs (any prefix); with ``purge`` every address goes,
    except IPv6 link-local ones that are not listed.
    """
    listed_ips = {ip_of(c) for c in listed}
    if state == "absent":
        if purge:
            keep = [c for c in current if is_link_local(c) and ip_of(c) not in listed_ips]
        else:
            keep = [c for c in current if ip_of(c) not in listed_ips]
        return sort_addresses(keep)
    if purge:
        keep = [c for c in current if is_link_local(c) and ip_of(c) not in listed_ips]
    else:
        keep = [c for c in current if ip_of(c) not in listed_ips]
    return sort_addresses(keep + listed)


def find_conflicts(dev: str, listed: list[str], others: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(listed address, other interface, address there) for every listed IP already on another interface.

    IPv6 link-local addresses are scoped to their link, so the same one on two interfaces is no conflict.
    """
    out = []
    for cidr in listed:
        if is_link_local(cidr):
            continue
        ip = ip_of(cidr)
        for other, addrs in sorted(others.items()):
            if other == dev:
                continue
            out.extend((cidr, other, a) for a in addrs if ip_of(a) == ip)
    return out


# ---------------------------------------------------------------------------- kernel helpers
def link_names(ipr: Any) -> dict[int, str]:
    """Interface index -> name in the namespace of ``ipr``."""
    return {link.index: link.name for link in ipr.links()}


def addr_cidr(msg: Address) -> str:
    """'addr/prefix' of an address record (its IFA_LOCAL: the local side of IPv4 point-to-point)."""
    return _iface(f"{msg.ip}/{msg.prefixlen}").with_prefixlen


def kernel_addresses(ipr: Any, index: int | None = None) -> dict[int, list[str]]:
    """Interface index -> sorted addresses, for one interface or the whole namespace."""
    out: dict[int, list[str]] = {}
    for msg in ipr.addresses(index=index):
        out.setdefault(msg.index, []).append(addr_cidr(msg))
    return {idx: sort_addresses(v) for idx, v in out.items()}


def address_view(session: Session, netns: str | None) -> dict[str, list[str]]:
    """Interface name -> addresses, as the run is heading to: the kernel's state overlaid with the plans of
    earlier resources (links that will exist or go, address lists they will set). Never changes anything."""
    view: dict[str, list[str]] = {}
    if session.netns_will_exist(netns):
        ipr = session.ipr(netns)
        if ipr is not None:
            names = link_names(ipr)
            addrs = kernel_addresses(ipr)
            view = {name: addrs.get(idx, []) for idx, name in names.items()}
    for dev, kind in session.plan.links_in(netns).items():
        if kind is not None:
            view.setdefault(dev, [])
        else:
            view.pop(dev, None)
    for dev, addrs in session.plan.addresses_in(netns).items():
        if dev in view:
            view[dev] = addrs
    return view


# ---------------------------------------------------------------------------- the resource
class AddressResource(Resource):
    """The addresses of one interface (``dev``) in one namespace."""

    kind = "address"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        if self.state not in ("present", "absent"):
            raise NetlabError(f"address: state {self.state!r} is not one of present, absent")
        validate_netns(self.netns)
        dev = spec.get("dev")
        if not dev:
            raise NetlabError("address: dev is required: name the interface that holds the addresses")
        try:
            self.dev: str = ifname(dev, "dev") or dev
        except NetlabError as exc:
            raise NetlabError(f"address: {exc}") from None
        self.purge = bool(spec.get("purge"))
        addresses = spec.get("addresses") or []
        if isinstance(addresses, str):
            raise NetlabError(f"{self.key}: addresses must be a list, like ['10.0.0.10/24']")
        self.addresses = normalise_addresses(addresses, self.key)

    @property
    def key(self) -> str:
        return keyed(f"address {self.spec.get('dev')}", self.netns)

    def _shape(self, addresses: list[str]) -> dict[str, Any]:
        return {"netns": self.netns, "dev": self.dev, "addresses": addresses}

    def check(self, session: Session) -> None:
        if self.state == "present":
            session.require_netns(self.netns, self.key)
        view = address_view(session, self.netns)
        if self.dev not in view:
            if self.state == "absent":
                return
            raise NetlabError(
                f"{self.key}: interface {self.dev} does not exist {where(self.netns)}; create it first "
                "(cnfs.netlab.veth, cnfs.netlab.bridge or cnfs.netlab.link) or correct dev"
            )
        if self.state == "present":
            clashes = find_conflicts(self.dev, self.addresses, view)
            if clashes:
                listed, other, there = clashes[0]
                if session.plan.addresses(self.netns, other) is not None:
                    raise NetlabError(
                        f"{self.key}: {listed} is also planned for interface {other} ({there}) {where(self.netns)} "
                        f"by an earlier item of this run; an address belongs to one interface: list it for one "
                        "of them only"
                    )
                raise NetlabError(
                    f"{self.key}: {listed} is already on interface {other} ({there}) {where(self.netns)}; "
                    f"an address belongs to one interface: remove it from {other} first "
                    f"(cnfs.netlab.address dev={other} addresses={there} state=absent) or choose another address"
                )
        session.plan.set_addresses(
            self.netns, self.dev, desired_addresses(view[self.dev], self.addresses, self.state, self.purge)
        )

    def read(self, session: Session) -> State:
        ipr = session.ipr(self.netns)
        if ipr is None:
            return None
        link = ipr.get_link(name=self.dev)
        if link is None:
            return None
        return self._shape(kernel_addresses(ipr, link.index).get(link.index, []))

    def want(self, current: State) -> State:
        if current is None:
            if self.state == "absent":
                return None
            return self._shape(desired_addresses([], self.addresses, self.state, self.purge))
        return self._shape(desired_addresses(current["addresses"], self.addresses, self.state, self.purge))

    def apply(self, session: Session, current: State, desired: State) -> None:
        ipr = session.ipr(self.netns)
        link = ipr.get_link(name=self.dev) if ipr is not None else None
        if link is None:
            raise NetlabError(f"{self.key}: interface {self.dev} disappeared {where(self.netns)} during the run")
        index = link.index
        wanted = set(desired["addresses"]) if desired else set()
        # Secondaries first: removing an IPv4 primary takes its secondaries with it (unless
        # promote_secondaries is set); whatever wanted goes that way is added back below.
        present = list(ipr.addresses(index=index))
        present.sort(key=lambda m: not (m.flags & IFA_F_SECONDARY))
        for msg in present:
            cidr = addr_cidr(msg)
            if cidr in wanted:
                continue
            iface = _iface(cidr)
            try:
                ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            except NetlinkError as exc:
                if exc.code != errno.EADDRNOTAVAIL:  # already gone with its primary
                    raise NetlabError(
                        f"{self.key}: the kernel refused to remove {cidr} ({kernel_message(exc)})"
                    ) from None
        have = set(kernel_addresses(ipr, index).get(index, []))
        for cidr in sort_addresses(wanted - have):
            iface = _iface(cidr)
            try:
                ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
            except NetlinkError as exc:
                raise NetlabError(f"{self.key}: the kernel refused to add {cidr} ({kernel_message(exc)})") from None

    def result(self, after: State) -> dict[str, Any]:
        return {"address": after or {}}
