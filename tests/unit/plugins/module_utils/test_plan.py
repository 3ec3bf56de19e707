# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_plan.Plan: one key form for namespaces, links, address lists (pure)."""

from __future__ import annotations

from ansible_collections.cnfs.netlab.plugins.module_utils._plan import UNPLANNED, Plan, ns_key


def test_a_name_and_its_path_are_one_namespace() -> None:
    plan = Plan()
    assert ns_key("con1") == ns_key("/run/netns/con1") == "/run/netns/con1"
    assert ns_key(None) is None and ns_key("") is None
    plan.set_namespace("con1", True)
    plan.set_namespace("/run/netns/con2", False)
    assert plan.namespace("/run/netns/con1") is True
    assert plan.namespace("con2") is False
    assert plan.namespace("con3") is None
    assert plan.namespace(None) is None  # the own namespace is never planned


def test_links_kind_removal_and_unplanned() -> None:
    plan = Plan()
    assert plan.link("con1", "veth0") is UNPLANNED
    assert not plan.link_created("con1", "veth0")
    plan.set_link("con1", "veth0", "veth")
    plan.set_link("/run/netns/con1", "old0", None)
    plan.set_link(None, "br0", "bridge")
    assert plan.link("/run/netns/con1", "veth0") == "veth"
    assert plan.link("con1", "old0") is None
    assert plan.link_created("con1", "veth0") and not plan.link_created("con1", "old0")
    assert plan.links_in("con1") == {"veth0": "veth", "old0": None}
    assert plan.links_in(None) == {"br0": "bridge"}
    plan.set_link("con1", "veth0", None)  # a later resource removes it again
    assert plan.links_in("con1")["veth0"] is None


def test_addresses_are_copies_and_touch_their_namespace() -> None:
    plan = Plan()
    assert not plan.touches("con1")
    wanted = ["172.16.0.2/24"]
    plan.set_addresses("con1", "veth1", wanted)
    wanted.append("10.0.0.1/8")  # the plan keeps what it was given
    assert plan.addresses("/run/netns/con1", "veth1") == ["172.16.0.2/24"]
    assert plan.addresses("con1", "eth0") is None
    assert plan.addresses_in("con1") == {"veth1": ["172.16.0.2/24"]}
    assert plan.touches("/run/netns/con1") and not plan.touches(None)
    plan.set_link(None, "vxlan0", "vxlan")
    assert plan.touches(None)
