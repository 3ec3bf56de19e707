# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""libc calls and the namespace-file check, shared by the modules' code and the nsenter connection.

Pure ctypes, no pyroute2: the connection plugin runs on the controller and imports this file too.
"""

from __future__ import annotations

import ctypes
import functools
import os

NSFS_MAGIC = 0x6E736673  # statfs f_type of nsfs, the filesystem of namespace files
NETNS_RUN_DIR = "/run/netns"


def netns_path(netns: str) -> str:
    """The file behind a namespace: a name under /run/netns, or an absolute path to an nsfs file."""
    return netns if netns.startswith("/") else os.path.join(NETNS_RUN_DIR, netns)


@functools.cache
def libc() -> ctypes.CDLL:
    # Loaded once: building a CDLL costs ~0.1 ms, and list_netns() checks every namespace.
    return ctypes.CDLL(None, use_errno=True)


def check_call(ret: int, what: str) -> None:
    """Raise OSError with errno's message when a libc call returned non-zero."""
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def is_nsfs_fd(fd: int) -> bool:
    """Whether the open file ``fd`` lives on nsfs."""
    buf = ctypes.create_string_buffer(120)  # struct statfs is 120 bytes on x86_64/aarch64
    if libc().fstatfs(fd, buf) != 0:
        return False
    return int.from_bytes(buf.raw[:8], "little") == NSFS_MAGIC


def is_netns_file(path: str) -> bool:
    """True when ``path`` is a mounted namespace file, not a leftover placeholder.

    A namespace file opened through its bind mount lives on nsfs; the mount point of an unmounted namespace is
    a plain empty file. Any namespace type: the caller knows which one it expects.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return is_nsfs_fd(fd)
    finally:
        os.close(fd)
