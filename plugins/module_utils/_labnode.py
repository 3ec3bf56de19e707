# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource model: the built-in lab, nodes emulated with Linux namespaces on this one host.

Layout of a lab called ``<lab>`` under the state directory (default ``/run/cnfs-netlab``)::

    <state_dir>/<lab>/                 its own private mount (bind-mounted onto itself, make-private)
    <state_dir>/<lab>/underlay.net     network namespace of the underlay switch (bridge ``underlay``)
    <state_dir>/<lab>/<node>/net       the node's network namespace   } created together by a forked
    <state_dir>/<lab>/<node>/mnt       the node's mount namespace     } child (unshare), bound to these
    <state_dir>/<lab>/<node>/uts       the node's UTS namespace       } files by the parent

Each node's ``eth1`` is one end of a veth pair whose other end, named after the node, is a port of the
underlay bridge. Nothing is ever added to the host's own network namespace.

The resources, in the order :func:`build_resources` gives them to ``converge``:

``LabResource``      the lab directory, its private mount and the underlay namespace.
``BridgeResource``   the underlay switch (from ``_link``).
``NodeResource``     one node's namespaces, hostname, /run, /sys and boot-time sysctls.
``VethResource``     the node's cable: port ``<node>`` on the switch <-> ``eth1`` in the node (from ``_link``).
``AddressResource``  the underlay address of ``eth1``, its only address but IPv6 link-local (from ``_address``).

Removal (``state=absent``) is one ``NodeResource`` per node found in the lab directory, then the
``LabResource``: processes that run in a node's namespaces (or in the container namespaces mounted
inside the node) are stopped by pid, then the namespace files are unmounted. Links are not deleted one by
one (the kernel takes ~25 ms for each, waiting for RCU): a namespace whose last reference goes takes its
links with it, and the kernel removes those of all dying namespaces in one batch, veth peers in other
namespaces included. A single node removed from a running lab waits until its switch port is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import os
import re
import select
import signal
import time
from dataclasses import dataclass
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._address import AddressResource
from ansible_collections.cnfs.netlab.plugins.module_utils._link import BridgeResource, VethResource, find_link
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
from ansible_collections.cnfs.netlab.plugins.module_utils._nsfs import check_call, is_netns_file, libc
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State
from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import is_namespaced, normalise_value, parse_name

DEFAULT_STATE_DIR = "/run/cnfs-netlab"
DEFAULT_LAB = "netlab"
UNDERLAY_NETNS = "underlay.net"
UNDERLAY_BRIDGE = "underlay"
NODE_IFNAME = "eth1"
NS_KINDS = ("net", "mnt", "uts")
DEFAULT_STOP_TIMEOUT = 5.0

# A node boots like a fresh Debian VM: no forwarding, strict reverse-path filtering.
NODE_SYSCTL: dict[str, str] = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.default.rp_filter": "1",
}

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
NS_FLAGS = {"net": CLONE_NEWNET, "mnt": CLONE_NEWNS, "uts": CLONE_NEWUTS}
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

_LAB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
# Names in /run/cnfs-netlab that modules run on a host keep their state under (_overlay.RUN_DIR,
# _args.SYSCTL_JOURNAL and its lock): a lab of that name would share its state directory with them.
# stage.json: the stage roles' record of the last apply on a node (RECORD_FILE in plugin_utils/_stage.py).
RESERVED_LAB_NAMES = frozenset({"overlay", "sysctl-journal.json", "sysctl-journal.json.lock", "stage.json"})


# ---------------------------------------------------------------------------------- pure helpers
def validate_lab_name(name: Any) -> str:
    if not isinstance(name, str) or not _LAB_NAME.match(name):
        raise NetlabError(
            f"lab name {name!r} is not usable: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    if name in RESERVED_LAB_NAMES:
        raise NetlabError(
            f"lab name {name!r} is reserved: /run/cnfs-netlab/{name} holds the state of modules run on the host "
            "(overlay processes, the sysctl journal, the stages' record); choose another name"
        )
    return name


def validate_node_name(name: Any, lab: str) -> str:
    """A node name is its hostname, its directory and the name of its switch port: at most 15 bytes."""
    if not isinstance(name, str) or not _NODE_NAME.match(name) or name == UNDERLAY_NETNS:
        raise NetlabError(
            f"node {name!r} of lab {lab}: a node name must be 1-15 letters, digits, '_', '.' or '-', starting "
            "with a letter or digit (it becomes the node's hostname and the name of its port on the underlay "
            "switch, and Linux interface names have at most 15 bytes): choose a shorter name"
        )
    return name


def validate_state_dir(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or os.path.normpath(path) != path or path == "/":
        raise NetlabError(f"state_dir {path!r} must be a clean absolute path other than /, like {DEFAULT_STATE_DIR}")
    if any(c.isspace() for c in path):
        raise NetlabError(f"state_dir {path!r} must not contain whitespace")
    return path


def underlay_cidr(value: Any, what: str) -> str:
    """An interface address with prefix, normalised (host bits kept): '10.0.0.10/24'."""
    if not isinstance(value, str) or "/" not in value:
        raise NetlabError(
            f"{what}: underlay_address {value!r} is not an address with a prefix length, like 10.0.0.10/24"
        )
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError as exc:
        raise NetlabError(f"{what}: underlay_address {value!r} is not a valid address with prefix: {exc}") from None
    if iface.ip == iface.network.network_address and iface.network.prefixlen < iface.max_prefixlen - 1:
        raise NetlabError(f"{what}: underlay_address {value!r} is the network address of its subnet; use a host one")
    if iface.version == 4 and iface.ip == iface.network.broadcast_address and iface.network.prefixlen < 31:
        raise NetlabError(f"{what}: underlay_address {value!r} is the broadcast address of its subnet; use a host one")
    return iface.with_prefixlen


def sysctl_path(key: str) -> str:
    """The /proc/sys file of a sysctl key, written the sysctl(8) way."""
    return "/proc/sys/" + parse_name(key)[1]


def validate_sysctl(values: Any) -> dict[str, str]:
    """Node sysctls: only per-network-namespace keys (net.*), dotted names and values as sysctl(8) prints them."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise NetlabError(f"sysctl must be a dict of net.* keys and values, not {values!r}")
    out: dict[str, str] = {}
    for key, value in values.items():
        dotted, _path = parse_name(key)
        if not is_namespaced(dotted):
            raise NetlabError(
                f"sysctl {key!r}: only network sysctls (net.*) belong to a node; the others would change the host"
            )
        out[dotted] = normalise_value(value, f"sysctl {dotted}")
    return out


@dataclass(frozen=True)
class MountEntry:
    mount_id: int
    parent_id: int
    root: str
    mountpoint: str
    fstype: str
    source: str
    propagation: tuple[str, ...]

    @property
    def private(self) -> bool:
        return not any(tag.startswith(("shared:", "master:")) for tag in self.propagation)


def _unescape(value: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), value)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Entries of /proc/<pid>/mountinfo, in order (later entries are mounted on top of earlier ones)."""
    entries = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields or len(fields) < 10:
            continue
        sep = fields.index("-", 6)
        entries.append(
            MountEntry(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                root=_unescape(fields[3]),
                mountpoint=_unescape(fields[4]),
                fstype=fields[sep + 1],
                source=_unescape(fields[sep + 2]),
                propagation=tuple(fields[6:sep]),
            )
        )
    return entries


def under(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or inside it."""
    return path == top or path.startswith(top.rstrip("/") + "/")


@dataclass(frozen=True)
class LabPaths:
    """Where a lab keeps its namespace files."""

    state_dir: str
    lab: str

    @property
    def dir(self) -> str:
        return os.path.join(self.state_dir, self.lab)

    @property
    def underlay(self) -> str:
        return os.path.join(self.dir, UNDERLAY_NETNS)

    def node_dir(self, node: str) -> str:
        return os.path.join(self.dir, node)

    def node(self, node: str, kind: str) -> str:
        return os.path.join(self.dir, node, kind)

    def node_files(self, node: str) -> dict[str, str]:
        return {kind: self.node(node, kind) for kind in NS_KINDS}


# ---------------------------------------------------------------------------------- kernel plumbing
def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if v is None else v.encode() for v in (source, target, fstype, data)]
    check_call(libc().mount(enc[0], enc[1], enc[2], flags, enc[3]), f"mount {target}")


def _detach(path: str) -> bool:
    """Lazily unmount ``path``; False when nothing was mounted there."""
    if libc().umount2(path.encode(), MNT_DETACH) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return False
    raise OSError(err, f"umount {path}: {os.strerror(err)}")


def _setns(fd: int, nstype: int, what: str) -> None:
    check_call(libc().setns(fd, nstype), f"setns {what}")


def mounts() -> list[MountEntry]:
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        return parse_mountinfo(fh.read())


def mounts_under(top: str) -> list[MountEntry]:
    return [m for m in mounts() if under(m.mountpoint, top)]


def is_private_mount(path: str) -> bool:
    """Whether ``path`` is itself a mount point whose (topmost) mount is private."""
    found = [m for m in mounts() if m.mountpoint == path]
    return bool(found) and found[-1].private


def ensure_private_mount(path: str) -> None:
    """Make ``path`` its own private mount (bind onto itself first when it is not a mount point)."""
    os.makedirs(path, mode=0o755, exist_ok=True)
    found = [m for m in mounts() if m.mountpoint == path]
    if not found:
        _mount(path, path, None, MS_BIND)
        found = [m for m in mounts() if m.mountpoint == path]
    if not found[-1].private:
        _mount(None, path, None, MS_PRIVATE)


def ns_inode(path: str) -> int | None:
    """Inode of the namespace behind a namespace file (None when it is not a live namespace file)."""
    if not is_netns_file(path):  # any nsfs file, whatever the namespace type
        return None
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def read_hostname(uts_path: str) -> str | None:
    """The hostname of a UTS namespace (this thread enters it and comes back)."""
    try:
        fd = os.open(uts_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    home = os.open("/proc/thread-self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, CLONE_NEWUTS, uts_path)
        try:
            return os.uname().nodename
        finally:
            _setns(home, CLONE_NEWUTS, "back home")
    finally:
        os.close(fd)
        os.close(home)


def set_hostname(uts_path: str, hostname: str) -> None:
    fd = os.open(uts_path, os.O_RDONLY | os.O_CLOEXEC)
    home = os.open("/proc/thread-self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, CLONE_NEWUTS, uts_path)
        try:
            raw = hostname.encode()
            check_call(libc().sethostname(raw, len(raw)), "sethostname")
        finally:
            _setns(home, CLONE_NEWUTS, "back home")
    finally:
        os.close(fd)
        os.close(home)


def read_sysctls(session: Session, net_path: str, keys: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    with session.inside(net_path):
        for key in keys:
            try:
                with open(sysctl_path(key), encoding="ascii") as fh:
                    out[key] = " ".join(fh.read().split())
            except OSError:
                out[key] = None
    return out


def _fork_helper(child: Any) -> bytes:
    """Run ``child()`` (it returns bytes) in a forked child that always ends with os._exit; return those bytes."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(rfd)
            payload = child()
            os.write(wfd, b"ok:" + payload)
            code = 0
        except BaseException as exc:  # the child must never unwind into the parent's code
            with contextlib.suppress(BaseException):
                os.write(wfd, f"error:{exc}".encode(errors="replace"))
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    with os.fdopen(rfd, "rb") as pipe:
        while chunk := pipe.read(65536):
            chunks.append(chunk)
    os.waitpid(pid, 0)
    data = b"".join(chunks)
    if data.startswith(b"ok:"):
        return data[3:]
    raise OSError(errno.EIO, data[6:].decode(errors="replace") if data.startswith(b"error:") else "helper died")


def inner_namespaces(mnt_path: str) -> set[int]:
    """Inodes of every namespace bind-mounted inside a node (its containers' /run/netns/* and the like).

    A forked child enters the node's mount namespace and reads its mount table: the root of an nsfs
    mount is ``net:[4026532...]``.
    """

    def child() -> bytes:
        fd = os.open(mnt_path, os.O_RDONLY)
        _setns(fd, CLONE_NEWNS, mnt_path)
        inodes = [str(_nsfs_inode(entry.root)) for entry in mounts() if entry.fstype == "nsfs"]
        return " ".join(i for i in inodes if i != "None").encode()

    return {int(x) for x in _fork_helper(child).split()}


def _nsfs_inode(root: str) -> int | None:
    """The namespace inode in the root of an nsfs mount ('net:[4026532384]')."""
    match = re.search(r"\[(\d+)\]$", root)
    return int(match.group(1)) if match else None


def _own_lineage() -> set[int]:
    """This process and its ancestors: never signalled, whatever namespace they are in."""
    pids = set()
    pid = os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def processes_in(inodes: set[int]) -> list[int]:
    """Pids of the processes whose network, mount or UTS namespace is one of ``inodes``."""
    if not inodes:
        return []
    spare = _own_lineage() | {1}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in spare:
            continue
        for kind in NS_KINDS:
            try:
                if os.stat(f"/proc/{pid}/ns/{kind}").st_ino in inodes:
                    found.append(pid)
                    break
            except OSError:  # gone, a zombie, or a kernel thread
                break
    return found


def _in_namespaces(pid: int, inodes: set[int]) -> bool:
    for kind in NS_KINDS:
        try:
            if os.stat(f"/proc/{pid}/ns/{kind}").st_ino in inodes:
                return True
        except OSError:
            return False
    return False


def stop_processes(inodes: set[int], timeout: float) -> list[int]:
    """Stop every process in the namespaces ``inodes``: SIGTERM, wait up to ``timeout`` s, SIGKILL.

    Processes are held by pidfd (checked to still be in the namespaces after it is opened), so a reused
    pid is never signalled. Repeats until no process is left (children forked while dying included).
    Returns the pids stopped.
    """
    stopped: list[int] = []
    for _round in range(10):
        pidfds: dict[int, int] = {}
        for pid in processes_in(inodes):
            try:
                pfd = os.pidfd_open(pid)
            except OSError:
                continue
            if _in_namespaces(pid, inodes):
                pidfds[pid] = pfd
            else:
                os.close(pfd)
        if not pidfds:
            return stopped
        try:
            for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
                for pfd in pidfds.values():
                    with contextlib.suppress(ProcessLookupError, OSError):
                        signal.pidfd_send_signal(pfd, sig)
                deadline = time.monotonic() + wait
                alive = dict(pidfds)
                while alive and time.monotonic() < deadline:
                    ready = select.select(list(alive.values()), [], [], max(0.0, deadline - time.monotonic()))[0]
                    for pfd in ready:
                        alive = {p: f for p, f in alive.items() if f != pfd}
                if not alive:
                    break
            stopped.extend(pidfds)
        finally:
            for pfd in pidfds.values():
                os.close(pfd)
    left = processes_in(inodes)
    if left:
        raise NetlabError(f"processes {left} keep running in the lab's namespaces after SIGKILL; stop them by hand")
    return stopped


def spawn_node(files: dict[str, str], hostname: str, sysctl: dict[str, str]) -> None:
    """Create a node's network, mount and UTS namespaces and bind them to ``files`` (net, mnt, uts).

    A forked child unshares the three namespaces, makes every mount of its new mount namespace private,
    unmounts the copies of namespace files (other nodes', other labs', the host's /run/netns/*) and the
    host's mounts under /run, sets the hostname, mounts a fresh tmpfs on /run (with /run/netns and
    /run/lock) and a sysfs of its own network namespace on /sys (the cgroup mounts are moved over), and
    writes the boot-time sysctls. The parent then binds /proc/<child>/ns/{net,mnt,uts} to the files.
    The lab directory must be a private mount (a mount namespace file cannot sit on a shared one).
    """
    for path in files.values():
        if not os.path.exists(path):
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            _build_node_inside(hostname, sysctl)
            os.write(ready_w, b"ok")
            os.read(done_r, 1)  # hold the namespaces until the parent has bound them
            code = 0
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                os.write(ready_w, f"error:{exc}".encode(errors="replace"))
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(done_r)
    try:
        status = os.read(ready_r, 65536)
        if status != b"ok":
            raise OSError(errno.EIO, status[6:].decode(errors="replace") if status else "the helper process died")
        for kind, path in files.items():
            _mount(f"/proc/{pid}/ns/{kind}", path, None, MS_BIND)
    finally:
        os.close(ready_r)
        os.close(done_w)  # releases the child
        os.waitpid(pid, 0)


def _build_node_inside(hostname: str, sysctl: dict[str, str]) -> None:  # pragma: no cover - child
    check_call(libc().unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS), "unshare")
    # Private first: an unmount below must never propagate back to the host's shared mounts.
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    for entry in reversed(mounts()):
        if entry.fstype == "nsfs" or entry.mountpoint.startswith("/run/"):
            with contextlib.suppress(OSError):
                _detach(entry.mountpoint)
    raw = hostname.encode()
    check_call(libc().sethostname(raw, len(raw)), "sethostname")
    _mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m")
    for path, mode in (("/run/netns", 0o755), ("/run/lock", 0o1777), ("/run/user", 0o755)):
        os.mkdir(path)
        os.chmod(path, mode)
    # A sysfs mounted from inside the new network namespace: /sys/class/net lists the node's links.
    staging = "/run/.cnfs-sysfs"
    os.mkdir(staging)
    _mount("sysfs", staging, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if os.path.ismount("/sys/fs/cgroup") and os.path.isdir(staging + "/fs/cgroup"):
        with contextlib.suppress(OSError):
            _mount("/sys/fs/cgroup", staging + "/fs/cgroup", None, MS_MOVE)
    _detach("/sys")
    _mount(staging, "/sys", None, MS_MOVE)
    os.rmdir(staging)
    for key, value in sysctl.items():
        with open(sysctl_path(key), "w", encoding="ascii") as fh:
            fh.write(value)


def _link_up(session: Session, netns: str, name: str) -> None:
    ipr = session.ipr(netns)
    msg = find_link(ipr, name)
    if msg is not None and not msg.up:
        ipr.link("set", index=msg.index, state="up")


def wait_link_gone(session: Session, netns: str, name: str, timeout: float = 10.0) -> None:
    """Wait until ``name`` is gone from ``netns`` (the kernel frees links of dying namespaces asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.drop_caches(netns)  # the kernel changes it, not a write of this session
        if find_link(session.ipr(netns), name) is None:
            return
        time.sleep(0.005)
    raise NetlabError(f"interface {name!r} in {netns} is still there {timeout:.0f} s after its removal; run again")


# ---------------------------------------------------------------------------------- resources
class LabResource(Resource):
    """The lab directory (a private mount) and the namespace of the underlay switch.

    State shape: ``{"name", "path", "private_mount": bool, "underlay_netns": path | None}``.
    """

    kind = "lab"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.paths: LabPaths = spec["paths"]
        self.stop_timeout: float = spec.get("stop_timeout", DEFAULT_STOP_TIMEOUT)

    @property
    def netns(self) -> str | None:
        return None

    @property
    def key(self) -> str:
        return f"lab {self.paths.lab}"

    def check(self, session: Session) -> None:
        session.plan.set_namespace(self.paths.underlay, self.state == "present")

    def read(self, session: Session) -> State:
        path = self.paths.dir
        if not os.path.isdir(path):
            return None
        underlay = self.paths.underlay if is_netns_file(self.paths.underlay) else None
        return {
            "name": self.paths.lab,
            "path": path,
            "private_mount": is_private_mount(path),
            "underlay_netns": underlay,
        }

    def want(self, current: State) -> State:
        if self.state == "absent":
            return None
        return {
            "name": self.paths.lab,
            "path": self.paths.dir,
            "private_mount": True,
            "underlay_netns": self.paths.underlay,
        }

    def apply(self, session: Session, current: State, desired: State) -> None:
        try:
            if desired is None:
                self._remove(session)
                return
            ensure_private_mount(self.paths.dir)
            if not is_netns_file(self.paths.underlay):
                session.forget(self.paths.underlay)
                session.create_netns(self.paths.underlay, share_rundir=False)
            _link_up(session, self.paths.underlay, "lo")
        except OSError as exc:
            raise NetlabError(f"{self.key}: {exc.strerror or exc} ({self.paths.dir}); is this run as root?") from None

    def _remove(self, session: Session) -> None:
        underlay = self.paths.underlay
        inode = ns_inode(underlay)
        if inode is not None:
            stop_processes({inode}, self.stop_timeout)
        session.forget(underlay)
        _detach(underlay)  # the switch and its ports go with the namespace
        with contextlib.suppress(FileNotFoundError):
            os.unlink(underlay)
        for entry in reversed(mounts_under(self.paths.dir)):
            _detach(entry.mountpoint)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(self.paths.dir)
        with contextlib.suppress(OSError):  # only when no other lab is left in it
            os.rmdir(self.paths.state_dir)


class NodeResource(Resource):
    """One lab node: network, mount and UTS namespaces bound to files, its hostname and boot-time sysctls.

    State shape: ``{"name", "running": bool, "hostname", "sysctl": {key: value}}``; ``running`` is False
    when the node directory holds leftovers (some namespace files missing): the node is then rebuilt.
    The sysctls are set when the node is created (like a VM's boot); a running node keeps whatever the
    roles set since.
    """

    kind = "node"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.paths: LabPaths = spec["paths"]
        self.name: str = spec["name"]
        self.files = self.paths.node_files(self.name)
        self.sysctl: dict[str, str] = spec.get("sysctl") or {}
        self.stop_timeout: float = spec.get("stop_timeout", DEFAULT_STOP_TIMEOUT)
        # The whole lab goes in this run (its switch too): nothing waits for this node's port to be gone.
        self.lab_goes: bool = spec.get("lab_goes", False)

    @property
    def netns(self) -> str | None:
        return None

    @property
    def key(self) -> str:
        return f"node {self.name} of lab {self.paths.lab}"

    def check(self, session: Session) -> None:
        session.plan.set_namespace(self.files["net"], self.state == "present")
        mine = {os.stat(f"/proc/self/ns/{kind}").st_ino for kind in NS_KINDS}
        theirs = {ns_inode(path) for path in self.files.values()} - {None}
        if mine & theirs:
            raise NetlabError(f"{self.key}: this task runs inside the node; run the lab playbooks on the host")

    def read(self, session: Session) -> State:
        found = {kind: is_netns_file(path) for kind, path in self.files.items()}
        if not any(found.values()):
            if os.path.isdir(self.paths.node_dir(self.name)):
                return {"name": self.name, "running": False}
            return None
        if not all(found.values()):
            return {"name": self.name, "running": False}
        return {
            "name": self.name,
            "running": True,
            "hostname": read_hostname(self.files["uts"]),
            "sysctl": read_sysctls(session, self.files["net"], sorted(self.sysctl)),
        }

    def want(self, current: State) -> State:
        if self.state == "absent":
            return None
        running = current is not None and current.get("running")
        return {
            "name": self.name,
            "running": True,
            "hostname": self.name,
            "sysctl": current["sysctl"] if running else dict(sorted(self.sysctl.items())),
        }

    def apply(self, session: Session, current: State, desired: State) -> None:
        try:
            if current is not None and (desired is None or not current.get("running")):
                self.teardown(session)
            if desired is None:
                return
            if current is None or not current.get("running"):
                self._create(session)
            if read_hostname(self.files["uts"]) != desired["hostname"]:
                set_hostname(self.files["uts"], desired["hostname"])
            _link_up(session, self.files["net"], "lo")
        except OSError as exc:
            raise NetlabError(f"{self.key}: {exc.strerror or exc}") from None

    def _create(self, session: Session) -> None:
        os.makedirs(self.paths.node_dir(self.name), mode=0o755, exist_ok=True)
        try:
            spawn_node(self.files, self.name, self.sysctl)
        except OSError as exc:
            self._unmount_files()
            raise NetlabError(f"{self.key}: cannot create its namespaces ({exc.strerror or exc})") from None
        session.forget(self.files["net"])

    def teardown(self, session: Session) -> None:
        """Stop the node's processes, delete its links, unmount and remove its namespace files."""
        inodes = {ns_inode(path) for path in self.files.values()} - {None}
        if is_netns_file(self.files["mnt"]):
            try:
                inodes |= inner_namespaces(self.files["mnt"])
            except OSError as exc:
                raise NetlabError(f"{self.key}: cannot read the namespaces mounted inside the node ({exc})") from None
        stop_processes(inodes, self.stop_timeout)  # type: ignore[arg-type]
        session.forget(self.files["net"])  # its sockets would keep the namespace alive
        if not self.lab_goes and is_netns_file(self.paths.underlay):
            # The lab stays: its port goes now (with the node's end of the cable), before a new one of that name.
            ipr = session.ipr(self.paths.underlay)
            port = find_link(ipr, self.name)
            if port is not None:
                with contextlib.suppress(NetlinkError):
                    ipr.link("del", index=port.index)
            wait_link_gone(session, self.paths.underlay, self.name)
        self._unmount_files()  # the namespaces go, and the kernel removes their links in one batch

    def _unmount_files(self) -> None:
        # Unlinking a mount point also detaches the copies other mount namespaces made of it (an
        # `ip netns exec` or `unshare -m` started while the lab was up): they do not keep the node alive.
        node_dir = self.paths.node_dir(self.name)
        for entry in reversed(mounts_under(node_dir)):
            _detach(entry.mountpoint)
        for path in self.files.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(node_dir)


# ---------------------------------------------------------------------------------- the lab
def existing_nodes(paths: LabPaths) -> list[str]:
    """Names of the node directories found in the lab directory."""
    try:
        entries = sorted(os.scandir(paths.dir), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [e.name for e in entries if e.is_dir(follow_symlinks=False)]


def normalise_nodes(nodes: Any, lab: str) -> list[dict[str, str]]:
    """Validate the node list: names (unique, usable), underlay addresses (valid, unique, one family)."""
    if not isinstance(nodes, list) or not nodes:
        raise NetlabError(f"lab {lab}: nodes must be a non-empty list of {{name, underlay_address}}")
    out: list[dict[str, str]] = []
    seen_names: set[str] = set()
    seen_ips: dict[str, str] = {}
    families = set()
    for item in nodes:
        if not isinstance(item, dict):
            raise NetlabError(f"lab {lab}: every node must be a dict with name and underlay_address, not {item!r}")
        name = validate_node_name(item.get("name"), lab)
        what = f"node {name} of lab {lab}"
        if name in seen_names:
            raise NetlabError(f"{what}: the name is given twice; node names must be unique")
        seen_names.add(name)
        address = underlay_cidr(item.get("underlay_address"), what)
        iface = ipaddress.ip_interface(address)
        if str(iface.ip) in seen_ips:
            raise NetlabError(
                f"{what}: underlay_address {address} is already the address of node {seen_ips[str(iface.ip)]}; "
                "give every node its own address"
            )
        seen_ips[str(iface.ip)] = name
        families.add(iface.version)
        out.append({"name": name, "underlay_address": address})
    if len(families) > 1:
        raise NetlabError(f"lab {lab}: mix of IPv4 and IPv6 underlay addresses; use one family for the whole underlay")
    return out


def build_resources(params: dict[str, Any]) -> tuple[LabPaths, list[Resource], list[dict[str, str]]]:
    """The resources of a lab module call, in converge order. Validates all input first."""
    lab = validate_lab_name(params.get("name") or DEFAULT_LAB)
    paths = LabPaths(validate_state_dir(params.get("state_dir") or DEFAULT_STATE_DIR), lab)
    state = params.get("state") or "present"
    timeout = float(params.get("stop_timeout") if params.get("stop_timeout") is not None else DEFAULT_STOP_TIMEOUT)
    if timeout < 0:
        raise NetlabError(f"lab {lab}: stop_timeout must be 0 or more seconds")
    common = {"paths": paths, "stop_timeout": timeout}
    if state == "absent":
        found = existing_nodes(paths)
        resources: list[Resource] = [
            NodeResource({**common, "name": n, "state": "absent", "lab_goes": True}) for n in found
        ]
        resources.append(LabResource({**common, "state": "absent"}))
        return paths, resources, []
    nodes = normalise_nodes(params.get("nodes"), lab)
    sysctl = {**NODE_SYSCTL, **validate_sysctl(params.get("sysctl"))}
    for key in sysctl:
        if not os.path.exists(sysctl_path(key)):
            raise NetlabError(f"sysctl {key!r} does not exist on this kernel; check its spelling")
    resources = [
        LabResource({**common, "state": "present"}),
        BridgeResource({"name": UNDERLAY_BRIDGE, "netns": paths.underlay, "stp": False, "up": True}),
    ]
    wanted = {n["name"] for n in nodes}
    for stale in existing_nodes(paths):
        if stale not in wanted:
            resources.append(NodeResource({**common, "name": stale, "state": "absent"}))
    for node in nodes:
        name = node["name"]
        net = paths.node(name, "net")
        resources.append(NodeResource({**common, "name": name, "state": "present", "sysctl": sysctl}))
        resources.append(
            VethResource(
                {
                    "name": name,
                    "netns": paths.underlay,
                    "peer": NODE_IFNAME,
                    "peer_netns": net,
                    "bridge": UNDERLAY_BRIDGE,
                    "up": True,
                }
            )
        )
        resources.append(
            AddressResource({"netns": net, "dev": NODE_IFNAME, "addresses": [node["underlay_address"]], "purge": True})
        )
    return paths, resources, nodes


def lab_result(paths: LabPaths, nodes: list[dict[str, str]], present: bool) -> dict[str, Any]:
    """The ``lab`` return value: where everything lives (empty node list when the lab is absent)."""
    if not present:
        return {"name": paths.lab, "state_dir": paths.state_dir, "path": paths.dir, "nodes": []}
    return {
        "name": paths.lab,
        "state_dir": paths.state_dir,
        "path": paths.dir,
        "underlay": {"netns": paths.underlay, "bridge": UNDERLAY_BRIDGE},
        "nodes": [
            {
                "name": n["name"],
                "hostname": n["name"],
                "underlay_address": n["underlay_address"],
                "interface": NODE_IFNAME,
                "port": n["name"],
                **paths.node_files(n["name"]),
            }
            for n in nodes
        ],
    }


def run_lab(module: Any) -> None:
    """Glue for the lab module: validate, converge in one session, exit with diff and the lab's layout."""
    from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import pyroute2_import_error
    from ansible_collections.cnfs.netlab.plugins.module_utils._resource import converge

    missing = pyroute2_import_error()
    if missing is not None:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("pyroute2"), exception=missing)
    if os.geteuid() != 0:
        module.fail_json(msg="the lab needs root: its nodes are namespaces and mounts (run with become or as root)")
    try:
        paths, resources, nodes = build_resources(dict(module.params))
        with CachedSession() as session:
            outcome = converge(session, resources, module.check_mode)
    except NetlabError as exc:
        module.fail_json(msg=str(exc))
    present = module.params["state"] == "present"
    module.exit_json(
        changed=outcome["changed"],
        diff=outcome["diff"],
        lab=lab_result(paths, nodes, present),
    )
