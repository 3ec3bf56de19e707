# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reachability probes from inside namespaces: ICMP echo on raw sockets and TCP connects, all at once.

Private module_utils of cnfs.netlab, used by ``reachability``. Each target is probed from its own
namespace (``targets[].netns``, else the module's). Sockets are created inside their namespace
(:meth:`Session.inside`) and keep living there; every probe of every target of every namespace is
sent first, then one loop waits for the answers: echo replies are matched by (id, sequence) and the
namespace of the socket that received them, ICMP errors by the echo request they quote, TCP connects
by their socket. A target whose namespace does not exist is a failed result, not an error of the
run. No ``ping`` is run.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import random
import resource
import selectors
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    validate_netns,
)

ICMP_ECHO_REPLY, ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_TIME_EXCEEDED = 0, 3, 8, 11
ICMP6_DEST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED, ICMP6_ECHO, ICMP6_ECHO_REPLY = 1, 2, 3, 128, 129
IP_MTU_DISCOVER, IP_PMTUDISC_DONT, IP_PMTUDISC_DO = 10, 0, 2
IPV6_MTU_DISCOVER, IPV6_PMTUDISC_DONT, IPV6_PMTUDISC_DO, IPV6_DONTFRAG = 23, 0, 2, 62
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
SOCKET_BUFFER = 4 << 20
HEADER = {4: 20 + 8, 6: 40 + 8}  # IP + ICMP header bytes in front of the payload
DEFAULT_SIZE = 56  # the payload of `ping`
MAX_PAYLOAD = 65507

UNREACH_V4 = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed",
    9: "network prohibited",
    10: "host prohibited",
    13: "communication administratively prohibited",
}
UNREACH_V6 = {
    0: "no route to destination",
    1: "communication administratively prohibited",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed policy",
    6: "reject route to destination",
}

TARGET_SPEC: dict[str, Any] = {
    "address": {"type": "str", "required": True},
    "name": {"type": "str"},
    "icmp": {"type": "bool"},
    "tcp_port": {"type": "int"},
    "dont_fragment": {"type": "bool", "default": False},
    "size": {"type": "int"},
    "count": {"type": "int", "default": 1},
    "timeout": {"type": "float", "default": 1.0},
    "netns": {"type": "str"},
}


# ------------------------------------------------------------------ pure helpers


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(version: int, ident: int, seq: int, size: int) -> bytes:
    """An ICMP (v4) or ICMPv6 echo request with ``size`` payload bytes (the kernel sums ICMPv6 itself)."""
    payload = bytes((i & 0xFF) for i in range(size))
    kind = ICMP_ECHO if version == 4 else ICMP6_ECHO
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if version == 6:
        return header + payload
    return struct.pack("!BBHHH", kind, 0, checksum(header + payload), ident, seq) + payload


def parse_icmp(version: int, packet: bytes) -> tuple[str, int, int, str | None] | None:
    """Read a received ICMP packet: ('reply', id, seq, None), ('error', id, seq, message) or None (not ours).

    IPv4 raw sockets receive the IP header in front; errors quote the IP header and the first
    8 bytes of the echo request that caused them, which carry its id and sequence.
    """
    if version == 4:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < 8:
        return None
    kind, code = packet[0], packet[1]
    if (version, kind) in ((4, ICMP_ECHO_REPLY), (6, ICMP6_ECHO_REPLY)):
        ident, seq = struct.unpack_from("!HH", packet, 4)
        return ("reply", ident, seq, None)
    message = _icmp_error(version, kind, code, packet)
    if message is None:
        return None
    quoted = packet[8:]
    if version == 4:
        if len(quoted) < 20:
            return None
        quoted = quoted[(quoted[0] & 0x0F) * 4 :]
        echo = ICMP_ECHO
    else:
        if len(quoted) < 40 or quoted[6] != socket.IPPROTO_ICMPV6:
            return None
        quoted = quoted[40:]
        echo = ICMP6_ECHO
    if len(quoted) < 8 or quoted[0] != echo:
        return None
    ident, seq = struct.unpack_from("!HH", quoted, 4)
    return ("error", ident, seq, message)


def _icmp_error(version: int, kind: int, code: int, packet: bytes) -> str | None:
    mtu = struct.unpack_from("!H", packet, 6)[0] if version == 4 else struct.unpack_from("!I", packet, 4)[0]
    if version == 4 and kind == ICMP_DEST_UNREACH:
        text = UNREACH_V4.get(code, f"destination unreachable (code {code})")
        return f"{text}, the path MTU is {mtu}" if code == 4 else text
    if version == 4 and kind == ICMP_TIME_EXCEEDED:
        return "time to live exceeded"
    if version == 6 and kind == ICMP6_DEST_UNREACH:
        return UNREACH_V6.get(code, f"destination unreachable (code {code})")
    if version == 6 and kind == ICMP6_PACKET_TOO_BIG:
        return f"packet too big, the path MTU is {mtu}"
    if version == 6 and kind == ICMP6_TIME_EXCEEDED:
        return "hop limit exceeded"
    return None


@dataclass
class Target:
    """One validated target and, after the run, its outcome."""

    address: str
    version: int
    name: str
    icmp: bool
    tcp_port: int | None
    dont_fragment: bool
    size: int | None
    count: int
    timeout: float
    netns: str | None = None  # where the probes are sent from (None: the namespace the module runs in)
    netns_error: str | None = None  # that namespace cannot be entered: nothing was sent
    sent: int = 0
    received: int = 0
    rtts: list[float] = field(default_factory=list)
    icmp_error: str | None = None
    tcp_ok: bool | None = None
    tcp_error: str | None = None
    tcp_rtt: float | None = None

    @property
    def ok(self) -> bool:
        if self.netns_error is not None:
            return False
        icmp_ok = not self.icmp or self.received > 0
        tcp_ok = self.tcp_port is None or bool(self.tcp_ok)
        return icmp_ok and tcp_ok

    def result(self) -> dict[str, Any]:
        errors = [self.netns_error] if self.netns_error is not None else []
        if self.netns_error is None and self.icmp and self.received == 0:
            errors.append(f"icmp: {self.icmp_error or f'no reply within {self.timeout:g} s'}")
        if self.netns_error is None and self.tcp_port is not None and not self.tcp_ok:
            errors.append(f"tcp port {self.tcp_port}: {self.tcp_error or 'no answer'}")
        rtt = sum(self.rtts) / len(self.rtts) if self.rtts else self.tcp_rtt
        return {
            "name": self.name,
            "address": self.address,
            "netns": self.netns,
            "ok": self.ok,
            "icmp": self.icmp,
            "sent": self.sent,
            "received": self.received,
            "size": self.size if self.icmp and self.netns_error is None else None,
            "dont_fragment": self.dont_fragment,
            "tcp_port": self.tcp_port,
            "tcp_ok": self.tcp_ok,
            "rtt_ms": round(rtt * 1000, 3) if rtt is not None else None,
            "error": "; ".join(errors) or None,
        }


def make_targets(specs: list[dict[str, Any]], netns: str | None = None) -> list[Target]:
    """Validate every target (pure); raise NetlabError naming the target and saying what to do.

    A target without its own ``netns`` (omitted or "") is probed from ``netns``, the module's.
    """
    out = []
    for num, spec in enumerate(specs, 1):
        label = spec.get("name") or spec.get("address")
        what = f"target {num} ({label})"
        try:
            addr = ipaddress.ip_address(str(spec.get("address", "")).strip())
        except ValueError:
            raise NetlabError(
                f"{what}: address {spec.get('address')!r} is not an IP address (names are not resolved): "
                "give an IPv4 or IPv6 address"
            ) from None
        tcp_port = spec.get("tcp_port")
        if tcp_port is not None and not 1 <= tcp_port <= 65535:
            raise NetlabError(f"{what}: tcp_port {tcp_port} is not a port: use 1-65535")
        icmp = spec.get("icmp")
        if icmp is None:
            icmp = tcp_port is None
        if not icmp and tcp_port is None:
            raise NetlabError(f"{what}: icmp is false and no tcp_port is given: nothing to check")
        count = spec.get("count", 1)
        if count is None or not 1 <= count <= 100:
            raise NetlabError(f"{what}: count {count} is out of range: use 1-100")
        timeout = spec.get("timeout", 1.0)
        if timeout is None or not 0 < timeout <= 60:
            raise NetlabError(f"{what}: timeout {timeout} is out of range: use more than 0 and at most 60 seconds")
        size = spec.get("size")
        if size is not None and not 0 <= size <= MAX_PAYLOAD:
            raise NetlabError(f"{what}: size {size} is out of range: use 0-{MAX_PAYLOAD} payload bytes")
        own_netns = spec.get("netns") or None
        validate_netns(own_netns, f"{what}: netns")
        out.append(
            Target(
                address=str(addr),
                version=addr.version,
                name=spec.get("name") or str(addr),
                icmp=icmp,
                tcp_port=tcp_port,
                dont_fragment=bool(spec.get("dont_fragment")),
                size=size,
                count=count,
                timeout=float(timeout),
                netns=own_netns if own_netns is not None else netns,
            )
        )
    return out


def by_netns(targets: list[Target]) -> dict[str | None, list[Target]]:
    """The targets grouped by the namespace they are probed from, namespaces in order of first use."""
    groups: dict[str | None, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.netns, []).append(target)
    return groups


def _os_error(exc: OSError) -> str:
    code = exc.errno or 0
    return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}" if code else str(exc)


# ------------------------------------------------------------------ the probe run


class Prober:
    """Sends every probe of every target at once, each from its namespace, and collects the answers in one loop."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def route_mtu(self, target: Target) -> int:
        """The MTU of the device the route to the target uses (for a full-size don't-fragment probe)."""
        ipr = self.session.ipr(target.netns)
        try:
            route = ipr.route_to(target.address)
        except NetlinkError as exc:
            raise _NoRoute(f"no route to {target.address} ({getattr(exc, 'args', [''])[-1] or exc})") from None
        link = ipr.get_link(index=route.oif) if route.oif else None
        if link is None:
            raise _NoRoute(f"no route to {target.address} (no output device)")
        return int(link.mtu)

    def _sizes(self, targets: list[Target]) -> None:
        """Fill in the default ICMP payload sizes (read from the kernel; never inside Session.inside)."""
        for target in targets:
            if target.icmp and target.size is None:
                if target.dont_fragment:
                    try:
                        target.size = max(self.route_mtu(target) - HEADER[target.version], 0)
                    except _NoRoute as exc:
                        target.icmp_error = str(exc)
                        target.size = 0
                else:
                    target.size = DEFAULT_SIZE

    def run(self, targets: list[Target]) -> None:
        groups = by_netns(targets)
        # Every socket of every namespace is open at once: a TCP socket per TCP target, up to 4 raw ones each.
        _raise_fd_limit(sum(t.tcp_port is not None for t in targets) + 4 * len(groups) + 256)
        ident = random.randrange(1, 0xFFFF)
        sel = selectors.DefaultSelector()
        raw: dict[tuple[str | None, int, bool], socket.socket] = {}
        pending: dict[int, tuple[Target, float]] = {}  # seq -> (target, deadline)
        sent_at: dict[int, float] = {}
        tcp: dict[socket.socket, tuple[Target, float, float]] = {}
        seq = 0
        try:
            for netns, members in groups.items():
                if not self.session.netns_exists(netns):
                    for target in members:
                        target.netns_error = f"network namespace {netns!r} does not exist"
                    continue
                self._sizes(members)
                try:
                    with self.session.inside(netns):
                        for target in members:
                            seq = self._send(raw, sel, pending, sent_at, tcp, target, ident, seq)
                except NetlabError as exc:  # gone or not enterable since the check: nothing was sent
                    for target in members:
                        target.netns_error = str(exc)
            self._wait(sel, pending, sent_at, tcp, ident)
        finally:
            for sock in [*raw.values(), *tcp]:
                with contextlib.suppress(Exception):
                    sel.unregister(sock)
                sock.close()
            sel.close()

    def _send(
        self,
        raw: dict[tuple[str | None, int, bool], socket.socket],
        sel: selectors.BaseSelector,
        pending: dict[int, tuple[Target, float]],
        sent_at: dict[int, float],
        tcp: dict[socket.socket, tuple[Target, float, float]],
        target: Target,
        ident: int,
        seq: int,
    ) -> int:
        """Send the target's echo requests and start its TCP connect (the thread is inside its namespace)."""
        sock = None
        if target.icmp and target.icmp_error is None:
            try:
                sock = self._raw(raw, sel, target.netns, target.version, target.dont_fragment)
            except OSError as exc:
                target.icmp_error = f"cannot open a raw ICMP socket ({_os_error(exc)})"
        if sock is not None:
            for _probe in range(target.count):
                seq = (seq + 1) & 0xFFFF
                packet = echo_request(target.version, ident, seq, target.size or 0)
                now = time.monotonic()
                try:
                    sock.sendto(packet, (target.address, 0))
                except OSError as exc:
                    target.icmp_error = self._send_error(exc, target)
                    break
                target.sent += 1
                sent_at[seq] = now
                pending[seq] = (target, now + target.timeout)
        if target.tcp_port is not None:
            self._connect(tcp, sel, target)
        return seq

    @staticmethod
    def _send_error(exc: OSError, target: Target) -> str:
        if exc.errno == errno.EMSGSIZE:
            return (
                f"{target.size} payload bytes do not fit the path MTU with don't-fragment set ({_os_error(exc)})"
                if target.dont_fragment
                else f"{target.size} payload bytes are too many ({_os_error(exc)})"
            )
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return f"no route to {target.address} ({_os_error(exc)})"
        return f"cannot send ({_os_error(exc)})"

    @staticmethod
    def _raw(
        raw: dict[tuple[str | None, int, bool], socket.socket],
        sel: selectors.BaseSelector,
        netns: str | None,
        version: int,
        df: bool,
    ) -> socket.socket:
        """The raw socket of (namespace, IP version, don't-fragment); created in the current namespace."""
        key = (netns, version, df)
        if key not in raw:
            if version == 4:
                sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            else:
                sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            try:
                if version == 4:
                    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
                else:
                    pmtu = IPV6_PMTUDISC_DO if df else IPV6_PMTUDISC_DONT
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, pmtu)
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1 if df else 0)
                for option, force in ((socket.SO_RCVBUF, SO_RCVBUFFORCE), (socket.SO_SNDBUF, SO_SNDBUFFORCE)):
                    # Every reply of a large matrix arrives at once: room for thousands (root may force it).
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
                    except OSError:
                        sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ, ("raw", (netns, version)))
            except BaseException:
                sock.close()
                raise
            raw[key] = sock
        return raw[key]

    @staticmethod
    def _connect(tcp: dict[socket.socket, Any], sel: selectors.BaseSelector, target: Target) -> None:
        family = socket.AF_INET if target.version == 4 else socket.AF_INET6
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            target.tcp_ok, target.tcp_error = False, f"cannot open a socket ({_os_error(exc)})"
            return
        sock.setblocking(False)
        start = time.monotonic()
        code = sock.connect_ex((target.address, target.tcp_port))
        if code == 0:
            target.tcp_ok, target.tcp_rtt = True, 0.0
            sock.close()
            return
        if code not in (errno.EINPROGRESS, errno.EALREADY):
            target.tcp_ok, target.tcp_error = False, _os_error(OSError(code, os.strerror(code)))
            sock.close()
            return
        sel.register(sock, selectors.EVENT_WRITE, ("tcp", None))
        tcp[sock] = (target, start, start + target.timeout)

    def _wait(
        self,
        sel: selectors.BaseSelector,
        pending: dict[int, tuple[Target, float]],
        sent_at: dict[int, float],
        tcp: dict[socket.socket, tuple[Target, float, float]],
        ident: int,
    ) -> None:
        while pending or tcp:
            now = time.monotonic()
            deadlines = [entry[-1] for entry in pending.values()] + [entry[-1] for entry in tcp.values()]
            wait = max(0.0, min(deadlines) - now)
            for key, _events in sel.select(wait):
                kind, where = key.data
                if kind == "raw":
                    self._read_raw(key.fileobj, where, pending, sent_at, ident)
                else:
                    self._finish_tcp(key.fileobj, sel, tcp)
            now = time.monotonic()
            for seq in [s for s, entry in pending.items() if entry[-1] <= now]:
                del pending[seq]
            for sock in [s for s, entry in tcp.items() if entry[-1] <= now]:
                target = tcp.pop(sock)[0]
                target.tcp_ok, target.tcp_error = False, f"no answer within {target.timeout:g} s"
                sel.unregister(sock)
                sock.close()

    @staticmethod
    def _read_raw(
        sock: Any, where: tuple[str | None, int], pending: dict[int, Any], sent_at: dict[int, float], ident: int
    ) -> None:
        """Match what a raw socket received; only answers to probes sent from the socket's namespace count."""
        netns, version = where
        while True:
            try:
                packet = sock.recv(MAX_PAYLOAD + 128)
            except (BlockingIOError, InterruptedError):
                return
            now = time.monotonic()
            parsed = parse_icmp(version, packet)
            if parsed is None or parsed[1] != ident or parsed[2] not in pending:
                continue
            kind, seq, message = parsed[0], parsed[2], parsed[3]
            target = pending[seq][0]
            if target.version != version or target.netns != netns:
                continue
            del pending[seq]
            if kind == "reply":
                target.received += 1
                target.rtts.append(now - sent_at[seq])
            else:
                target.icmp_error = message

    @staticmethod
    def _finish_tcp(sock: Any, sel: selectors.BaseSelector, tcp: dict[socket.socket, Any]) -> None:
        target, start = tcp.pop(sock)[:2]
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            target.tcp_ok, target.tcp_rtt = True, time.monotonic() - start
        else:
            target.tcp_ok, target.tcp_error = False, _os_error(OSError(code, os.strerror(code)))
        sel.unregister(sock)
        sock.close()


class _NoRoute(Exception):
    pass


def _raise_fd_limit(needed: int) -> None:
    """Raise the soft limit of open files toward ``needed`` (at most the hard limit), so every socket fits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    want = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if want > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def check_reachability(session: Session, netns: str | None, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate the targets, probe them all at once, each from its namespace; one result per target, in order.

    ``netns`` (the module's) must exist; a target's own namespace that does not is that target's failed result.
    """
    targets = make_targets(specs, netns)
    if not session.netns_exists(netns):
        raise NetlabError(
            f"reachability: network namespace {netns!r} does not exist; create it first "
            f"(cnfs.netlab.netns name={netns} state=present)"
        )
    Prober(session).run(targets)
    return [t.result() for t in targets]
