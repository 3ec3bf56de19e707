# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure validation: interface names (the kernel's dev_valid_name rules), CIDRs, addresses."""

from __future__ import annotations

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import (
    ifname,
    interface_cidr,
    ip_address,
    network_cidr,
)


@pytest.mark.parametrize(
    "name",
    ["eth0", "veth0", "x" * 15, "ü" * 7 + "x", "éé", "日本語", "-x", "a.b", "a_b", "a\x7fb", "...", ".a"],
)
def test_ifname_accepts_what_the_kernel_accepts(name):
    assert ifname(name) == name


def test_ifname_none_is_none():
    assert ifname(None) is None


def test_ifname_counts_bytes_not_characters():
    with pytest.raises(NetlabError, match=r"is 16 bytes long; Linux allows at most 15"):
        ifname("ü" * 8)  # 8 characters, 16 bytes


def test_ifname_too_long_names_the_object_and_says_what_to_do():
    with pytest.raises(NetlabError) as exc:
        ifname("v" * 16, "veth")
    assert str(exc.value) == f"veth name {'v' * 16!r} is 16 bytes long; Linux allows at most 15: choose a shorter name"


@pytest.mark.parametrize("name", [".", "..", "a/b", "a:b", "a b", "a\tb", "a\nb", "a\x0bb", "a\x0cb", "a\rb", "a\x00b"])
def test_ifname_rejects_illegal_characters(name):
    with pytest.raises(NetlabError, match=r"is illegal: it must not be '\.' or '\.\.' nor contain '/', ':' or spaces"):
        ifname(name, "bridge")


@pytest.mark.parametrize("name", ["à", "a\xa0b", "voilà"])
def test_ifname_rejects_utf8_with_byte_a0_the_kernel_counts_as_space(name):
    # The kernel's isspace() matches 0xA0 (lib/ctype.c); 'à' is C3 A0 in UTF-8: EINVAL from the kernel.
    with pytest.raises(NetlabError, match=r"contains the byte 0xA0"):
        ifname(name)


def test_ifname_rejects_empty():
    with pytest.raises(NetlabError, match=r"^peer name must not be empty$"):
        ifname("", "peer")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.10/24", "10.0.0.10/24"),
        (" 10.0.0.10/24 ", "10.0.0.10/24"),
        ("fd00:0::0010/64", "fd00::10/64"),
        ("10.0.0.0/8", "10.0.0.0/8"),
    ],
)
def test_interface_cidr_normalises_and_keeps_host_bits(value, expected):
    assert interface_cidr(value) == expected


@pytest.mark.parametrize(
    ("value", "msg"),
    [
        ("10.0.0.10", "is not an address with a prefix length"),
        ("10.0.0.300/24", "is not a valid address with prefix"),
        ("10.0.0.1/33", "is not a valid address with prefix"),
        (None, "is not an address with a prefix length"),
    ],
)
def test_interface_cidr_rejects(value, msg):
    with pytest.raises(NetlabError, match=msg):
        interface_cidr(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("default", "default"),
        (" default ", "default"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("10.0.0.7", "10.0.0.7/32"),
        ("fd00::7", "fd00::7/128"),
        ("fd00:0::/64", "fd00::/64"),
    ],
)
def test_network_cidr_normalises(value, expected):
    assert network_cidr(value) == expected


def test_network_cidr_host_bits_says_which_network_to_use():
    with pytest.raises(NetlabError, match=r"has host bits set; use the network address 10\.0\.0\.0/24"):
        network_cidr("10.0.0.1/24", "route")


@pytest.mark.parametrize("value", ["10.0.0.0/33", "nonsense", "", None])
def test_network_cidr_rejects(value):
    with pytest.raises(NetlabError, match=r"destination"):
        network_cidr(value)


def test_ip_address_normalises_and_rejects():
    assert ip_address(" fd00::0001 ") == "fd00::1"
    assert ip_address("10.0.0.1") == "10.0.0.1"
    with pytest.raises(NetlabError, match=r"gateway '10.0.0.1/24' is not a valid IP address"):
        ip_address("10.0.0.1/24")
