# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A read cache and a fast read path for netlink, for runs that touch hundreds of namespaces.

Private module_utils of cnfs.netlab, used by every module that converges resources (``run_module``),
``node`` and ``netlink_info``.

Why: pyroute2 0.9 spends about 2 ms of asyncio machinery on every request, even an empty dump,
and about 0.7 ms decoding each link message; opening a handle costs 5-8 ms. The resource models
read the same namespaces again and again (each veth looks up its bridge's namespace, each address
and route lists the links of its own), so a warm run of 512 containers made ~5000 requests.

What: :class:`CachedSession` hands out :class:`CachedIPRoute` handles. Their reads (link, address
and route dumps, single link lookups, namespace ids) go through a plain ``AF_NETLINK`` socket
opened inside the namespace, are parsed into :class:`Msg` objects that answer the pyroute2 message
API the models use (``msg["index"]``, ``get_attr``, ``get``, ``get_nested``) and are cached per
namespace. Anything a :class:`Msg` does not decode itself is handed to pyroute2's own parser of the
same bytes, so the API stays complete. Writes, and the few other calls it names, go to a pyroute2 ``IPRoute``
opened on first use; every write drops the caches it may affect.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    netns_path,
    where,
)

# ---------------------------------------------------------------------------- netlink constants
NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_DUMP, NLM_F_DUMP_INTR = 0x1, 0x300, 0x10
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR, RTM_GETADDR = 16, 18, 20, 22
RTM_NEWROUTE, RTM_GETROUTE, RTM_NEWNSID, RTM_GETNSID = 24, 26, 88, 90
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
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")


# ---------------------------------------------------------------------------- attribute decoders
def _str(raw: bytes, family: int) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _u8(raw: bytes, family: int) -> int:
    return raw[0]


def _u16(raw: bytes, family: int) -> int:
    return struct.unpack_from("=H", raw)[0]


def _be16(raw: bytes, family: int) -> int:
    return struct.unpack_from("!H", raw)[0]


def _u32(raw: bytes, family: int) -> int:
    return struct.unpack_from("=I", raw)[0]


def _s32(raw: bytes, family: int) -> int:
    return struct.unpack_from("=i", raw)[0]


def _mac(raw: bytes, family: int) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ip(raw: bytes, family: int) -> str:
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    return raw.hex()


def _operstate(raw: bytes, family: int) -> str:
    return OPERSTATES[raw[0]] if raw[0] < len(OPERSTATES) else "UNKNOWN"


def _via(raw: bytes, family: int) -> dict[str, Any]:
    via_family = struct.unpack_from("=H", raw)[0]
    return {"family": via_family, "addr": _ip(raw[2:], via_family)}


Decoder = Callable[[bytes, int], Any]
Table = dict[str, tuple[int, Decoder]]

LINK_ATTRS: Table = {
    "IFLA_ADDRESS": (1, _mac),
    "IFLA_BROADCAST": (2, _mac),
    "IFLA_IFNAME": (3, _str),
    "IFLA_MTU": (4, _u32),
    "IFLA_LINK": (5, _u32),
    "IFLA_QDISC": (6, _str),
    "IFLA_MASTER": (10, _u32),
    "IFLA_TXQLEN": (13, _u32),
    "IFLA_OPERSTATE": (16, _operstate),
    "IFLA_LINKMODE": (17, _u8),
    "IFLA_IFALIAS": (20, _str),
    "IFLA_GROUP": (27, _u32),
    "IFLA_PROMISCUITY": (30, _u32),
    "IFLA_NUM_TX_QUEUES": (31, _u32),
    "IFLA_NUM_RX_QUEUES": (32, _u32),
    "IFLA_CARRIER": (33, _u8),
    "IFLA_CARRIER_CHANGES": (35, _u32),
    "IFLA_LINK_NETNSID": (37, _s32),
    "IFLA_PROTO_DOWN": (39, _u8),
    "IFLA_GSO_MAX_SEGS": (40, _u32),
    "IFLA_GSO_MAX_SIZE": (41, _u32),
    "IFLA_MIN_MTU": (50, _u32),
    "IFLA_MAX_MTU": (51, _u32),
}
LINKINFO_ATTRS: Table = {"IFLA_INFO_KIND": (1, _str), "IFLA_INFO_SLAVE_KIND": (4, _str)}
NESTED_LINK = {"IFLA_LINKINFO": 18}
NESTED_LINKINFO = {"IFLA_INFO_DATA": 2}
INFO_DATA_ATTRS: dict[str, Table] = {
    "bridge": {"IFLA_BR_STP_STATE": (5, _u32), "IFLA_BR_VLAN_FILTERING": (7, _u8)},
    "vxlan": {
        "IFLA_VXLAN_ID": (1, _u32),
        "IFLA_VXLAN_GROUP": (2, _ip),
        "IFLA_VXLAN_LINK": (3, _u32),
        "IFLA_VXLAN_LOCAL": (4, _ip),
        "IFLA_VXLAN_TTL": (5, _u8),
        "IFLA_VXLAN_TOS": (6, _u8),
        "IFLA_VXLAN_LEARNING": (7, _u8),
        "IFLA_VXLAN_PORT": (15, _be16),
        "IFLA_VXLAN_GROUP6": (16, _ip),
        "IFLA_VXLAN_LOCAL6": (17, _ip),
    },
}
ADDR_ATTRS: Table = {
    "IFA_ADDRESS": (1, _ip),
    "IFA_LOCAL": (2, _ip),
    "IFA_LABEL": (3, _str),
    "IFA_BROADCAST": (4, _ip),
    "IFA_ANYCAST": (5, _ip),
    "IFA_MULTICAST": (7, _ip),
    "IFA_FLAGS": (8, _u32),
}
ROUTE_ATTRS: Table = {
    "RTA_DST": (1, _ip),
    "RTA_SRC": (2, _ip),
    "RTA_IIF": (3, _u32),
    "RTA_OIF": (4, _u32),
    "RTA_GATEWAY": (5, _ip),
    "RTA_PRIORITY": (6, _u32),
    "RTA_PREFSRC": (7, _ip),
    "RTA_FLOW": (11, _u32),
    "RTA_TABLE": (15, _u32),
    "RTA_MARK": (16, _u32),
    "RTA_VIA": (18, _via),
    "RTA_PREF": (20, _u8),
    "RTA_ENCAP_TYPE": (21, _u16),
    "RTA_NH_ID": (30, _u32),
}
RTA_MULTIPATH = 9


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


# ---------------------------------------------------------------------------- messages
class Nested:
    """A nested attribute (IFLA_LINKINFO, IFLA_INFO_DATA, a nexthop) with the pyroute2 reading API."""

    __slots__ = ("_attrs", "_fallback", "_family", "_nested", "_table")

    def __init__(
        self,
        attrs: dict[int, bytes],
        table: Table,
        nested: dict[str, Callable[[], Nested | None]],
        family: int,
        fallback: Callable[[], Any],
    ) -> None:
        self._attrs = attrs
        self._table = table
        self._nested = nested
        self._family = family
        self._fallback = fallback

    def get_attr(self, name: str, default: Any = None) -> Any:
        if name in self._nested:
            value = self._nested[name]()
            return default if value is None else value
        spec = self._table.get(name)
        if spec is None:
            found = self._fallback()
            return default if found is None else found.get_attr(name, default)
        raw = self._attrs.get(spec[0])
        return default if raw is None else spec[1](raw, self._family)

    def get_nested(self, *names: str) -> Any:
        node: Any = self
        for name in names:
            if node is None:
                return None
            node = node.get_attr(name)
        return node

    def get(self, key: Any, default: Any = None) -> Any:
        if isinstance(key, tuple):
            return self._fallback_get(key, default)
        value = self.get_attr(key)
        return default if value is None else value

    def _fallback_get(self, key: Any, default: Any) -> Any:
        found = self._fallback()
        return default if found is None else found.get(key, default)


class Msg(Nested):
    """One RTM_NEWLINK / RTM_NEWADDR / RTM_NEWROUTE message, decoded lazily.

    Answers ``msg[field]`` for the header fields, ``get_attr``/``get``/``get_nested`` for the
    attributes it knows (see the tables above) and hands everything else to pyroute2's parser of
    the same bytes (``full()``), so code written against pyroute2 messages works unchanged.
    """

    __slots__ = ("_full", "_header", "_raw", "_type")

    def __init__(self, msg_type: int, header: dict[str, int], attrs: dict[int, bytes], raw: bytes) -> None:
        table, nested = self._layout(msg_type, attrs, header)
        super().__init__(attrs, table, nested, header.get("family", AF_UNSPEC), self.full)
        self._type = msg_type
        self._header = header
        self._raw = raw
        self._full: Any = None

    def _layout(
        self, msg_type: int, attrs: dict[int, bytes], header: dict[str, int]
    ) -> tuple[Table, dict[str, Callable[[], Nested | None]]]:
        if msg_type == RTM_NEWLINK:
            return LINK_ATTRS, {"IFLA_LINKINFO": self._linkinfo}
        if msg_type == RTM_NEWADDR:
            return ADDR_ATTRS, {}
        return ROUTE_ATTRS, {"RTA_MULTIPATH": self._multipath}

    def full(self) -> Any:
        """The same message parsed by pyroute2 (made on first use)."""
        if self._full is None:
            from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
            from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
            from pyroute2.netlink.rtnl.rtmsg import rtmsg

            cls = {RTM_NEWLINK: ifinfmsg, RTM_NEWADDR: ifaddrmsg}.get(self._type, rtmsg)
            full = cls(self._raw)
            full.decode()
            self._full = full
        return self._full

    def _linkinfo(self) -> Nested | None:
        raw = self._attrs.get(NESTED_LINK["IFLA_LINKINFO"])
        if raw is None:
            return None
        attrs = parse_attrs(raw, 0, len(raw))
        kind = _str(attrs[1], 0) if 1 in attrs else None

        def fallback() -> Any:
            return self.full().get_attr("IFLA_LINKINFO")

        def data() -> Nested | None:
            payload = attrs.get(NESTED_LINKINFO["IFLA_INFO_DATA"])
            if payload is None:
                return None
            table = INFO_DATA_ATTRS.get(kind or "")
            if table is None:
                return self.full().get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")

            def data_fallback() -> Any:
                return self.full().get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")

            return Nested(parse_attrs(payload, 0, len(payload)), table, {}, AF_UNSPEC, data_fallback)

        return Nested(attrs, LINKINFO_ATTRS, {"IFLA_INFO_DATA": data}, AF_UNSPEC, fallback)

    def _multipath(self) -> list[Any] | None:
        raw = self._attrs.get(RTA_MULTIPATH)
        if raw is None:
            return None
        hops: list[Any] = []
        offset = 0
        while offset + RTNH.size <= len(raw):
            length, flags, hops_field, oif = RTNH.unpack_from(raw, offset)
            if length < RTNH.size:
                break
            attrs = parse_attrs(raw, offset + RTNH.size, offset + length)
            hop = _Hop(attrs, ROUTE_ATTRS, {}, self._family, self.full)
            hop.header = {"flags": flags, "hops": hops_field, "oif": oif}
            hops.append(hop)
            offset += (length + 3) & ~3
        return hops

    # -- the pyroute2 message API ----------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key in self._header:
            return self._header[key]
        return self.full()[key]

    def __contains__(self, key: str) -> bool:
        return key in self._header or key in self.full()

    def get(self, key: Any, default: Any = None) -> Any:
        if isinstance(key, str) and key in self._header:
            return self._header[key]
        if isinstance(key, str) and key.isupper():
            return super().get(key, default)
        return self._fallback_get(key, default)

    def __repr__(self) -> str:
        return f"<Msg {self._type} {self._header}>"


class _Hop(Nested):
    """A nexthop of RTA_MULTIPATH: ``hop["oif"]``, ``hop["flags"]``, ``hop["hops"]`` and its attributes."""

    __slots__ = ("header",)

    def __getitem__(self, key: str) -> Any:
        return self.header[key]


def parse_message(data: bytes | memoryview, offset: int, length: int, msg_type: int) -> Msg:
    body = offset + HDR.size
    if msg_type == RTM_NEWLINK:
        family, ifi_type, index, flags, change = IFINFO.unpack_from(data, body)
        header = {"family": family, "ifi_type": ifi_type, "index": index, "flags": flags, "change": change}
        start = body + IFINFO.size
    elif msg_type == RTM_NEWADDR:
        family, prefixlen, flags, scope, index = IFADDR.unpack_from(data, body)
        header = {"family": family, "prefixlen": prefixlen, "flags": flags, "scope": scope, "index": index}
        start = body + IFADDR.size
    else:
        fields = RTMSG.unpack_from(data, body)
        header = dict(
            zip(
                ("family", "dst_len", "src_len", "tos", "table", "proto", "scope", "type", "flags"), fields, strict=True
            )
        )
        start = body + RTMSG.size
    end = offset + length
    return Msg(msg_type, header, parse_attrs(data, start, end), bytes(data[offset:end]))


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

    def request(self, msg_type: int, flags: int, body: bytes) -> list[tuple[int, Msg | bytes]]:
        """Send one request; return the (type, message) replies. NLMSG_ERROR raises NetlinkError."""
        for _attempt in range(5):
            self.seq += 1
            seq = self.seq
            self.sock.send(HDR.pack(HDR.size + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body)
            replies: list[tuple[int, Msg | bytes]] = []
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
                        elif rtype in (RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE):
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

    def dump_links(self) -> list[Msg]:
        body = IFINFO.pack(AF_UNSPEC, 0, 0, 0, 0) + _nla(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))
        return [m for t, m in self.request(RTM_GETLINK, NLM_F_DUMP, body) if t == RTM_NEWLINK]  # type: ignore[misc]

    def get_link(self, index: int | None = None, ifname: str | None = None) -> Msg:
        body = IFINFO.pack(AF_UNSPEC, 0, index or 0, 0, 0)
        body += _nla(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))
        if ifname is not None:
            body += _nla(IFLA_IFNAME, ifname.encode("utf-8", "surrogateescape") + b"\0")
        for rtype, msg in self.request(RTM_GETLINK, 0, body):
            if rtype == RTM_NEWLINK:
                return msg  # type: ignore[return-value]
        raise NetlinkError(ENODEV, os.strerror(ENODEV))

    def dump_addrs(self) -> list[Msg]:
        body = IFADDR.pack(AF_UNSPEC, 0, 0, 0, 0)
        return [m for t, m in self.request(RTM_GETADDR, NLM_F_DUMP, body) if t == RTM_NEWADDR]  # type: ignore[misc]

    def dump_routes(self) -> list[Msg]:
        body = RTMSG.pack(AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)
        return [m for t, m in self.request(RTM_GETROUTE, NLM_F_DUMP, body) if t == RTM_NEWROUTE]  # type: ignore[misc]

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


# ---------------------------------------------------------------------------- the cached handle
class CachedIPRoute:
    """A namespace handle: cached fast reads, pyroute2 for everything else (see the module docstring).

    Reads served here: ``get_links()`` / ``get_links(index, ...)`` / ``link("get"|"dump")`` /
    ``link_lookup(ifname=...)``, ``get_addr()`` filtered by index and family, ``get_routes()``
    filtered by family, ``get_netnsid(fd=...)``. A link, address or route write drops the caches (of
    every namespace when it may touch another one: creating, moving or deleting a link). Any other
    pyroute2 call must be added here explicitly: there is no catch-all that would hide a write.
    """

    READS = frozenset({"get", "dump"})

    def __init__(self, session: CachedSession, netns: str | None, reader: FastReader) -> None:
        self._session = session
        self._netns = netns
        self._reader = reader
        self._pyroute2: Any = None
        self._links: dict[int, Msg] | None = None
        self._by_name: dict[str, Msg] = {}
        self._size = 0
        self._addrs: list[Msg] | None = None
        self._routes: list[Msg] | None = None

    @property
    def ipr(self) -> Any:
        """The pyroute2 IPRoute of the namespace, opened on first use (writes, uncached reads)."""
        if self._pyroute2 is None:
            self._pyroute2 = self._session.pyroute2(self._netns)
        return self._pyroute2

    # -- invalidation ---------------------------------------------------------------
    def drop(self) -> None:
        self._links = None
        self._by_name = {}
        self._addrs = None
        self._routes = None

    def _wrote(self, everywhere: bool = False) -> None:
        self._session.drop_caches(self._netns, everywhere=everywhere)

    # -- links ----------------------------------------------------------------------
    def _dump_links(self) -> dict[int, Msg]:
        if self._links is None:
            links = self._reader.dump_links()
            self._links = {msg["index"]: msg for msg in links}
            self._by_name = {msg.get_attr("IFLA_IFNAME"): msg for msg in links}
            self._size = len(links)
        return self._links

    def _cached_links(self) -> bool:
        """Whether single lookups may be answered from a dump (made now if cheap)."""
        if self._links is None and self._size <= REDUMP_LIMIT:
            self._dump_links()
        return self._links is not None

    def _one(self, index: int | None = None, ifname: str | None = None) -> Msg:
        if self._cached_links():
            msg = self._by_name.get(ifname) if ifname is not None else self._links.get(index)  # type: ignore[union-attr]
            if msg is None:
                raise NetlinkError(ENODEV, os.strerror(ENODEV))
            return msg
        return self._reader.get_link(index=index, ifname=ifname)

    def get_links(self, *argv: Any, **kwarg: Any) -> Any:
        if kwarg:
            return self.ipr.get_links(*argv, **kwarg)
        if not argv or argv[0] in (0, "all"):
            links = self._dump_links()
            return tuple(links[i] for i in sorted(links))
        return tuple(self._one(index=index) for index in argv)

    def link_lookup(self, match: Any = None, **kwarg: Any) -> Any:
        if match is None and set(kwarg) in ({"ifname"}, {"index"}):
            try:
                return [self._one(**kwarg)["index"]]
            except NetlinkError:
                return []
        return self.ipr.link_lookup(match=match, **kwarg) if match is not None else self.ipr.link_lookup(**kwarg)

    def link(self, command: str, **kwarg: Any) -> Any:
        if command == "get" and set(kwarg) in ({"ifname"}, {"index"}):
            return (self._one(**kwarg),)
        if command == "dump" and not kwarg:
            return self.get_links()
        if command in self.READS:
            return self.ipr.link(command, **kwarg)
        try:
            return self.ipr.link(command, **kwarg)
        finally:
            self._wrote_link(command, kwarg)

    def _wrote_link(self, command: str, kwarg: dict[str, Any]) -> None:
        """Drop what a link change may have changed: this namespace, and those it sent a link to."""
        if command == "del":  # a veth takes its peer, wherever it is, with it
            self._wrote(everywhere=True)
            return
        fds = [kwarg.get("net_ns_fd")]
        peer = kwarg.get("peer")
        if isinstance(peer, dict):
            fds.append(peer.get("net_ns_fd"))
        if "net_ns_pid" in kwarg or "netns" in kwarg or any(fd is not None and not isinstance(fd, int) for fd in fds):
            self._wrote(everywhere=True)
            return
        self._wrote()
        for fd in fds:
            if fd is not None:
                self._session.drop_caches_of_fd(fd)

    # -- addresses ------------------------------------------------------------------
    def get_addr(self, family: int = AF_UNSPEC, match: Any = None, **kwarg: Any) -> Any:
        if match is not None or set(kwarg) - {"index"}:
            return self.ipr.get_addr(family=family, match=match, **kwarg)
        if self._addrs is None:
            self._addrs = self._reader.dump_addrs()
        index = kwarg.get("index")
        return tuple(
            m for m in self._addrs if (not family or m["family"] == family) and (index is None or m["index"] == index)
        )

    def addr(self, command: str, **kwarg: Any) -> Any:
        if command in self.READS:
            return self.ipr.addr(command, **kwarg)
        try:
            return self.ipr.addr(command, **kwarg)
        finally:
            self._wrote()

    # -- routes ---------------------------------------------------------------------
    def get_routes(self, family: int = AF_ALL, match: Any = None, **kwarg: Any) -> Any:
        if match is not None or kwarg or family not in (AF_INET, AF_INET6, AF_ALL):
            return self.ipr.get_routes(family=family, match=match, **kwarg)
        if self._routes is None:
            self._routes = self._reader.dump_routes()
        return tuple(m for m in self._routes if m["family"] in ((AF_INET, AF_INET6) if family == AF_ALL else (family,)))

    def route(self, command: str, **kwarg: Any) -> Any:
        if command in self.READS:
            return self.ipr.route(command, **kwarg)
        try:
            return self.ipr.route(command, **kwarg)
        finally:
            self._wrote()

    # -- namespace ids --------------------------------------------------------------
    def get_netnsid(self, nsid: Any = None, pid: Any = None, fd: Any = None, target_nsid: Any = None) -> Any:
        if fd is None or nsid is not None or pid is not None or target_nsid is not None:
            return self.ipr.get_netnsid(nsid=nsid, pid=pid, fd=fd, target_nsid=target_nsid)
        st = os.fstat(fd)
        key = (netns_path(self._netns) if self._netns else None, st.st_dev, st.st_ino)
        known = self._session.nsids.get(key)
        if known is None:
            known = self._reader.nsid_of(fd)
            if known is not None:  # an assigned id stays; "none yet" may change
                self._session.nsids[key] = known
        return {"nsid": NSID_NONE if known is None else known, "current_nsid": None}

    # -- tables that are not cached (used by the overlay) -----------------------------
    # Neighbours, fdb entries and rules are not in any cached dump, so their writes drop nothing.
    def neigh(self, command: str, **kwarg: Any) -> Any:
        return self.ipr.neigh(command, **kwarg)

    def fdb(self, command: str, **kwarg: Any) -> Any:
        return self.ipr.fdb(command, **kwarg)

    def rule(self, command: str, **kwarg: Any) -> Any:
        return self.ipr.rule(command, **kwarg)

    def get_rules(self, *argv: Any, **kwarg: Any) -> Any:
        return self.ipr.get_rules(*argv, **kwarg)

    # -- closing --------------------------------------------------------------------
    def close(self) -> None:
        self._reader.close()
        # the pyroute2 handle belongs to the Session, which closes it


class CachedSession(Session):
    """A Session whose handles are :class:`CachedIPRoute` (cached fast reads, pyroute2 for writes)."""

    def __init__(self) -> None:
        super().__init__()
        self._cached: dict[str | None, CachedIPRoute] = {}
        self._by_ident: dict[tuple[int, int], list[CachedIPRoute]] = {}
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
        cached = self._cached[netns] = CachedIPRoute(self, netns, reader)
        ident = (st.st_dev, st.st_ino)
        self._idents[netns] = ident
        self._by_ident.setdefault(ident, []).append(cached)
        return cached

    def pyroute2(self, netns: str | None) -> Any:
        """The plain pyroute2 handle of the namespace (Session's own, opened on first use)."""
        handle = Session.ipr(self, netns)
        if handle is None:
            raise NetlabError(f"network namespace {netns!r} does not exist")
        return handle

    def drop_caches(self, netns: str | None, everywhere: bool = False) -> None:
        """Forget the cached reads of ``netns`` (None: the module's own), or of every namespace."""
        if everywhere:
            for cached in self._cached.values():
                cached.drop()
            return
        ident = self._idents.get(netns)
        if ident is not None:
            for cached in self._by_ident.get(ident, ()):
                cached.drop()

    def drop_caches_of_fd(self, fd: int) -> None:
        """Forget the cached reads of the namespace behind the file descriptor ``fd``."""
        try:
            st = os.fstat(fd)
        except OSError:
            self.drop_caches(None, everywhere=True)
            return
        for cached in self._by_ident.get((st.st_dev, st.st_ino), ()):
            cached.drop()

    def forget(self, netns: str | None) -> None:
        cached = self._cached.pop(netns, None)
        if cached is not None:
            cached.close()
            ident = self._idents.pop(netns, None)
            if ident is not None and cached in self._by_ident.get(ident, []):
                self._by_ident[ident].remove(cached)
        self.nsids.clear()
        self.drop_caches(netns, everywhere=True)
        super().forget(netns)

    def create_netns(self, name: str) -> None:
        super().create_netns(name)
        self.nsids.clear()

    @contextlib.contextmanager
    def inside(self, netns: str | None) -> Iterator[None]:
        """Work done inside a namespace (tun devices, sysctls) bypasses the cache: drop it afterwards."""
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
        self._by_ident.clear()
        self._idents.clear()
        super().close()
