# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared argument specs (_args.py) validate like the modules promise, through Ansible's own validator.

tests/unit/plugins/modules/test_docs.py checks them against DOCUMENTATION; here: what they accept, refuse and
fill in, and that the node module's lists use the same specs (pure: no kernel).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.cnfs.netlab.plugins.module_utils import _args
from ansible_collections.cnfs.netlab.plugins.module_utils._node import KINDS, item_spec
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ROUTE_TYPES

SPECS = {name: value for name, value in vars(_args).items() if name.endswith("_SPEC")}


def validate(spec: dict[str, Any], params: dict[str, Any]) -> Any:
    validator = ArgumentSpecValidator(
        spec["argument_spec"],
        mutually_exclusive=spec.get("mutually_exclusive"),
        required_together=spec.get("required_together"),
        required_one_of=spec.get("required_one_of"),
        required_if=spec.get("required_if"),
        required_by=spec.get("required_by"),
    )
    return validator.validate(params)


def test_every_spec_is_a_set_of_module_keyword_arguments():
    allowed = {"argument_spec", "required_if", "mutually_exclusive", "required_together", "required_one_of"}
    assert set(SPECS) >= {"NETNS_SPEC", "VETH_SPEC", "BRIDGE_SPEC", "LINK_SPEC", "ADDRESS_SPEC", "ROUTE_SPEC"}
    for name, spec in SPECS.items():
        assert set(spec) <= allowed, name
        for option, details in spec["argument_spec"].items():
            assert "type" in details, f"{name}.{option}"


@pytest.mark.parametrize(
    ("spec", "params", "message"),
    [
        ("VETH_SPEC", {"name": "v0"}, "state is present but all of the following are missing: peer"),
        ("SYSCTL_SPEC", {"name": "net.ipv4.ip_forward"}, "state is present but all of the following are missing"),
        ("ROUTE_SPEC", {"dest": "default", "onlink": True, "gateway": "10.0.0.1"}, "missing: dev"),
        ("ROUTE_SPEC", {"dest": "default", "type": "nat"}, "value of type must be one of"),
        ("OVERLAY_SPEC", {"backend": "gre"}, "value of backend must be one of: udp, vxlan, wireguard"),
        ("OVERLAY_SPEC", {"backend": "udp"}, "missing: local, subnet"),
        ("OVERLAY_SPEC", {"state": "absent", "peers": [{"name": "n2"}]}, "missing required arguments: address, subnet"),
        ("BRIDGE_SPEC", {"name": "br0", "ports": "p1", "stp": "maybe"}, "stp"),
        ("NETNS_SPEC", {}, "missing required arguments: name"),
    ],
)
def test_bad_parameters_are_refused_naming_them(spec, params, message):
    result = validate(SPECS[spec], params)
    assert result.error_messages, params
    assert any(message in text for text in result.error_messages), result.error_messages


def test_defaults_are_filled_in():
    veth = validate(_args.VETH_SPEC, {"name": "v0", "peer": "v1"}).validated_parameters
    assert (veth["state"], veth["up"], veth["netns"], veth["mtu"]) == ("present", True, None, None)
    route = validate(_args.ROUTE_SPEC, {"dest": "default", "gateway": "10.0.0.1"}).validated_parameters
    assert (route["type"], route["table"], route["onlink"]) == ("unicast", "main", False)
    sysctl = validate(_args.SYSCTL_SPEC, {"name": "net.ipv4.ip_forward", "state": "restored"}).validated_parameters
    assert sysctl["journal"] == _args.SYSCTL_JOURNAL
    overlay = validate(_args.OVERLAY_SPEC, {"state": "absent"}).validated_parameters
    assert (overlay["backend"], overlay["peers"], overlay["remove_key"]) == ("udp", [], False)


def test_route_types_are_the_validators():
    assert _args.ROUTE_SPEC["argument_spec"]["type"]["choices"] == list(ROUTE_TYPES)


def test_a_links_item_from_netlink_info_is_accepted_as_it_is():
    """The read-only facts of a netlink_info links item are options, so an item can be given back."""
    item = {
        "name": "eth0",
        "netns": "con1",
        "kind": "veth",
        "index": 7,
        "up": True,
        "mtu": 1500,
        "master": "",
        "operstate": "up",
        "mac": "02:00:00:00:00:01",
        "peer": "veth-con1",
        "peer_netns": None,
    }
    result = validate(_args.LINK_SPEC, item)
    assert not result.error_messages, result.error_messages


def test_the_shared_specs_are_not_changed_by_use():
    before = copy.deepcopy(SPECS)
    for _option, spec, _absent in KINDS:
        item_spec(spec)
    validate(_args.VETH_SPEC, {"name": "v0", "peer": "v1"})
    assert before == {name: value for name, value in vars(_args).items() if name.endswith("_SPEC")}


def test_node_lists_validate_each_item_like_its_small_module():
    """Each list of node uses the small module's spec; only state loses its default (and sysctls gain absent)."""
    by_list = {option: spec for option, spec, _absent in KINDS}
    assert by_list["veths"] is _args.VETH_SPEC and by_list["routes"] is _args.ROUTE_SPEC
    for option, spec, _absent in KINDS:
        options, constraints = item_spec(spec)
        assert set(options) == set(spec["argument_spec"]), option
        for key, details in options.items():
            expected = dict(spec["argument_spec"][key])
            if key == "state":
                expected.pop("default", None)
                if option == "sysctls":
                    expected["choices"] = [*expected["choices"], "absent"]
            assert details == expected, (option, key)
        assert constraints.get("required_if") == spec.get("required_if"), option
