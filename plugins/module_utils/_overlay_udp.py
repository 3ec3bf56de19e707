# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's ``udp`` backend (the default): the talk's user-space UDP/TUN tunnel, robust and for N nodes.

One persistent TUN device per peer (``<name>-<peer name>``), created here through ``/dev/net/tun`` with
IPv6 disabled before it is up (no router solicitation leaves it), its MTU set before any process touches
it, and one supervised tunnel process per device that attaches to it (``_tunnel_process.py``; the talk
used socat). Every process binds the same ``local:port`` with ``SO_REUSEPORT`` and connects its socket to
its peer, so the kernel hands each process its own peer's datagrams; ICMP errors never stop it. Each
tunnel has reverse-path filtering in loose mode (2) and carries this node's VTEP address (``<subnet
network>/32``): the kernel's loose mode rejects every packet on a device without an IPv4 address.

State: ``{"backend": "udp", "name", "tunnels": {dev: {"peer", "remote", "local", "port", "mtu", "up",
"addresses", "routes", "ipv6", "rp_filter", "process"}}}``.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._link import find_link, link_kind
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, Session
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import (
    MARK,
    OverlayResource,
    alias,
    device_routes,
    fresh,
    ipv4_addresses,
    route_dest,
    vtep_address,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import State
from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import SysctlResource
from ansible_collections.cnfs.netlab.plugins.module_utils._tunnel_process import TunnelProcess
from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ifname

# Kernel constants
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def read_dev_sysctl(session: Session, netns: str | None, family: str, dev: str, knob: str) -> int | None:
    with session.inside(netns):
        try:
            with open(f"/proc/sys/net/{family}/conf/{dev}/{knob}") as handle:
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


class UdpOverlay(OverlayResource):
    """One TUN device and one tunnel process per peer."""

    backend = "udp"
    link_kind = "tun"
    # outer IP 20 + UDP 8; the TUN runs without packet information (IFF_NO_PI): no 4-byte header.
    overhead = 28
    default_name = "tun"
    default_port = 9000

    @classmethod
    def normalise_options(cls, cfg: dict[str, Any], spec: dict[str, Any], obj: str) -> None:
        if "-" in cfg["name"]:
            raise NetlabError(
                f"{obj}: name {cfg['name']!r} is the prefix of the tunnel devices (<name>-<peer>): drop the '-'"
            )

    @classmethod
    def normalise_peer(cls, entry: dict[str, Any], peer: dict[str, Any], what: str, cfg: dict[str, Any]) -> None:
        ifname(f"{cfg['name']}-{entry['name']}", f"{what}: tunnel device")

    def tunnel_dev(self, peer: str) -> str:
        return f"{self.name}-{peer}"

    def process(self, dev: str) -> TunnelProcess:
        return TunnelProcess(self.netns, dev, self.key)

    # -- check ------------------------------------------------------------------------------
    def check_host(self) -> None:
        if self.state != "present" or not self.cfg["peers"]:
            return
        try:
            mode = os.stat("/dev/net/tun").st_mode
        except FileNotFoundError:
            mode = 0
        if not stat.S_ISCHR(mode):
            raise NetlabError(
                f"{self.key}: /dev/net/tun does not exist on {self.node}: load the tun module "
                "(modprobe tun) or give the container the device"
            )

    def wanted_devs(self) -> list[str]:
        if self.state == "absent":
            return []
        return [self.tunnel_dev(p["name"]) for p in self.cfg["peers"]]

    def existing_devs(self, ipr: Any) -> list[str]:
        if ipr is None:
            return []
        prefix = f"{self.name}-"
        return sorted(
            msg.name
            for msg in ipr.links()
            if msg.name.startswith(prefix) and link_kind(msg) == "tun" and alias(msg) == MARK
        )

    # -- read, want -------------------------------------------------------------------------
    def read_backend(self, session: Session, ipr: Any) -> State:
        if ipr is None:
            return None
        tunnels = {}
        for dev in self.existing_devs(ipr):
            msg = find_link(ipr, dev)
            index = msg.index
            process = self.process(dev).find()
            args = process[1] if process else {"remote": None, "local": None, "port": None, "program": "stopped"}
            disabled = read_dev_sysctl(session, self.netns, "ipv6", dev, "disable_ipv6")
            tunnels[dev] = {
                "peer": dev[len(self.name) + 1 :],
                "remote": args["remote"],
                "local": args["local"],
                "port": args["port"],
                "mtu": msg.mtu,
                "up": msg.up,
                "addresses": ipv4_addresses(ipr, index),
                "routes": sorted(route_dest(r) for r in device_routes(ipr, index)),
                "ipv6": "enabled" if disabled == 0 else "disabled",
                "rp_filter": read_dev_sysctl(session, self.netns, "ipv4", dev, "rp_filter"),
                # "socat": the process of an earlier release of this module, replaced by an apply
                "process": "running" if args["program"] == "forwarder" else args["program"],
            }
        if not tunnels:
            return None
        return {"backend": "udp", "name": self.name, "tunnels": tunnels}

    def want(self, current: State) -> State:
        cfg = self.cfg
        if self.state == "absent" or not cfg["peers"]:
            return None
        own = f"{vtep_address(cfg['subnet'])}/32"
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

    # -- apply ------------------------------------------------------------------------------
    def apply_backend(self, session: Session, current: State, desired: State) -> None:
        ipr = session.ipr(self.netns)
        have = (current or {}).get("tunnels", {})
        want = (desired or {}).get("tunnels", {})
        for dev in sorted(set(have) - set(want)):
            process = self.process(dev)
            process.stop()
            self._dev_sysctls(session, dev, "restored")
            msg = find_link(ipr, dev)
            if msg is not None:
                ipr.link("del", index=msg.index)  # its routes and addresses go with it
            process.forget()
        for dev, tunnel in want.items():
            if have.get(dev) != tunnel:
                self._converge_tunnel(session, ipr, dev, have.get(dev), tunnel)

    def _converge_tunnel(
        self, session: Session, ipr: Any, dev: str, have: dict[str, Any] | None, want: dict[str, Any]
    ) -> None:
        created = False
        if find_link(ipr, dev) is None:
            # The device exists, configured, before its process ever opens it: no race with its creation.
            create_persistent_tun(session, self.netns, dev)
            fresh(session, self.netns)
            created = True
            have = None
        index = find_link(ipr, dev).index
        if created:
            ipr.link("set", index=index, ifalias=MARK)
        # Before the device is up: nothing leaves it unasked.
        self._dev_sysctls(session, dev, "present")
        ipr.link("set", index=index, mtu=want["mtu"])
        self.set_addresses(ipr, index, want["addresses"])
        ipr.link("set", index=index, state="up")
        restart = created or (have or {}).get("process") != "running"
        for key in ("remote", "local", "port"):
            restart = restart or (have or {}).get(key) != want[key]
        if restart:
            self._restart(session, dev, want)
        self.converge_device_routes(session, ipr, index, dev, want["routes"])

    def _restart(self, session: Session, dev: str, want: dict[str, Any]) -> None:
        process = self.process(dev)
        process.stop()
        process.start(session, want["local"], want["remote"], want["port"])
        fresh(session, self.netns)  # the device has carrier now

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
            self.converge_sub(session, SysctlResource(spec))

    # -- result -----------------------------------------------------------------------------
    def result(self, after: State) -> dict[str, Any]:
        out = super().result(after)
        if after:
            pids = {}
            for dev in after["tunnels"]:
                pid = self.process(dev).recorded_pid()
                if pid is not None:
                    pids[dev] = pid
            out["pids"] = pids
        return out
