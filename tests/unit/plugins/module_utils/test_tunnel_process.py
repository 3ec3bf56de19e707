# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parts of the udp backend's process supervision: command lines, pid files, finding by recorded pid."""

from __future__ import annotations

import ast
import os
import sys

from ansible_collections.cnfs.netlab.plugins.module_utils import _tunnel_process
from ansible_collections.cnfs.netlab.plugins.module_utils._tunnel_process import (
    BOOT,
    MARK,
    TunnelProcess,
    alive,
    attached,
    forwarder_source,
    parse_socat_argv,
    parse_tunnel_argv,
    tunnel_argv,
)

OLD_SOCAT = [
    "/usr/bin/socat",
    "-d",
    "-b",
    "65536",
    "UDP4-DATAGRAM:10.0.0.2:9000,bind=10.0.0.1:9000,reuseport",
    "TUN,tun-name=tun-node2,tun-type=tun,iff-no-pi",
]


def test_the_command_is_the_nodes_python_the_bootstrap_the_mark_and_the_endpoints():
    argv = tunnel_argv("/usr/bin/python3", "tun-node2", "10.0.0.1", "10.0.0.2", 9000)
    assert argv[:5] == ["/usr/bin/python3", "-S", "-c", BOOT, MARK]
    assert argv[5:9] == ["tun-node2", "10.0.0.1", "10.0.0.2", "9000"]
    assert parse_tunnel_argv(argv, "tun-node2") == {
        "remote": "10.0.0.2",
        "local": "10.0.0.1",
        "port": 9000,
        "program": "forwarder",
    }


def test_parse_rejects_other_processes_and_other_devices():
    argv = tunnel_argv("/usr/bin/python3", "tun-node2", "10.0.0.1", "10.0.0.2", 9000)
    assert parse_tunnel_argv(argv, "tun-node3") is None
    assert parse_tunnel_argv([argv[0], "-c", "print(1)", *argv[4:]], "tun-node2") is None
    assert parse_tunnel_argv([], "tun-node2") is None
    assert parse_tunnel_argv(OLD_SOCAT, "tun-node2") is None


def test_a_socat_of_an_earlier_release_is_recognised_so_that_an_apply_replaces_it():
    assert parse_socat_argv(OLD_SOCAT, "tun-node2") == {
        "remote": "10.0.0.2",
        "local": "10.0.0.1",
        "port": 9000,
        "program": "socat",
    }
    assert parse_socat_argv(OLD_SOCAT, "tun-node3") is None
    assert parse_socat_argv(["/usr/bin/sleep", *OLD_SOCAT[1:]], "tun-node2") is None


def test_the_forwarder_is_a_program_of_its_own():
    """What the process runs is forward()'s source alone: it must compile and name nothing of the collection."""
    source = forwarder_source()
    tree = ast.parse(source)
    assert [type(node).__name__ for node in tree.body] == ["FunctionDef", "Expr"]
    assert "ansible" not in source
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    local = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    local |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler) and n.name}
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    arguments = {a.arg for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) for a in n.args.args}
    builtins = set(dir(__import__("builtins")))
    assert names - local - imported - arguments - builtins - {"forward", "sys", "receive"} == set()


def test_a_failing_setup_exits_with_a_message_naming_the_device(tmp_path):
    """The forwarder, run as the tunnel process is, on an address this namespace does not have."""
    import subprocess

    argv = tunnel_argv(sys.executable, "tun-cnfsut", "192.0.2.254", "192.0.2.253", 9)
    proc = subprocess.run(argv, input=forwarder_source(), capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1
    assert "cnfs.netlab tunnel tun-cnfsut: bind 192.0.2.254:9: " in proc.stderr
    assert "Cannot assign requested address" in proc.stderr


def test_attached_is_false_for_a_process_without_the_device():
    assert not attached(os.getpid(), "tun-node2")
    assert not attached(2**22 + 1, "tun-node2")


def test_files_live_in_the_namespace_directory():
    proc = TunnelProcess("node1", "tun-node2", "overlay udp tun in netns node1")
    assert proc.pid_file == "/run/cnfs-netlab/overlay/node1/tun-node2.pid"
    assert proc.log_file == "/run/cnfs-netlab/overlay/node1/tun-node2.log"


def test_recorded_pid_reads_the_pid_file_only(tmp_path, monkeypatch):
    monkeypatch.setattr(_tunnel_process, "state_dir", lambda netns: str(tmp_path))
    proc = TunnelProcess(None, "tun-node2", "overlay udp tun")
    assert proc.recorded_pid() is None and proc.find() is None
    (tmp_path / "tun-node2.pid").write_text("garbage\n")
    assert proc.recorded_pid() is None
    (tmp_path / "tun-node2.pid").write_text(f"{os.getpid()}\n")
    assert proc.recorded_pid() == os.getpid()
    # this very process is alive and in this namespace, but it is not the tunnel's process: never found
    assert alive(os.getpid())
    assert proc.find() is None


def test_stop_without_a_process_only_drops_the_pid_file(tmp_path, monkeypatch):
    monkeypatch.setattr(_tunnel_process, "state_dir", lambda netns: str(tmp_path))
    proc = TunnelProcess(None, "tun-node2", "overlay udp tun")
    (tmp_path / "tun-node2.pid").write_text(f"{os.getpid()}\n")  # a live pid that is not a tunnel process: untouched
    proc.stop()
    assert not (tmp_path / "tun-node2.pid").exists()
    (tmp_path / "tun-node2.log").write_text("log\n")
    proc.forget()
    assert not (tmp_path / "tun-node2.log").exists()


def test_a_pid_that_does_not_run_is_not_alive():
    assert not alive(2**22 + 1)  # above the kernel's pid_max limit
