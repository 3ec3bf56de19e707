# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the address model: normalising, the desired list, conflicts, spec validation."""

from __future__ import annotations

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._address import (
    AddressResource,
    desired_addresses,
    find_conflicts,
    is_link_local,
    normalise_addresses,
    sort_addresses,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError

LL = "fe80::1/64"


def test_normalise_sorts_dedups_and_canonicalises():
    got = normalise_addresses(["fd00:0::1/64", "10.0.0.10/24", "10.0.0.2/24", "10.0.0.10/24"], "x")
    assert got == ["10.0.0.2/24", "10.0.0.10/24", "fd00::1/64"]


def test_normalise_sorts_numerically_not_as_text():
    assert sort_addresses(["10.0.0.100/24", "10.0.0.9/24", "9.0.0.1/8"]) == [
        "9.0.0.1/8",
        "10.0.0.9/24",
        "10.0.0.100/24",
    ]


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("10.0.0.1", "not an address with a prefix length"),
        ("10.0.0.300/24", "not a valid address"),
        ("10.0.0.1/33", "not a valid address"),
        ("fd00::1/129", "not a valid address"),
        ("banana/24", "not a valid address"),
        (24, "not an address with a prefix length"),
    ],
)
def test_normalise_rejects_bad_cidrs(value, needle):
    with pytest.raises(NetlabError, match=needle) as err:
        normalise_addresses([value], "address eth0")
    assert "address eth0" in str(err.value)


def test_normalise_rejects_same_ip_with_two_prefixes():
    with pytest.raises(NetlabError, match=r"10\.0\.0\.1 is listed twice, as 10\.0\.0\.1/16 and 10\.0\.0\.1/24"):
        normalise_addresses(["10.0.0.1/16", "10.0.0.1/24"], "address eth0")


def test_link_local():
    assert is_link_local("fe80::1/64")
    assert is_link_local("febf::1/64")
    assert not is_link_local("fd00::1/64")
    assert not is_link_local("169.254.1.1/16")


def test_present_adds_and_keeps_others():
    assert desired_addresses(["10.0.0.1/24", LL], ["10.0.0.2/24"], "present", False) == [
        "10.0.0.1/24",
        "10.0.0.2/24",
        LL,
    ]


def test_present_replaces_the_prefix_of_a_listed_ip():
    assert desired_addresses(["10.0.0.1/16"], ["10.0.0.1/24"], "present", False) == ["10.0.0.1/24"]


def test_present_purge_keeps_only_listed_and_link_local():
    current = ["10.0.0.1/24", "10.0.0.9/24", "fd00::9/64", LL]
    assert desired_addresses(current, ["10.0.0.1/24"], "present", True) == ["10.0.0.1/24", LL]


def test_present_purge_with_a_listed_link_local_replaces_the_kernel_one_only_if_same_ip():
    assert desired_addresses([LL], ["fe80::1/10"], "present", True) == ["fe80::1/10"]
    assert desired_addresses([LL], ["fe80::2/64"], "present", True) == [LL, "fe80::2/64"]


def test_absent_removes_listed_ips_with_any_prefix():
    current = ["10.0.0.1/16", "10.0.0.2/24", LL]
    assert desired_addresses(current, ["10.0.0.1/24"], "absent", False) == ["10.0.0.2/24", LL]


def test_absent_purge_removes_all_but_unlisted_link_local():
    current = ["10.0.0.1/16", "fd00::1/64", LL]
    assert desired_addresses(current, [], "absent", True) == [LL]
    assert desired_addresses(current, [LL], "absent", True) == []


def test_absent_of_missing_address_changes_nothing():
    assert desired_addresses(["10.0.0.2/24"], ["10.0.0.1/24"], "absent", False) == ["10.0.0.2/24"]


def test_conflicts_name_the_other_interface():
    others = {"eth0": ["10.0.0.1/24"], "eth1": ["10.0.0.1/16", LL], "lo": ["127.0.0.1/8"]}
    assert find_conflicts("eth0", ["10.0.0.1/24"], others) == [("10.0.0.1/24", "eth1", "10.0.0.1/16")]
    assert find_conflicts("eth2", ["127.0.0.1/8"], others) == [("127.0.0.1/8", "lo", "127.0.0.1/8")]


def test_link_local_is_no_conflict():
    assert find_conflicts("eth0", [LL], {"eth1": [LL]}) == []


def test_resource_shape_and_key():
    res = AddressResource({"netns": "con", "dev": "veth1", "addresses": ["10.0.0.2/24"], "state": "present"})
    assert res.key == "address veth1 in netns con"
    assert res.want(None) == {"netns": "con", "dev": "veth1", "addresses": ["10.0.0.2/24"]}
    current = {"netns": "con", "dev": "veth1", "addresses": ["10.0.0.2/24", LL]}
    assert res.want(current) == current


def test_resource_absent_of_missing_dev_is_absent():
    res = AddressResource({"dev": "veth1", "addresses": ["10.0.0.2/24"], "state": "absent"})
    assert res.want(None) is None


def test_resource_defaults_allow_dicts_without_purge_or_state():
    res = AddressResource({"dev": "eth0", "addresses": ["10.0.0.2/24"]})
    assert res.state == "present"
    assert res.purge is False


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"addresses": []}, "dev is required"),
        ({"dev": "a" * 16, "addresses": []}, "is 16 bytes long"),
        ({"dev": "eth/0", "addresses": []}, "is illegal"),
        ({"dev": "eth0", "addresses": "10.0.0.1/24"}, "must be a list"),
        ({"dev": "eth0", "addresses": [], "netns": "a b"}, "not a legal namespace name"),
        ({"dev": "eth0", "addresses": [], "state": "gone"}, "is not one of present, absent"),
    ],
)
def test_resource_rejects_bad_specs(spec, needle):
    with pytest.raises(NetlabError, match=needle):
        AddressResource(spec)
