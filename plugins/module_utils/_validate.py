# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure validation and normalisation of user input (no kernel access)."""

from __future__ import annotations

import ipaddress

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError

IFNAMSIZ = 16  # the kernel's limit, including the terminating NUL: at most 15 bytes


def ifname(name: str | None, what: str = "interface") -> str | None:
    """Check a Linux interface name the way the kernel's dev_valid_name() does."""
    if name is None:
        return None
    raw = name.encode("utf-8", "surrogateescape")
    if not raw:
        raise NetlabError(f"{what} name must not be empty")
    if len(raw) >= IFNAMSIZ:
        raise NetlabError(
            f"{what} name {name!r} is {len(raw)} bytes long; Linux allows at most {IFNAMSIZ - 1}: choose a shorter name"
        )
    if name in (".", "..") or any(c in name for c in "/:") or any(c.isspace() for c in name) or "\x00" in name:
        raise NetlabError(f"{what} name {name!r} is illegal: it must not be '.' or '..' nor contain '/', ':' or spaces")
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
    """Normalise a route destination: 'default' or a network in CIDR form (host bits must be zero)."""
    if value in ("default", "0.0.0.0/0", "::/0"):
        return value if value != "default" else "default"
    try:
        net = ipaddress.ip_network(value.strip() if "/" in value else value.strip() + ("/128" if ":" in value else "/32"))
    except ValueError as exc:
        raise NetlabError(f"{what} {value!r} is not a valid network: {exc}") from None
    return net.with_prefixlen


def ip_address(value: str, what: str = "gateway") -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise NetlabError(f"{what} {value!r} is not a valid IP address: {exc}") from None
