# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fast netlink reader: its messages answer like pyroute2's for the same bytes, and like the kernel."""

from __future__ import annotations

from typing import Any

import pytest
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import (
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    CachedIPRoute,
    FastReader,
    _nla,
    parse_attrs,
    parse_message,
)


def encode(cls: Any, msg_type: int, fields: dict[str, Any], attrs: list[Any]) -> bytes:
    """A message as the kernel would send it, encoded by pyroute2."""
    msg = cls()
    for key, value in fields.items():
        msg[key] = value
    msg["header"]["type"] = msg_type
    msg["attrs"] = attrs
    msg.encode()
    return bytes(msg.data)


def parse(data: bytes, msg_type: int) -> Any:
    return parse_message(data, 0, len(data), msg_type)


LINK = encode(
    ifinfmsg,
    RTM_NEWLINK,
    {"family": 0, "index": 7, "flags": 0x1003},
    [
        ("IFLA_IFNAME", "vx0"),
        ("IFLA_MTU", 1450),
        ("IFLA_MASTER", 3),
        ("IFLA_LINK", 9),
        ("IFLA_LINK_NETNSID", 2),
        ("IFLA_OPERSTATE", "UP"),
        ("IFLA_ADDRESS", "02:cf:0a:00:00:01"),
        ("IFLA_IFALIAS", "cnfs.netlab overlay"),
        ("IFLA_PHYS_PORT_NAME", "p0"),  # not decoded by the fast reader: answered by pyroute2
        (
            "IFLA_LINKINFO",
            {
                "attrs": [
                    ("IFLA_INFO_KIND", "vxlan"),
                    (
                        "IFLA_INFO_DATA",
                        {
                            "attrs": [
                                ("IFLA_VXLAN_ID", 42),
                                ("IFLA_VXLAN_PORT", 4789),
                                ("IFLA_VXLAN_LOCAL", "10.0.0.1"),
                                ("IFLA_VXLAN_LEARNING", 0),
                                ("IFLA_VXLAN_TTL", 8),
                            ]
                        },
                    ),
                ]
            },
        ),
    ],
)


def test_link_message_matches_pyroute2() -> None:
    ours = parse(LINK, RTM_NEWLINK)
    theirs = ifinfmsg(LINK)
    theirs.decode()
    assert (ours["index"], ours["flags"]) == (7, 0x1003)
    for name in (
        "IFLA_IFNAME",
        "IFLA_MTU",
        "IFLA_MASTER",
        "IFLA_LINK",
        "IFLA_LINK_NETNSID",
        "IFLA_OPERSTATE",
        "IFLA_ADDRESS",
        "IFLA_IFALIAS",
        "IFLA_PHYS_PORT_NAME",
        "IFLA_CARRIER",
    ):
        assert ours.get_attr(name) == theirs.get_attr(name), name
        assert ours.get(name) == theirs.get(name), name
    path = ("IFLA_LINKINFO", "IFLA_INFO_DATA")
    for name in ("IFLA_VXLAN_ID", "IFLA_VXLAN_PORT", "IFLA_VXLAN_LOCAL", "IFLA_VXLAN_LEARNING", "IFLA_VXLAN_TTL"):
        assert ours.get_nested(*path, name) == theirs.get_nested(*path, name), name
    assert ours.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "vxlan"
    assert ours.get("ifname") == "vx0"  # pyroute2's short names work too (through pyroute2)
    assert ours.get_attr("IFLA_MIN_MTU", 68) == 68  # absent: the default


def test_bridge_stp_and_kind_without_data() -> None:
    data = encode(
        ifinfmsg,
        RTM_NEWLINK,
        {"index": 3},
        [
            ("IFLA_IFNAME", "br0"),
            (
                "IFLA_LINKINFO",
                {"attrs": [("IFLA_INFO_KIND", "bridge"), ("IFLA_INFO_DATA", {"attrs": [("IFLA_BR_STP_STATE", 1)]})]},
            ),
        ],
    )
    msg = parse(data, RTM_NEWLINK)
    assert msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "IFLA_BR_STP_STATE") == 1
    lo = parse(encode(ifinfmsg, RTM_NEWLINK, {"index": 1}, [("IFLA_IFNAME", "lo")]), RTM_NEWLINK)
    assert lo.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") is None


def test_address_message() -> None:
    data = encode(
        ifaddrmsg,
        RTM_NEWADDR,
        {"family": 10, "prefixlen": 64, "flags": 0x80, "scope": 0, "index": 4},
        [("IFA_ADDRESS", "fd00::10"), ("IFA_FLAGS", 0x80)],
    )
    msg = parse(data, RTM_NEWADDR)
    assert (msg["family"], msg["prefixlen"], msg["index"]) == (10, 64, 4)
    assert msg.get_attr("IFA_ADDRESS") == "fd00::10"
    assert msg.get_attr("IFA_LOCAL") is None
    assert msg.get_attr("IFA_FLAGS") == 0x80


def test_route_message_with_nexthops() -> None:
    data = encode(
        rtmsg,
        RTM_NEWROUTE,
        {"family": 2, "dst_len": 24, "table": 254, "proto": 4, "scope": 0, "type": 1},
        [
            ("RTA_DST", "10.1.0.0"),
            ("RTA_TABLE", 254),
            ("RTA_PRIORITY", 5),
            (
                "RTA_MULTIPATH",
                [
                    {"oif": 3, "hops": 1, "attrs": [("RTA_GATEWAY", "10.0.0.2")]},
                    {"oif": 4, "attrs": [("RTA_GATEWAY", "10.0.0.3")]},
                ],
            ),
        ],
    )
    msg = parse(data, RTM_NEWROUTE)
    assert (msg["dst_len"], msg["table"], msg["proto"], msg["type"]) == (24, 254, 4, 1)
    assert (msg.get_attr("RTA_DST"), msg.get_attr("RTA_TABLE"), msg.get_attr("RTA_PRIORITY")) == ("10.1.0.0", 254, 5)
    hops = msg.get_attr("RTA_MULTIPATH")
    assert [(h["oif"], h["hops"], h.get_attr("RTA_GATEWAY")) for h in hops] == [(3, 1, "10.0.0.2"), (4, 0, "10.0.0.3")]


def test_attribute_walk_stops_on_garbage() -> None:
    good = _nla(3, b"eth0\0")
    assert parse_attrs(good + b"\x02\x00\x01\x00", 0, len(good) + 4) == {3: b"eth0\0"}  # length < 4: stop


class _Recorder:
    """Stands in for the pyroute2 handle and the session: records calls, answers nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *argv, **kwarg: self.calls.append((name, argv))


def test_cached_handle_has_no_catch_all() -> None:
    session = _Recorder()
    handle = CachedIPRoute(session, None, None)  # type: ignore[arg-type]
    handle._pyroute2 = pyroute2 = _Recorder()
    handle.neigh("replace", ifindex=3)
    handle.fdb("append", ifindex=3)
    handle.rule("add", table=10)
    assert [c[0] for c in pyroute2.calls] == ["neigh", "fdb", "rule"]
    assert session.calls == []  # tables that are not cached: their writes drop nothing
    handle.addr("add", index=3)
    assert [c[0] for c in session.calls] == ["drop_caches"]
    with pytest.raises(AttributeError):
        handle.tc("add", "ingress", 3)  # a call the handle does not know is an error, not a silent drop-all


# ------------------------------------------------------------------ against the kernel (read-only)
def test_reader_agrees_with_pyroute2_on_this_namespace() -> None:
    reader = FastReader.open()
    try:
        ours = {m.get_attr("IFLA_IFNAME"): m for m in reader.dump_links()}
        with IPRoute() as ipr:
            theirs = {m.get_attr("IFLA_IFNAME"): m for m in ipr.get_links()}
            routes = len([r for r in ipr.get_routes() if r["family"] in (2, 10)])
            addrs = len(ipr.get_addr())
        assert set(ours) == set(theirs)
        for name, msg in theirs.items():
            assert ours[name]["index"] == msg["index"]
            assert ours[name].get_attr("IFLA_MTU") == msg.get_attr("IFLA_MTU")
            assert ours[name].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == msg.get_nested(
                "IFLA_LINKINFO", "IFLA_INFO_KIND"
            )
        assert reader.get_link(ifname="lo")["index"] == theirs["lo"]["index"]
        assert reader.get_link(index=theirs["lo"]["index"]).get_attr("IFLA_IFNAME") == "lo"
        with pytest.raises(NetlinkError) as err:
            reader.get_link(ifname="cnfs-no-such")
        assert err.value.code == 19
        assert len(reader.dump_addrs()) == addrs
        assert len([r for r in reader.dump_routes() if r["family"] in (2, 10)]) == routes
    finally:
        reader.close()
