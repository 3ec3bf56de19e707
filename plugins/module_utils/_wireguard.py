# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireGuard for the overlay model: keys made on the node (X25519 in pure Python), the key file, and the
device's configuration read and written over generic netlink (pyroute2's ``WireGuard``).

Private module_utils of cnfs.netlab, used by ``_overlay_wireguard.py`` (the overlay backend ``wireguard``).

Keys
    A private key is 32 random bytes, clamped as RFC 7748 section 5 says (what ``wg genkey`` prints);
    its public key is the X25519 function of it and the base point 9. Both travel as base64 (44
    characters), like ``wg`` shows them. The scalar multiplication below is the Montgomery ladder of
    RFC 7748 section 5 on Python integers: it needs no library on the managed node (no ``cryptography``,
    no ``wg``), and it runs once per key (a few milliseconds). Python's big integers are not constant-time;
    the only secret scalar this code multiplies is the node's own private key, once, locally.

The key file
    Holds the private key in base64 and a newline, exactly like ``wg genkey > file``, so ``wg pubkey <
    file`` and ``wg set wg0 private-key file`` read it. Mode 0600, in a directory of mode 0700; written to a
    temporary file and linked into place, so a key is never half-written and an existing key is never
    overwritten. Only its public key ever leaves this module.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import os
import secrets
import stat
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, kernel_calls

KEY_LEN = 32
KEY_DIR = "/etc/cnfs-netlab/wireguard"
KEY_MODE = 0o600

# ------------------------------------------------------------------------------------ X25519 (RFC 7748)
_P = 2**255 - 19
_A24 = 121665  # (486662 - 2) / 4
BASE_POINT = (9).to_bytes(32, "little")


def clamp(scalar: bytes) -> bytes:
    """RFC 7748 decodeScalar25519: clear the 3 low bits and the top bit, set bit 254."""
    if len(scalar) != KEY_LEN:
        raise ValueError(f"an X25519 scalar is {KEY_LEN} bytes, not {len(scalar)}")
    out = bytearray(scalar)
    out[0] &= 248
    out[31] &= 127
    out[31] |= 64
    return bytes(out)


def x25519(scalar: bytes, u_coordinate: bytes) -> bytes:
    """The X25519 function of RFC 7748 section 5: scalar multiplication on the Montgomery ladder."""
    if len(u_coordinate) != KEY_LEN:
        raise ValueError(f"an X25519 u-coordinate is {KEY_LEN} bytes, not {len(u_coordinate)}")
    k = int.from_bytes(clamp(scalar), "little")
    # decodeUCoordinate: the top bit is masked; values >= p are taken mod p.
    x1 = (int.from_bytes(u_coordinate, "little") & ((1 << 255) - 1)) % _P
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        k_t = (k >> t) & 1
        swap ^= k_t
        if swap:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = k_t
        a = (x2 + z2) % _P
        aa = a * a % _P
        b = (x2 - z2) % _P
        bb = b * b % _P
        e = (aa - bb) % _P
        c = (x3 + z3) % _P
        d = (x3 - z3) % _P
        da = d * a % _P
        cb = c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, x3 = x3, x2
        z2, z3 = z3, z2
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(KEY_LEN, "little")


def generate_private_key() -> bytes:
    """32 bytes from the kernel's CSPRNG, clamped (what `wg genkey` makes)."""
    return clamp(secrets.token_bytes(KEY_LEN))


def public_key(private: bytes) -> bytes:
    return x25519(private, BASE_POINT)


def encode_key(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode_key(text: Any, what: str) -> bytes:
    """The 32 bytes of a base64 WireGuard key; NetlabError naming ``what`` otherwise."""
    value = text.decode("ascii", "replace") if isinstance(text, bytes) else str(text)
    value = value.strip()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_LEN or len(value) != 44:
        raise NetlabError(
            f"{what} is not a WireGuard key: give the base64 of 32 bytes (44 characters, as `wg pubkey` prints)"
        )
    return raw


def normalise_key(text: Any, what: str) -> str:
    """A base64 key in its canonical spelling (NetlabError when it is not one)."""
    return encode_key(decode_key(text, what))


# ------------------------------------------------------------------------------------ the key file
def default_key_file(name: str, netns: str | None) -> str:
    """/etc/cnfs-netlab/wireguard/<device>.key, or .../<netns>/<device>.key for a namespace given by netns."""
    if not netns:
        return os.path.join(KEY_DIR, f"{name}.key")
    safe = netns.strip("/").replace("/", "_") if netns.startswith("/") else netns
    return os.path.join(KEY_DIR, safe, f"{name}.key")


def read_key_file(path: str, what: str) -> tuple[bytes, int] | None:
    """(private key, permission bits) of the key file, None when it does not exist.

    A file that is not a regular file or does not hold one key raises NetlabError: it is never replaced.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise NetlabError(f"{what}: key_file {path} cannot exist: a part of its directory is a file") from None
    if not stat.S_ISREG(info.st_mode):
        raise NetlabError(f"{what}: key_file {path} is not a regular file: remove it or choose another key_file")
    with open(path, "rb") as handle:
        content = handle.read(200)
    try:
        private = decode_key(content, "key")
    except NetlabError:
        raise NetlabError(
            f"{what}: key_file {path} does not hold a WireGuard private key (base64 of 32 bytes, as `wg genkey` "
            "prints): fix it, or delete it to have a new key made (peers then need the new public key)"
        ) from None
    return private, stat.S_IMODE(info.st_mode)


def write_key_file(path: str, private: bytes) -> None:
    """Write a new key file (mode 0600, its directory 0700); never replaces an existing one."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, KEY_MODE)
    try:
        os.fchmod(fd, KEY_MODE)
        os.write(fd, (encode_key(private) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails when a key appeared meanwhile: that key stays
    finally:
        os.unlink(tmp)
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_key_file(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    # The per-namespace directory goes when it is empty; the base directory stays.
    directory = os.path.dirname(path)
    if directory != KEY_DIR:
        with contextlib.suppress(OSError):
            os.rmdir(directory)


# ------------------------------------------------------------------------------------ the device (genl)
def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def device_config(messages: list[Any]) -> dict[str, Any]:
    """The configuration of a WireGuard device from the messages of a WG_CMD_GET_DEVICE dump (pure).

    ``{"public_key", "port", "peers": {public key: {"endpoint": "a.b.c.d:port" or None,
    "allowed_ips": [sorted CIDRs]}}}``. The private key the kernel also reports is never read. A device
    with many peers answers in several messages, and a peer with many allowed IPs may continue in the next
    message: entries of the same public key are merged.
    """
    out: dict[str, Any] = {"public_key": None, "port": None, "peers": {}}
    for msg in messages:
        if out["public_key"] is None:
            out["public_key"] = _text(msg.get_attr("WGDEVICE_A_PUBLIC_KEY"))
        if out["port"] is None:
            out["port"] = msg.get_attr("WGDEVICE_A_LISTEN_PORT")
        for peer in msg.get_attr("WGDEVICE_A_PEERS") or []:
            key = _text(peer.get_attr("WGPEER_A_PUBLIC_KEY"))
            if key is None:
                continue
            entry = out["peers"].setdefault(key, {"endpoint": None, "allowed_ips": []})
            endpoint = peer.get_attr("WGPEER_A_ENDPOINT")
            if endpoint is not None and endpoint.get("addr") and endpoint.get("port"):
                address = f"[{endpoint['addr']}]" if ":" in endpoint["addr"] else endpoint["addr"]
                entry["endpoint"] = f"{address}:{endpoint['port']}"
            for allowed in peer.get_attr("WGPEER_A_ALLOWEDIPS") or []:
                cidr = allowed.get("addr")
                if cidr and cidr not in entry["allowed_ips"]:
                    entry["allowed_ips"].append(cidr)
    for entry in out["peers"].values():
        entry["allowed_ips"] = sort_cidrs(entry["allowed_ips"])
    return out


def sort_cidrs(cidrs: list[str]) -> list[str]:
    """CIDRs in address order, IPv4 first."""

    def order(cidr: str) -> tuple[int, Any]:
        net = ipaddress.ip_network(cidr, strict=False)
        return net.version, net

    return sorted(cidrs, key=order)


def open_wireguard() -> Any:
    """A pyroute2 WireGuard (generic netlink) socket in the calling thread's network namespace.

    Call it inside ``session.inside(netns)``: the socket is made (and the family resolved) by the
    constructor, in the namespace the thread is in, and it then acts on the devices of that namespace.
    """
    from pyroute2 import WireGuard

    return WireGuard()


def read_device(wg: Any, name: str) -> dict[str, Any]:
    with kernel_calls():
        return device_config(list(wg.info(name)))


def set_device(wg: Any, name: str, **kwarg: Any) -> None:
    with kernel_calls():
        wg.set(name, **kwarg)
