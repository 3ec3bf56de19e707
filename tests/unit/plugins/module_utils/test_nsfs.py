# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_nsfs: the namespace-file check and the libc error helper, on real files (no namespace is made)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._nsfs import check_call, is_netns_file, is_nsfs_fd, libc


def test_a_namespace_file_is_one() -> None:
    # /proc/self/ns/* open namespace files on nsfs, like the bind mounts under /run/netns do
    assert is_netns_file("/proc/self/ns/net")
    assert is_netns_file("/proc/self/ns/mnt")


def test_a_placeholder_a_directory_and_nothing_are_not(tmp_path: Path) -> None:
    placeholder = tmp_path / "ns"
    placeholder.touch()  # what an unmounted namespace leaves under /run/netns
    assert not is_netns_file(str(placeholder))
    assert not is_netns_file(str(tmp_path))
    assert not is_netns_file(str(tmp_path / "missing"))
    fd = os.open(str(placeholder), os.O_RDONLY)
    try:
        assert not is_nsfs_fd(fd)
    finally:
        os.close(fd)


def test_check_call_names_the_call_and_the_errno() -> None:
    check_call(0, "fine")
    ret = libc().close(-1)  # EBADF
    with pytest.raises(OSError, match=r"close -1: Bad file descriptor") as info:
        check_call(ret, "close -1")
    assert info.value.errno == errno.EBADF
    assert libc() is libc()  # loaded once
