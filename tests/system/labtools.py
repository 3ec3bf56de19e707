# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for system tests on the real kernel: labs described by an inventory of their own, driven with the
Ansible CLIs, and kernel state read directly (nsenter, ip, /proc), independently of the plugins.

The fixtures in conftest.py hand out :class:`Lab` objects. Reuse from any test under tests/system::

    def test_something(lab_factory):
        lab = lab_factory(nodes=2)          # a lab of its own (unique name), removed after the test
        lab.up()                            # ansible-playbook -i <its inventory> playbooks/lab.yml
        res = lab.playbook("playbooks/overlay.yml")
        assert res.rc == 0, res.output
        out = lab.node_run("node1", ["ip", "-j", "addr"])   # read state with nsenter, not through Ansible
        results = lab.adhoc("nodes", "ansible.builtin.command", "hostname")  # {host: result dict}

or, for a lab shared by all tests of a module, the ``lab_module_factory`` fixture. Every lab made by
the fixtures is removed when the test (or module) ends, even on failure: with playbooks/lab_destroy.yml,
and when that fails, by the lab model itself. Needs root.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"
BIN = Path(sys.executable).parent
STATE_DIR = "/run/cnfs-netlab"
CLONE_NEWNET = 0x40000000
SO_NETNS_COOKIE = 71
TIMEOUT = 900  # seconds for one ansible or ansible-playbook run, however loaded the machine

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


def tool(name: str) -> str:
    """An Ansible CLI of the Python running the tests (the venv's), else from PATH."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def ansible_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    env.update(extra)
    return env


@dataclass
class Run:
    """Outcome of an ansible or ansible-playbook run."""

    rc: int
    output: str
    results: dict[str, Any] = field(default_factory=dict)

    def changed(self, host: str = "localhost") -> int:
        """The ``changed=`` count of ``host`` in the play recap."""
        match = re.search(rf"^{re.escape(host)}\s*:\s*ok=\d+\s+changed=(\d+)", self.output, re.M)
        assert match, f"no recap for {host}:\n{self.output}"
        return int(match.group(1))


@dataclass
class Lab:
    """A lab described by an inventory directory of its own (plugin cnfs.netlab.lab)."""

    name: str
    inventory: Path
    nodes: list[str]
    state_dir: str = STATE_DIR

    # ------------------------------------------------------------------ Ansible
    def playbook(self, playbook: str | Path, *args: str, env: dict[str, str] | None = None) -> Run:
        path = Path(playbook)
        if not path.is_absolute():
            path = REPO / path
        cmd = [tool("ansible-playbook"), "-i", str(self.inventory), str(path), *args]
        proc = subprocess.run(
            cmd, cwd=REPO, env=ansible_env(**(env or {})), capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        return Run(proc.returncode, proc.stdout + proc.stderr)

    def up(self, *args: str) -> Run:
        return self.playbook("playbooks/lab.yml", *args)

    def down(self, *args: str) -> Run:
        return self.playbook("playbooks/lab_destroy.yml", *args)

    def adhoc(
        self, pattern: str, module: str, args: str | dict[str, Any] | None = None, *extra: str, env: Any = None
    ) -> Run:
        """``ansible PATTERN -m MODULE -a ARGS``; ``results`` maps each host to its JSON result (tree callback)."""
        tree = Path(f"/tmp/cnfst-tree-{uuid.uuid4().hex[:8]}")
        cmd = [tool("ansible"), "-i", str(self.inventory), pattern, "-m", module, "-t", str(tree), *extra]
        if args is not None:
            cmd += ["-a", args if isinstance(args, str) else json.dumps(args)]
        try:
            env_ = ansible_env(**(env or {}))
            proc = subprocess.run(cmd, cwd=REPO, env=env_, capture_output=True, text=True, timeout=TIMEOUT, check=False)
            results = {}
            if tree.is_dir():
                for item in tree.iterdir():
                    results[item.name] = json.loads(item.read_text())
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        return Run(proc.returncode, proc.stdout + proc.stderr, results)

    # ------------------------------------------------------------------ the kernel, directly
    @property
    def dir(self) -> str:
        return os.path.join(self.state_dir, self.name)

    @property
    def underlay(self) -> str:
        return os.path.join(self.dir, "underlay.net")

    def files(self, node: str) -> dict[str, str]:
        return {kind: os.path.join(self.dir, node, kind) for kind in ("net", "mnt", "uts")}

    def node_run(self, node: str, argv: list[str], check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
        """Run ``argv`` inside a node with util-linux nsenter (independent of the connection plugin)."""
        f = self.files(node)
        cmd = ["nsenter", f"--net={f['net']}", f"--mount={f['mnt']}", f"--uts={f['uts']}", "--", *argv]
        kwargs.setdefault("timeout", 120)  # a daemon that kept the output pipes open fails the test, not hangs it
        return subprocess.run(cmd, capture_output=True, text=True, check=check, **kwargs)

    def node_json(self, node: str, argv: list[str]) -> Any:
        return json.loads(self.node_run(node, argv).stdout)

    def underlay_json(self, argv: list[str]) -> Any:
        out = subprocess.run(
            ["nsenter", f"--net={self.underlay}", "--", *argv], capture_output=True, text=True, check=False, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def mounts(self) -> list[str]:
        """Mount points of the host's mount namespace at or under the lab directory."""
        return [m for m in mountpoints() if m == self.dir or m.startswith(self.dir + "/")]

    def destroy(self) -> None:
        """Remove the lab: the playbook first; when it fails, the lab model directly."""
        if not os.path.exists(self.dir):
            return
        run = self.down()
        if run.rc == 0 and not os.path.exists(self.dir):
            return
        from ansible_collections.cnfs.netlab.plugins.module_utils._labnode import build_resources
        from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
        from ansible_collections.cnfs.netlab.plugins.module_utils._resource import converge

        _paths, resources, _nodes = build_resources({"name": self.name, "state": "absent", "state_dir": self.state_dir})
        with CachedSession() as session:
            converge(session, resources, check_mode=False)


def write_inventory(directory: Path, lab: str, nodes: int | list[str], **options: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["plugin: cnfs.netlab.lab", f"lab: {lab}", f"nodes: {json.dumps(nodes)}"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in options.items()]
    (directory / "lab.yml").write_text("\n".join(lines) + "\n")
    return directory


def unique_lab_name(hint: str) -> str:
    return f"cnfst-{re.sub(r'[^A-Za-z0-9]', '', hint)[:24]}-{uuid.uuid4().hex[:6]}"


# ---------------------------------------------------------------------------------- kernel readers
def mountpoints(pid: str = "self") -> list[str]:
    out = []
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            raw = line.split(" ")[4]
            out.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), raw))
    return out


def netns_cookie(path: str) -> int | None:
    """The network namespace cookie (64 bits, never reused) of the namespace behind ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    found: dict[str, int] = {}

    def inside() -> None:  # a thread of its own: setns changes only this thread
        if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            found["cookie"] = int.from_bytes(sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8), "little")

    try:
        thread = threading.Thread(target=inside)
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    return found.get("cookie")


def live_netns_cookies() -> set[int]:
    """Cookies of every network namespace that can still be reached: by a process, an open file descriptor,
    or a bind mount in any mount namespace that has a process."""
    paths: list[str] = []
    mnt_seen: set[int] = set()
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        base = f"/proc/{pid}"
        paths.append(f"{base}/ns/net")
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"{base}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"{base}/fd/{fd}").startswith("net:["):
                        paths.append(f"{base}/fd/{fd}")
        try:
            mnt = os.stat(f"{base}/ns/mnt").st_ino
        except OSError:
            continue
        if mnt in mnt_seen:
            continue
        mnt_seen.add(mnt)
        with contextlib.suppress(OSError), open(f"{base}/mountinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split(" ")
                if fields[3].startswith("net:["):
                    paths.append(f"{base}/root{fields[4]}")
    cookies: set[int] = set()
    inodes: set[int] = set()
    for path in paths:
        try:
            inode = os.stat(path).st_ino
        except OSError:
            continue
        if inode in inodes:
            continue
        inodes.add(inode)
        cookie = netns_cookie(path)
        if cookie is not None:
            cookies.add(cookie)
    return cookies


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not: it has let go of its namespaces)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def pids_of(pattern: str) -> list[int]:
    """Live pids whose full command line matches ``pattern`` (a regex)."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if re.search(pattern, cmdline) and alive(int(pid)):
            found.append(int(pid))
    return found


def host_links() -> list[dict[str, Any]]:
    return json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True).stdout)
