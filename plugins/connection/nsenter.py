# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nsenter
short_description: Run tasks inside a node of the built-in lab
version_added: 0.1.0
description:
  - Reaches a node of the cnfs.netlab built-in lab (made by M(cnfs.netlab.lab)) the way C(ssh) reaches a
    real host. Every command runs inside the node's network, mount and UTS namespaces, through util-linux
    C(nsenter --net=FILE --mount=FILE --uts=FILE), where the files are
    O(state_dir)/O(lab)/O(remote_addr)/{net,mnt,uts}.
  - Files are copied in and out through C(cat) running inside the node, the remote path given as an
    argument (never through a shell), so any file name works.
  - The node must run on the host that runs Ansible. Commands run as root, in the node's view of the file
    system (the host's, with the node's own C(/run) and C(/sys)), starting in the home directory of the user
    running Ansible, as with C(ssh).
author:
  - cnfs.netlab contributors (!UNKNOWN)
extends_documentation_fragment:
  - connection_pipelining
options:
  remote_addr:
    description:
      - Name of the node in the lab.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: cnfs_netlab_node
  lab:
    description:
      - Name of the lab the node belongs to (the O(cnfs.netlab.lab#module:name) of M(cnfs.netlab.lab)).
    type: str
    default: netlab
    vars:
      - name: cnfs_netlab_lab
    env:
      - name: CNFS_NETLAB_LAB
  state_dir:
    description:
      - The lab state directory (the O(cnfs.netlab.lab#module:state_dir) of M(cnfs.netlab.lab)).
    type: path
    default: /run/cnfs-netlab
    vars:
      - name: cnfs_netlab_state_dir
    env:
      - name: CNFS_NETLAB_STATE_DIR
  nsenter_path:
    description:
      - The util-linux C(nsenter) program; looked up in E(PATH) when not absolute.
    type: str
    default: nsenter
    vars:
      - name: cnfs_netlab_nsenter_path
notes:
  - Needs root on the controller (C(setns) needs C(CAP_SYS_ADMIN)); the remote user is ignored.
  - Privilege escalation methods that prompt for a password are not supported; inside a node you already are root.
  - A node that is not running makes its host unreachable, with a message that says how to build the lab.
"""

EXAMPLES = r"""
# inventory/netns/lab.yml (the cnfs.netlab.lab inventory plugin sets these variables for you)
# plugin: cnfs.netlab.lab
# nodes: 2

# A hand-written inventory works too:
# [nodes]
# node1 underlay_address=10.0.0.10/24
# node2 underlay_address=10.0.0.20/24
# [nodes:vars]
# ansible_connection=cnfs.netlab.nsenter
# cnfs_netlab_lab=netlab
"""

import os
import shutil
import subprocess
from typing import Any

import ansible.constants as C
from ansible import context
from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.cnfs.netlab.plugins.module_utils._nsfs import is_netns_file

display = Display()

NS_KINDS = ("net", "mnt", "uts")
NSENTER_FLAGS = {"net": "--net", "mnt": "--mount", "uts": "--uts"}


class Connection(ConnectionBase):
    """Run commands and copy files inside a lab node's namespaces."""

    transport = "cnfs.netlab.nsenter"
    has_pipelining = True
    default_user = "root"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._files: dict[str, str] = {}
        self._nsenter: str | None = None

    # ------------------------------------------------------------------ helpers
    def _node(self) -> str:
        return str(self.get_option("remote_addr") or self._play_context.remote_addr)

    def _where(self) -> tuple[str, str, str]:
        return self._node(), str(self.get_option("lab")), str(self.get_option("state_dir"))

    def _not_running(self, node: str, lab: str) -> AnsibleConnectionFailure:
        sources = context.CLIARGS.get("inventory") or []
        inventory = f"-i {sources[0]} " if sources else ""
        return AnsibleConnectionFailure(
            f"{node} of lab {lab} is not running: run ansible-playbook {inventory}playbooks/lab.yml "
            "(from the cnfs.netlab checkout) to build the lab"
        )

    def _check_node(self) -> None:
        node, lab, state_dir = self._where()
        base = os.path.join(state_dir, lab, node)
        self._files = {kind: os.path.join(base, kind) for kind in NS_KINDS}
        if not all(is_netns_file(path) for path in self._files.values()):
            raise self._not_running(node, lab)

    def _argv(self, argv: list[str]) -> list[bytes]:
        """``argv`` run inside the node: nsenter enters the three namespaces, then starts in $HOME."""
        home = os.path.expanduser("~")
        prefix = [self._nsenter or "nsenter"]
        prefix += [f"{NSENTER_FLAGS[kind]}={path}" for kind, path in self._files.items()]
        if os.path.isabs(home):
            prefix.append(f"--wd={home}")
        return [to_bytes(arg, errors="surrogate_or_strict") for arg in [*prefix, "--", *argv]]

    # ------------------------------------------------------------------ the plugin API
    def _connect(self) -> Connection:
        if not self._connected:
            nsenter = str(self.get_option("nsenter_path"))
            found = nsenter if os.path.isabs(nsenter) and os.access(nsenter, os.X_OK) else shutil.which(nsenter)
            if not found:
                raise AnsibleConnectionFailure(
                    f"cannot find the util-linux program {nsenter!r}: "
                    "install util-linux or set cnfs_netlab_nsenter_path"
                )
            self._nsenter = found
            self._check_node()
            node, lab, state_dir = self._where()
            display.vvv(f"ESTABLISH NSENTER CONNECTION TO NODE {node} OF LAB {lab} ({state_dir})", host=node)
            self._connected = True
        return self

    def exec_command(self, cmd: str, in_data: bytes | None = None, sudoable: bool = True) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._check_node()
        executable = C.DEFAULT_EXECUTABLE.split()[0] if C.DEFAULT_EXECUTABLE else "/bin/sh"
        argv = self._argv([executable, "-c", to_text(cmd, errors="surrogate_or_strict")])
        display.vvv(f"EXEC {to_text(b' '.join(argv))}", host=self._node())
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if in_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stdout, stderr = proc.communicate(in_data)
        return proc.returncode, stdout, stderr

    def put_file(self, in_path: str, out_path: str) -> None:
        super().put_file(in_path, out_path)
        self._check_node()
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._node())
        if not os.path.exists(to_bytes(in_path, errors="surrogate_or_strict")):
            raise AnsibleFileNotFound(f"file or module does not exist: {in_path}")
        # The remote path is "$1" of a fixed script: no quoting, any name works.
        argv = self._argv(["/bin/sh", "-c", 'exec cat > "$1"', "sh", out_path])
        try:
            with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as source:
                proc = subprocess.run(argv, stdin=source, capture_output=True, check=False)
        except OSError as exc:
            raise AnsibleError(f"failed to transfer {in_path} to {out_path} on {self._node()}: {exc}") from exc
        if proc.returncode != 0:
            raise AnsibleError(
                f"failed to transfer {in_path} to {out_path} on {self._node()}: "
                f"{to_text(proc.stderr, errors='surrogate_or_replace').strip()}"
            )

    def fetch_file(self, in_path: str, out_path: str) -> None:
        super().fetch_file(in_path, out_path)
        self._check_node()
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._node())
        argv = self._argv(["cat", "--", in_path])
        try:
            with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as target:
                proc = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=target, stderr=subprocess.PIPE, check=False
                )
        except OSError as exc:
            raise AnsibleError(f"failed to fetch {in_path} from {self._node()} to {out_path}: {exc}") from exc
        if proc.returncode != 0:
            raise AnsibleError(
                f"failed to fetch {in_path} from {self._node()}: "
                f"{to_text(proc.stderr, errors='surrogate_or_replace').strip()}"
            )

    def reset(self) -> None:
        self.close()

    def close(self) -> None:
        self._connected = False
