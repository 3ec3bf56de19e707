# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tunnel process of one device of the overlay's udp backend: start, find, stop and reap it by recorded pid.

The process is the talk's user-space UDP/TUN tunnel, written for this collection instead of socat: one
Python process per device, started with the node's own interpreter from the source of :func:`forward`
(piped into it, so nothing is installed on the node). It binds ``local:port`` (shared by every tunnel of
the node through ``SO_REUSEPORT``), *connects* that socket to the peer, so that the kernel hands it only
the peer's datagrams, then attaches to the device. One thread carries the device's packets to the peer,
another the peer's datagrams into the device, each with one system call per read and per write. An ICMP
error from a peer that is down only fails one send or receive, which the process ignores (socat, connected,
exits on the first one). It is about 1.2x as fast as the talk's socat (docs/overlay.md).

A process is only ever found, and stopped, through the pid file this module wrote, and only when that pid
is alive, in the node's namespace and running the command line this module builds for the device. A socat
of an earlier release of this module, recorded in the same pid file, is found too, so that it is replaced.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, Session, netns_path
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import state_dir

# Seconds to wait for the process to attach to its tun, and for it to stop; polled, so a quiet machine
# waits milliseconds, while a loaded one (load 8-19) took more than 3 s.
START_TIMEOUT = 10.0
# The name the process carries in its command line, after the bootstrap: what find() looks for.
MARK = "cnfs-netlab-tunnel"
# The bootstrap: the process reads the forwarder's source from its stdin, then runs it with its arguments.
BOOT = "import sys; exec(sys.stdin.read())"
# Socket buffers of the tunnel's UDP socket. The kernel's defaults (about 200 KiB) drop bursts of a TCP
# flow's window, and every drop is a retransmission: with 4 MiB a TCP flow through the tunnel is about
# 1.5x as fast on this project's lab (docs/overlay.md). Set past net.core.[rw]mem_max (root), else capped by it.
SOCKET_BUFFER = 4 << 20


def forward(dev: str, local: str, remote: str, port: str, buffer: str) -> None:  # pragma: no cover - own process
    """The tunnel process: carry ``dev``'s packets to ``remote:port`` and back, until it is stopped.

    Runs as its own Python process (see :func:`tunnel_argv`), from this function's source alone: it imports
    what it uses itself and touches nothing else of the collection.
    """
    import _thread
    import fcntl
    import os
    import socket
    import struct
    import sys

    tunsetiff, iff_tun, iff_no_pi = 0x400454CA, 0x0001, 0x1000
    so_sndbufforce, so_rcvbufforce = 32, 33
    step = "socket"
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        for force, plain in ((so_rcvbufforce, socket.SO_RCVBUF), (so_sndbufforce, socket.SO_SNDBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, int(buffer))
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, plain, int(buffer))
        step = f"bind {local}:{port}"
        sock.bind((local, int(port)))
        step = f"connect {remote}:{port}"
        sock.connect((remote, int(port)))
        step = f"attach to {dev}"
        tun = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        fcntl.ioctl(tun, tunsetiff, struct.pack("16sH", dev.encode(), iff_tun | iff_no_pi))
    except OSError as exc:
        sys.stderr.write(f"cnfs.netlab tunnel {dev}: {step}: {exc}\n")
        raise SystemExit(1) from None  # its own process, not the module: the log line is the report
    sys.stderr.write(f"cnfs.netlab tunnel {dev}: {local}:{port} <-> {remote}:{port}\n")
    sys.stderr.flush()

    def receive() -> None:
        recv, write = sock.recv, os.write
        try:
            while True:
                try:  # noqa: SIM105 - a plain try costs nothing per packet, a context manager does
                    write(tun, recv(65535))
                except OSError:  # an ICMP error of the peer, or a datagram the device refuses: drop it
                    pass
        except BaseException:  # anything else ends the whole process, never half a tunnel
            os._exit(1)

    _thread.start_new_thread(receive, ())
    read, send = os.read, sock.send
    while True:
        packet = read(tun, 65535)
        try:  # noqa: SIM105 - as above
            send(packet)
        except OSError:  # ECONNREFUSED of a peer that is down, ENOBUFS: drop the packet, like a wire
            pass


def forwarder_source() -> str:
    """The program the tunnel process runs: :func:`forward` and its call with the command line's arguments."""
    return inspect.getsource(forward) + "\n\nforward(*sys.argv[2:])\n"


def tunnel_argv(python: str, dev: str, local: str, remote: str, port: int) -> list[str]:
    """The command of one tunnel's process: the node's Python, the bootstrap, the mark and the endpoints."""
    return [python, "-S", "-c", BOOT, MARK, dev, local, remote, str(port), str(SOCKET_BUFFER)]


def parse_tunnel_argv(argv: list[str], dev: str) -> dict[str, Any] | None:
    """remote, local and port of a process started by :func:`tunnel_argv` for ``dev``; None if it is not one."""
    if len(argv) != 10 or argv[1:5] != ["-S", "-c", BOOT, MARK] or argv[5] != dev:
        return None
    local, remote, port = argv[6], argv[7], argv[8]
    if not port.isdigit():
        return None
    return {"remote": remote, "local": local, "port": int(port), "program": "forwarder"}


_SOCAT_UDP = re.compile(r"^UDP4-DATAGRAM:(?P<remote>[0-9.]+):(?P<port>\d+),bind=(?P<local>[0-9.]+):\d+")


def parse_socat_argv(argv: list[str], dev: str) -> dict[str, Any] | None:
    """remote, local and port of the socat an earlier release started for ``dev``; None if it is not one."""
    if not argv or os.path.basename(argv[0]) != "socat" or f"TUN,tun-name={dev},tun-type=tun,iff-no-pi" not in argv:
        return None
    for arg in argv:
        match = _SOCAT_UDP.match(arg)
        if match:
            return {"remote": match["remote"], "local": match["local"], "port": int(match["port"]), "program": "socat"}
    return None


def _same_netns(pid: int, netns_file: str) -> bool:
    try:
        a = os.stat(f"/proc/{pid}/ns/net")
        b = os.stat(netns_file)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


def attached(pid: int, dev: str) -> bool:
    """Whether process ``pid`` holds ``dev`` open: the kernel names the device of a tun file in its fdinfo.
    (The device's carrier would not do: another process may hold it.)"""
    fds = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fds)
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(f"{fds}/{name}") != "/dev/net/tun":
                continue
            with open(f"/proc/{pid}/fdinfo/{name}") as handle:
                if f"iff:\t{dev}" in handle.read().splitlines():
                    return True
        except OSError:
            continue
    return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


class TunnelProcess:
    """The tunnel process of device ``dev`` in ``netns``; ``owner`` names the overlay in messages."""

    def __init__(self, netns: str | None, dev: str, owner: str) -> None:
        self.netns = netns
        self.dev = dev
        self.owner = owner

    @property
    def pid_file(self) -> str:
        return os.path.join(state_dir(self.netns), f"{self.dev}.pid")

    @property
    def log_file(self) -> str:
        return os.path.join(state_dir(self.netns), f"{self.dev}.log")

    def recorded_pid(self) -> int | None:
        """The pid in the pid file, whether or not it still runs."""
        try:
            with open(self.pid_file) as handle:
                return int(handle.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def find(self) -> tuple[int, dict[str, Any]] | None:
        """(pid, arguments) of the device's tunnel process (or an earlier release's socat) when the
        recorded pid is alive and is that process; arguments' ``program`` tells which."""
        pid = self.recorded_pid()
        netns_file = netns_path(self.netns) if self.netns else "/proc/self/ns/net"
        if pid is None or not alive(pid) or not _same_netns(pid, netns_file):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = [a.decode(errors="replace") for a in handle.read().split(b"\0") if a]
        except OSError:
            return None
        args = parse_tunnel_argv(argv, self.dev) or parse_socat_argv(argv, self.dev)
        return (pid, args) if args else None

    def start(self, session: Session, local: str, remote: str, port: int) -> None:
        """Start the process inside the namespace and wait until it has attached to the device."""
        os.makedirs(state_dir(self.netns), mode=0o755, exist_ok=True)
        argv = tunnel_argv(sys.executable, self.dev, local, remote, port)
        source = forwarder_source().encode()
        with open(self.log_file, "ab") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} cnfs.netlab overlay: starting {' '.join(argv)}\n".encode())
            log.flush()
            # Forked from this thread, which is inside the node's namespace: the process runs there.
            with session.inside(self.netns):
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=log,
                    stderr=log,
                    close_fds=True,
                    start_new_session=True,
                )
        with open(self.pid_file + ".tmp", "w") as handle:
            handle.write(f"{proc.pid}\n")
        os.replace(self.pid_file + ".tmp", self.pid_file)
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(source)
        proc.stdin.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if attached(proc.pid, self.dev):
                return
            time.sleep(0.01)
        code = proc.poll()
        self.stop()
        with contextlib.suppress(OSError), open(self.log_file, errors="replace") as handle:
            tail = " | ".join(handle.read().strip().splitlines()[-3:])
        raise NetlabError(
            f"{self.owner}: the tunnel process of {self.dev} "
            + (f"exited with code {code}" if code is not None else f"did not attach to it in {START_TIMEOUT} s")
            + f": {tail} (log: {self.log_file})"
        )

    def stop(self) -> None:
        """SIGTERM (SIGKILL after START_TIMEOUT) to the recorded process, reaped; the pid file goes."""
        process = self.find()
        if process is not None:
            pid = process[0]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                _reap(pid)
                if not alive(pid):
                    break
                time.sleep(0.02)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
                _reap(pid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pid_file)

    def forget(self) -> None:
        """Drop the files of a removed tunnel (the log goes too: the tunnel is gone)."""
        for path in (self.pid_file, self.log_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(state_dir(self.netns))
