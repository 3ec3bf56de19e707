# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A read cache and a fast read path for netlink, for runs that touch hundreds of namespaces.

Private module_utils of cnfs.netlab, used by every module that converges resources (``run_module``),
``node`` and ``netlink_info``.

Why: pyroute2 0.9 spends about 2 ms of asyncio machinery on every request, even an empty dump,
and about 0.7 ms decoding each link message; opening a handle costs 5-8 ms. The resource models
read the same namespaces again and again (each veth looks up its bridge's namespace, each address
and route lists the links of its own), so a warm run of 512 containers made ~5000 requests.

What: :class:`CachedSession` hands out :class:`CachedIPRoute` handles. Their reads (links, addresses,
routes, one link, the route to an address, namespace ids) go through a plain ``AF_NETLINK`` socket opened
inside the namespace and come back as this module's own records, :class:`Link`, :class:`Address` and
:class:`Route`, with the fields the models read as attributes (``link.name``, ``link.kind``,
``route.table``). The dumps are kept per namespace in the session's registry; every write goes through
pyroute2 and then tells the registry which tables of which namespaces it changed (``EFFECTS``).
Neighbours, FDB entries and rules (the overlays') are not cached: those calls are pyroute2's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any, Union

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_calls,
    netns_path,
    where,
)

# ---------------------------------------------------------------------------- netlink constants
NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_DUMP, NLM_F_DUMP_INTR = 0x1, 0x300, 0x10
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22
RTM_NEWROUTE, RTM_GETROUTE, RTM_NEWNEIGH, RTM_GETNEIGH = 24, 26, 28, 30
RTM_NEWNSID, RTM_GETNSID = 88, 90
IFLA_IFNAME, IFLA_EXT_MASK = 3, 29
RTEXT_FILTER_SKIP_STATS = 1 << 3
NETNSA_NSID, NETNSA_FD = 1, 3
NLA_TYPE_MASK = 0x3FFF
AF_UNSPEC, AF_INET, AF_INET6, AF_ALL = 0, 2, 10, 255
ENODEV = errno.ENODEV
NSID_NONE = 0xFFFFFFFF
RECV_BUFFER = 1 << 20
# Above this many links, a namespace whose cache a write dropped answers single lookups with single
# requests instead of a new dump (the namespace of a bridge with hundreds of ports, in a cold run).
REDUMP_LIMIT = 32

HDR = struct.Struct("=LHHLL")
NLA = struct.Struct("=HH")
IFINFO = struct.Struct("=BxHiII")
IFADDR = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")
RTNH = struct.Struct("=HBBi")
NDMSG = struct.Struct("=BxxxiHBB")
AF_BRIDGE = 7
NDA_DST, NDA_LLADDR = 1, 2
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")


# ---------------------------------------------------------------------------- attribute decoders
def _str(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _u8(raw: bytes) -> int:
    return raw[0]


def _be16(raw: bytes) -> int:
    return struct.unpack_from("!H", raw)[0]


def _u32(raw: bytes) -> int:
    return struct.unpack_from("=I", raw)[0]


def _s32(raw: bytes) -> int:
    return struct.unpack_from("=i", raw)[0]


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ip(raw: bytes) -> str:
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return raw.hex()


def _operstate(raw: bytes) -> str:
    return OPERSTATES[raw[0]] if raw[0] < len(OPERSTATES) else "UNKNOWN"


Decoder = Callable[[bytes], Any]

# Attribute numbers (linux/if_link.h, if_addr.h, rtnetlink.h) of what the records expose.
IFLA_ADDRESS, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_OPERSTATE = 1, 4, 5, 10, 16
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_CARRIER, IFLA_LINK_NETNSID = 18, 20, 33, 37
IFLA_MIN_MTU, IFLA_MAX_MTU = 50, 51
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS = 1, 2, 3, 8
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 6, 7, 9, 15
IFF_UP, IFF_LOOPBACK = 0x1, 0x8
# IFLA_INFO_DATA of the kinds whose data the models read: record name -> (attribute, decoder)
INFO_DATA: dict[str, dict[str, tuple[int, Decoder]]] = {
    "bridge": {"stp_state": (5, _u32), "vlan_filtering": (7, _u8)},
    "vxlan": {
        "id": (1, _u32),
        "group": (2, _ip),
        "link": (3, _u32),
        "local": (4, _ip),
        "ttl": (5, _u8),
        "tos": (6, _u8),
        "learning": (7, _u8),
        "port": (15, _be16),
        "group6": (16, _ip),
        "local6": (17, _ip),
    },
}


def parse_attrs(data: bytes | memoryview, offset: int, end: int) -> dict[int, bytes]:
    """Netlink attributes between ``offset`` and ``end``: type -> payload (the first of each type)."""
    out: dict[int, bytes] = {}
    while offset + 4 <= end:
        length, kind = NLA.unpack_from(data, offset)
        if length < 4:
            break
        kind &= NLA_TYPE_MASK
        if kind not in out:
            out[kind] = bytes(data[offset + 4 : offset + length])
        offset += (length + 3) & ~3
    return out


def _attr(attrs: dict[int, bytes], kind: int, decode: Decoder) -> Any:
    raw = attrs.get(kind)
    return None if raw is None else decode(raw)


# ---------------------------------------------------------------------------- records
# What the reader returns: small records with the fields the models read, decoded on first use (a dump of
# 500 links is parsed in ~10 ms because most attributes are never looked at). Nothing else of the message
# is kept: a model that needs another field adds it here.
class Link:
    """One link (RTM_NEWLINK)."""

    __slots__ = ("_attrs", "_info", "flags", "index")

    def __init__(self, index: int, flags: int, attrs: dict[int, bytes]) -> None:
        self.index = index
        self.flags = flags
        self._attrs = attrs
        self._info: dict[int, bytes] | None = None

    name = property(lambda self: _attr(self._attrs, IFLA_IFNAME, _str))
    mtu = property(lambda self: _attr(self._attrs, IFLA_MTU, _u32))
    min_mtu = property(lambda self: _attr(self._attrs, IFLA_MIN_MTU, _u32))
    max_mtu = property(lambda self: _attr(self._attrs, IFLA_MAX_MTU, _u32))
    mac = property(lambda self: _attr(self._attrs, IFLA_ADDRESS, _mac))
    master = property(lambda self: _attr(self._attrs, IFLA_MASTER, _u32) or None, doc="ifindex; None: no master")
    link = property(lambda self: _attr(self._attrs, IFLA_LINK, _u32), doc="a veth's peer ifindex")
    link_netnsid = property(
        lambda self: _attr(self._attrs, IFLA_LINK_NETNSID, _s32), doc="where ``link`` is; None: this namespace"
    )
    alias = property(lambda self: _attr(self._attrs, IFLA_IFALIAS, _str))
    operstate = property(lambda self: _attr(self._attrs, IFLA_OPERSTATE, _operstate))
    carrier = property(lambda self: bool(_attr(self._attrs, IFLA_CARRIER, _u8)))
    up = property(lambda self: bool(self.flags & IFF_UP))
    loopback = property(lambda self: bool(self.flags & IFF_LOOPBACK))

    def _linkinfo(self) -> dict[int, bytes]:
        if self._info is None:
            raw = self._attrs.get(IFLA_LINKINFO)
            self._info = parse_attrs(raw, 0, len(raw)) if raw is not None else {}
        return self._info

    @property
    def kind(self) -> str | None:
        """The rtnl kind ('veth', 'bridge', 'vxlan', ...); None for a device without one (lo, eth0)."""
        return _attr(self._linkinfo(), IFLA_INFO_KIND, _str)

    def data(self) -> dict[str, Any]:
        """The kind's IFLA_INFO_DATA fields listed in ``INFO_DATA`` (bridge, vxlan); {} for other kinds."""
        table = INFO_DATA.get(self.kind or "")
        raw = self._linkinfo().get(IFLA_INFO_DATA)
        if table is None or raw is None:
            return {}
        attrs = parse_attrs(raw, 0, len(raw))
        return {name: _attr(attrs, number, decode) for name, (number, decode) in table.items()}

    def __repr__(self) -> str:
        return f"<Link {self.index} {self.name!r} {self.kind}>"


class Address:
    """One address (RTM_NEWADDR)."""

    __slots__ = ("_attrs", "_flags", "family", "index", "prefixlen", "scope")

    def __init__(self, family: int, prefixlen: int, flags: int, scope: int, index: int, attrs: dict[int, bytes]):
        self.family = family
        self.prefixlen = prefixlen
        self.scope = scope
        self.index = index
        self._flags = flags
        self._attrs = attrs

    address = property(lambda self: _attr(self._attrs, IFA_ADDRESS, _ip))
    local = property(lambda self: _attr(self._attrs, IFA_LOCAL, _ip))
    label = property(lambda self: _attr(self._attrs, IFA_LABEL, _str))

    @property
    def ip(self) -> str:
        """The interface's own address: IFA_LOCAL (differs from IFA_ADDRESS on point-to-point links)."""
        return self.local or self.address

    @property
    def flags(self) -> int:
        """IFA_FLAGS (32 bits) when the kernel sends it, else the header's 8."""
        return _attr(self._attrs, IFA_FLAGS, _u32) or self._flags

    def __repr__(self) -> str:
        return f"<Address {self.ip}/{self.prefixlen} on {self.index}>"


class Hop:
    """One nexthop of a multipath route."""

    __slots__ = ("flags", "gateway", "hops", "oif")

    def __init__(self, flags: int, hops: int, oif: int, gateway: str | None) -> None:
        self.flags, self.hops, self.oif, self.gateway = flags, hops, oif, gateway


class Route:
    """One route (RTM_NEWROUTE)."""

    __slots__ = ("_attrs", "_table", "dst_len", "family", "flags", "proto", "scope", "src_len", "tos", "type")

    def __init__(self, fields: tuple[int, ...], attrs: dict[int, bytes]) -> None:
        (self.family, self.dst_len, self.src_len, self.tos, self._table, self.proto, self.scope, self.type) = fields[:8]
        self.flags = fields[8]
        self._attrs = attrs

    dst = property(lambda self: _attr(self._attrs, RTA_DST, _ip), doc="None for a default route")
    gateway = property(lambda self: _attr(self._attrs, RTA_GATEWAY, _ip))
    oif = property(lambda self: _attr(self._attrs, RTA_OIF, _u32))
    prefsrc = property(lambda self: _attr(self._attrs, RTA_PREFSRC, _ip))
    metric = property(lambda self: _attr(self._attrs, RTA_PRIORITY, _u32) or 0)

    @property
    def table(self) -> int:
        """RTA_TABLE (32 bits) when sent, else the header's 8."""
        return _attr(self._attrs, RTA_TABLE, _u32) or self._table

    @property
    def multipath(self) -> list[Hop]:
        raw = self._attrs.get(RTA_MULTIPATH)
        hops: list[Hop] = []
        offset = 0
        while raw is not None and offset + RTNH.size <= len(raw):
            length, flags, hops_field, oif = RTNH.unpack_from(raw, offset)
            if length < RTNH.size:
                break
            attrs = parse_attrs(raw, offset + RTNH.size, offset + length)
            hops.append(Hop(flags, hops_field, oif, _attr(attrs, RTA_GATEWAY, _ip)))
            offset += (length + 3) & ~3
        return hops

    def __repr__(self) -> str:
        return f"<Route {self.dst or 'default'}/{self.dst_len} table {self.table}>"


class Neigh:
    """One neighbour or forwarding database entry (RTM_NEWNEIGH)."""

    __slots__ = ("_attrs", "family", "flags", "ifindex", "state", "type")

    def __init__(self, fields: tuple[int, ...], attrs: dict[int, bytes]) -> None:
        self.family, self.ifindex, self.state, self.flags, self.type = fields
        self._attrs = attrs

    dst = property(lambda self: _attr(self._attrs, NDA_DST, _ip), doc="the neighbour's (or VTEP's) IP address")
    lladdr = property(lambda self: _attr(self._attrs, NDA_LLADDR, _mac))

    def __repr__(self) -> str:
        return f"<Neigh {self.lladdr} {self.dst} on {self.ifindex}>"


Record = Union[Link, Address, Route, Neigh]  # noqa: UP007 - a runtime alias


def parse_message(data: bytes | memoryview, offset: int, length: int, msg_type: int) -> Record:
    """The record of one RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE or RTM_NEWNEIGH message."""
    body = offset + HDR.size
    end = offset + length
    if msg_type == RTM_NEWLINK:
        _family, _ifi_type, index, flags, _change = IFINFO.unpack_from(data, body)
        return Link(index, flags, parse_attrs(data, body + IFINFO.size, end))
    if msg_type == RTM_NEWADDR:
        family, prefixlen, flags, scope, index = IFADDR.unpack_from(data, body)
        return Address(family, prefixlen, flags, scope, index, parse_attrs(data, body + IFADDR.size, end))
    if msg_type == RTM_NEWNEIGH:
        return Neigh(NDMSG.unpack_from(data, body), parse_attrs(data, body + NDMSG.size, end))
    return Route(RTMSG.unpack_from(data, body), parse_attrs(data, body + RTMSG.size, end))


# ---------------------------------------------------------------------------- the socket
class FastReader:
    """A plain rtnetlink socket of one namespace for dumps and single lookups."""

    _buffer: bytearray | None = None  # one receive buffer for every reader (the module is single-threaded)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.seq = 0
        if FastReader._buffer is None:
            FastReader._buffer = bytearray(RECV_BUFFER)
        self.buffer = FastReader._buffer

    @classmethod
    def open(cls) -> FastReader:
        """A socket in the namespace of the calling thread (enter the namespace first)."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        sock.bind((0, 0))
        return cls(sock)

    def close(self) -> None:
        self.sock.close()

    def request(self, msg_type: int, flags: int, body: bytes) -> list[tuple[int, Any]]:
        """Send one request; return the (type, message) replies. NLMSG_ERROR raises NetlinkError."""
        for _attempt in range(5):
            self.seq += 1
            seq = self.seq
            self.sock.send(HDR.pack(HDR.size + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body)
            replies: list[tuple[int, Any]] = []  # (type, a record, or the raw bytes of another type)
            interrupted = False
            done = not flags & NLM_F_DUMP
            while True:
                size = self.sock.recv_into(self.buffer)
                view = memoryview(self.buffer)[:size]
                offset = 0
                finished = False
                while offset + HDR.size <= size:
                    length, rtype, rflags, rseq, _pid = HDR.unpack_from(view, offset)
                    if length < HDR.size:
                        break
                    if rseq == seq:
                        if rflags & NLM_F_DUMP_INTR:
                            interrupted = True
                        if rtype == NLMSG_DONE:
                            finished = True
                        elif rtype == NLMSG_ERROR:
                            code = -struct.unpack_from("=i", view, offset + HDR.size)[0]
                            if code:
                                raise NetlinkError(code, os.strerror(code))
                            finished = True
                        elif rtype in (RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH):
                            replies.append((rtype, parse_message(view, offset, length, rtype)))
                            finished = finished or done
                        else:
                            replies.append((rtype, bytes(view[offset : offset + length])))
                            finished = finished or done
                    offset += (length + 3) & ~3
                view.release()
                if finished:
                    break
            if not interrupted:
                return replies
        raise NetlinkError(errno.EAGAIN, "the dump was interrupted by concurrent changes five times")

    def dump_links(self) -> list[Link]:
        body = IFINFO.pack(AF_UNSPEC, 0, 0, 0, 0) + _nla(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))
        return [m for t, m in self.request(RTM_GETLINK, NLM_F_DUMP, body) if t == RTM_NEWLINK]

    def get_link(self, index: int | None = None, ifname: str | None = None) -> Link:
        """One link by index or name; NetlinkError ENODEV when there is none."""
        body = IFINFO.pack(AF_UNSPEC, 0, index or 0, 0, 0)
        body += _nla(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))
        if ifname is not None:
            body += _nla(IFLA_IFNAME, ifname.encode("utf-8", "surrogateescape") + b"\0")
        for rtype, msg in self.request(RTM_GETLINK, 0, body):
            if rtype == RTM_NEWLINK:
                return msg
        raise NetlinkError(ENODEV, os.strerror(ENODEV))

    def dump_addrs(self) -> list[Address]:
        body = IFADDR.pack(AF_UNSPEC, 0, 0, 0, 0)
        return [m for t, m in self.request(RTM_GETADDR, NLM_F_DUMP, body) if t == RTM_NEWADDR]

    def dump_routes(self) -> list[Route]:
        body = RTMSG.pack(AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)
        return [m for t, m in self.request(RTM_GETROUTE, NLM_F_DUMP, body) if t == RTM_NEWROUTE]

    def dump_neigh(self, family: int) -> list[Neigh]:
        """Neighbours of ``family`` (AF_INET, AF_INET6), or with AF_BRIDGE the forwarding database entries
        (a VXLAN device's remote entries among them)."""
        body = NDMSG.pack(family, 0, 0, 0, 0)
        return [m for t, m in self.request(RTM_GETNEIGH, NLM_F_DUMP, body) if t == RTM_NEWNEIGH]

    def route_to(self, dst: str) -> Route:
        """The route the kernel would take to the address ``dst`` (``ip route get``); NetlinkError if none."""
        family = AF_INET6 if ":" in dst else AF_INET
        packed = socket.inet_pton(family, dst)
        body = RTMSG.pack(family, len(packed) * 8, 0, 0, 0, 0, 0, 0, 0) + _nla(RTA_DST, packed)
        for rtype, msg in self.request(RTM_GETROUTE, 0, body):
            if rtype == RTM_NEWROUTE:
                return msg
        raise NetlinkError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))

    def nsid_of(self, fd: int) -> int | None:
        """The id this namespace gave the namespace behind ``fd`` (None: none assigned)."""
        body = struct.pack("=Bxxx", AF_UNSPEC) + _nla(NETNSA_FD, struct.pack("=I", fd))
        for rtype, raw in self.request(RTM_GETNSID, 0, body):
            if rtype == RTM_NEWNSID and isinstance(raw, bytes):
                attrs = parse_attrs(raw, HDR.size + 4, len(raw))
                if NETNSA_NSID in attrs:
                    nsid = struct.unpack_from("=i", attrs[NETNSA_NSID])[0]
                    return None if nsid < 0 else nsid
        return None


def _nla(kind: int, payload: bytes) -> bytes:
    length = NLA.size + len(payload)
    return NLA.pack(length, kind) + payload + b"\0" * (((length + 3) & ~3) - length)


# ---------------------------------------------------------------------------- the registry
class Reads:
    """The cached dumps of one namespace (shared by every handle that names it)."""

    __slots__ = ("addrs", "by_name", "links", "routes", "size")

    def __init__(self) -> None:
        self.links: dict[int, Link] | None = None
        self.by_name: dict[str, Link] = {}
        self.size = 0  # links in the last dump, kept when the dump is forgotten
        self.addrs: list[Address] | None = None
        self.routes: list[Route] | None = None

    def forget(self, links: bool = True, addrs: bool = True, routes: bool = True) -> None:
        if links:
            self.links, self.by_name = None, {}
        if addrs:
            self.addrs = None
        if routes:
            self.routes = None


# What each write changes, besides the namespace it is sent to: (links, addresses, routes) forgotten there.
# A link going down loses its routes (and IPv6 its addresses); a new address brings its prefix route.
LINK_SET_LINKS_ONLY = frozenset({"master", "ifalias", "address", "kind", "br_stp_state", "ifname"})
EFFECTS = {
    "addr": (False, True, True),
    "route": (False, False, True),
    "link add": (True, False, False),
    "link set": (True, True, True),  # narrowed to links alone for LINK_SET_LINKS_ONLY attributes
    "link del": (True, True, True),
}


# ---------------------------------------------------------------------------- the cached handle
class CachedIPRoute:
    """A namespace handle: reads through the fast reader, as records, cached; writes through pyroute2.

    Reads: :meth:`links`, :meth:`get_link`, :meth:`addresses`, :meth:`routes`, :meth:`route_to`,
    :meth:`nsid_of`. Writes: :meth:`link`, :meth:`addr`, :meth:`route` (pyroute2's commands), each of
    which tells the session's registry what it changed (``EFFECTS``). Neighbours, FDB entries and rules
    are not cached: :meth:`neigh`, :meth:`fdb`, :meth:`rule` and :meth:`get_rules` are pyroute2's own,
    with its messages. There is no other call, and no catch-all that would hide a write.
    """

    def __init__(self, session: CachedSession, netns: str | None, reader: FastReader, reads: Reads) -> None:
        self._session = session
        self._netns = netns
        self._reader = reader
        self._reads = reads
        self._pyroute2: Any = None

    @property
    def ipr(self) -> Any:
        """The pyroute2 IPRoute of the namespace, opened on first use (writes, uncached tables)."""
        if self._pyroute2 is None:
            self._pyroute2 = self._session.pyroute2(self._netns)
        return self._pyroute2

    # -- links ----------------------------------------------------------------------
    def _dump_links(self) -> dict[int, Link]:
        reads = self._reads
        if reads.links is None:
            links = self._reader.dump_links()
            reads.links = {link.index: link for link in links}
            reads.by_name = {link.name: link for link in links}
            reads.size = len(links)
        return reads.links

    def links(self) -> tuple[Link, ...]:
        """Every link, by index."""
        links = self._dump_links()
        return tuple(links[i] for i in sorted(links))

    def get_link(self, index: int | None = None, name: str | None = None) -> Link | None:
        """The link with this index or name; None when there is none."""
        reads = self._reads
        # A namespace whose dump a write forgot answers single lookups with single requests when it is
        # large (a bridge's namespace with hundreds of ports, in a cold run), else with a new dump.
        if reads.links is None and reads.size <= REDUMP_LIMIT:
            self._dump_links()
        if reads.links is not None:
            return reads.by_name.get(name) if name is not None else reads.links.get(index or 0)
        try:
            return self._reader.get_link(index=index, ifname=name)
        except NetlinkError as exc:
            if exc.code == ENODEV:
                return None
            raise

    # -- addresses and routes -------------------------------------------------------
    def addresses(self, family: int = AF_UNSPEC, index: int | None = None) -> tuple[Address, ...]:
        """The addresses of this family (AF_UNSPEC: all), of the link ``index`` (None: every link)."""
        if self._reads.addrs is None:
            self._reads.addrs = self._reader.dump_addrs()
        return tuple(
            a for a in self._reads.addrs if (not family or a.family == family) and (index is None or a.index == index)
        )

    def routes(self, family: int = AF_ALL, table: int | None = None) -> tuple[Route, ...]:
        """The IPv4 and/or IPv6 routes (AF_ALL: both), of ``table`` (None: every table)."""
        if self._reads.routes is None:
            self._reads.routes = self._reader.dump_routes()
        families = (AF_INET, AF_INET6) if family == AF_ALL else (family,)
        return tuple(r for r in self._reads.routes if r.family in families and (table is None or r.table == table))

    def route_to(self, dst: str) -> Route:
        """The route the kernel takes to ``dst`` now (not cached)."""
        return self._reader.route_to(dst)

    # -- neighbours and forwarding database entries (not cached: their writes are pyroute2's own) -----------
    def neighbours(self, index: int, family: int = AF_INET) -> list[Neigh]:
        """The neighbour entries of the link ``index``, read now."""
        return [n for n in self._reader.dump_neigh(family) if n.ifindex == index]

    def fdb_entries(self, index: int) -> list[Neigh]:
        """The forwarding database entries of the link ``index`` (a VXLAN device's remotes), read now."""
        return [n for n in self._reader.dump_neigh(AF_BRIDGE) if n.ifindex == index]

    # -- namespace ids --------------------------------------------------------------
    def nsid_of(self, fd: int) -> int | None:
        """The id under which this namespace knows the namespace behind ``fd``; None: none assigned."""
        st = os.fstat(fd)
        key = (netns_path(self._netns) if self._netns else None, st.st_dev, st.st_ino)
        known = self._session.nsids.get(key)
        if known is None:
            known = self._reader.nsid_of(fd)
            if known is not None:  # an assigned id stays; "none yet" may change
                self._session.nsids[key] = known
        return known

    # -- writes ---------------------------------------------------------------------
    def link(self, command: str, **kwarg: Any) -> Any:
        """pyroute2's ``link("add" | "set" | "del", ...)``."""
        if command not in ("add", "set", "del"):
            raise ValueError(f"link({command!r}): reads are links() and get_link()")
        gone = self.get_link(index=kwarg.get("index")) if command == "del" else None
        try:
            with kernel_calls():
                return self.ipr.link(command, **kwarg)
        finally:
            self._session.wrote_link(self._netns, command, kwarg, gone)

    def addr(self, command: str, **kwarg: Any) -> Any:
        """pyroute2's ``addr("add" | "del", ...)``."""
        try:
            with kernel_calls():
                return self.ipr.addr(command, **kwarg)
        finally:
            self._session.wrote(self._netns, *EFFECTS["addr"])

    def route(self, command: str, **kwarg: Any) -> Any:
        """pyroute2's ``route("add" | "del" | "replace", ...)``."""
        try:
            with kernel_calls():
                return self.ipr.route(command, **kwarg)
        finally:
            self._session.wrote(self._netns, *EFFECTS["route"])

    # Neighbours, FDB entries and rules are in no cached dump: their writes forget nothing.
    def neigh(self, command: str, **kwarg: Any) -> Any:
        with kernel_calls():
            return self.ipr.neigh(command, **kwarg)

    def fdb(self, command: str, **kwarg: Any) -> Any:
        with kernel_calls():
            return self.ipr.fdb(command, **kwarg)

    def rule(self, command: str, **kwarg: Any) -> Any:
        with kernel_calls():
            return self.ipr.rule(command, **kwarg)

    def get_rules(self, *argv: Any, **kwarg: Any) -> Any:
        with kernel_calls():
            return self.ipr.get_rules(*argv, **kwarg)

    # -- closing --------------------------------------------------------------------
    def close(self) -> None:
        self._reader.close()
        # the pyroute2 handle belongs to the Session, which closes it


class CachedSession(Session):
    """The Session of every module: its handles are :class:`CachedIPRoute` (see the module docstring).

    The registry: one :class:`Reads` per namespace, found by the namespace's identity (device, inode)
    so that two names of one namespace share it; writes report what they changed (:meth:`wrote`).
    """

    def __init__(self) -> None:
        super().__init__()
        self._cached: dict[str | None, CachedIPRoute] = {}
        self._reads: dict[tuple[int, int], Reads] = {}
        self._idents: dict[str | None, tuple[int, int]] = {}
        self.nsids: dict[tuple[str | None, int, int], int] = {}

    def ipr(self, netns: str | None) -> Any | None:
        cached = self._cached.get(netns)
        if cached is not None:
            return cached
        if not self.netns_exists(netns):
            return None
        try:
            with Session.inside(self, netns):
                reader = FastReader.open()
                st = os.stat("/proc/thread-self/ns/net")
        except OSError as exc:
            raise NetlabError(f"cannot open a netlink socket {where(netns)}: {exc.strerror}") from None
        ident = (st.st_dev, st.st_ino)
        self._idents[netns] = ident
        reads = self._reads.setdefault(ident, Reads())
        cached = self._cached[netns] = CachedIPRoute(self, netns, reader, reads)
        return cached

    def pyroute2(self, netns: str | None) -> Any:
        """The plain pyroute2 handle of the namespace (Session's own, opened on first use)."""
        handle = super().pyroute2(netns)
        if handle is None:
            raise NetlabError(f"network namespace {netns!r} does not exist")
        return handle

    # -- the registry -----------------------------------------------------------------
    def wrote(self, netns: str | None, links: bool = True, addrs: bool = True, routes: bool = True) -> None:
        """A write changed these tables of ``netns``."""
        reads = self._reads.get(self._idents.get(netns))  # type: ignore[arg-type]
        if reads is not None:
            reads.forget(links, addrs, routes)

    def _wrote_fd(self, fd: Any, links: bool, addrs: bool, routes: bool) -> None:
        try:
            st = os.fstat(fd)
        except (OSError, TypeError):
            self.drop_caches(None, everywhere=True)
            return
        reads = self._reads.get((st.st_dev, st.st_ino))
        if reads is not None:
            reads.forget(links, addrs, routes)

    def wrote_link(self, netns: str | None, command: str, kwarg: dict[str, Any], gone: Link | None) -> None:
        """A link write: its namespace, the namespaces it sent links to, and the namespace of a deleted
        veth's peer (which the kernel deletes with it)."""
        effects = EFFECTS[f"link {command}"]
        if command == "set" and set(kwarg) - {"index"} <= LINK_SET_LINKS_ONLY:
            effects = (True, False, False)
        self.wrote(netns, *effects)
        if "net_ns_pid" in kwarg or "netns" in kwarg:
            self.drop_caches(None, everywhere=True)
        for fd in (kwarg.get("net_ns_fd"), (kwarg.get("peer") or {}).get("net_ns_fd")):
            if fd is not None:
                self._wrote_fd(fd, True, command != "add", command != "add")
        if gone is not None and gone.kind == "veth" and gone.link_netnsid is not None:
            self._wrote_nsid(netns, gone.link_netnsid)

    def _wrote_nsid(self, netns: str | None, nsid: int) -> None:
        """Forget the namespace that ``netns`` knows by ``nsid`` (every namespace when none is known)."""
        own = netns_path(netns) if netns else None
        for (where_from, dev, ino), known in self.nsids.items():
            if where_from == own and known == nsid:
                reads = self._reads.get((dev, ino))
                if reads is not None:
                    reads.forget()
                return
        self.drop_caches(None, everywhere=True)

    def drop_caches(self, netns: str | None, everywhere: bool = False) -> None:
        """Forget the cached reads of ``netns`` (None: the module's own), or of every namespace."""
        if everywhere:
            for reads in self._reads.values():
                reads.forget()
            return
        self.wrote(netns)

    def forget(self, netns: str | None) -> None:
        cached = self._cached.pop(netns, None)
        if cached is not None:
            cached.close()
        ident = self._idents.pop(netns, None)
        if ident is not None and ident not in self._idents.values():
            self._reads.pop(ident, None)
        self.nsids.clear()
        self.drop_caches(netns, everywhere=True)
        super().forget(netns)

    def create_netns(self, name: str, share_rundir: bool = True) -> None:
        super().create_netns(name, share_rundir)
        self.nsids.clear()

    @contextlib.contextmanager
    def inside(self, netns: str | None) -> Iterator[None]:
        """Work done inside a namespace (tun devices, sysctls) bypasses the registry: forget its reads afterwards."""
        try:
            with super().inside(netns):
                yield
        finally:
            self.drop_caches(netns)

    def close(self) -> None:
        for cached in self._cached.values():
            with contextlib.suppress(OSError):
                cached.close()
        self._cached.clear()
        self._reads.clear()
        self._idents.clear()
        super().close()
