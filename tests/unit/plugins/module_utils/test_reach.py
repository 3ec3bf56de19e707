# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of the reachability probes: checksums, echo requests, reading ICMP replies and errors,
validating targets and their namespaces, matching answers to the namespace that sent the probe."""

from __future__ import annotations

import re
import socket
import struct
from pathlib import Path

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
from ansible_collections.cnfs.netlab.plugins.module_utils._reach import (
    Prober,
    Target,
    by_netns,
    check_reachability,
    checksum,
    echo_request,
    make_targets,
    parse_icmp,
)


def ipv4_header(src: str, dst: str, payload_len: int, proto: int = socket.IPPROTO_ICMP) -> bytes:
    return struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, 1, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)
    )


def ipv6_header(src: str, dst: str, payload_len: int) -> bytes:
    return struct.pack(
        "!IHBB16s16s",
        6 << 28,
        payload_len,
        socket.IPPROTO_ICMPV6,
        64,
        socket.inet_pton(socket.AF_INET6, src),
        socket.inet_pton(socket.AF_INET6, dst),
    )


# ------------------------------------------------------------------ checksum and requests
def test_checksum_rfc1071_example() -> None:
    # RFC 1071, section 3: the sum of 0001 f203 f4f5 f6f7 is ddf2, its complement 220d.
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_checksum_of_odd_length_pads_with_zero() -> None:
    assert checksum(b"\x01") == checksum(b"\x01\x00")


def test_echo_request_v4_is_valid() -> None:
    packet = echo_request(4, 0x1234, 7, 56)
    assert len(packet) == 8 + 56
    kind, code, _checksum, ident, seq = struct.unpack_from("!BBHHH", packet)
    assert (kind, code, ident, seq) == (8, 0, 0x1234, 7)
    assert checksum(packet) == 0  # a packet with a correct checksum sums to zero


def test_echo_request_v6_leaves_the_checksum_to_the_kernel() -> None:
    packet = echo_request(6, 1, 2, 0)
    assert packet == struct.pack("!BBHHH", 128, 0, 0, 1, 2)


# ------------------------------------------------------------------ reading ICMP
def test_parse_v4_echo_reply() -> None:
    icmp = struct.pack("!BBHHH", 0, 0, 0, 0x4242, 9) + b"x" * 56
    assert parse_icmp(4, ipv4_header("10.0.0.2", "10.0.0.1", len(icmp)) + icmp) == ("reply", 0x4242, 9, None)


def test_parse_v4_fragmentation_needed_quotes_the_request() -> None:
    request = echo_request(4, 0x4242, 3, 1472)
    quoted = ipv4_header("10.0.0.1", "10.0.1.2", len(request)) + request[:8]
    error = struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + quoted
    packet = ipv4_header("10.0.0.254", "10.0.0.1", len(error)) + error
    assert parse_icmp(4, packet) == ("error", 0x4242, 3, "fragmentation needed, the path MTU is 1400")


@pytest.mark.parametrize(
    ("kind", "code", "text"),
    [
        (3, 0, "network unreachable"),
        (3, 1, "host unreachable"),
        (3, 13, "communication administratively prohibited"),
        (11, 0, "time to live exceeded"),
        (3, 15, "destination unreachable (code 15)"),
    ],
)
def test_parse_v4_errors(kind: int, code: int, text: str) -> None:
    request = echo_request(4, 1, 2, 56)
    error = struct.pack("!BBHI", kind, code, 0, 0) + ipv4_header("10.0.0.1", "192.0.2.1", 64) + request[:8]
    assert parse_icmp(4, ipv4_header("10.0.0.254", "10.0.0.1", len(error)) + error) == ("error", 1, 2, text)


def test_parse_v4_ignores_foreign_messages() -> None:
    request = echo_request(4, 1, 2, 8)
    assert parse_icmp(4, ipv4_header("10.0.0.1", "10.0.0.1", len(request)) + request) is None  # our own request
    assert parse_icmp(4, b"\x45\x00") is None  # truncated
    # An error quoting something else than an echo request (a UDP datagram).
    quoted = ipv4_header("10.0.0.1", "192.0.2.1", 28, proto=17) + b"\x00" * 8
    error = struct.pack("!BBHI", 3, 3, 0, 0) + quoted
    assert parse_icmp(4, ipv4_header("10.0.0.254", "10.0.0.1", len(error)) + error) is None


def test_parse_v6_reply_and_packet_too_big() -> None:
    assert parse_icmp(6, struct.pack("!BBHHH", 129, 0, 0, 5, 6)) == ("reply", 5, 6, None)
    request = echo_request(6, 5, 7, 1452)
    quoted = ipv6_header("fd00::1", "fd01::2", len(request)) + request[:8]
    error = struct.pack("!BBHI", 2, 0, 0, 1280) + quoted
    assert parse_icmp(6, error) == ("error", 5, 7, "packet too big, the path MTU is 1280")


def test_parse_v6_ignores_neighbour_discovery() -> None:
    assert parse_icmp(6, struct.pack("!BBHI", 135, 0, 0, 0) + b"\x00" * 16) is None


# ------------------------------------------------------------------ validating targets
def test_targets_defaults() -> None:
    icmp, tcp, both, v6 = make_targets(
        [
            {"address": " 10.0.0.1 "},
            {"address": "10.0.0.2", "tcp_port": 80, "name": "web"},
            {"address": "10.0.0.3", "tcp_port": 22, "icmp": True},
            {"address": "fd00::1", "dont_fragment": True, "count": 3, "timeout": 0.5},
        ]
    )
    assert (icmp.address, icmp.name, icmp.icmp, icmp.tcp_port, icmp.count, icmp.timeout) == (
        "10.0.0.1",
        "10.0.0.1",
        True,
        None,
        1,
        1.0,
    )
    assert (tcp.name, tcp.icmp, tcp.tcp_port) == ("web", False, 80)
    assert both.icmp and both.tcp_port == 22
    assert (v6.version, v6.dont_fragment, v6.count, v6.timeout, v6.size) == (6, True, 3, 0.5, None)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"address": "host.example"}, "target 1 (host.example): address 'host.example' is not an IP address"),
        ({"address": "10.0.0.1", "tcp_port": 0}, "tcp_port 0 is not a port: use 1-65535"),
        ({"address": "10.0.0.1", "count": 101}, "count 101 is out of range: use 1-100"),
        ({"address": "10.0.0.1", "timeout": -1}, "timeout -1 is out of range"),
        ({"address": "10.0.0.1", "size": 70000}, "size 70000 is out of range: use 0-65507"),
        ({"address": "10.0.0.1", "icmp": False, "name": "x"}, "target 1 (x): icmp is false and no tcp_port"),
    ],
)
def test_targets_errors(spec: dict, message: str) -> None:
    with pytest.raises(NetlabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_targets([spec])


def test_target_result_reports_each_failed_check() -> None:
    target = Target(
        "10.0.0.1",
        4,
        "t",
        True,
        80,
        False,
        56,
        2,
        1.0,
        sent=2,
        received=0,
        tcp_ok=False,
        tcp_error="ECONNREFUSED: Connection refused",
    )
    result = target.result()
    assert result["ok"] is False
    assert result["error"] == "icmp: no reply within 1 s; tcp port 80: ECONNREFUSED: Connection refused"
    target = Target("10.0.0.1", 4, "t", True, None, False, 56, 2, 1.0, sent=2, received=1, rtts=[0.001, 0.003])
    assert target.result()["ok"] is True
    assert target.result()["rtt_ms"] == 2.0
    assert target.result()["error"] is None


# ------------------------------------------------------------------ per-target namespaces
def test_targets_netns_defaults_to_the_modules() -> None:
    specs = [
        {"address": "10.0.0.1"},
        {"address": "10.0.0.2", "netns": ""},
        {"address": "10.0.0.3", "netns": None},
        {"address": "10.0.0.4", "netns": "con1"},
        {"address": "10.0.0.5", "netns": "/proc/1/ns/net"},
    ]
    assert [t.netns for t in make_targets(specs, "node")] == ["node", "node", "node", "con1", "/proc/1/ns/net"]
    assert [t.netns for t in make_targets(specs)] == [None, None, None, "con1", "/proc/1/ns/net"]


@pytest.mark.parametrize(
    ("netns", "message"),
    [
        ("con 1", "target 2 (t2): netns 'con 1' is not a legal namespace name"),
        ("a/b", "target 2 (t2): netns 'a/b' is not a legal namespace name"),
        ("x" * 256, "target 2 (t2): netns 'x{256}' is not a legal namespace name"),
        ("/run/netns/../con1", "target 2 (t2): netns '/run/netns/../con1' is not a clean absolute path"),
    ],
)
def test_targets_netns_errors(netns: str, message: str) -> None:
    with pytest.raises(NetlabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_targets([{"address": "10.0.0.1"}, {"name": "t2", "address": "10.0.0.2", "netns": netns}], "node")


def test_by_netns_groups_in_order_of_first_use() -> None:
    targets = make_targets(
        [
            {"address": "10.0.0.1", "netns": "con2"},
            {"address": "10.0.0.2"},
            {"address": "10.0.0.3", "netns": "con1"},
            {"address": "10.0.0.4", "netns": "con2"},
        ]
    )
    groups = by_netns(targets)
    assert list(groups) == ["con2", None, "con1"]
    assert [t.address for t in groups["con2"]] == ["10.0.0.1", "10.0.0.4"]


def test_target_result_of_a_missing_namespace() -> None:
    target = make_targets([{"address": "10.0.0.1", "tcp_port": 80, "icmp": True, "size": 100, "netns": "gone"}])[0]
    target.netns_error = "network namespace 'gone' does not exist"
    result = target.result()
    assert result["ok"] is False
    assert result["netns"] == "gone"
    assert result["error"] == "network namespace 'gone' does not exist"  # not also "icmp: no reply ..."
    assert (result["sent"], result["received"], result["size"], result["tcp_ok"]) == (0, 0, None, None)


def test_target_result_names_its_namespace() -> None:
    ok = make_targets([{"address": "10.0.0.1", "netns": "con1"}])[0]
    ok.size, ok.sent, ok.received, ok.rtts = 56, 1, 1, [0.001]
    assert ok.result()["netns"] == "con1" and ok.result()["ok"] is True


class _Received:
    """What a raw socket has received: recv() hands out the packets, then would block."""

    def __init__(self, *packets: bytes) -> None:
        self.packets = list(packets)

    def recv(self, _size: int) -> bytes:
        if not self.packets:
            raise BlockingIOError
        return self.packets.pop(0)


def test_an_answer_counts_only_on_a_socket_of_the_namespace_that_sent_the_probe() -> None:
    target = make_targets([{"address": "10.0.0.2", "netns": "con1"}])[0]
    reply = struct.pack("!BBHHH", 0, 0, 0, 0x4242, 9) + b"x" * 56
    packet = ipv4_header("10.0.0.2", "10.0.0.1", len(reply)) + reply
    pending = {9: (target, 1e12)}
    sent_at = {9: 0.0}
    # A copy seen by a raw socket in another namespace (say, a router on the path) is not the answer.
    Prober._read_raw(_Received(packet), ("con2", 4), pending, sent_at, 0x4242)
    Prober._read_raw(_Received(packet), (None, 4), pending, sent_at, 0x4242)
    assert 9 in pending and target.received == 0
    # Nor is an answer to another identifier (another process's ping).
    Prober._read_raw(_Received(packet), ("con1", 4), pending, sent_at, 0x4243)
    assert 9 in pending and target.received == 0
    Prober._read_raw(_Received(packet), ("con1", 4), pending, sent_at, 0x4242)
    assert 9 not in pending and target.received == 1


# ------------------------------------------------------------------ missing namespaces (no probe is sent)
def test_a_missing_target_namespace_is_a_failed_result(tmp_path: Path) -> None:
    placeholder = tmp_path / "stale"  # a plain file, like the mount point of an unmounted namespace
    placeholder.write_bytes(b"")
    with CachedSession() as session:
        results = check_reachability(
            session,
            None,
            [
                {"name": "gone", "address": "10.0.0.1", "netns": str(tmp_path / "gone")},
                {"name": "stale", "address": "10.0.0.1", "tcp_port": 80, "netns": str(placeholder)},
            ],
        )
    assert [r["error"] for r in results] == [
        f"network namespace '{tmp_path / 'gone'}' does not exist",
        f"network namespace '{placeholder}' does not exist",
    ]
    assert [(r["ok"], r["sent"], r["netns"]) for r in results] == [
        (False, 0, str(tmp_path / "gone")),
        (False, 0, str(placeholder)),
    ]
    assert not (tmp_path / "gone").exists()  # never created


def test_a_missing_module_namespace_fails_the_run(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone")
    message = f"reachability: network namespace '{gone}' does not exist; create it first"
    with CachedSession() as session, pytest.raises(NetlabError, match=re.escape(message)):
        check_reachability(session, gone, [{"address": "10.0.0.1", "netns": str(tmp_path / "other")}])
