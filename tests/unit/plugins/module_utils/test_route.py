# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the route model: parsing, validation, defaults, the desired route, netlink arguments."""

from __future__ import annotations

import re

import pytest
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import RTM_NEWROUTE, parse_message
from ansible_collections.cnfs.netlab.plugins.module_utils._route import (
    TYPES,
    RouteResource,
    default_scope,
    desired_route,
    netlink_args,
    normalise_route,
    parse_dest,
    parse_table,
    route_state,
)


def _msg(family=2, dst_len=24, table=254, rtype=1, scope=0, proto=4, flags=0, attrs=()):
    """A route record parsed from the bytes the kernel sends (encoded by pyroute2)."""
    msg = rtmsg()
    msg["family"] = family
    msg["dst_len"] = dst_len
    msg["table"] = table
    msg["type"] = rtype
    msg["scope"] = scope
    msg["proto"] = proto
    msg["flags"] = flags
    msg["attrs"] = list(attrs)
    msg["header"]["type"] = RTM_NEWROUTE
    msg.encode()
    data = bytes(msg.data)
    return parse_message(data, 0, len(data), RTM_NEWROUTE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("default", ("default", None)),
        ("0.0.0.0/0", ("default", 4)),
        ("::/0", ("default", 6)),
        ("10.1.0.0/16", ("10.1.0.0/16", 4)),
        ("10.1.2.3", ("10.1.2.3/32", 4)),
        ("fd00:0:0::/64", ("fd00::/64", 6)),
        ("fd00::5", ("fd00::5/128", 6)),
    ],
)
def test_parse_dest(value, expected):
    assert parse_dest(value) == expected


def test_parse_dest_host_bits_says_so_and_suggests_the_network():
    with pytest.raises(NetlabError, match=r"has host bits set: write the network, 10\.1\.0\.0/16"):
        parse_dest("10.1.2.3/16")


@pytest.mark.parametrize("value", ["10.1.0.0/33", "banana", "10.1.0.0/", "fd00::/200", ""])
def test_parse_dest_rejects_garbage(value):
    with pytest.raises(NetlabError, match="dest"):
        parse_dest(value)


@pytest.mark.parametrize(("value", "number"), [("main", 254), ("local", 255), ("default", 253), ("100", 100), (7, 7)])
def test_parse_table(value, number):
    assert parse_table(value) == number


@pytest.mark.parametrize("value", ["0", 0, "foo", -1, 2**32, True])
def test_parse_table_rejects(value):
    with pytest.raises(NetlabError, match="table"):
        parse_table(value)


def test_defaults_ipv4_dev_route():
    n = normalise_route({"dest": "10.1.0.0/16", "dev": "eth0"})
    assert n == {
        "netns": None,
        "dest": "10.1.0.0/16",
        "family": "inet",
        "table": 254,
        "metric": 0,
        "type": "unicast",
        "gateway": None,
        "dev": "eth0",
        "scope": None,
        "onlink": False,
        "proto": None,
    }


def test_family_inferred_from_gateway_and_ipv6_metric_default():
    n = normalise_route({"dest": "default", "gateway": "fd00::1"})
    assert (n["family"], n["metric"]) == ("inet6", 1024)
    assert normalise_route({"dest": "default", "dev": "eth0"})["family"] == "inet"
    assert normalise_route({"dest": "default", "dev": "eth0", "family": "inet6"})["family"] == "inet6"
    assert normalise_route({"dest": "fd00::/64", "dev": "eth0", "metric": 0})["metric"] == 1024


def test_names_are_normalised():
    n = normalise_route({"dest": "10.1.0.0/16", "dev": "eth0", "scope": "253", "proto": 3, "table": "1000"})
    assert (n["scope"], n["proto"], n["table"]) == ("link", "boot", 1000)


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"dest": "10.1.0.0/16", "gateway": "fd00::1"}, "gateway fd00::1 is IPv6 but dest 10.1.0.0/16 is IPv4"),
        ({"dest": "10.1.0.0/16", "gateway": "10.0.0.1", "family": "inet6"}, "family inet6 does not match"),
        ({"dest": "default", "gateway": "10.0.0.1", "family": "inet6"}, "family inet6 does not match gateway"),
        ({"dest": "10.1.0.0/16", "gateway": "10.0.0.300"}, "is not an IP address"),
        ({"dest": "10.1.0.0/16"}, "needs a gateway or a dev"),
        ({"dest": "10.1.0.0/16", "gateway": "10.0.0.1", "onlink": True}, "onlink needs both gateway and dev"),
        ({"dest": "10.1.0.0/16", "dev": "eth0", "onlink": True}, "onlink needs both gateway and dev"),
        ({"dest": "10.1.0.0/16", "type": "blackhole", "dev": "eth0"}, "a blackhole route has no gateway"),
        ({"dest": "10.1.0.0/16", "type": "prohibit", "gateway": "10.0.0.1"}, "a prohibit route has no gateway"),
        ({"dest": "10.1.0.0/16", "type": "local"}, "a local route needs dev"),
        ({"dest": "10.1.0.0/16", "type": "nat", "dev": "eth0"}, "type 'nat' is not one of"),
        ({"dest": "default", "gateway": "fe80::1"}, "is link-local: give dev"),
        ({"dest": "fd00::/64", "dev": "eth0", "scope": "link"}, "scope applies to IPv4 routes only"),
        ({"dest": "10.1.0.0/16", "dev": "eth0", "scope": "planet"}, "scope 'planet' is not known"),
        ({"dest": "10.1.0.0/16", "dev": "eth0", "proto": "256"}, "proto '256' is out of range"),
        ({"dest": "10.1.0.0/16", "dev": "eth0", "metric": -1}, "metric -1 is not a number"),
        ({"dest": "10.1.0.0/16", "dev": "a" * 16}, "is 16 bytes long"),
        ({"dest": "10.1.0.0/16", "dev": "eth0", "netns": "../x"}, "not a legal namespace name"),
    ],
)
def test_validation(spec, needle):
    with pytest.raises(NetlabError, match=re.escape(needle)):
        normalise_route(spec)


def test_default_scope_like_ip_route():
    assert default_scope("inet", "unicast", None) == "link"
    assert default_scope("inet", "unicast", "10.0.0.1") == "universe"
    assert default_scope("inet", "local", None) == "host"
    assert default_scope("inet", "broadcast", None) == "link"
    assert default_scope("inet", "blackhole", None) == "universe"
    assert default_scope("inet6", "unicast", None) == "universe"


def test_desired_new_route_gets_static_and_derived_scope():
    d = desired_route(normalise_route({"dest": "10.1.0.0/16", "gateway": "10.0.0.1"}), None)
    assert (d["proto"], d["scope"], d["dev"], d["table"]) == ("static", "universe", None, "main")


def test_desired_keeps_kernel_dev_and_current_proto_when_not_given():
    norm = normalise_route({"dest": "10.1.0.0/16", "gateway": "10.0.0.1"})
    current = desired_route(norm, None) | {"dev": "eth0", "proto": "boot"}
    assert desired_route(norm, current) == current


def test_desired_drops_kernel_dev_when_the_gateway_changes():
    current = desired_route(normalise_route({"dest": "10.1.0.0/16", "gateway": "10.0.0.1"}), None) | {"dev": "eth0"}
    d = desired_route(normalise_route({"dest": "10.1.0.0/16", "gateway": "10.9.0.1"}), current)
    assert (d["gateway"], d["dev"]) == ("10.9.0.1", None)


def test_desired_given_proto_and_onlink_are_compared():
    current = desired_route(normalise_route({"dest": "10.1.0.0/16", "gateway": "10.0.0.1", "dev": "eth0"}), None)
    d = desired_route(
        normalise_route({"dest": "10.1.0.0/16", "gateway": "10.0.0.1", "dev": "eth0", "onlink": True, "proto": 99}),
        current,
    )
    assert (d["onlink"], d["proto"]) == (True, "openr")


def test_route_state_of_a_gateway_route_in_a_big_table():
    msg = _msg(
        table=252,
        attrs=[("RTA_TABLE", 1000), ("RTA_DST", "10.31.0.0"), ("RTA_GATEWAY", "10.0.0.7"), ("RTA_OIF", 3)],
    )
    assert route_state(msg, {3: "v0"}, "ns") == {
        "netns": "ns",
        "dest": "10.31.0.0/24",
        "family": "inet",
        "table": 1000,
        "metric": 0,
        "type": "unicast",
        "gateway": "10.0.0.7",
        "dev": "v0",
        "scope": "universe",
        "onlink": False,
        "proto": "static",
    }


def test_route_state_hides_the_loopback_of_ipv6_blackholes_and_reads_onlink():
    msg = _msg(family=10, dst_len=64, rtype=6, attrs=[("RTA_DST", "fd09::"), ("RTA_PRIORITY", 1024), ("RTA_OIF", 1)])
    state = route_state(msg, {1: "lo"}, None)
    assert (state["type"], state["dev"], state["gateway"], state["metric"]) == ("blackhole", None, None, 1024)
    msg = _msg(dst_len=0, flags=4, attrs=[("RTA_GATEWAY", "10.5.0.1"), ("RTA_OIF", 2)])
    state = route_state(msg, {2: "eth0"}, None)
    assert (state["dest"], state["onlink"]) == ("default", True)


def test_netlink_args_round_trip_the_state():
    state = desired_route(
        normalise_route({"dest": "10.1.0.0/16", "gateway": "10.0.0.1", "dev": "eth0", "onlink": True, "table": 100}),
        None,
    )
    assert netlink_args(state, 7) == {
        "family": 2,
        "table": 100,
        "priority": 0,
        "type": 1,
        "scope": 0,
        "proto": 4,
        "tos": 0,
        "dst": "10.1.0.0",
        "dst_len": 16,
        "gateway": "10.0.0.1",
        "oif": 7,
        "flags": 4,
    }
    default = desired_route(normalise_route({"dest": "default", "type": "unreachable", "family": "inet6"}), None)
    args = netlink_args(default, None)
    assert (args["dst_len"], "dst" in args, args["family"], args["priority"]) == (0, False, 10, 1024)


def test_resource_key_names_the_identity():
    res = RouteResource({"dest": "default", "gateway": "fd00::1", "netns": "con", "table": "100", "metric": 5})
    assert res.key == "route default (inet6) table 100 metric 5 in netns con"
    assert RouteResource({"dest": "10.0.0.0/8", "dev": "eth0", "state": "absent"}).want(None) is None


def test_removal_needs_only_the_key():
    n = normalise_route({"dest": "10.1.0.0/16", "metric": 100, "state": "absent"})
    assert (n["dest"], n["metric"], n["gateway"], n["dev"]) == ("10.1.0.0/16", 100, None, None)
    with pytest.raises(NetlabError, match="needs a gateway or a dev"):
        normalise_route({"dest": "10.1.0.0/16", "metric": 100, "state": "present"})


def test_the_shared_argument_spec_offers_exactly_the_modelled_types():
    from ansible_collections.cnfs.netlab.plugins.module_utils._args import ROUTE_SPEC

    assert ROUTE_SPEC["argument_spec"]["type"]["choices"] == list(TYPES)
    # the kernel's numbers, as pyroute2 knows them
    from pyroute2.netlink.rtnl import rt_type

    assert all(rt_type[name] == number for name, number in TYPES.items())
