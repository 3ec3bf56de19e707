# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fast netlink reader: its records hold what pyroute2 decodes from the same bytes; writes update its reads."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pyroute2 import IPRoute
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlinkError
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import (
    EFFECTS,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    Address,
    CachedIPRoute,
    CachedSession,
    FastReader,
    Link,
    Reads,
    Route,
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


def test_link_record_matches_pyroute2() -> None:
    ours = parse(LINK, RTM_NEWLINK)
    theirs = ifinfmsg(LINK)
    theirs.decode()
    assert isinstance(ours, Link)
    assert (ours.index, ours.flags, ours.up, ours.loopback) == (7, 0x1003, True, False)
    fields = {
        "name": "IFLA_IFNAME",
        "mtu": "IFLA_MTU",
        "master": "IFLA_MASTER",
        "link": "IFLA_LINK",
        "link_netnsid": "IFLA_LINK_NETNSID",
        "operstate": "IFLA_OPERSTATE",
        "mac": "IFLA_ADDRESS",
        "alias": "IFLA_IFALIAS",
        "min_mtu": "IFLA_MIN_MTU",
    }
    for field, attr in fields.items():
        assert getattr(ours, field) == theirs.get_attr(attr), field
    assert ours.kind == "vxlan" == theirs.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    data = ours.data()
    path = ("IFLA_LINKINFO", "IFLA_INFO_DATA")
    for field in ("id", "port", "local", "learning", "ttl"):
        assert data[field] == theirs.get_nested(*path, "IFLA_VXLAN_" + field.upper()), field
    assert data["group"] is None  # not sent
    assert ours.carrier is False  # absent: false, not an error
    assert not hasattr(ours, "get_attr")  # a record of its own, not pyroute2's message API


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
    assert (msg.kind, msg.data()["stp_state"], msg.master) == ("bridge", 1, None)
    lo = parse(encode(ifinfmsg, RTM_NEWLINK, {"index": 1, "flags": 0x9}, [("IFLA_IFNAME", "lo")]), RTM_NEWLINK)
    assert (lo.kind, lo.data(), lo.loopback, lo.up) == (None, {}, True, True)


def test_address_record() -> None:
    data = encode(
        ifaddrmsg,
        RTM_NEWADDR,
        {"family": 10, "prefixlen": 64, "flags": 0x80, "scope": 0, "index": 4},
        [("IFA_ADDRESS", "fd00::10"), ("IFA_FLAGS", 0x280)],
    )
    msg = parse(data, RTM_NEWADDR)
    assert isinstance(msg, Address)
    assert (msg.family, msg.prefixlen, msg.index) == (10, 64, 4)
    assert (msg.address, msg.local, msg.ip) == ("fd00::10", None, "fd00::10")
    assert msg.flags == 0x280  # IFA_FLAGS (32 bits) over the header's 8
    p2p = encode(
        ifaddrmsg,
        RTM_NEWADDR,
        {"family": 2, "prefixlen": 32, "flags": 0x80, "index": 5},
        [("IFA_ADDRESS", "10.0.0.2"), ("IFA_LOCAL", "10.0.0.1")],
    )
    assert (parse(p2p, RTM_NEWADDR).ip, parse(p2p, RTM_NEWADDR).flags) == ("10.0.0.1", 0x80)


def test_route_record_with_nexthops() -> None:
    data = encode(
        rtmsg,
        RTM_NEWROUTE,
        {"family": 2, "dst_len": 24, "table": 252, "proto": 4, "scope": 0, "type": 1},
        [
            ("RTA_DST", "10.1.0.0"),
            ("RTA_TABLE", 1000),
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
    assert isinstance(msg, Route)
    assert (msg.family, msg.dst_len, msg.proto, msg.type) == (2, 24, 4, 1)
    assert (msg.dst, msg.table, msg.metric, msg.gateway, msg.oif) == ("10.1.0.0", 1000, 5, None, None)
    assert [(h.oif, h.hops, h.gateway) for h in msg.multipath] == [(3, 1, "10.0.0.2"), (4, 0, "10.0.0.3")]
    default = parse(encode(rtmsg, RTM_NEWROUTE, {"family": 2, "table": 254}, [("RTA_OIF", 2)]), RTM_NEWROUTE)
    assert (default.dst, default.table, default.metric, default.multipath) == (None, 254, 0, [])


def test_attribute_walk_stops_on_garbage() -> None:
    good = _nla(3, b"eth0\0")
    assert parse_attrs(good + b"\x02\x00\x01\x00", 0, len(good) + 4) == {3: b"eth0\0"}  # length < 4: stop


class Recorder:
    """Stands in for the pyroute2 handle and the session: records calls, answers nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *argv, **kwarg: self.calls.append((name, argv))


def test_cached_handle_has_no_catch_all() -> None:
    session = Recorder()
    handle = CachedIPRoute(session, None, None, Reads())  # type: ignore[arg-type]
    handle._pyroute2 = pyroute2 = Recorder()
    handle.neigh("replace", ifindex=3)
    handle.fdb("append", ifindex=3)
    handle.rule("add", table=10)
    assert [c[0] for c in pyroute2.calls] == ["neigh", "fdb", "rule"]
    assert session.calls == []  # tables that are not cached: their writes forget nothing
    handle.addr("add", index=3)
    assert session.calls == [("wrote", (None, *EFFECTS["addr"]))]
    with pytest.raises(ValueError, match="reads are links"):
        handle.link("get", index=1)  # reads are the records' methods, never pyroute2's messages
    with pytest.raises(AttributeError):
        handle.tc("add", "ingress", 3)  # a call the handle does not know is an error, not a silent drop-all


# ------------------------------------------------------------------ against the kernel (read-only)
def test_reader_agrees_with_pyroute2_on_this_namespace() -> None:
    reader = FastReader.open()
    try:
        ours = {m.name: m for m in reader.dump_links()}
        with IPRoute() as ipr:
            theirs = {m.get_attr("IFLA_IFNAME"): m for m in ipr.get_links()}
            routes = len([r for r in ipr.get_routes() if r["family"] in (2, 10)])
            addrs = len(ipr.get_addr())
            lo_route = ipr.route("get", dst="127.0.0.1")[0]
        assert set(ours) == set(theirs)
        for name, msg in theirs.items():
            assert ours[name].index == msg["index"]
            assert ours[name].mtu == msg.get_attr("IFLA_MTU")
            assert ours[name].kind == msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
        assert reader.get_link(ifname="lo").index == theirs["lo"]["index"]
        assert reader.get_link(index=theirs["lo"]["index"]).name == "lo"
        with pytest.raises(NetlinkError) as err:
            reader.get_link(ifname="cnfs-no-such")
        assert err.value.code == 19
        assert len(reader.dump_addrs()) == addrs
        assert len([r for r in reader.dump_routes() if r.family in (2, 10)]) == routes
        assert reader.route_to("127.0.0.1").oif == lo_route.get_attr("RTA_OIF")
    finally:
        reader.close()


# ------------------------------------------------------------------ the registry, against the kernel
@pytest.fixture
def two_namespaces():
    """Two namespaces of the test's own (removed afterwards)."""
    from pyroute2 import netns

    names = ["cnfsut-nlc-a", "cnfsut-nlc-b"]
    for name in names:
        netns.create(name)
    try:
        yield names
    finally:
        for name in names:
            netns.remove(name)


def test_writes_update_what_the_handles_read(two_namespaces) -> None:
    """Every write is seen by the next read, here and in the namespace it reached, without a manual drop."""
    a, b = two_namespaces
    with CachedSession() as session:
        ipr_a, ipr_b = session.ipr(a), session.ipr(b)
        assert [link.name for link in ipr_b.links()] == ["lo"]  # cached now
        fd = session.fd(b)
        try:
            ipr_a.link("add", ifname="va", kind="veth", peer={"ifname": "vb", "net_ns_fd": fd})
        finally:
            os.close(fd)
        va, vb = ipr_a.get_link(name="va"), ipr_b.get_link(name="vb")
        assert va is not None and vb is not None and va.kind == vb.kind == "veth"
        assert va.link == vb.index and va.link_netnsid is not None
        ipr_a.link("set", index=va.index, mtu=1400)
        assert ipr_a.get_link(name="va").mtu == 1400
        ipr_a.link("set", index=va.index, state="up")
        assert ipr_a.get_link(name="va").up
        ipr_a.addr("add", index=va.index, address="10.99.0.1", prefixlen=24)
        assert [x.ip for x in ipr_a.addresses(family=2, index=va.index)] == ["10.99.0.1"]
        assert any(r.dst == "10.99.0.0" for r in ipr_a.routes(family=2))  # the prefix route came with it
        # the kernel deletes the peer with the pair: the other namespace's cache knows it
        ipr_a.link("del", index=va.index)
        assert ipr_a.get_link(name="va") is None
        assert ipr_b.get_link(name="vb") is None
        assert [link.name for link in ipr_b.links()] == ["lo"]


def test_neighbours_fdb_and_pyroute2_errors(two_namespaces) -> None:
    """The reader's neighbour and forwarding database entries are pyroute2's; pyroute2's errors are ours."""
    a, _b = two_namespaces
    with CachedSession() as session:
        ipr = session.ipr(a)
        ipr.link("add", ifname="vx", kind="vxlan", vxlan_id=42, vxlan_port=4789, vxlan_learning=0)
        vx = ipr.get_link(name="vx")
        ipr.link("set", index=vx.index, state="up")
        ipr.fdb("append", ifindex=vx.index, lladdr="02:00:00:00:00:01", dst="10.99.0.2", state=0x80, flags=0x02)
        ipr.neigh("replace", ifindex=vx.index, dst="10.98.0.2", lladdr="02:00:00:00:00:01", state=0x80)
        fdb = {(e.lladdr, e.dst) for e in ipr.fdb_entries(vx.index) if e.dst}
        neighbours = {(n.dst, n.lladdr, n.state) for n in ipr.neighbours(vx.index)}
        theirs = session.pyroute2(a)
        assert (
            fdb
            == {
                (e.get_attr("NDA_LLADDR"), e.get_attr("NDA_DST"))
                for e in theirs.fdb("dump", ifindex=vx.index)
                if e["ifindex"] == vx.index and e.get_attr("NDA_DST")
            }
            == {("02:00:00:00:00:01", "10.99.0.2")}
        )
        assert neighbours == {("10.98.0.2", "02:00:00:00:00:01", 0x80)}
        # a write the kernel refuses raises the NetlinkError every model catches, with the errno
        with pytest.raises(NetlinkError) as err:
            ipr.link("add", ifname="vx", kind="vxlan", vxlan_id=43)
        assert err.value.code == 17 and isinstance(err.value.__cause__, Exception)
