# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure validation and normalisation of user input (no kernel access)."""

from __future__ import annotations

import ipaddress

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError

IFNAMSIZ = 16  # the kernel's limit, including the terminating NUL: at most 15 bytes

# The route types the route option `type` accepts, with the kernel's numbers (RTN_*, linux/rtnetlink.h; pyroute2's
# rt_type has the same numbers, plus nat and xresolve, which the kernel no longer supports).
ROUTE_TYPES = {
    "unicast": 1,
    "local": 2,
    "broadcast": 3,
    "anycast": 4,
    "multicast": 5,
    "blackhole": 6,
    "unreachable": 7,
    "prohibit": 8,
    "throw": 9,
}


# The bytes the kernel's isspace() matches (lib/ctype.c): ASCII whitespace and 0xA0, which is
# also the second byte of many UTF-8 letters ('à' is C3 A0), so those names are refused too.
_KERNEL_SPACE = frozenset(b" \t\n\v\f\r\xa0")


def ifname(name: str | None, what: str = "interface") -> str | None:
    """Check a Linux interface name the way the kernel's dev_valid_name() does, byte for byte."""
    if name is None:
        return None
    raw = name.encode("utf-8", "surrogateescape")
    if not raw:
        raise NetlabError(f"{what} name must not be empty")
    if len(raw) >= IFNAMSIZ:
        raise NetlabError(
            f"{what} name {name!r} is {len(raw)} bytes long; Linux allows at most {IFNAMSIZ - 1}: choose a shorter name"
        )
    if name in (".", "..") or any(c in name for c in "/:\x00") or any(b in _KERNEL_SPACE for b in raw if b < 0x80):
        raise NetlabError(f"{what} name {name!r} is illegal: it must not be '.' or '..' nor contain '/', ':' or spaces")
    if 0xA0 in raw:
        raise NetlabError(
            f"{what} name {name!r} is illegal: its UTF-8 encoding contains the byte 0xA0, which the kernel counts "
            "as a space; choose another name (plain ASCII letters, digits, '-', '_' and '.' are always safe)"
        )
    return name


def interface_cidr(value: str, what: str = "address") -> str:
    """Normalise an interface address with prefix ('10.0.0.10/24'); host bits are kept."""
    if not isinstance(value, str) or "/" not in value:
        raise NetlabError(f"{what} {value!r} is not an address with a prefix length, like 10.0.0.10/24 or fd00::1/64")
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError as exc:
        raise NetlabError(f"{what} {value!r} is not a valid address with prefix: {exc}") from None
    return iface.with_prefixlen


def network_cidr(value: str, what: str = "destination") -> str:
    """Normalise a route destination: 'default' or a network in CIDR form (host bits must be zero).

    A bare address is a host route (/32 or /128).
    """
    if not isinstance(value, str):
        raise NetlabError(f"{what} {value!r} is not a network like 10.0.0.0/24, fd00::/64 or default")
    text = value.strip()
    if text == "default":
        return "default"
    if "/" not in text:
        text += "/128" if ":" in text else "/32"
    try:
        net = ipaddress.ip_network(text)
    except ValueError as exc:
        hint = ""
        if "host bits set" in str(exc):
            hint = f"; use the network address {ipaddress.ip_interface(text).network.with_prefixlen}"
        raise NetlabError(f"{what} {value!r} is not a valid network: {exc}{hint}") from None
    return net.with_prefixlen


def ip_address(value: str, what: str = "gateway") -> str:
    """Normalise an IP address without prefix ('fd00::0001' -> 'fd00::1')."""
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError as exc:
        raise NetlabError(f"{what} {value!r} is not a valid IP address: {exc}") from None
