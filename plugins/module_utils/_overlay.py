# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource model: this node's end of an overlay among the nodes of a play (stage 4 of the talk).

Backends:

``udp`` (default)
    The talk's socat UDP/TUN tunnel, made robust and extended to N nodes: one persistent TUN device
    per peer (``<name>-<peer name>``), created here through ``/dev/net/tun`` with IPv6 disabled
    before it is up (no router solicitation leaves it), its MTU set before any process touches it,
    and one supervised socat per device that attaches to it. Every socat binds the same
    ``local:port`` with ``SO_REUSEPORT`` on an *unconnected* UDP socket (``UDP4-DATAGRAM``): ICMP
    errors never kill it, and a datagram from any peer may be written into any of the node's
    tunnels (the kernel routes the inner packet anyway). That is why each tunnel has reverse-path
    filtering in loose mode (2) and carries this node's VTEP address (``<subnet network>/32``): the
    kernel's loose mode rejects every packet on a device without an IPv4 address.
``vxlan``
    One VXLAN device the way flannel builds it: learning off, a deterministic VTEP MAC derived
    from the underlay address (:func:`vtep_mac`), this node's VTEP address ``<subnet network>/32``
    on the device, and per peer a static FDB entry (peer VTEP MAC -> peer underlay address), a
    permanent neighbour (peer VTEP address -> peer VTEP MAC) and an onlink route for the peer's
    subnet via the peer's VTEP address. Entries of peers no longer listed are deleted.
``wireguard``
    One WireGuard device (``wg0``) with this node's VTEP address ``<subnet network>/32``, its private key
    made on the node and kept in a key file (``_wireguard.py``; only public keys leave the node), the
    listen port, and per peer: its public key, its endpoint (underlay address:port), its allowed IPs (its
    container subnet, which holds its VTEP address, and its underlay address /32: a peer node answers a
    container of this node through the tunnel from that address) and a route to its subnet through the
    device. Peers no longer listed are removed. ``state: key`` only makes sure the key exists and returns
    its public key, so that a play can collect every node's public key before it builds the overlay.
    Kernels without WireGuard are refused with a clear message before any change.

The input is a dict shaped like the ``overlay`` module's parameters. State shapes
(``None`` when nothing of the overlay exists):

udp: ``{"backend": "udp", "name", "tunnels": {dev: {"peer", "remote", "local", "port", "mtu", "up",
"addresses", "routes", "ipv6", "rp_filter", "process"}}}``

vxlan: ``{"backend": "vxlan", "name", "vni", "local", "port", "learning", "underlay_dev", "mac", "mtu",
"up", "addresses", "fdb": {mac: underlay address}, "neighbours": {vtep: mac}, "routes": {subnet: vtep}}``

wireguard: ``{"backend": "wireguard", "name", "key": {"file", "mode", "public_key"} or None, "device": {"public_key",
"port", "mtu", "up", "addresses", "peers": {peer name (or public key when unlisted): {"public_key", "endpoint",
"allowed_ips"}}, "routes": [subnet]} or None}`` -- the key file's public key and the device's (derived by the
kernel from the private key it holds) are compared; no private key is ever part of a state.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import time
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._address import planned_addresses
from ansible_collections.cnfs.netlab.plugins.module_utils._link import find_link, link_kind, plan_link, planned_links
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_message,
    netns_path,
    validate_netns,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State
from ansible_collections.cnfs.netlab.plugins.module_utils._route import RouteResource
from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import SysctlResource
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ifname
from ansible_collections.cnfs.netlab.plugins.module_utils._wireguard import (
    KEY_MODE,
    default_key_file,
    encode_key,
    generate_private_key,
    normalise_key,
    open_wireguard,
    public_key,
    read_device,
    read_key_file,
    remove_key_file,
    set_device,
    sort_cidrs,
    write_key_file,
)

BACKENDS = ("udp", "vxlan", "wireguard")
DEFAULT_NAME = {"udp": "tun", "vxlan": "vxlan0", "wireguard": "wg0"}
DEFAULT_PORT = {"udp": 9000, "vxlan": 4789, "wireguard": 51820}
# Bytes the underlay adds to each inner packet (IPv4 underlay): outer IP 20 + UDP 8; VXLAN adds its
# 8-byte header and the inner Ethernet header (14). socat's TUN runs with iff-no-pi: no 4-byte header.
# WireGuard adds 32: its data header (type 4, receiver 4, counter 8) and the Poly1305 tag (16); its
# padding to 16 bytes never makes a packet larger than the device MTU.
OVERHEAD = {"udp": 28, "vxlan": 50, "wireguard": 60}
STATES = ("present", "absent", "key")
# wireguard: traffic from this node's container subnet to a peer's underlay address is routed into the tunnel
# by a rule ``from <subnet> lookup WG_TABLE`` (priority WG_RULE_PRIORITY, before main) and a route per peer
# ``<peer address>/32 dev wg0`` in that table. Not wg-quick's 51820, so that the two never share a table.
WG_TABLE = 52000
WG_RULE_PRIORITY = 32000
# The public key of a key that the run will make (check mode, or the diff of the run that makes it).
NEW_KEY = "(new key, made on the node)"
FALLBACK_UNDERLAY_MTU = 1500
MARK = "cnfs.netlab overlay"  # the ifalias of every device this module creates
RUN_DIR = "/run/cnfs-netlab/overlay"
VTEP_MAC_PREFIX = (0x02, 0xCF)  # locally administered, unicast

# Kernel constants
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_UP = 0x1
NUD_PERMANENT = 0x80
NTF_SELF = 0x02
RTPROT_KERNEL = 2
MAIN_TABLE = 254
ENODEV = 19
ENOENT = 2
ESRCH = 3

# Seconds to wait for socat to attach to its tun, and for it to stop; polled, so a quiet machine waits
# milliseconds, while a loaded one (load 8-19) took more than 3 s.
SOCAT_TIMEOUT = 10.0


# ---------------------------------------------------------------------------------- pure helpers
def vtep_mac(underlay: str) -> str:
    """The VTEP MAC of the node with this underlay address: 02:cf + the four bytes of the IPv4 address.

    Every node computes every peer's MAC from the peer's underlay address: no round trip, no learning.
    """
    packed = ipaddress.IPv4Address(underlay).packed
    return ":".join(f"{b:02x}" for b in (*VTEP_MAC_PREFIX, *packed))


def vtep_address(subnet: str) -> str:
    """The VTEP address of a node: the network address of its container subnet (flannel's choice)."""
    return str(ipaddress.IPv4Network(subnet).network_address)


def node_label(netns: str | None) -> str:
    """How messages name the node: its namespace, or the host name of the managed node."""
    return f"node {netns!r}" if netns else f"node {socket.gethostname()!r}"


def state_dir(netns: str | None) -> str:
    """Where pid and log files live: one directory per namespace, so emulated nodes never collide."""
    if not netns:
        return RUN_DIR
    safe = netns.strip("/").replace("/", "_") if netns.startswith("/") else netns
    return os.path.join(RUN_DIR, safe)


def _ipv4(value: Any, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(str(value).strip()))
    except ValueError:
        raise NetlabError(f"{what} {value!r} is not an IPv4 address (the overlay runs over IPv4)") from None


def _net4(value: Any, what: str) -> str:
    text = str(value).strip()
    if "/" not in text:
        raise NetlabError(f"{what} {value!r} has no prefix length: write it like 172.16.1.0/24")
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise NetlabError(f"{what} {value!r} is not an IPv4 network: {exc}") from None
    if net.prefixlen > 30:
        raise NetlabError(f"{what} {value!r} is too small for containers: use a /30 or larger")
    return net.with_prefixlen


def _int(value: Any, what: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise NetlabError(f"{what} {value!r} is not a number") from None
    if isinstance(value, bool) or not low <= number <= high:
        raise NetlabError(f"{what} {value!r} is out of range: use {low}..{high}")
    return number


def normalise(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate and normalise the module parameters (pure). Raises NetlabError naming the bad input."""
    backend = spec.get("backend") or "udp"
    if backend not in BACKENDS:
        raise NetlabError(f"overlay: backend {backend!r} is unknown: use one of {', '.join(BACKENDS)}")
    state = spec.get("state") or "present"
    if state not in STATES:
        raise NetlabError(f"overlay: state {state!r} is unknown: use present, absent or key")
    netns = spec.get("netns")
    validate_netns(netns)
    name = spec.get("name") or DEFAULT_NAME[backend]
    obj = f"overlay {backend} {name}"
    ifname(name, f"{obj}: device")
    if backend == "udp" and "-" in name:
        raise NetlabError(f"{obj}: name {name!r} is the prefix of the tunnel devices (<name>-<peer>): drop the '-'")
    vni = spec.get("vni")
    if vni is not None and backend != "vxlan":
        raise NetlabError(f"{obj}: vni applies to backend vxlan only: drop it")
    key_file = spec.get("key_file")
    if backend != "wireguard":
        if state == "key":
            raise NetlabError(f"{obj}: state key applies to backend wireguard only (the other backends have no keys)")
        if key_file is not None or spec.get("remove_key"):
            raise NetlabError(f"{obj}: key_file and remove_key apply to backend wireguard only: drop them")
    elif key_file is not None:
        key_file = str(key_file)
        if not key_file.startswith("/") or os.path.normpath(key_file) != key_file or key_file.endswith("/"):
            raise NetlabError(f"{obj}: key_file {key_file!r} is not a clean absolute path: write it like /etc/wg0.key")
    else:
        key_file = default_key_file(name, netns)
    cfg: dict[str, Any] = {
        "backend": backend,
        "name": name,
        "state": state,
        "netns": netns,
        "port": _int(spec["port"], f"{obj}: port", 1, 65535) if spec.get("port") is not None else DEFAULT_PORT[backend],
        "vni": _int(vni, f"{obj}: vni", 0, 2**24 - 1) if vni is not None else 1,
        "mtu": _int(spec["mtu"], f"{obj}: mtu", 68, 65535) if spec.get("mtu") is not None else None,
        "underlay_dev": ifname(spec.get("underlay_dev"), f"{obj}: underlay_dev"),
        "local": None,
        "subnet": None,
        "peers": [],
        "key_file": key_file if backend == "wireguard" else None,
        "remove_key": bool(spec.get("remove_key")),
    }
    if cfg["remove_key"] and state != "absent":
        raise NetlabError(f"{obj}: remove_key applies to state absent only: drop it")
    if state in ("absent", "key"):
        return cfg
    if not spec.get("local"):
        raise NetlabError(f"{obj}: local (this node's underlay address) is required when state is present")
    if not spec.get("subnet"):
        raise NetlabError(f"{obj}: subnet (this node's container subnet) is required when state is present")
    local = cfg["local"] = _ipv4(spec["local"], f"{obj}: local")
    subnet = cfg["subnet"] = _net4(spec["subnet"], f"{obj}: subnet")
    peers_in = spec.get("peers") or []
    if not isinstance(peers_in, list):
        raise NetlabError(f"{obj}: peers must be a list of {{name, address, subnet}}")
    nets = {subnet: "this node"}
    names: set[str] = set()
    addresses: set[str] = {local}
    keys: dict[str, str] = {}
    own_entry = False
    for number, peer in enumerate(peers_in, 1):
        what = f"{obj}: peers[{number}]"
        if not isinstance(peer, dict):
            raise NetlabError(f"{what} must be a dict with name, address and subnet, not {peer!r}")
        unknown = sorted(k for k in set(peer) - {"name", "address", "subnet", "public_key"} if peer[k] is not None)
        if unknown:
            raise NetlabError(
                f"{what} has unknown keys {', '.join(unknown)}: use name, address, subnet (and public_key)"
            )
        if peer.get("public_key") is not None and backend != "wireguard":
            raise NetlabError(f"{what}: public_key applies to backend wireguard only: drop it")
        missing = [k for k in ("name", "address", "subnet") if not peer.get(k)]
        if missing:
            raise NetlabError(f"{what} lacks {', '.join(missing)}: every peer needs name, address and subnet")
        pname = str(peer["name"])
        what = f"{obj}: peer {pname!r}"
        address = _ipv4(peer["address"], f"{what}: address")
        psubnet = _net4(peer["subnet"], f"{what}: subnet")
        if address == local:  # this node's own entry of the inventory
            own_entry = True
            if psubnet != subnet:
                raise NetlabError(
                    f"{what} has this node's address {local} but subnet {psubnet}, not {subnet}: fix the inventory"
                )
            continue
        if pname in names:
            raise NetlabError(f"{what} is listed twice: peer names must be unique")
        if address in addresses:
            raise NetlabError(f"{what}: address {address} is used by another peer: underlay addresses must be unique")
        for other, owner in nets.items():
            if ipaddress.IPv4Network(psubnet).overlaps(ipaddress.IPv4Network(other)):
                raise NetlabError(
                    f"{what}: subnet {psubnet} overlaps {other} of {owner}; container subnets must not overlap: "
                    "give each node a subnet of its own"
                )
        if backend == "udp":
            ifname(f"{name}-{pname}", f"{what}: tunnel device")
        entry = {"name": pname, "address": address, "subnet": psubnet}
        if backend == "wireguard":
            if not peer.get("public_key"):
                raise NetlabError(
                    f"{what} has no public_key: the wireguard backend needs every peer's public key (run this module "
                    "with state=key on the peer, it returns public_key)"
                )
            pkey = normalise_key(peer["public_key"], f"{what}: public_key {peer['public_key']!r}")
            if pkey in keys:
                raise NetlabError(
                    f"{what}: public_key {pkey} is also the key of peer {keys[pkey]!r}: every node needs its own key "
                    "(nodes that share a file system need their own key_file)"
                )
            keys[pkey] = pname
            entry["public_key"] = pkey
        names.add(pname)
        addresses.add(address)
        nets[psubnet] = f"peer {pname!r}"
        cfg["peers"].append(entry)
    if peers_in and not own_entry:
        raise NetlabError(
            f"{obj}: peers has no entry of this node (none with address {local}, the local address); list every "
            "node of the overlay, this one included, with the same peers on every node, or correct local"
        )
    cfg["peers"].sort(key=lambda p: p["name"])
    return cfg


def socat_argv(socat: str, dev: str, local: str, remote: str, port: int) -> list[str]:
    """The command of one tunnel's socat: an unconnected, port-sharing UDP socket and an existing TUN."""
    return [
        socat,
        "-d",  # fatal errors, errors and warnings; -d -d would log a notice per received datagram
        "-b",
        "65536",
        f"UDP4-DATAGRAM:{remote}:{port},bind={local}:{port},reuseport",
        f"TUN,tun-name={dev},tun-type=tun,iff-no-pi",
    ]


_SOCAT_UDP = re.compile(r"^UDP4-DATAGRAM:(?P<remote>[0-9.]+):(?P<port>\d+),bind=(?P<local>[0-9.]+):\d+")


def parse_socat_argv(argv: list[str], dev: str) -> dict[str, Any] | None:
    """remote, local and port of a socat started by :func:`socat_argv` for ``dev``; None if it is not one."""
    if not argv or os.path.basename(argv[0]) != "socat" or f"TUN,tun-name={dev},tun-type=tun,iff-no-pi" not in argv:
        return None
    for arg in argv:
        match = _SOCAT_UDP.match(arg)
        if match:
            return {"remote": match["remote"], "local": match["local"], "port": int(match["port"])}
    return None


# ---------------------------------------------------------------------------------- kernel helpers
def _find_socat() -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    return shutil.which("socat", path=path)


def wireguard_supported() -> bool:
    """Whether the kernel knows WireGuard: module loaded, or its generic netlink family resolvable
    (the lookup makes the kernel try to load the module, like `ip link add type wireguard` would)."""
    if os.path.isdir("/sys/module/wireguard"):
        return True
    from pyroute2.netlink import genlmsg
    from pyroute2.netlink.generic import GenericNetlinkSocket

    sock = GenericNetlinkSocket()
    try:
        sock.bind("wireguard", genlmsg)
    except NetlinkError:
        return False
    finally:
        sock.close()
    return True


def _sysctl_path(family: str, dev: str, knob: str) -> str:
    return f"/proc/sys/net/{family}/conf/{dev}/{knob}"


def read_dev_sysctl(session: Session, netns: str | None, family: str, dev: str, knob: str) -> int | None:
    with session.inside(netns):
        try:
            with open(_sysctl_path(family, dev, knob)) as handle:
                return int(handle.read().strip())
        except FileNotFoundError:
            return None


def create_persistent_tun(session: Session, netns: str | None, dev: str) -> None:
    """Create ``dev`` as a persistent TUN (no packet-info header) in ``netns``; it stays when the fd closes."""
    with session.inside(netns):
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", dev.encode(), IFF_TUN | IFF_NO_PI))
            fcntl.ioctl(fd, TUNSETPERSIST, 1)
        finally:
            os.close(fd)


def _fresh(session: Session, netns: str | None) -> None:
    """Forget cached netlink reads of ``netns`` after a change made outside netlink (a tun created by ioctl,
    socat attaching to it): the whole-node apply's session caches link dumps."""
    drop = getattr(session, "drop_caches", None)
    if drop is not None:
        drop(netns)


def _alias(msg: Any) -> str | None:
    return msg.get("IFLA_IFALIAS")


def _ipv4_addresses(ipr: Any, index: int) -> list[str]:
    return sorted(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(family=socket.AF_INET, index=index))


def _routes(ipr: Any, index: int) -> list[Any]:
    """IPv4 routes of the main table through the device that are not the kernel's own."""
    return [
        r
        for r in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE)
        if r.get("RTA_OIF") == index and r["proto"] != RTPROT_KERNEL and r["type"] == 1
    ]


def _table_routes(ipr: Any, index: int, table: int) -> list[Any]:
    """IPv4 routes of ``table`` through the device."""
    return [
        r
        for r in ipr.get_routes(family=socket.AF_INET)
        if (r.get("RTA_TABLE") or r["table"]) == table and r.get("RTA_OIF") == index
    ]


def _wg_rules(ipr: Any) -> list[str]:
    """The rules that send traffic to the wireguard table: ``from <cidr>`` (or ``from all``), sorted."""
    out = []
    for rule in ipr.get_rules(family=socket.AF_INET):
        table = rule.get("FRA_TABLE") or rule["table"]
        if table == WG_TABLE and (rule.get("FRA_PRIORITY") or 0) == WG_RULE_PRIORITY:
            src = rule.get("FRA_SRC")
            out.append(f"from {src}/{rule['src_len']}" if src else "from all")
    return sorted(out)


def _rule_args(rule: str) -> dict[str, Any]:
    """pyroute2 arguments of a ``from <cidr>`` rule of the wireguard table."""
    args: dict[str, Any] = {"family": socket.AF_INET, "table": WG_TABLE, "priority": WG_RULE_PRIORITY}
    source = rule.split(" ", 1)[1]
    if source != "all":
        address, plen = source.split("/")
        args.update(src=address, src_len=int(plen))
    return args


def _cidr_order(cidr: str) -> Any:
    return ipaddress.ip_network(cidr)


def _route_dest(route: Any) -> str:
    return f"{route.get('RTA_DST') or '0.0.0.0'}/{route['dst_len']}"


def _same_netns(pid: int, netns_file: str) -> bool:
    try:
        a = os.stat(f"/proc/{pid}/ns/net")
        b = os.stat(netns_file)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


# ---------------------------------------------------------------------------------- the resource
class OverlayResource(Resource):
    """This node's end of the overlay. See the module docstring for the backends and the state shapes."""

    kind = "overlay"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.cfg = normalise(spec)
        self.state = self.cfg["state"]
        self.backend: str = self.cfg["backend"]
        self.name: str = self.cfg["name"]
        self._mtu: int | None = None  # the tunnel MTU, resolved by read()
        self._socat: str | None = None
        self._own_key: str | None = None  # wireguard: the public key of the key file, when it exists

    @property
    def netns(self) -> str | None:
        return self.cfg["netns"]

    @property
    def key(self) -> str:
        where = f" in netns {self.netns}" if self.netns else ""
        return f"overlay {self.backend} {self.name}{where}"

    @property
    def node(self) -> str:
        return node_label(self.netns)

    def tunnel_dev(self, peer: str) -> str:
        return f"{self.name}-{peer}"

    # -- check ------------------------------------------------------------------------------
    def check(self, session: Session) -> None:
        if self.state == "present":
            session.require_netns(self.netns, self.key)
        if self.backend == "wireguard":
            self._check_wireguard()
            if self.state == "key":  # the key file only: the device is left as it is
                return
        if self.state == "present" and self.backend == "udp" and self.cfg["peers"]:
            self._socat = _find_socat()
            if self._socat is None:
                raise NetlabError(f"{self.key}: socat is not installed on {self.node}: apt-get install socat")
            try:
                mode = os.stat("/dev/net/tun").st_mode
            except FileNotFoundError:
                mode = 0
            if not stat.S_ISCHR(mode):
                raise NetlabError(
                    f"{self.key}: /dev/net/tun does not exist on {self.node}: load the tun module "
                    "(modprobe tun) or give the container the device"
                )
        if not session.netns_exists(self.netns):
            return
        ipr = session.ipr(self.netns)
        self._check_foreign(ipr)
        self._plan(session, ipr)

    def _check_wireguard(self) -> None:
        """The kernel has WireGuard; the key file, when it exists, holds a key that no peer has."""
        if self.state == "absent":
            if self.cfg["remove_key"]:
                read_key_file(self.cfg["key_file"], self.key)  # only ever removes a key file
            return
        if not wireguard_supported():
            raise NetlabError(
                f"{self.key}: the kernel of {self.node} has no WireGuard support (modprobe wireguard failed / "
                "link type unknown): use backend vxlan or udp, or a kernel with CONFIG_WIREGUARD"
            )
        key = read_key_file(self.cfg["key_file"], self.key)
        self._own_key = encode_key(public_key(key[0])) if key else None
        for peer in self.cfg["peers"]:
            if peer["public_key"] == self._own_key:
                raise NetlabError(
                    f"{self.key}: peer {peer['name']!r} has this node's own public key {self._own_key} (key_file "
                    f"{self.cfg['key_file']}): every node needs its own key; nodes that share a file system (the "
                    "built-in lab's) need a key_file of their own, for example under /run"
                )

    def _wanted_devs(self) -> list[str]:
        if self.state == "absent":
            return []
        if self.backend == "udp":
            return [self.tunnel_dev(p["name"]) for p in self.cfg["peers"]]
        return [self.name]

    def _check_foreign(self, ipr: Any) -> None:
        """A device with one of our names that this module did not create is never touched."""
        kind = "tun" if self.backend == "udp" else self.backend
        for dev in self._wanted_devs():
            msg = find_link(ipr, dev)
            if msg is None:
                continue
            if link_kind(msg) != kind or _alias(msg) != MARK:
                raise NetlabError(
                    f"{self.key}: {dev} already exists in {self.node} as a {link_kind(msg)} this module did not "
                    f"create: delete it or choose another name"
                )

    def _plan(self, session: Session, ipr: Any) -> None:
        kind = "tun" if self.backend == "udp" else self.backend
        for dev in self._wanted_devs():
            plan_link(session, self.netns, dev, kind)
        for dev in self._existing_devs(ipr):
            if dev not in self._wanted_devs():
                plan_link(session, self.netns, dev, None)

    def _existing_devs(self, ipr: Any) -> list[str]:
        """Names of the devices of this overlay that exist now."""
        if ipr is None:
            return []
        if self.backend == "udp":
            prefix = f"{self.name}-"
            return sorted(
                msg.get("IFLA_IFNAME")
                for msg in ipr.get_links()
                if msg.get("IFLA_IFNAME", "").startswith(prefix) and link_kind(msg) == "tun" and _alias(msg) == MARK
            )
        msg = find_link(ipr, self.name)
        if msg is not None and link_kind(msg) == self.backend and _alias(msg) == MARK:
            return [self.name]
        return []

    # -- underlay ---------------------------------------------------------------------------
    def _underlay_mtu(self, session: Session, strict: bool) -> int:
        """The smallest MTU of the underlay devices towards the peers (or of ``underlay_dev``).

        With ``strict`` False a failure falls back to 1500 when earlier resources of the run will still
        change links of this namespace (a whole-node apply in check mode): the value is then an estimate.
        """
        try:
            return self._resolve_underlay_mtu(session)
        except NetlabError:
            if strict:
                raise
            key = netns_path(self.netns) if self.netns else None
            pending = (
                not session.netns_exists(self.netns)
                or any(planned[0] == key for planned in planned_links(session))
                or any(planned[0] == self.netns for planned in planned_addresses(session))
            )
            if not pending:
                raise
            return FALLBACK_UNDERLAY_MTU

    def _resolve_underlay_mtu(self, session: Session) -> int:
        ipr = session.ipr(self.netns)
        if ipr is None:
            raise NetlabError(f"{self.key}: network namespace {self.netns!r} does not exist")
        local = self.cfg["local"]
        if not any(a.get("IFA_ADDRESS") == local for a in ipr.get_addr(family=socket.AF_INET)):
            raise NetlabError(
                f"{self.key}: local {local} is not an address of {self.node}: give the node's underlay address "
                "(or assign it first with cnfs.netlab.address)"
            )
        if self.cfg["underlay_dev"]:
            msg = find_link(ipr, self.cfg["underlay_dev"])
            if msg is None:
                raise NetlabError(
                    f"{self.key}: underlay_dev {self.cfg['underlay_dev']} does not exist in {self.node}: "
                    "name the device that carries the underlay, or leave underlay_dev out"
                )
            return int(msg.get("IFLA_MTU"))
        mtus = []
        for peer in self.cfg["peers"]:
            try:
                route = ipr.route("get", dst=peer["address"])[0]
            except NetlinkError as exc:
                raise NetlabError(
                    f"{self.key}: peer {peer['name']!r} ({peer['address']}) is unreachable from {self.node} "
                    f"({kernel_message(exc)}): fix the underlay first"
                ) from None
            mtus.append(int(ipr.link("get", index=route.get("RTA_OIF"))[0].get("IFLA_MTU")))
        if not mtus:  # no peers yet: the device that holds the local address
            for addr in ipr.get_addr(family=socket.AF_INET):
                if addr.get("IFA_ADDRESS") == local:
                    mtus.append(int(ipr.link("get", index=addr["index"])[0].get("IFLA_MTU")))
        return min(mtus)

    def _tunnel_mtu(self, session: Session, strict: bool) -> int:
        if self.cfg["mtu"] is not None:
            return self.cfg["mtu"]
        return self._underlay_mtu(session, strict) - OVERHEAD[self.backend]

    # -- read -------------------------------------------------------------------------------
    def read(self, session: Session) -> State:
        if self.state == "present":
            self._mtu = self._tunnel_mtu(session, strict=False)
        ipr = session.ipr(self.netns)
        if self.backend == "wireguard":
            return self._read_wireguard(session, ipr)
        if ipr is None:
            return None
        if self.backend == "udp":
            return self._read_udp(session, ipr)
        if self.backend == "vxlan":
            return self._read_vxlan(ipr)

    def _read_udp(self, session: Session, ipr: Any) -> State:
        tunnels = {}
        for dev in self._existing_devs(ipr):
            msg = find_link(ipr, dev)
            index = msg["index"]
            process = self._process(session, dev)
            args = process[1] if process else {"remote": None, "local": None, "port": None}
            disabled = read_dev_sysctl(session, self.netns, "ipv6", dev, "disable_ipv6")
            tunnels[dev] = {
                "peer": dev[len(self.name) + 1 :],
                "remote": args["remote"],
                "local": args["local"],
                "port": args["port"],
                "mtu": msg.get("IFLA_MTU"),
                "up": bool(msg["flags"] & IFF_UP),
                "addresses": _ipv4_addresses(ipr, index),
                "routes": sorted(_route_dest(r) for r in _routes(ipr, index)),
                "ipv6": "enabled" if disabled == 0 else "disabled",
                "rp_filter": read_dev_sysctl(session, self.netns, "ipv4", dev, "rp_filter"),
                "process": "running" if process else "stopped",
            }
        if not tunnels:
            return None
        return {"backend": "udp", "name": self.name, "tunnels": tunnels}

    def _read_vxlan(self, ipr: Any) -> State:
        if not self._existing_devs(ipr):
            return None
        msg = find_link(ipr, self.name)
        index = msg["index"]
        data = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
        link = data.get("IFLA_VXLAN_LINK")
        underlay = None
        if link:
            with contextlib.suppress(NetlinkError, IndexError):
                underlay = ipr.link("get", index=link)[0].get("IFLA_IFNAME")
        fdb = {}
        for entry in ipr.fdb("dump", ifindex=index):
            if entry.get("ifindex") == index and entry.get("NDA_DST"):
                fdb[entry.get("NDA_LLADDR")] = entry.get("NDA_DST")
        neighbours = {
            n.get("NDA_DST"): n.get("NDA_LLADDR")
            for n in ipr.neigh("dump", ifindex=index, family=socket.AF_INET)
            if n.get("ifindex") == index and n["state"] & NUD_PERMANENT
        }
        routes = {_route_dest(r): r.get("RTA_GATEWAY") for r in _routes(ipr, index)}
        return {
            "backend": "vxlan",
            "name": self.name,
            "vni": data.get("IFLA_VXLAN_ID"),
            "local": data.get("IFLA_VXLAN_LOCAL"),
            "port": data.get("IFLA_VXLAN_PORT"),
            "learning": bool(data.get("IFLA_VXLAN_LEARNING")),
            "underlay_dev": underlay,
            "mac": msg.get("IFLA_ADDRESS"),
            "mtu": msg.get("IFLA_MTU"),
            "up": bool(msg["flags"] & IFF_UP),
            "addresses": _ipv4_addresses(ipr, index),
            "fdb": dict(sorted(fdb.items())),
            "neighbours": dict(sorted(neighbours.items())),
            "routes": dict(sorted(routes.items())),
        }

    def _read_key(self) -> dict[str, Any] | None:
        key = read_key_file(self.cfg["key_file"], self.key)
        if key is None:
            return None
        return {"file": self.cfg["key_file"], "mode": f"{key[1]:04o}", "public_key": encode_key(public_key(key[0]))}

    def _read_wireguard(self, session: Session, ipr: Any) -> State:
        key = self._read_key()
        device = None
        rules = None if self.state == "key" else []
        if rules is not None and ipr is not None:
            rules = _wg_rules(ipr)
        # state=key looks at the key file only: the device is neither read nor changed.
        if self.state != "key" and ipr is not None and self._existing_devs(ipr):
            msg = find_link(ipr, self.name)
            index = msg["index"]
            with session.inside(self.netns):
                wg = open_wireguard()
            try:
                config = read_device(wg, self.name)
            finally:
                wg.close()
            names = {p["public_key"]: p["name"] for p in self.cfg["peers"]}
            peers = {
                names.get(pkey, pkey): {"public_key": pkey, **entry} for pkey, entry in sorted(config["peers"].items())
            }
            device = {
                "public_key": config["public_key"],
                "port": config["port"],
                "mtu": msg.get("IFLA_MTU"),
                "up": bool(msg["flags"] & IFF_UP),
                "addresses": _ipv4_addresses(ipr, index),
                "peers": dict(sorted(peers.items())),
                "routes": sorted(_route_dest(r) for r in _routes(ipr, index)),
                "underlay_routes": sorted(_route_dest(r) for r in _table_routes(ipr, index, WG_TABLE)),
            }
        if key is None and device is None and not rules:
            return None
        return {"backend": "wireguard", "name": self.name, "key": key, "device": device, "rules": rules}

    def _want_wireguard(self, current: State) -> State:
        cfg = self.cfg
        have_key = (current or {}).get("key")
        if self.state == "absent":
            key = None if cfg["remove_key"] else have_key
            if key is None:
                return None
            return {"backend": "wireguard", "name": self.name, "key": key, "device": None, "rules": []}
        key = {
            "file": cfg["key_file"],
            "mode": f"{KEY_MODE:04o}",
            "public_key": have_key["public_key"] if have_key else NEW_KEY,
        }
        rules: list[str] | None = None  # state=key leaves the rules as they are
        if self.state == "key":
            device = None
        else:
            rules = [f"from {cfg['subnet']}"]
            device = {
                "public_key": key["public_key"],
                "port": cfg["port"],
                "mtu": self._mtu,
                "up": True,
                "addresses": [f"{vtep_address(cfg['subnet'])}/32"],
                "peers": {
                    p["name"]: {
                        "public_key": p["public_key"],
                        "endpoint": f"{p['address']}:{cfg['port']}",
                        "allowed_ips": sort_cidrs([p["subnet"], f"{p['address']}/32"]),
                    }
                    for p in cfg["peers"]
                },
                "routes": sorted(p["subnet"] for p in cfg["peers"]),
                "underlay_routes": sorted((f"{p['address']}/32" for p in cfg["peers"]), key=_cidr_order),
            }
        return {"backend": "wireguard", "name": self.name, "key": key, "device": device, "rules": rules}

    # -- want -------------------------------------------------------------------------------
    def want(self, current: State) -> State:
        if self.backend == "wireguard":
            return self._want_wireguard(current)
        if self.state == "absent":
            return None
        cfg = self.cfg
        own = f"{vtep_address(cfg['subnet'])}/32"
        if self.backend == "udp":
            if not cfg["peers"]:
                return None
            tunnels = {
                self.tunnel_dev(p["name"]): {
                    "peer": p["name"],
                    "remote": p["address"],
                    "local": cfg["local"],
                    "port": cfg["port"],
                    "mtu": self._mtu,
                    "up": True,
                    "addresses": [own],
                    "routes": [p["subnet"]],
                    "ipv6": "disabled",
                    "rp_filter": 2,
                    "process": "running",
                }
                for p in cfg["peers"]
            }
            return {"backend": "udp", "name": self.name, "tunnels": tunnels}
        peers = cfg["peers"]
        return {
            "backend": "vxlan",
            "name": self.name,
            "vni": cfg["vni"],
            "local": cfg["local"],
            "port": cfg["port"],
            "learning": False,
            "underlay_dev": cfg["underlay_dev"] if cfg["underlay_dev"] else (current or {}).get("underlay_dev"),
            "mac": vtep_mac(cfg["local"]),
            "mtu": self._mtu,
            "up": True,
            "addresses": [own],
            "fdb": dict(sorted((vtep_mac(p["address"]), p["address"]) for p in peers)),
            "neighbours": dict(sorted((vtep_address(p["subnet"]), vtep_mac(p["address"])) for p in peers)),
            "routes": dict(sorted((p["subnet"], vtep_address(p["subnet"])) for p in peers)),
        }

    # -- apply ------------------------------------------------------------------------------
    def apply(self, session: Session, current: State, desired: State) -> None:
        if self.state == "present":
            # Re-resolve strictly now that earlier resources of the run are applied.
            self._mtu = self._tunnel_mtu(session, strict=True)
            desired = self.want(current)
        if self.backend == "udp":
            self._apply_udp(session, current, desired)
        elif self.backend == "vxlan":
            self._apply_vxlan(session, current, desired)
        else:
            self._apply_wireguard(session, current, desired)

    # composed models ------------------------------------------------------------------------
    def _converge_sub(self, session: Session, resource: Resource) -> None:
        """Bring one shared-model resource (a route, a sysctl) to its state, the way converge() does."""
        resource.check(session)
        before = resource.read(session)
        after = resource.want(before)
        if before != after:
            try:
                resource.apply(session, before, after)
            except NetlinkError as exc:
                raise NetlabError(f"{resource.key}: the kernel refused the change ({kernel_message(exc)})") from None

    def _route(self, dest: str, state: str = "present", **attrs: Any) -> RouteResource:
        return RouteResource({"netns": self.netns, "dest": dest, "state": state, **attrs})

    def _dev_sysctls(self, session: Session, dev: str, state: str) -> None:
        """The tunnel's own sysctls: IPv6 off (no router solicitation ever leaves it) and loose
        reverse-path filtering (packets of any peer may arrive on any tunnel). Journaled by the sysctl
        model, restored on teardown."""
        key = dev.replace(".", "/")
        knobs = [(f"net.ipv4.conf.{key}.rp_filter", "2")]
        with session.inside(self.netns):
            has_ipv6 = os.path.isdir("/proc/sys/net/ipv6/conf")
        if has_ipv6:
            knobs.insert(0, (f"net.ipv6.conf.{key}.disable_ipv6", "1"))
        for name, value in knobs:
            spec = {"netns": self.netns, "name": name, "state": state}
            if state == "present":
                spec["value"] = value
            self._converge_sub(session, SysctlResource(spec))

    # udp ------------------------------------------------------------------------------------
    def _apply_udp(self, session: Session, current: State, desired: State) -> None:
        ipr = session.ipr(self.netns)
        have = (current or {}).get("tunnels", {})
        want = (desired or {}).get("tunnels", {})
        for dev in sorted(set(have) - set(want)):
            self._stop(session, dev)
            self._dev_sysctls(session, dev, "restored")
            msg = find_link(ipr, dev)
            if msg is not None:
                ipr.link("del", index=msg["index"])  # its routes and addresses go with it
            self._forget(dev)
        for dev, tunnel in want.items():
            if have.get(dev) != tunnel:
                self._converge_tunnel(session, ipr, dev, have.get(dev), tunnel)

    def _converge_tunnel(
        self, session: Session, ipr: Any, dev: str, have: dict[str, Any] | None, want: dict[str, Any]
    ) -> None:
        created = False
        if find_link(ipr, dev) is None:
            # The device exists, configured, before socat ever opens it: no race with its creation.
            create_persistent_tun(session, self.netns, dev)
            _fresh(session, self.netns)
            created = True
            have = None
        index = find_link(ipr, dev)["index"]
        if created:
            ipr.link("set", index=index, ifalias=MARK)
        # Before the device is up: nothing leaves it unasked.
        self._dev_sysctls(session, dev, "present")
        ipr.link("set", index=index, mtu=want["mtu"])
        self._set_addresses(ipr, index, want["addresses"])
        ipr.link("set", index=index, state="up")
        restart = created or (have or {}).get("process") != "running"
        for key in ("remote", "local", "port"):
            restart = restart or (have or {}).get(key) != want[key]
        if restart:
            self._stop(session, dev)
            self._start(session, dev, want)
        for route in _routes(ipr, index):
            if _route_dest(route) not in want["routes"]:
                self._converge_sub(session, self._route(_route_dest(route), state="absent"))
        for dest in want["routes"]:
            self._converge_sub(session, self._route(dest, dev=dev, scope="link", proto="static"))

    def _set_addresses(self, ipr: Any, index: int, wanted: list[str]) -> None:
        have = _ipv4_addresses(ipr, index)
        for cidr in have:
            if cidr not in wanted:
                address, plen = cidr.split("/")
                ipr.addr("del", index=index, address=address, prefixlen=int(plen))
        for cidr in wanted:
            if cidr not in have:
                address, plen = cidr.split("/")
                ipr.addr("add", index=index, address=address, prefixlen=int(plen))

    # processes ------------------------------------------------------------------------------
    def pid_file(self, dev: str) -> str:
        return os.path.join(state_dir(self.netns), f"{dev}.pid")

    def log_file(self, dev: str) -> str:
        return os.path.join(state_dir(self.netns), f"{dev}.log")

    def _netns_file(self) -> str:
        return netns_path(self.netns) if self.netns else "/proc/self/ns/net"

    def _process(self, session: Session, dev: str) -> tuple[int, dict[str, Any]] | None:
        """(pid, arguments) of the tunnel's socat when the recorded pid is alive and is that socat."""
        try:
            with open(self.pid_file(dev)) as handle:
                pid = int(handle.read().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid) or not _same_netns(pid, self._netns_file()):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = [a.decode(errors="replace") for a in handle.read().split(b"\0") if a]
        except OSError:
            return None
        args = parse_socat_argv(argv, dev)
        return (pid, args) if args else None

    def _start(self, session: Session, dev: str, tunnel: dict[str, Any]) -> None:
        socat = self._socat or _find_socat()
        if socat is None:
            raise NetlabError(f"{self.key}: socat is not installed on {self.node}: apt-get install socat")
        os.makedirs(state_dir(self.netns), mode=0o755, exist_ok=True)
        argv = socat_argv(socat, dev, tunnel["local"], tunnel["remote"], tunnel["port"])
        with open(self.log_file(dev), "ab") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} cnfs.netlab overlay: starting {' '.join(argv)}\n".encode())
            log.flush()
            # Forked from this thread, which is inside the node's namespace: socat runs there.
            with session.inside(self.netns):
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    close_fds=True,
                    start_new_session=True,
                )
        with open(self.pid_file(dev) + ".tmp", "w") as handle:
            handle.write(f"{proc.pid}\n")
        os.replace(self.pid_file(dev) + ".tmp", self.pid_file(dev))
        ipr = session.ipr(self.netns)
        deadline = time.monotonic() + SOCAT_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            _fresh(session, self.netns)
            msg = find_link(ipr, dev)
            if msg is not None and msg.get("IFLA_CARRIER"):
                return
            time.sleep(0.02)
        code = proc.poll()
        self._stop(session, dev)
        with contextlib.suppress(OSError), open(self.log_file(dev), errors="replace") as handle:
            tail = " | ".join(handle.read().strip().splitlines()[-3:])
        raise NetlabError(
            f"{self.key}: socat for {dev} "
            + (f"exited with code {code}" if code is not None else f"did not attach to {dev} in {SOCAT_TIMEOUT} s")
            + f": {tail} (log: {self.log_file(dev)})"
        )

    def _stop(self, session: Session, dev: str) -> None:
        process = self._process(session, dev)
        if process is not None:
            pid = process[0]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + SOCAT_TIMEOUT
            while time.monotonic() < deadline:
                _reap(pid)
                if not _alive(pid):
                    break
                time.sleep(0.02)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
                _reap(pid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pid_file(dev))

    def _forget(self, dev: str) -> None:
        """Drop the files of a removed tunnel (the log goes too: the tunnel is gone)."""
        for path in (self.pid_file(dev), self.log_file(dev)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(state_dir(self.netns))

    # vxlan ----------------------------------------------------------------------------------
    def _apply_vxlan(self, session: Session, current: State, desired: State) -> None:
        ipr = session.ipr(self.netns)
        msg = find_link(ipr, self.name) if current is not None else None
        if desired is None:
            if msg is not None:
                ipr.link("del", index=msg["index"])  # fdb, neighbours, routes and addresses go with it
            return
        fixed = ("vni", "local", "port", "learning", "underlay_dev")
        if msg is not None and any(current[k] != desired[k] for k in fixed):
            ipr.link("del", index=msg["index"])
            msg = None
            current = None
        if msg is None:
            attrs: dict[str, Any] = {
                "ifname": self.name,
                "kind": "vxlan",
                "vxlan_id": desired["vni"],
                "vxlan_local": desired["local"],
                "vxlan_port": desired["port"],
                "vxlan_learning": 0,
                "address": desired["mac"],
                "mtu": desired["mtu"],
            }
            if desired["underlay_dev"]:
                attrs["vxlan_link"] = find_link(ipr, desired["underlay_dev"])["index"]
            ipr.link("add", **attrs)
            msg = find_link(ipr, self.name)
            ipr.link("set", index=msg["index"], ifalias=MARK)
        index = msg["index"]
        # Only what differs: setting the MAC, even to the same value, flushes every neighbour of the device.
        if msg.get("IFLA_MTU") != desired["mtu"]:
            ipr.link("set", index=index, mtu=desired["mtu"])
        if msg.get("IFLA_ADDRESS") != desired["mac"]:
            ipr.link("set", index=index, address=desired["mac"])
            current = dict(current, neighbours={}) if current is not None else None
        self._set_addresses(ipr, index, desired["addresses"])
        ipr.link("set", index=index, state="up")
        have = current or {"fdb": {}, "neighbours": {}, "routes": {}}
        # Remove what no listed peer needs, routes first (they point at the neighbours).
        for dest, gateway in have["routes"].items():
            if desired["routes"].get(dest) != gateway:
                self._converge_sub(session, self._route(dest, state="absent"))
        for vtep, mac in have["neighbours"].items():
            if desired["neighbours"].get(vtep) != mac:
                ipr.neigh("del", ifindex=index, dst=vtep, lladdr=mac)
        for mac, dst in have["fdb"].items():
            if desired["fdb"].get(mac) != dst:
                ipr.fdb("del", ifindex=index, lladdr=mac, dst=dst)
        for mac, dst in desired["fdb"].items():
            if have["fdb"].get(mac) != dst:
                ipr.fdb("append", ifindex=index, lladdr=mac, dst=dst, state=NUD_PERMANENT, flags=NTF_SELF)
        for vtep, mac in desired["neighbours"].items():
            if have["neighbours"].get(vtep) != mac:
                ipr.neigh("replace", ifindex=index, dst=vtep, lladdr=mac, state=NUD_PERMANENT)
        for dest, gateway in desired["routes"].items():
            if have["routes"].get(dest) != gateway:
                spec = {"gateway": gateway, "dev": self.name, "onlink": True, "proto": "static"}
                self._converge_sub(session, self._route(dest, **spec))

    # wireguard ------------------------------------------------------------------------------
    def _apply_wireguard(self, session: Session, current: State, desired: State) -> None:
        have = current or {}
        want = desired or {}
        ipr = session.ipr(self.netns)
        # The key file first: it is all that state=key asks, and the device needs it.
        key_file = self.cfg["key_file"]
        if want.get("key") is None:
            if have.get("key") is not None:
                remove_key_file(key_file)
        elif have.get("key") is None:
            write_key_file(key_file, generate_private_key())
        elif have["key"]["mode"] != want["key"]["mode"]:
            os.chmod(key_file, KEY_MODE)
        device = want.get("device")
        if self.state == "key":
            return
        msg = find_link(ipr, self.name) if ipr is not None and have.get("device") is not None else None
        if device is None:
            if msg is not None:
                ipr.link("del", index=msg["index"])  # its peers, routes (in every table) and addresses go with it
            self._set_rules(ipr, have.get("rules") or [], [])
            return
        private = read_key_file(key_file, self.key)
        if private is None:  # pragma: no cover - written above
            raise NetlabError(f"{self.key}: key_file {key_file} vanished while the overlay was built")
        own = encode_key(public_key(private[0]))
        before = have.get("device") if msg is not None else None
        if msg is None:
            ipr.link("add", ifname=self.name, kind="wireguard")
            msg = find_link(ipr, self.name)
            ipr.link("set", index=msg["index"], ifalias=MARK)
            before = None
        index = msg["index"]
        if msg.get("IFLA_MTU") != device["mtu"]:
            ipr.link("set", index=index, mtu=device["mtu"])
        self._set_addresses(ipr, index, device["addresses"])
        with session.inside(self.netns):
            wg = open_wireguard()
        try:
            settings: dict[str, Any] = {}
            if (before or {}).get("public_key") != own:
                settings["private_key"] = encode_key(private[0])  # to the kernel only, never returned
            if (before or {}).get("port") != device["port"]:
                settings["listen_port"] = device["port"]
            if settings:
                set_device(wg, self.name, **settings)
            old_peers = {p["public_key"]: p for p in (before or {}).get("peers", {}).values()}
            new_peers = {p["public_key"]: p for p in device["peers"].values()}
            for pkey in sorted(set(old_peers) - set(new_peers)):
                set_device(wg, self.name, peer={"public_key": pkey, "remove": True})
            for pkey, peer in new_peers.items():
                old = old_peers.get(pkey)
                if old is not None and (old["endpoint"], old["allowed_ips"]) == (peer["endpoint"], peer["allowed_ips"]):
                    continue
                address, port = peer["endpoint"].rsplit(":", 1)
                spec = {
                    "public_key": pkey,
                    "endpoint_addr": address,
                    "endpoint_port": int(port),
                    "allowed_ips": peer["allowed_ips"],
                    "replace_allowed_ips": True,
                }
                set_device(wg, self.name, peer=spec)
        finally:
            wg.close()
        ipr.link("set", index=index, state="up")
        for route in _routes(ipr, index):
            if _route_dest(route) not in device["routes"]:
                self._converge_sub(session, self._route(_route_dest(route), state="absent"))
        for dest in device["routes"]:
            self._converge_sub(session, self._route(dest, dev=self.name, scope="link", proto="static"))
        table = str(WG_TABLE)
        for route in _table_routes(ipr, index, WG_TABLE):
            if _route_dest(route) not in device["underlay_routes"]:
                self._converge_sub(session, self._route(_route_dest(route), state="absent", table=table))
        for dest in device["underlay_routes"]:
            spec = {"dev": self.name, "scope": "link", "proto": "static", "table": table}
            self._converge_sub(session, self._route(dest, **spec))
        self._set_rules(ipr, have.get("rules") or [], want["rules"])

    @staticmethod
    def _set_rules(ipr: Any, have: list[str], want: list[str]) -> None:
        """The policy rules of the tunnel's table: ``from <subnet>`` entries, priority WG_RULE_PRIORITY."""
        if ipr is None:
            return
        for rule in have:
            if rule not in want:
                ipr.rule("del", **_rule_args(rule))
        for rule in want:
            if rule not in have:
                ipr.rule("add", **_rule_args(rule))

    def _current_public_key(self) -> str | None:
        """The key file's public key now (None when there is none: check mode before the key is made)."""
        try:
            key = read_key_file(self.cfg["key_file"], self.key)
        except NetlabError:
            return None
        return encode_key(public_key(key[0])) if key else None

    # -- result -----------------------------------------------------------------------------
    def result(self, after: State) -> dict[str, Any]:
        out: dict[str, Any] = {"overlay": after or {}}
        if self.backend == "wireguard":
            out["key_file"] = self.cfg["key_file"]
            out["public_key"] = self._current_public_key()
            if after and out["public_key"]:  # the run made the key: its public key replaces the placeholder
                after = dict(after)
                for part in ("key", "device"):
                    if after.get(part) and after[part].get("public_key") == NEW_KEY:
                        after[part] = dict(after[part], public_key=out["public_key"])
                out["overlay"] = after
        if self.backend == "udp" and after:
            pids = {}
            for dev in after["tunnels"]:
                with contextlib.suppress(FileNotFoundError, ValueError), open(self.pid_file(dev)) as handle:
                    pids[dev] = int(handle.read().strip())
            out["pids"] = pids
        return out
