# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink sessions: namespace handles, in-place namespace entry, errors.

Private module_utils of cnfs.netlab. A :class:`Session` is opened once per task
(or once per whole-node apply) and hands out one pyroute2 ``IPRoute`` per
network namespace, created by entering the namespace in-process (``setns``)
just long enough to open the netlink socket: no helper process is forked and,
unlike ``IPRoute(netns=...)``, a missing namespace is never created by a read.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib.util
import os
import re
from collections.abc import Iterator
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._nsfs import (
    NETNS_RUN_DIR,
    check_call,
    is_netns_file,
    libc,
    netns_path,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._plan import Plan


class NetlinkError(Exception):
    """A netlink request the kernel refused; ``code`` is its errno.

    Raised by the fast reader (_nlcache.py) and, converted by :func:`kernel_calls`, for pyroute2's own
    NetlinkError: so that one ``except NetlinkError`` catches both, and pyroute2 (about 0.1 s to import) is
    imported only by a run that writes or reads what the fast reader does not (neighbours, rules, WireGuard).
    """

    def __init__(self, code: int, msg: str | None = None) -> None:
        super().__init__(code, msg or os.strerror(code))
        self.code = code


@contextlib.contextmanager
def kernel_calls() -> Iterator[None]:
    """Run pyroute2 calls with their NetlinkError raised as :class:`NetlinkError`."""
    try:
        yield
    except Exception as exc:
        from pyroute2.netlink.exceptions import NetlinkError as Pyroute2NetlinkError

        if isinstance(exc, Pyroute2NetlinkError):
            raise NetlinkError(exc.code, exc.args[1] if len(exc.args) > 1 else None) from exc
        raise


def pyroute2_import_error() -> str | None:
    """None when pyroute2 is installed (it is imported on first use, not here), else why it is not."""
    try:
        found = importlib.util.find_spec("pyroute2") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else "ModuleNotFoundError: No module named 'pyroute2'"


def _iproute() -> Any:
    try:
        from pyroute2.iproute import IPRoute
    except ImportError:
        raise NetlabError("the Python library pyroute2 is missing on the managed node") from None
    return IPRoute


CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
_NETNS_NAME = re.compile(r"^[^/\s\x00]{1,255}$")


class NetlabError(Exception):
    """An error whose message is meant for the user: it names the object and says what to do."""


def where(netns: str | None) -> str:
    """How every message names a namespace: ``in netns con1`` or ``in the current network namespace``."""
    return f"in netns {netns}" if netns else "in the current network namespace"


def keyed(what: str, netns: str | None) -> str:
    """A resource key: ``what``, plus `` in netns con1`` when the object is in another namespace."""
    return f"{what} in netns {netns}" if netns else what


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace behind ``fd``."""
    check_call(libc().setns(fd, CLONE_NEWNET), "setns")


def validate_netns(netns: str | None, what: str = "netns") -> None:
    """Reject names that cannot name a namespace (pure: no kernel access)."""
    if netns is None:
        return
    if netns.startswith("/"):
        if "\x00" in netns or os.path.normpath(netns) != netns:
            raise NetlabError(f"{what} {netns!r} is not a clean absolute path to a namespace file")
        return
    if not _NETNS_NAME.match(netns) or netns in (".", ".."):
        raise NetlabError(
            f"{what} {netns!r} is not a legal namespace name: use 1-255 characters without '/', spaces or NUL, "
            "or an absolute path to a namespace file"
        )


def list_netns(rundir: str = NETNS_RUN_DIR) -> list[str]:
    """Names of the mounted namespaces under ``rundir`` (sorted)."""
    try:
        names = os.listdir(rundir)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if is_netns_file(os.path.join(rundir, n)))


def _make_rundir_shared(rundir: str) -> None:
    # Ported from iproute2 (ip netns add): /run/netns must be a shared mount point so that
    # namespace mounts propagate to every mount namespace that shares it.
    lib = libc()
    os.makedirs(rundir, exist_ok=True)
    if lib.mount(b"", rundir.encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    check_call(lib.mount(rundir.encode(), rundir.encode(), b"none", MS_BIND | MS_REC, None), f"bind {rundir}")
    check_call(lib.mount(b"", rundir.encode(), b"none", MS_SHARED | MS_REC, None), f"share {rundir}")


class Session:
    """One netlink session for a task: namespaces entered, created and removed; a handle per namespace.

    The handles the models read and write through are :class:`_nlcache.CachedSession`'s (``ipr``); this
    base class holds pyroute2's own, which those handles use for writes (``pyroute2``).

    ``plan`` (_plan.Plan) records what earlier resources of the same run will create or remove, so that
    later resources are checked against the state the run is heading to, before anything changes.
    """

    def __init__(self) -> None:
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._handles: dict[str | None, Any] = {}
        self.plan = Plan()

    # -- namespaces -----------------------------------------------------------------
    def netns_exists(self, netns: str | None) -> bool:
        """Whether the namespace exists in the kernel now (None, the current one, always does)."""
        return netns is None or is_netns_file(netns_path(netns))

    def netns_will_exist(self, netns: str | None) -> bool:
        planned = self.plan.namespace(netns)
        return self.netns_exists(netns) if planned is None else planned

    def require_netns(self, netns: str | None, obj: str) -> None:
        """Fail with a clear message when ``obj`` lives in a namespace that does not (and will not) exist."""
        if self.netns_will_exist(netns):
            return
        if netns is not None and netns.startswith("/"):
            what = "is not a network namespace file" if os.path.lexists(netns) else "does not exist"
            raise NetlabError(
                f"{obj}: network namespace path {netns!r} {what}; give the path of a namespace file "
                "(like /proc/PID/ns/net or a bind mount of one) or a name under /run/netns"
            )
        raise NetlabError(
            f"{obj}: network namespace {netns!r} does not exist; create it first "
            f"(cnfs.netlab.netns name={netns} state=present)"
        )

    @contextlib.contextmanager
    def inside(self, netns: str | None) -> Iterator[None]:
        """Run the block with this thread inside ``netns`` (sysctl files, sockets, processes)."""
        if netns is None:
            yield
            return
        try:
            fd = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NetlabError(f"network namespace {netns!r} does not exist") from None
        try:
            setns(fd)
        except OSError as exc:
            os.close(fd)
            raise NetlabError(f"cannot enter network namespace {netns!r}: {exc.strerror}") from None
        try:
            yield
        finally:
            setns(self._home)
            os.close(fd)

    def fd(self, netns: str | None) -> int:
        """An O_RDONLY file descriptor of the namespace; the caller closes it."""
        try:
            return os.open(netns_path(netns) if netns else "/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NetlabError(f"network namespace {netns!r} does not exist") from None

    def ipr(self, netns: str | None) -> Any | None:
        """The handle the models use (_nlcache.CachedIPRoute); None when the namespace does not exist (yet)."""
        raise NotImplementedError("Session.ipr: use _nlcache.CachedSession")

    def pyroute2(self, netns: str | None) -> Any | None:
        """pyroute2's IPRoute of ``netns``; None when the namespace does not exist (yet)."""
        if netns in self._handles:
            return self._handles[netns]
        if not self.netns_exists(netns):
            return None
        iproute = _iproute()
        with self.inside(netns):
            handle = iproute()
        self._handles[netns] = handle
        return handle

    def forget(self, netns: str | None) -> None:
        """Drop the cached handle (the namespace was removed or recreated)."""
        handle = self._handles.pop(netns, None)
        if handle is not None:
            handle.close()

    def create_netns(self, name: str, share_rundir: bool = True) -> None:
        """Create a named namespace under /run/netns in-process, the way `ip netns add` does.

        ``name`` may also be an absolute path. With ``share_rundir=False`` the directory is left as it
        is: the caller manages its mount (the built-in lab keeps its namespace files on a private mount).
        """
        path = netns_path(name)
        rundir = os.path.dirname(path)
        if share_rundir:
            _make_rundir_shared(rundir)
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
        except FileExistsError:
            if is_netns_file(path):
                return
        lib = libc()
        try:
            check_call(lib.unshare(CLONE_NEWNET), "unshare")
            try:
                check_call(lib.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None), "bind")
            finally:
                setns(self._home)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise NetlabError(f"cannot create network namespace {name!r}: {exc.strerror or exc}") from None
        self.forget(name)

    def remove_netns(self, name: str) -> None:
        """Delete every link of the namespace (so veth peers elsewhere go synchronously), then unmount it."""
        handle = self.ipr(name)
        if handle is not None:
            for link in handle.links():
                if link.name != "lo":
                    with contextlib.suppress(NetlinkError):
                        handle.link("del", index=link.index)
        self.forget(name)
        path = netns_path(name)
        lib = libc()
        if lib.umount2(path.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
            err = ctypes.get_errno()
            raise NetlabError(f"cannot unmount network namespace {name!r}: {os.strerror(err)}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def close(self) -> None:
        for handle in self._handles.values():
            with contextlib.suppress(Exception):
                handle.close()
        self._handles.clear()
        with contextlib.suppress(OSError):
            os.close(self._home)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def kernel_message(exc: BaseException) -> str:
    """The kernel's words for a netlink error (errno name and text)."""
    code = getattr(exc, "code", None) or getattr(exc, "errno", None)
    if isinstance(code, int) and code > 0:
        return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"
    return str(exc)
