# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property tests against the real kernel: random small node states through `node` and the small modules.

Every example gets two fresh namespaces (names of its own) and removes them. Each asserts that check
mode predicts `changed` and changes nothing, that the kernel (`ip -j`) then equals the desired state,
that a second run changes nothing, that netlink_info's `node` view fed back changes nothing, and that
one invalid item mixed in fails naming the item and changes nothing. Seeded (derandomize) and bounded.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel import Namespaces, addresses, ip, links, run, run_node, snapshot, sysctl

from ansible_collections.cnfs.netlab.plugins.module_utils._info import Gatherer
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession

SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MTUS = st.sampled_from([None, 1280, 1400, 1500, 9000])


@st.composite
def node_states(draw: Any) -> dict[str, Any]:
    """A node state over namespaces A and B (filled in later): bridges and veth ends in A, the rest in B."""
    bridges = [
        {"name": f"br{i}", "mtu": draw(MTUS), "stp": draw(st.booleans())} for i in range(draw(st.integers(0, 2)))
    ]
    veths, addrs, routes = [], [], []
    for i in range(draw(st.integers(1, 3))):
        bridge = draw(st.sampled_from([None] + [b["name"] for b in bridges]))
        veths.append({"name": f"v{i}", "peer": f"e{i}", "mtu": draw(MTUS), "bridge": bridge})
        cidrs = [f"10.{40 + i}.0.2/24"]
        if draw(st.booleans()):
            cidrs.append(f"fd00:{40 + i}::2/64")
        addrs.append({"dev": f"e{i}", "addresses": cidrs})
        for j in range(draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(["unicast", "blackhole", "unreachable", "prohibit"]))
            route: dict[str, Any] = {
                "dest": f"10.{100 + i}.{j}.0/24",
                "type": kind,
                "table": draw(st.sampled_from(["main", "100"])),
                "metric": draw(st.sampled_from([0, 10, 200])),
            }
            if kind == "unicast":
                route.update(gateway=f"10.{40 + i}.0.1", dev=f"e{i}")
            routes.append(route)
    sysctls = [
        {"name": "net.ipv4.ip_forward", "value": draw(st.sampled_from(["0", "1"]))},
        {"name": "net.ipv4.conf.all.rp_filter", "value": draw(st.sampled_from(["0", "1", "2"]))},
    ][: draw(st.integers(0, 2))]
    return {"bridges": bridges, "veths": veths, "addresses": addrs, "routes": routes, "sysctls": sysctls}


def place(state: dict[str, Any], a: str, b: str, journal: str) -> dict[str, Any]:
    """The node module's options of ``state`` with the namespaces A and B."""
    return {
        "namespaces": [a, b],
        "bridges": [{**x, "netns": a} for x in state["bridges"]],
        "veths": [{**x, "netns": a, "peer_netns": b} for x in state["veths"]],
        "addresses": [{**x, "netns": b} for x in state["addresses"]],
        "routes": [{**x, "netns": b} for x in state["routes"]],
        "sysctls": [{**x, "netns": b, "journal": journal} for x in state["sysctls"]],
    }


INVALID = {
    "veths": ({"name": "vbad", "peer": "ebad", "bridge": "nobr"}, "nobr"),
    "addresses": ({"dev": "nodev", "addresses": ["10.99.0.1/24"]}, "nodev"),
    "routes": ({"dest": "10.250.0.0/24", "gateway": "192.0.2.77"}, "192.0.2.77"),
    "sysctls": ({"name": "net.ipv4.conf.nodev0.forwarding", "value": "1"}, "nodev0"),
}


def assert_kernel_is(params: dict[str, Any], a: str, b: str) -> None:
    """The kernel, read with ip -j, has what ``params`` asks for."""
    la, lb, ab = links(a), links(b), addresses(b)
    for br in params["bridges"]:
        assert la[br["name"]]["linkinfo"]["info_kind"] == "bridge"
        assert la[br["name"]]["linkinfo"]["info_data"]["stp_state"] == (1 if br["stp"] else 0)
        if br["mtu"] is not None:
            assert la[br["name"]]["mtu"] == br["mtu"], br
    for veth in params["veths"]:
        mtu = veth["mtu"] or 1500
        assert la[veth["name"]]["mtu"] == mtu and lb[veth["peer"]]["mtu"] == mtu, veth
        assert la[veth["name"]].get("master") == veth["bridge"], veth
        assert "UP" in la[veth["name"]]["flags"] and "UP" in lb[veth["peer"]]["flags"]
    for item in params["addresses"]:
        assert ab[item["dev"]] == sorted(item["addresses"]), item
    for route in params["routes"]:
        table = route["table"]
        found = ip(b, "-4", "route", "show", "table", table, route["dest"])
        assert len(found) == 1, (route, found)
        got = found[0]
        assert got.get("type", "unicast") == route["type"], (route, got)
        assert got.get("metric", 0) == route["metric"], (route, got)
        assert got.get("gateway") == route.get("gateway"), (route, got)
    for item in params["sysctls"]:
        assert sysctl(b, item["name"]) == item["value"], item


def fed_back(a: str, b: str) -> dict[str, Any]:
    with CachedSession() as session:
        return Gatherer(session, include=("links", "addresses", "routes"), tables=["all"]).gather([a, b])["node"]


@pytest.mark.timeout(300)
@SETTINGS
@given(state=node_states(), invalid=st.sampled_from(sorted(INVALID)))
def test_node_states_through_node(state: dict[str, Any], invalid: str, journal: str) -> None:
    spaces = Namespaces()
    a, b = spaces.name(), spaces.name()
    try:
        params = place(state, a, b, journal)
        # Bad input mixed in: fails naming the item, changes nothing (not even the namespaces).
        item, needle = INVALID[invalid]
        bad = {**params, invalid: [*params[invalid], {**item, "netns": b if invalid != "veths" else a}]}
        if invalid == "veths":
            bad["veths"][-1]["peer_netns"] = b
        with pytest.raises(NetlabError, match=needle):
            run_node(**bad)
        assert snapshot([a, b]) == {a: None, b: None}

        predicted = run_node(check=True, **params)
        assert snapshot([a, b]) == {a: None, b: None}
        applied = run_node(**params)
        assert predicted["changed"] == applied["changed"]
        assert applied["changed"]
        assert_kernel_is(params, a, b)

        before = snapshot([a, b])
        assert not run_node(check=True, **params)["changed"]
        assert not run_node(**params)["changed"]
        view = fed_back(a, b)
        assert not run_node(**{k: v for k, v in view.items() if k != "sysctls"})["changed"]
        assert snapshot([a, b]) == before
    finally:
        spaces.cleanup()


@pytest.mark.timeout(300)
@settings(SETTINGS, max_examples=10)
@given(state=node_states())
def test_node_states_through_the_small_modules(state: dict[str, Any], journal: str) -> None:
    spaces = Namespaces()
    a, b = spaces.name(), spaces.name()
    try:
        params = place(state, a, b, journal)
        steps: list[tuple[str, dict[str, Any]]] = [("netns", {"name": a}), ("netns", {"name": b})]
        for option, module in (
            ("bridges", "bridge"),
            ("veths", "veth"),
            ("addresses", "address"),
            ("routes", "route"),
            ("sysctls", "sysctl"),
        ):
            steps += [(module, item) for item in params[option]]
        for module, item in steps:
            before = snapshot([a, b])
            predicted = run(module, item, check=True)
            assert snapshot([a, b]) == before, (module, item)
            applied = run(module, item)
            assert predicted == applied, (module, item)
            again = snapshot([a, b])
            assert not run(module, item, check=True)["changed"], (module, item)
            assert not run(module, item)["changed"], (module, item)
            assert snapshot([a, b]) == again
        assert_kernel_is(params, a, b)
        assert not run_node(**params)["changed"]
    finally:
        spaces.cleanup()
