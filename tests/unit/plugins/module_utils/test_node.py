# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole-node apply without the kernel: argument spec, ordering, defaults, duplicates, purge, summary."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.cnfs.netlab.plugins.module_utils._args import VETH_SPEC
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._node import (
    argument_spec,
    build_resources,
    invocation,
    item_spec,
    namespace_items,
    summarize,
)


def params(**kwargs: Any) -> dict[str, Any]:
    """Module parameters as AnsibleModule would hand them over (validated, defaults filled)."""
    result = ArgumentSpecValidator(argument_spec()).validate(kwargs)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


NODE = {
    "namespaces": ["c1", {"name": "c2"}],
    "bridges": [{"name": "br0"}],
    "veths": [{"name": "v1", "peer": "eth0", "peer_netns": "c1", "bridge": "br0"}],
    "links": [{"name": "eth0", "netns": "c1", "mtu": 1400}],
    "addresses": [{"dev": "eth0", "netns": "c1", "addresses": ["10.0.0.10/24"]}],
    "routes": [{"dest": "default", "gateway": "10.0.0.1", "netns": "c1"}],
    "sysctls": [{"name": "net.ipv4.ip_forward", "value": 1}],
}


def kinds(resources: list[Any]) -> list[str]:
    return [res.kind for res in resources]


def test_item_spec_keeps_the_small_module_constraints_but_not_the_state_default() -> None:
    options, constraints = item_spec(VETH_SPEC)
    assert constraints == {"required_if": VETH_SPEC["required_if"]}
    assert "default" not in options["state"]
    assert options["up"]["default"] is True
    assert VETH_SPEC["argument_spec"]["state"]["default"] == "present"  # the shared spec is not modified


def test_items_are_validated_by_the_small_module_spec() -> None:
    unsupported = r"^veths\[0\]: unsupported option bogus\. Supported parameters include: bridge, mac, mtu"
    with pytest.raises(NetlabError, match=unsupported):
        build_resources(params(veths=[{"name": "v1", "peer": "p", "bogus": 1}]))
    with pytest.raises(NetlabError, match=r"^routes\[1\]: onlink is True but all of the following are missing"):
        build_resources(params(routes=[{"dest": "default", "dev": "eth0"}, {"dest": "default", "onlink": True}]))
    with pytest.raises(NetlabError, match=r"^addresses\[0\]: missing required arguments: dev"):
        build_resources(params(addresses=[{"addresses": ["10.0.0.1/24"]}]))
    with pytest.raises(NetlabError, match=r"^bridges\[0\]: .*mtu.*int"):
        build_resources(params(bridges=[{"name": "br0", "mtu": "big"}]))
    with pytest.raises(NetlabError, match=r"^links\[0\]: 'eth0' is not a dict"):
        build_resources({"links": ["eth0"]})


def test_present_runs_in_dependency_order_with_the_node_defaults() -> None:
    resources = build_resources(params(netns="h", **NODE))
    assert kinds(resources) == ["netns", "netns", "bridge", "veth", "link", "address", "route", "sysctl"]
    veth = resources[3]
    assert veth.netns == "h"  # the node's netns
    assert veth.peer_netns == "c1"
    assert resources[4].netns == "c1"  # an item's own netns wins
    assert resources[-1].state == "present"


def test_absent_removes_in_reverse_order_restores_sysctls_and_skips_links() -> None:
    resources = build_resources(params(state="absent", **NODE))
    assert kinds(resources) == ["sysctl", "route", "address", "veth", "bridge", "netns", "netns"]
    assert resources[0].state == "restored"
    assert all(res.state in ("absent", "restored") for res in resources)


def test_removals_run_before_the_rest() -> None:
    node = dict(NODE)
    node["namespaces"] = ["c1", {"name": "old", "state": "absent"}]
    node["sysctls"] = [{"name": "net.ipv4.ip_forward", "state": "absent"}]
    resources = build_resources(params(**node))
    assert [(res.kind, res.state) for res in resources[:2]] == [("sysctl", "restored"), ("netns", "absent")]
    assert kinds(resources[2:]) == ["netns", "bridge", "veth", "link", "address", "route"]


def test_duplicates_are_refused() -> None:
    node = {"veths": [{"name": "v1", "peer": "a"}, {"name": "v2", "peer": "b"}, {"name": "v1", "peer": "c"}]}
    with pytest.raises(NetlabError, match=r"veths\[2\]: veth v1 is listed twice \(also as veths\[0\]\)"):
        build_resources(params(**node))


def test_bad_items_name_their_position() -> None:
    with pytest.raises(NetlabError, match=r"^veths\[0\]: veth name 'a-very-long-name' is 16 bytes long"):
        build_resources(params(veths=[{"name": "a-very-long-name", "peer": "eth0"}]))
    with pytest.raises(NetlabError, match=r"^addresses\[0\]: .*not a valid address"):
        build_resources(params(addresses=[{"dev": "eth0", "addresses": ["10.0.0.300/24"]}]))


def test_namespace_items() -> None:
    assert namespace_items(["a", {"name": "b", "state": "absent"}]) == [
        {"name": "a", "state": None},
        {"name": "b", "state": "absent"},
    ]
    with pytest.raises(NetlabError, match=r"namespaces\[0\]: .*bogus"):
        namespace_items([{"name": "a", "bogus": 1}])
    with pytest.raises(NetlabError, match=r"namespaces\[1\]: 3 is neither a name nor a dict"):
        namespace_items(["a", 3])


def test_purge_removes_unlisted_namespaces_with_the_prefix_only() -> None:
    resources = build_resources(
        params(namespaces=["con1"], purge_namespaces=True, namespace_prefix="con"),
        existing_namespaces=["con1", "con2", "con10", "other"],
    )
    assert [(res.spec["name"], res.state) for res in resources] == [
        ("con10", "absent"),
        ("con2", "absent"),
        ("con1", "present"),
    ]
    with pytest.raises(NetlabError, match="purge_namespaces needs namespace_prefix"):
        build_resources({"purge_namespaces": True, "namespace_prefix": ""}, existing_namespaces=[])


class FakeResource:
    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key


def test_summary_counts_and_diff_of_the_changed_only() -> None:
    res = [
        FakeResource("netns", "netns a"),
        FakeResource("netns", "netns b"),
        FakeResource("veth", "veth v"),
        FakeResource("route", "route r"),
    ]
    before = {"netns a": None, "netns b": {"name": "b"}, "veth v": {"mtu": 1500}, "route r": {"x": 1}}
    after = {"netns a": {"name": "a"}, "netns b": {"name": "b"}, "veth v": {"mtu": 1400}, "route r": None}
    outcome = {"diff": {"before": before, "after": after}, "states": [(r, after[r.key]) for r in res]}
    summary, diff = summarize(outcome)
    assert summary == {
        "netns": {"created": 1, "changed": 0, "removed": 0, "unchanged": 1},
        "veth": {"created": 0, "changed": 1, "removed": 0, "unchanged": 0},
        "route": {"created": 0, "changed": 0, "removed": 1, "unchanged": 0},
    }
    assert diff == {
        "before": {"netns a": None, "veth v": {"mtu": 1500}, "route r": {"x": 1}},
        "after": {"netns a": {"name": "a"}, "veth v": {"mtu": 1400}, "route r": None},
    }


def test_invocation_counts_the_lists_and_the_record_instead_of_echoing_them() -> None:
    p = params(**NODE, record={"stage": "overlay", "plan": {}}, prune=True)
    args = invocation(p)["module_args"]
    assert args["namespaces"] == "2 items" and args["veths"] == "1 item" and args["record"] == "2 keys"
    assert args["prune"] is True and args["state"] == "present"
    assert set(args) == set(p)
