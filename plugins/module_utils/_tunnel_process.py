# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervised socat of one tunnel of the overlay's udp backend: start, find, stop and reap it by recorded pid.

A process is only ever found, and stopped, through the pid file this module wrote, and only when that pid
is alive, in the node's namespace and running the socat command line this module builds for the device.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, Session, netns_path
from ansible_collections.cnfs.netlab.plugins.module_utils._overlay import state_dir

# Seconds to wait for socat to attach to its tun, and for it to stop; polled, so a quiet machine waits
# milliseconds, while a loaded one (load 8-19) took more than 3 s.
SOCAT_TIMEOUT = 10.0


def socat_argv(socat: str, dev: str, local: str, remote: str, port: int) -> list[str]:
    """The command of one tunnel's socat: an unconnected, port-sharing UDP socket and an existing TUN."""
    return [
        socat,
        "-d",  # fatal errors, errors and warnings; -d -d would log a notice per received datagram
        "-b",
        "65536",
        f"UDP4-DATAGRAM:{remote}:{port},bind={local}:{port},reuseport",
        f"TUN,tun-name={dev},tun-type=tun,iff-no-pi",
    ]


_SOCAT_UDP = re.compile(r"^UDP4-DATAGRAM:(?P<remote>[0-9.]+):(?P<port>\d+),bind=(?P<local>[0-9.]+):\d+")


def parse_socat_argv(argv: list[str], dev: str) -> dict[str, Any] | None:
    """remote, local and port of a socat started by :func:`socat_argv` for ``dev``; None if it is not one."""
    if not argv or os.path.basename(argv[0]) != "socat" or f"TUN,tun-name={dev},tun-type=tun,iff-no-pi" not in argv:
        return None
    for arg in argv:
        match = _SOCAT_UDP.match(arg)
        if match:
            return {"remote": match["remote"], "local": match["local"], "port": int(match["port"])}
    return None


def find_socat() -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    return shutil.which("socat", path=path)


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


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


class TunnelProcess:
    """The socat of tunnel device ``dev`` in ``netns``; ``owner`` names the overlay in messages."""

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
        """(pid, arguments) of the tunnel's socat when the recorded pid is alive and is that socat."""
        pid = self.recorded_pid()
        netns_file = netns_path(self.netns) if self.netns else "/proc/self/ns/net"
        if pid is None or not alive(pid) or not _same_netns(pid, netns_file):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = [a.decode(errors="replace") for a in handle.read().split(b"\0") if a]
        except OSError:
            return None
        args = parse_socat_argv(argv, self.dev)
        return (pid, args) if args else None

    def start(
        self, session: Session, socat: str, local: str, remote: str, port: int, attached: Callable[[], bool]
    ) -> None:
        """Start socat inside the namespace and wait until ``attached()`` (the device has carrier)."""
        os.makedirs(state_dir(self.netns), mode=0o755, exist_ok=True)
        argv = socat_argv(socat, self.dev, local, remote, port)
        with open(self.log_file, "ab") as log:
            log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} cnfs.netlab overlay: starting {' '.join(argv)}\n".encode())
            log.flush()
            # Forked from this thread, which is inside the node's namespace: socat runs there.
            with session.inside(self.netns):
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    close_fds=True,
                    start_new_session=True,
                )
        with open(self.pid_file + ".tmp", "w") as handle:
            handle.write(f"{proc.pid}\n")
        os.replace(self.pid_file + ".tmp", self.pid_file)
        deadline = time.monotonic() + SOCAT_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if attached():
                return
            time.sleep(0.02)
        code = proc.poll()
        self.stop()
        with contextlib.suppress(OSError), open(self.log_file, errors="replace") as handle:
            tail = " | ".join(handle.read().strip().splitlines()[-3:])
        raise NetlabError(
            f"{self.owner}: socat for {self.dev} "
            + (f"exited with code {code}" if code is not None else f"did not attach to {self.dev} in {SOCAT_TIMEOUT} s")
            + f": {tail} (log: {self.log_file})"
        )

    def stop(self) -> None:
        """SIGTERM (SIGKILL after SOCAT_TIMEOUT) to the recorded socat, reaped; the pid file goes."""
        process = self.find()
        if process is not None:
            pid = process[0]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + SOCAT_TIMEOUT
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
