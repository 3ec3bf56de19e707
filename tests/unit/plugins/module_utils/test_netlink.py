# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parts of the netlink session module: namespace paths and names, the nsfs check, errors."""

from __future__ import annotations

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NETNS_RUN_DIR,
    NetlabError,
    is_netns_file,
    list_netns,
    netns_path,
    validate_netns,
)


def test_netns_path_puts_a_name_under_run_netns_and_keeps_an_absolute_path():
    assert netns_path("blue") == f"{NETNS_RUN_DIR}/blue"
    assert netns_path("/proc/1/ns/net") == "/proc/1/ns/net"


@pytest.mark.parametrize("netns", [None, "blue", "a" * 255, "/run/netns/blue", "/proc/1/ns/net"])
def test_validate_netns_accepts(netns):
    validate_netns(netns)


@pytest.mark.parametrize("netns", ["", "a/b", "a b", ".", "..", "a" * 256, "/run/netns/../x", "/run//netns", "x\x00"])
def test_validate_netns_rejects_with_the_option_name(netns):
    with pytest.raises(NetlabError, match=r"^peer_netns "):
        validate_netns(netns, "peer_netns")


def test_netlab_error_is_an_exception_with_the_message():
    assert str(NetlabError("eth0: gone")) == "eth0: gone"
    assert issubclass(NetlabError, Exception)


def test_is_netns_file_on_a_live_namespace():
    # The thread's own namespace file lives on nsfs: no namespace needs to be created.
    assert is_netns_file("/proc/self/ns/net")


def test_is_netns_file_rejects_a_plain_file_and_a_missing_one(tmp_path):
    placeholder = tmp_path / "stale"
    placeholder.write_text("")  # what an unmounted namespace leaves behind
    assert not is_netns_file(str(placeholder))
    assert not is_netns_file(str(tmp_path / "missing"))


def test_list_netns_lists_only_mounted_namespaces(tmp_path):
    (tmp_path / "stale").write_text("")
    assert list_netns(str(tmp_path)) == []
    assert list_netns(str(tmp_path / "missing")) == []
