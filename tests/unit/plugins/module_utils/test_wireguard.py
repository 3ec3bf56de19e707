# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireGuard helpers of the overlay model: X25519 against RFC 7748, key encoding, the key file, and the
reading of a device's configuration from generic netlink messages (encoded and decoded by pyroute2 itself).

The device itself is tested on kernels with WireGuard (the Vagrant lab's VMs): tests/vagrant/.
"""

from __future__ import annotations

import base64
import os
import socket
import stat

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils import _wireguard
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._wireguard import (
    BASE_POINT,
    clamp,
    decode_key,
    default_key_file,
    device_config,
    encode_key,
    generate_private_key,
    normalise_key,
    public_key,
    read_key_file,
    remove_key_file,
    sort_cidrs,
    write_key_file,
    x25519,
)

h = bytes.fromhex


# ------------------------------------------------------------------------------ RFC 7748
@pytest.mark.parametrize(
    ("scalar", "u", "out"),
    [  # section 5.2
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
        (
            "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
        ),
    ],
)
def test_x25519_rfc7748_vectors(scalar, u, out):
    assert x25519(h(scalar), h(u)).hex() == out


def test_x25519_rfc7748_iterated_1_and_1000_times():
    k = u = BASE_POINT
    for i in range(1, 1001):
        k, u = x25519(k, u), k
        if i == 1:
            assert k.hex() == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
    assert k.hex() == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"


def test_x25519_rfc7748_diffie_hellman():
    a = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    b = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    pub_a, pub_b = public_key(a), public_key(b)
    assert pub_a.hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert pub_b.hex() == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert x25519(a, pub_b).hex() == shared == x25519(b, pub_a).hex()


def test_x25519_masks_the_top_bit_of_u():
    scalar = h("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytearray(h("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
    plain = x25519(scalar, bytes(u))
    u[31] |= 0x80
    assert x25519(scalar, bytes(u)) == plain


def test_x25519_rejects_wrong_lengths():
    with pytest.raises(ValueError):
        x25519(b"\x01" * 31, BASE_POINT)
    with pytest.raises(ValueError):
        x25519(b"\x01" * 32, b"\x09")


def test_generated_keys_are_clamped_random_and_agree_with_cryptography():
    keys = {generate_private_key() for _attempt in range(8)}
    assert len(keys) == 8
    for key in keys:
        assert clamp(key) == key and key[0] & 7 == 0 and key[31] & 0x80 == 0 and key[31] & 0x40
    x25519_mod = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.x25519")
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    for key in keys:
        theirs = x25519_mod.X25519PrivateKey.from_private_bytes(key).public_key()
        raw = theirs.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert public_key(key) == raw


# ------------------------------------------------------------------------------ encoding
def test_keys_travel_as_base64_of_32_bytes():
    key = bytes(range(32))
    text = encode_key(key)
    assert len(text) == 44 and text.endswith("=")
    assert decode_key(text, "k") == key
    assert decode_key(text.encode() + b"\n", "k") == key
    assert normalise_key(f"  {text}\n", "k") == text


@pytest.mark.parametrize(
    "bad",
    ["", "abc", base64.b64encode(b"x" * 31).decode(), base64.b64encode(b"x" * 33).decode(), "!" * 44, "A" * 43 + "*"],
)
def test_bad_keys_are_named(bad):
    with pytest.raises(NetlabError) as err:
        decode_key(bad, "peer 'node2': public_key")
    assert "peer 'node2': public_key is not a WireGuard key" in str(err.value)
    assert "44 characters" in str(err.value)


# ------------------------------------------------------------------------------ the key file
def test_default_key_file_per_device_and_namespace():
    assert default_key_file("wg0", None) == "/etc/cnfs-netlab/wireguard/wg0.key"
    assert default_key_file("wg1", "node1") == "/etc/cnfs-netlab/wireguard/node1/wg1.key"
    assert default_key_file("wg0", "/proc/42/ns/net") == "/etc/cnfs-netlab/wireguard/proc_42_ns_net/wg0.key"


def test_key_file_is_written_private_in_wg_genkey_format(tmp_path):
    path = str(tmp_path / "keys" / "wg0.key")
    key = generate_private_key()
    write_key_file(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    with open(path) as handle:
        assert handle.read() == encode_key(key) + "\n"
    assert read_key_file(path, "x") == (key, 0o600)
    assert os.listdir(os.path.dirname(path)) == ["wg0.key"]  # no temporary file left


def test_key_file_is_never_overwritten(tmp_path):
    path = str(tmp_path / "wg0.key")
    first = generate_private_key()
    write_key_file(path, first)
    with pytest.raises(FileExistsError):
        write_key_file(path, generate_private_key())
    assert read_key_file(path, "x")[0] == first
    assert os.listdir(tmp_path) == ["wg0.key"]


def test_missing_key_file_reads_as_none(tmp_path):
    assert read_key_file(str(tmp_path / "none.key"), "x") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not a key\n", "does not hold a WireGuard private key"),
        (encode_key(b"\x01" * 16) + "\n", "does not hold a WireGuard private key"),
    ],
)
def test_bad_key_files_are_refused_and_kept(tmp_path, content, message):
    path = tmp_path / "wg0.key"
    path.write_text(content)
    with pytest.raises(NetlabError) as err:
        read_key_file(str(path), "overlay wireguard wg0")
    assert f"overlay wireguard wg0: key_file {path} {message}" in str(err.value)
    assert "delete it to have a new key made" in str(err.value)
    assert path.read_text() == content


def test_key_file_that_is_a_directory_or_link_is_refused(tmp_path):
    (tmp_path / "dir.key").mkdir()
    with pytest.raises(NetlabError, match="is not a regular file"):
        read_key_file(str(tmp_path / "dir.key"), "x")
    os.symlink("/etc/hostname", tmp_path / "link.key")
    with pytest.raises(NetlabError, match="is not a regular file"):
        read_key_file(str(tmp_path / "link.key"), "x")


def test_key_file_group_readable_reports_its_mode(tmp_path):
    path = str(tmp_path / "wg0.key")
    write_key_file(path, generate_private_key())
    os.chmod(path, 0o644)
    assert read_key_file(path, "x")[1] == 0o644


def test_remove_key_file_keeps_the_base_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(_wireguard, "KEY_DIR", str(tmp_path))
    own = str(tmp_path / "node1" / "wg0.key")
    write_key_file(own, generate_private_key())
    remove_key_file(own)
    assert not os.path.exists(own) and not os.path.exists(tmp_path / "node1")
    top = str(tmp_path / "wg0.key")
    write_key_file(top, generate_private_key())
    remove_key_file(top)
    remove_key_file(top)  # gone already: no error
    assert os.path.isdir(tmp_path)


# ------------------------------------------------------------------------------ reading the device
def _message(attrs):
    """A WG_CMD_GET_DEVICE answer, encoded and decoded by pyroute2's own wgmsg."""
    from pyroute2.netlink.generic.wireguard import wgmsg

    msg = wgmsg()
    msg["cmd"] = 0
    msg["version"] = 1
    msg["header"]["type"] = 30
    msg["attrs"] = attrs
    msg.encode()
    out = wgmsg(msg.data)
    out.decode()
    return out


def _peer(key, endpoint=None, allowed=()):
    attrs = [["WGPEER_A_PUBLIC_KEY", key]]
    if endpoint:
        attrs.append(["WGPEER_A_ENDPOINT", {"addr": endpoint[0], "port": endpoint[1]}])
    ips = []
    for cidr in allowed:
        address, plen = cidr.split("/")
        ips.append(
            {
                "attrs": [
                    ["WGALLOWEDIP_A_FAMILY", socket.AF_INET],
                    ["WGALLOWEDIP_A_IPADDR", socket.inet_pton(socket.AF_INET, address)],
                    ["WGALLOWEDIP_A_CIDR_MASK", int(plen)],
                ]
            }
        )
    if ips:
        attrs.append(["WGPEER_A_ALLOWEDIPS", ips])
    return {"attrs": attrs}


K1, K2, K3 = (encode_key(public_key(bytes([n]) * 32)) for n in (1, 2, 3))


def test_device_config_from_the_kernel_messages():
    msg = _message(
        [
            ["WGDEVICE_A_IFNAME", "wg0"],
            ["WGDEVICE_A_PRIVATE_KEY", encode_key(b"\x07" * 32)],
            ["WGDEVICE_A_PUBLIC_KEY", K1],
            ["WGDEVICE_A_LISTEN_PORT", 51820],
            [
                "WGDEVICE_A_PEERS",
                [
                    _peer(K2, ("10.0.0.20", 51820), ["172.16.1.0/24", "10.0.0.20/32"]),
                    _peer(K3),  # no endpoint, no allowed IPs yet
                ],
            ],
        ]
    )
    config = device_config([msg])
    assert config == {
        "public_key": K1,
        "port": 51820,
        "peers": {
            K2: {"endpoint": "10.0.0.20:51820", "allowed_ips": ["10.0.0.20/32", "172.16.1.0/24"]},
            K3: {"endpoint": None, "allowed_ips": []},
        },
    }
    assert encode_key(b"\x07" * 32) not in repr(config)  # the private key is never read


def test_device_config_merges_a_peer_continued_in_the_next_message():
    first = _message(
        [
            ["WGDEVICE_A_PUBLIC_KEY", K1],
            ["WGDEVICE_A_LISTEN_PORT", 51820],
            ["WGDEVICE_A_PEERS", [_peer(K2, ("10.0.0.20", 51820), ["172.16.1.0/24"])]],
        ]
    )
    second = _message([["WGDEVICE_A_PEERS", [_peer(K2, None, ["10.0.0.20/32"]), _peer(K3, ("10.0.0.30", 1))]]])
    config = device_config([first, second])
    assert config["peers"][K2] == {"endpoint": "10.0.0.20:51820", "allowed_ips": ["10.0.0.20/32", "172.16.1.0/24"]}
    assert config["peers"][K3]["endpoint"] == "10.0.0.30:1"


def test_device_config_of_a_new_device():
    assert device_config([_message([["WGDEVICE_A_IFNAME", "wg0"], ["WGDEVICE_A_LISTEN_PORT", 0]])]) == {
        "public_key": None,
        "port": 0,
        "peers": {},
    }


def test_sort_cidrs_by_address():
    assert sort_cidrs(["172.16.2.0/24", "10.0.0.20/32", "fd00::/64", "10.0.0.3/32"]) == [
        "10.0.0.3/32",
        "10.0.0.20/32",
        "172.16.2.0/24",
        "fd00::/64",
    ]
