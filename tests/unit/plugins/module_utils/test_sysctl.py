# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the sysctl model: names, values, the journal (on a temporary file), the desired state."""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import (
    Journal,
    SysctlResource,
    interface_of,
    is_namespaced,
    journal_drop,
    journal_get,
    journal_record,
    normalise_value,
    parse_name,
)


@pytest.mark.parametrize(
    ("name", "dotted", "path"),
    [
        ("net.ipv4.ip_forward", "net.ipv4.ip_forward", "net/ipv4/ip_forward"),
        ("net.ipv4.conf.eth0/100.rp_filter", "net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
        ("net/ipv4/conf/eth0.100/rp_filter", "net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
        (" kernel.hostname ", "kernel.hostname", "kernel/hostname"),
    ],
)
def test_parse_name(name, dotted, path):
    assert parse_name(name) == (dotted, path)


@pytest.mark.parametrize("name", ["", "net..ipv4", "net.ipv4.", "net/../../etc/passwd", "net.ipv4.conf./..x", None])
def test_parse_name_rejects(name):
    with pytest.raises(NetlabError, match="name"):
        parse_name(name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("32768\t60999\n", "32768 60999"),
        ("  1 ", "1"),
        (1, "1"),
        (True, "1"),
        (False, "0"),
        ([32768, "60999"], "32768 60999"),
        ("", ""),
    ],
)
def test_normalise_value(value, expected):
    assert normalise_value(value) == expected


def test_normalise_value_refuses_missing_and_mappings():
    with pytest.raises(NetlabError, match="value is required"):
        normalise_value(None)
    with pytest.raises(NetlabError, match="not a mapping"):
        normalise_value({"a": 1})


def test_namespaced_and_interface_keys():
    assert is_namespaced("net.ipv4.ip_forward")
    assert not is_namespaced("kernel.hostname")
    assert not is_namespaced("netfoo.x")
    assert interface_of("net.ipv4.conf.eth0/100.rp_filter") == "eth0.100"
    assert interface_of("net.ipv6.neigh.veth1.base_reachable_time_ms") == "veth1"
    assert interface_of("net.ipv4.conf.all.forwarding") is None
    assert interface_of("net.ipv4.ip_forward") is None


def test_journal_keeps_the_first_original():
    data: dict = {"version": 1, "entries": {}}
    assert journal_record(data, "ns1", "net.ipv4.ip_forward", "0")
    assert not journal_record(data, "ns1", "net.ipv4.ip_forward", "1")
    assert journal_record(data, None, "net.ipv4.ip_forward", "1")
    assert journal_get(data, "ns1", "net.ipv4.ip_forward") == "0"
    assert journal_get(data, None, "net.ipv4.ip_forward") == "1"
    assert journal_drop(data, "ns1", "net.ipv4.ip_forward")
    assert not journal_drop(data, "ns1", "net.ipv4.ip_forward")
    assert data["entries"] == {"": {"net.ipv4.ip_forward": "1"}}


def test_journal_file_round_trip_and_atomic_write(tmp_path):
    path = tmp_path / "sub" / "journal.json"
    journal = Journal(str(path))
    assert journal.load() == {"version": 1, "entries": {}}
    with journal.edit() as data:
        journal_record(data, "ns", "net.ipv4.ip_forward", "0")
    assert json.loads(path.read_text()) == {"version": 1, "entries": {"ns": {"net.ipv4.ip_forward": "0"}}}
    assert sorted(p.name for p in path.parent.iterdir()) == ["journal.json", "journal.json.lock"]


def test_journal_edit_that_fails_writes_nothing(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(str(path))
    with pytest.raises(RuntimeError), journal.edit() as data:
        journal_record(data, "ns", "net.ipv4.ip_forward", "0")
        raise RuntimeError("boom")
    assert not path.exists()


def test_journal_refuses_garbage_and_relative_paths(tmp_path):
    path = tmp_path / "journal.json"
    path.write_text("{not json")
    with pytest.raises(NetlabError, match=r"cannot be read.*repair or remove it"):
        Journal(str(path)).load()
    path.write_text("[]")
    with pytest.raises(NetlabError, match=r"is not a journal of cnfs\.netlab"):
        Journal(str(path)).load()
    with pytest.raises(NetlabError, match="clean absolute path"):
        Journal("run/journal.json")


def _res(tmp_path, **spec):
    return SysctlResource({"journal": str(tmp_path / "j.json"), **spec})


def test_global_keys_are_refused_with_netns(tmp_path):
    with pytest.raises(
        NetlabError, match=re.escape("only net.* keys belong to a network namespace; kernel.hostname is global")
    ):
        _res(tmp_path, name="kernel.hostname", value="x", netns="ns")
    assert _res(tmp_path, name="kernel.hostname", value="x").name == "kernel.hostname"


def test_present_needs_a_value(tmp_path):
    with pytest.raises(NetlabError, match="value is required"):
        _res(tmp_path, name="net.ipv4.ip_forward", netns="ns")


def test_want_present_records_the_current_value_only_when_it_changes(tmp_path):
    res = _res(tmp_path, name="net.ipv4.ip_forward", value=1, netns="ns")
    base = {"netns": "ns", "name": "net.ipv4.ip_forward"}
    assert res.want({**base, "value": "0", "original": None}) == {**base, "value": "1", "original": "0"}
    assert res.want({**base, "value": "1", "original": None}) == {**base, "value": "1", "original": None}
    # an earlier original stays the original
    assert res.want({**base, "value": "2", "original": "0"}) == {**base, "value": "1", "original": "0"}


def test_want_restored(tmp_path):
    res = _res(tmp_path, name="net.ipv4.ip_forward", netns="ns", state="restored")
    base = {"netns": "ns", "name": "net.ipv4.ip_forward"}
    assert res.want({**base, "value": "1", "original": "0"}) == {**base, "value": "0", "original": None}
    assert res.want({**base, "value": "1", "original": None}) == {**base, "value": "1", "original": None}
    assert res.want(None) is None
    # the namespace is gone: only the entry goes
    assert res.want({**base, "value": None, "original": "0"}) == {**base, "value": None, "original": None}
