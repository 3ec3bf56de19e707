# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nsenter connection against a real one-node lab of the test's own (root; its namespaces only)."""

from __future__ import annotations

import os
import shlex
import socket

import pytest
import yaml
from ansible import constants as C
from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.playbook.play_context import PlayContext
from pyroute2 import IPRoute

from ansible_collections.cnfs.netlab.plugins.connection import nsenter
from ansible_collections.cnfs.netlab.plugins.module_utils._labnode import build_resources
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import converge

LAB = "cnfsut-conn"


def lab_params(state_dir: str, state: str) -> dict:
    return {
        "name": LAB,
        "state": state,
        "state_dir": state_dir,
        "nodes": [{"name": "node1", "underlay_address": "10.250.0.10/24"}],
        "sysctl": {},
        "stop_timeout": 2,
    }


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    """A one-node built-in lab under a temporary state directory, removed afterwards."""
    path = str(tmp_path_factory.mktemp("lab") / "state")
    _paths, resources, _nodes = build_resources(lab_params(path, "present"))
    with CachedSession() as session:
        converge(session, resources, check_mode=False)
    try:
        yield path
    finally:
        _paths, resources, _nodes = build_resources(lab_params(path, "absent"))
        with CachedSession() as session:
            converge(session, resources, check_mode=False)
        assert not os.path.exists(os.path.join(path, LAB))


def connection(state_dir: str, node: str = "node1", **options):
    """The plugin as Ansible loads it: its documented options registered, then set like a play sets them."""
    name = "cnfs.netlab.nsenter"
    C.config.initialize_plugin_configuration_definitions(
        "connection", name, yaml.safe_load(nsenter.DOCUMENTATION)["options"]
    )
    conn = nsenter.Connection(PlayContext(), None)
    conn._load_name = name
    conn.set_options(direct={"remote_addr": node, "lab": LAB, "state_dir": state_dir, **options})
    return conn


def test_commands_run_in_the_node(state_dir):
    conn = connection(state_dir)
    conn._connect()
    rc, out, err = conn.exec_command("ip -o -4 addr show dev eth1")
    assert rc == 0, err
    assert b"10.250.0.10/24" in out  # the node's underlay address: only inside the node
    rc, out, err = conn.exec_command("hostname")
    assert (rc, out.strip()) == (0, b"node1") != (0, socket.gethostname().encode())  # its UTS namespace
    rc, out, err = conn.exec_command("pwd")
    assert (rc, out.strip()) == (0, os.path.expanduser("~").encode())  # starts in $HOME, like ssh
    with IPRoute() as ipr:  # the test's own namespace does not have it
        assert "10.250.0.10" not in [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr()]


def test_return_codes_stdout_stderr_and_stdin(state_dir):
    conn = connection(state_dir)
    rc, out, err = conn.exec_command("echo out; echo err >&2; exit 7")
    assert (rc, out, err) == (7, b"out\n", b"err\n")
    rc, out, _err = conn.exec_command("cat", in_data=b"piped\x00bytes")
    assert (rc, out) == (0, b"piped\x00bytes")


def test_the_node_has_its_own_run(state_dir, tmp_path):
    """/run is the node's own: a file written there through the connection is not the host's."""
    conn = connection(state_dir)
    rc, _out, err = conn.exec_command("echo node > /run/cnfsut-conn-marker")
    assert rc == 0, err
    try:
        assert not os.path.exists("/run/cnfsut-conn-marker")
        fetched = tmp_path / "marker"
        conn.fetch_file("/run/cnfsut-conn-marker", str(fetched))
        assert fetched.read_bytes() == b"node\n"
    finally:
        conn.exec_command("rm -f /run/cnfsut-conn-marker")


def test_put_and_fetch_any_file_name(state_dir, tmp_path):
    conn = connection(state_dir)
    source = tmp_path / "source"
    source.write_bytes(bytes(range(256)) * 64)
    remote = "/run/cnfsut conn 'quoted' $(x) file"
    conn.put_file(str(source), remote)
    try:
        back = tmp_path / "back"
        conn.fetch_file(remote, str(back))
        assert back.read_bytes() == source.read_bytes()
        assert not os.path.exists(remote)
    finally:
        conn.exec_command(f"rm -f {shlex.quote(remote)}")
    with pytest.raises(AnsibleFileNotFound):
        conn.put_file(str(tmp_path / "missing"), "/run/x")
    with pytest.raises(AnsibleError, match="failed to fetch /run/no-such-file from node1"):
        conn.fetch_file("/run/no-such-file", str(tmp_path / "nothing"))


def test_a_node_that_is_not_running_is_unreachable(state_dir):
    conn = connection(state_dir, node="node9")
    with pytest.raises(AnsibleConnectionFailure, match="node9 of lab cnfsut-conn is not running"):
        conn._connect()
    with pytest.raises(AnsibleConnectionFailure, match="not running"):
        conn.exec_command("true")


def test_a_missing_nsenter_is_named(state_dir):
    conn = connection(state_dir, nsenter_path="/nonexistent/nsenter")
    with pytest.raises(AnsibleConnectionFailure, match="cannot find the util-linux program '/nonexistent/nsenter'"):
        conn._connect()
