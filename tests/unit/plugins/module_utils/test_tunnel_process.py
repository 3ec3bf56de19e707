# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parts of the udp backend's process supervision: socat command lines, pid files, finding by recorded pid."""

from __future__ import annotations

import os

from ansible_collections.cnfs.netlab.plugins.module_utils import _tunnel_process
from ansible_collections.cnfs.netlab.plugins.module_utils._tunnel_process import (
    TunnelProcess,
    alive,
    parse_socat_argv,
    socat_argv,
)


def test_socat_command_uses_an_unconnected_shared_socket_and_no_packet_info():
    argv = socat_argv("/usr/bin/socat", "tun-node2", "10.0.0.1", "10.0.0.2", 9000)
    assert "UDP4-DATAGRAM:10.0.0.2:9000,bind=10.0.0.1:9000,reuseport" in argv
    assert "TUN,tun-name=tun-node2,tun-type=tun,iff-no-pi" in argv
    assert parse_socat_argv(argv, "tun-node2") == {"remote": "10.0.0.2", "local": "10.0.0.1", "port": 9000}


def test_parse_socat_rejects_other_processes_and_other_devices():
    argv = socat_argv("/usr/bin/socat", "tun-node2", "10.0.0.1", "10.0.0.2", 9000)
    assert parse_socat_argv(argv, "tun-node3") is None
    assert parse_socat_argv(["/usr/bin/sleep", *argv[1:]], "tun-node2") is None
    assert parse_socat_argv([], "tun-node2") is None


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
    # this very process is alive and in this namespace, but it is not the tunnel's socat: never found
    assert alive(os.getpid())
    assert proc.find() is None


def test_stop_without_a_process_only_drops_the_pid_file(tmp_path, monkeypatch):
    monkeypatch.setattr(_tunnel_process, "state_dir", lambda netns: str(tmp_path))
    proc = TunnelProcess(None, "tun-node2", "overlay udp tun")
    (tmp_path / "tun-node2.pid").write_text(f"{os.getpid()}\n")  # a live pid that is not a socat: untouched
    proc.stop()
    assert not (tmp_path / "tun-node2.pid").exists()
    (tmp_path / "tun-node2.log").write_text("log\n")
    proc.forget()
    assert not (tmp_path / "tun-node2.log").exists()


def test_a_pid_that_does_not_run_is_not_alive():
    assert not alive(2**22 + 1)  # above the kernel's pid_max limit
