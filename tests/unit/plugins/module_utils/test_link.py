# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the link models: spec validation, desired state, normalised shapes, the planning registry.

The kernel paths (creating pairs across namespaces, finding a veth's peer, bridge ports) are covered by
the integration targets veth, bridge and link.
"""

from __future__ import annotations

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._link import (
    BRIDGE_KEYS,
    LINK_KEYS,
    VETH_KEYS,
    BridgeResource,
    LinkResource,
    VethResource,
    link_kind_will_be,
    link_will_exist,
    mtu_value,
    plan_link,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, keyed, where
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession

PAIR = {"name": "va", "netns": "con1", "peer": "vb", "peer_netns": "con2"}
VETH_NOW = {
    "name": "va",
    "netns": "con1",
    "peer": "vb",
    "peer_netns": "con2",
    "mtu": 1400,
    "up": True,
    "bridge": "br0",
}
BRIDGE_NOW = {"name": "br0", "netns": "con1", "mtu": 1500, "stp": False, "up": True, "ports": ["p1", "p2"]}


# ------------------------------------------------------------------------------ helpers
def test_where_and_keyed_name_the_namespace_the_same_way():
    assert where("con1") == "in netns con1"
    assert where(None) == "in the current network namespace"
    assert keyed("veth v1", "con1") == "veth v1 in netns con1"
    assert keyed("veth v1", None) == "veth v1"


@pytest.mark.parametrize(("value", "expected"), [(None, None), (68, 68), (65535, 65535), ("1450", 1450)])
def test_mtu_value_accepts(value, expected):
    assert mtu_value(value, "veth x") == expected


@pytest.mark.parametrize(
    ("value", "msg"),
    [
        (67, r"veth x: mtu 67 is out of range; use 68\.\.65535"),
        (65536, r"mtu 65536 is out of range; use 68\.\.65535"),
        ("big", r"mtu 'big' is not a number"),
        (True, r"mtu True is out of range"),
    ],
)
def test_mtu_value_rejects(value, msg):
    with pytest.raises(NetlabError, match=msg):
        mtu_value(value, "veth x")


def test_mtu_value_without_upper_limit():
    assert mtu_value(70000, "link lo", low=1, high=None) == 70000
    with pytest.raises(NetlabError, match=r"use 1 or more"):
        mtu_value(0, "link lo", low=1, high=None)


# ------------------------------------------------------------------------------ veth
def test_veth_new_pair_gets_the_kernels_defaults_for_what_is_left_out():
    res = VethResource(dict(PAIR))
    assert res.want(None) == {**PAIR, "mtu": 1500, "up": True, "bridge": ""}


def test_veth_state_keys_are_in_the_documented_order():
    assert tuple(VethResource(dict(PAIR)).want(None)) == VETH_KEYS
    assert tuple(VethResource({**PAIR, "mtu": 1300}).want(dict(reversed(VETH_NOW.items())))) == VETH_KEYS


def test_veth_left_out_options_keep_their_values():
    res = VethResource({**PAIR, "up": None})
    assert res.want(dict(VETH_NOW)) == VETH_NOW


def test_veth_unchanged_when_spec_matches_the_state():
    res = VethResource({**PAIR, "mtu": 1400, "bridge": "br0"})
    assert res.want(dict(VETH_NOW)) == VETH_NOW


def test_veth_changes_only_what_is_asked():
    res = VethResource({**PAIR, "mtu": 1300, "bridge": ""})
    assert res.want(dict(VETH_NOW)) == {**VETH_NOW, "mtu": 1300, "bridge": ""}


def test_veth_up_defaults_to_true_and_repairs_mixed_ends():
    res = VethResource(dict(PAIR))
    assert res.want({**VETH_NOW, "up": None})["up"] is True
    assert VethResource({**PAIR, "up": "no"}).want(dict(VETH_NOW))["up"] is False


def test_veth_read_state_fed_back_changes_nothing():
    assert VethResource(dict(VETH_NOW)).want(dict(VETH_NOW)) == VETH_NOW


def test_veth_absent_wants_nothing_and_needs_no_peer():
    res = VethResource({"name": "va", "state": "absent"})
    assert res.want(dict(VETH_NOW)) is None
    assert res.want(None) is None


def test_veth_peer_netns_defaults_to_netns():
    res = VethResource({"name": "x1", "netns": "con1", "peer": "x2"})
    assert res.peer_netns == "con1"
    assert res.want(None)["peer_netns"] == "con1"
    assert VethResource({"name": "x1", "peer": "x2"}).peer_netns is None


def test_veth_key_names_end_a_and_its_namespace():
    assert VethResource(dict(PAIR)).key == "veth va in netns con1"
    assert VethResource({"name": "veth0", "peer": "ceth0", "peer_netns": "con"}).key == "veth veth0"


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ({"peer": "vb"}, r"^veth: name is required$"),
        ({"name": "va"}, r"veth va: peer is required with state=present"),
        ({"name": "v" * 16, "peer": "vb"}, r"is 16 bytes long"),
        ({"name": "va", "peer": "p" * 16}, r"veth va: peer name 'p+' is 16 bytes long"),
        ({"name": "va", "peer": "v/b"}, r"peer name 'v/b' is illegal"),
        ({"name": "va", "peer": "vb", "bridge": "b:r"}, r"veth va: bridge name 'b:r' is illegal"),
        ({"name": "va", "peer": "va"}, r"peer 'va' is the same interface as name"),
        ({"name": "va", "netns": "n", "peer": "va", "peer_netns": "/run/netns/n"}, r"is the same interface as name"),
        ({"name": "va", "peer": "vb", "mtu": 65536}, r"veth va: mtu 65536 is out of range"),
        ({"name": "va", "peer": "vb", "netns": "a/b"}, r"netns 'a/b' is not a legal namespace name"),
        ({"name": "va", "peer": "vb", "peer_netns": "/run/../x"}, r"peer_netns '/run/../x' is not a clean absolute"),
        ({"name": "va", "peer": "vb", "state": "gone"}, r"state 'gone' is not one of present, absent"),
        ({"name": "va", "peer": "vb", "up": "maybe"}, r"up must be a boolean"),
    ],
)
def test_veth_rejects_bad_specs(spec, msg):
    with pytest.raises(NetlabError, match=msg):
        VethResource(spec)


def test_veth_same_name_in_two_namespaces_is_fine():
    res = VethResource({"name": "eth0", "netns": "con1", "peer": "eth0", "peer_netns": "con2"})
    assert res.want(None)["peer"] == "eth0"


# ------------------------------------------------------------------------------ bridge
def test_bridge_new_gets_the_kernels_defaults():
    res = BridgeResource({"name": "br0", "netns": "con1"})
    assert res.want(None) == {"name": "br0", "netns": "con1", "mtu": 1500, "stp": False, "up": True, "ports": []}
    assert tuple(res.want(None)) == BRIDGE_KEYS


def test_bridge_ports_are_added_unless_exclusive():
    res = BridgeResource({"name": "br0", "netns": "con1", "ports": ["p3", "p1"]})
    assert res.want(dict(BRIDGE_NOW))["ports"] == ["p1", "p2", "p3"]
    res = BridgeResource({"name": "br0", "netns": "con1", "ports": ["p3", "p1"], "ports_exclusive": True})
    assert res.want(dict(BRIDGE_NOW))["ports"] == ["p1", "p3"]


def test_bridge_ports_left_out_stay_even_when_exclusive():
    res = BridgeResource({"name": "br0", "netns": "con1", "ports_exclusive": True})
    assert res.want(dict(BRIDGE_NOW)) == BRIDGE_NOW


def test_bridge_empty_exclusive_ports_release_all():
    res = BridgeResource({"name": "br0", "netns": "con1", "ports": [], "ports_exclusive": True})
    assert res.want(dict(BRIDGE_NOW))["ports"] == []


def test_bridge_ports_are_sorted_and_deduplicated():
    res = BridgeResource({"name": "br0", "ports": ["b", "a", "b"], "ports_exclusive": True})
    assert res.want(None)["ports"] == ["a", "b"]


def test_bridge_read_state_fed_back_changes_nothing():
    assert BridgeResource(dict(BRIDGE_NOW)).want(dict(BRIDGE_NOW)) == BRIDGE_NOW


def test_bridge_stp_and_mtu():
    res = BridgeResource({"name": "br0", "netns": "con1", "stp": True, "mtu": 1400, "up": False})
    assert res.want(dict(BRIDGE_NOW)) == {**BRIDGE_NOW, "stp": True, "mtu": 1400, "up": False}


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ({"name": "br0", "ports": ["br0"]}, r"a bridge cannot be its own port"),
        ({"name": "br0", "ports": "p1"}, r"ports must be a list of interface names"),
        ({"name": "br0", "ports": ["p" * 16]}, r"bridge br0: port name 'p+' is 16 bytes long"),
        ({"name": "br 0"}, r"bridge name 'br 0' is illegal"),
        ({"name": "br0", "mtu": 10}, r"bridge br0: mtu 10 is out of range"),
        ({"name": "br0", "stp": "perhaps"}, r"stp must be a boolean"),
    ],
)
def test_bridge_rejects_bad_specs(spec, msg):
    with pytest.raises(NetlabError, match=msg):
        BridgeResource(spec)


def test_bridge_absent():
    assert BridgeResource({"name": "br0", "state": "absent"}).want(dict(BRIDGE_NOW)) is None


# ------------------------------------------------------------------------------ link
LINK_NOW = {"name": "eth0", "netns": "con1", "up": True, "mtu": 1500, "master": "br0"}


def test_link_left_out_options_keep_their_values():
    res = LinkResource({"name": "eth0", "netns": "con1"})
    assert res.want(dict(LINK_NOW)) == LINK_NOW
    assert tuple(res.want(dict(LINK_NOW))) == LINK_KEYS


def test_link_changes_what_is_asked():
    res = LinkResource({"name": "eth0", "netns": "con1", "up": False, "mtu": 9000, "master": ""})
    assert res.want(dict(LINK_NOW)) == {**LINK_NOW, "up": False, "mtu": 9000, "master": ""}


@pytest.mark.parametrize(
    ("spec", "msg"),
    [
        ({"name": "eth0", "state": "absent"}, r"only changes existing interfaces; it has no state=absent"),
        ({"name": "eth0", "master": "eth0"}, r"an interface cannot be its own master"),
        ({"name": "eth0", "master": "b/r"}, r"master name 'b/r' is illegal"),
        ({"name": "eth0", "mtu": 0}, r"mtu 0 is out of range; use 1 or more"),
        ({"name": ".."}, r"link name '\.\.' is illegal"),
    ],
)
def test_link_rejects_bad_specs(spec, msg):
    with pytest.raises(NetlabError, match=msg):
        LinkResource(spec)


# ------------------------------------------------------------------------------ planning registry
# A real Session in the test's own namespace, read-only: nothing is created or changed.
@pytest.fixture
def session():
    with CachedSession() as s:
        yield s


def test_registry_lives_on_the_session_keyed_by_namespace_path(session):
    plan_link(session, "con1", "br0", "bridge")
    plan_link(session, None, "cnfsunit0", "veth")
    assert session.plan.links_in("/run/netns/con1") == {"br0": "bridge"}
    assert session.plan.links_in(None) == {"cnfsunit0": "veth"}
    assert link_kind_will_be(session, "/run/netns/con1", "br0") == "bridge"  # the path names the same namespace
    assert link_will_exist(session, None, "cnfsunit0")


def test_registry_planned_removal_hides_an_existing_link(session):
    assert link_kind_will_be(session, None, "lo") == "device"  # read from the kernel
    plan_link(session, None, "lo", None)
    assert not link_will_exist(session, None, "lo")


def test_registry_links_of_a_namespace_planned_away_are_gone(session):
    session.plan.set_namespace("cnfsunit-gone", False)
    assert link_kind_will_be(session, "cnfsunit-gone", "eth0") is None


def test_registry_missing_namespace_has_no_links(session):
    assert link_kind_will_be(session, "cnfsunit-does-not-exist", "eth0") is None
