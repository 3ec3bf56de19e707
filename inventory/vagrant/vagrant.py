#!/bin/sh
# -*- mode: python -*-  (sh starts the Python that has PyYAML: CNFS_VAGRANT_INVENTORY_PYTHON, else python3)
''''exec "${CNFS_VAGRANT_INVENTORY_PYTHON:-$(command -v python3 || command -v python)}" "$0" "$@" # '''
# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# Ansible inventory of the Vagrant lab: the nodes of vagrant/lab.yml, reached the way `vagrant ssh-config` says.
#
#     ansible-playbook -i inventory/vagrant playbooks/overlay.yml
#     inventory/vagrant/vagrant.py --list
#
# Group ``nodes`` holds every node of the lab description, in its order. Each host gets:
#
# - ``ansible_host``, ``ansible_port``, ``ansible_user``, ``ansible_ssh_private_key_file`` and SSH options from
#   ``vagrant ssh-config`` (run in vagrant/, so VAGRANT_CWD, VAGRANT_HOME and VAGRANT_DOTFILE_PATH apply);
# - ``ansible_become: true`` (the modules need root) and ``ansible_python_interpreter`` =
#   /opt/cnfs-netlab/venv/bin/python, the venv with pyroute2 that the box (or vagrant/provision.sh) made;
# - ``underlay_address`` (the node's address on the lab's private network, with its prefix length) and
#   ``node_index`` (1, 2, ... in the description's order), which the stage roles and verify use.
#
# Environment: CNFS_VAGRANT_LAB (another lab description), CNFS_VAGRANT_SSH_CONFIG (read this saved output of
# `vagrant ssh-config` instead of running vagrant; vagrant/test.sh saves it once per `vagrant up`),
# CNFS_VAGRANT_PYTHON (another interpreter on the nodes). Needs PyYAML (Ansible's own dependency).

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.realpath(__file__))  # also when linked into molecule's inventory
REPO = os.path.dirname(os.path.dirname(HERE))
VAGRANT_DIR = os.environ.get("VAGRANT_CWD") or os.path.join(REPO, "vagrant")
PYTHON = os.environ.get("CNFS_VAGRANT_PYTHON", "/opt/cnfs-netlab/venv/bin/python")
# ssh-config keys that become ssh options of their own (the others are ansible_* variables).
SSH_OPTIONS = ("UserKnownHostsFile", "StrictHostKeyChecking", "IdentitiesOnly", "PubkeyAcceptedKeyTypes",
               "HostKeyAlgorithms", "ProxyCommand", "ForwardAgent", "ForwardX11")


def fail(msg: str) -> None:
    print(f"inventory/vagrant/vagrant.py: {msg}", file=sys.stderr)
    sys.exit(1)


def load_lab() -> dict[str, Any]:
    path = os.environ.get("CNFS_VAGRANT_LAB") or os.path.join(VAGRANT_DIR, "lab.yml")
    try:
        import yaml
    except ImportError:
        fail("PyYAML is missing: run this inventory with the Python that runs Ansible (pip install pyyaml)")
    try:
        with open(path, encoding="utf-8") as handle:
            lab = yaml.safe_load(handle)
    except OSError as exc:
        fail(f"cannot read the lab description {path}: {exc.strerror}")
    if not isinstance(lab, dict) or not isinstance(lab.get("nodes"), list) or not lab["nodes"]:
        fail(f"{path}: expected a mapping with a non-empty list `nodes` of {{name, ip}}")
    for i, node in enumerate(lab["nodes"], start=1):
        if not isinstance(node, dict) or not node.get("name") or not node.get("ip"):
            fail(f"{path}: node {i} needs a name and an ip, got {node!r}")
    return lab


def parse_ssh_config(text: str) -> dict[str, dict[str, str]]:
    """`vagrant ssh-config` output -> {host: {Option: value}} (first value of each option wins, like ssh)."""
    hosts: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _sep, value = line.partition(" ")
        value = value.strip().strip('"')
        if key.lower() == "host":
            current = hosts.setdefault(value, {})
        elif current is not None:
            current.setdefault(key, value)
    return hosts


def ssh_config(names: list[str]) -> dict[str, dict[str, str]]:
    saved = os.environ.get("CNFS_VAGRANT_SSH_CONFIG")
    if saved:
        try:
            with open(saved, encoding="utf-8") as handle:
                return parse_ssh_config(handle.read())
        except OSError as exc:
            fail(f"cannot read CNFS_VAGRANT_SSH_CONFIG={saved}: {exc.strerror}")
    env = dict(os.environ, VAGRANT_CWD=VAGRANT_DIR, VAGRANT_CHECKPOINT_DISABLE="1")
    try:
        proc = subprocess.run(["vagrant", "ssh-config", *names], env=env, capture_output=True, text=True,
                              check=False, timeout=300)
    except FileNotFoundError:
        fail("vagrant is not installed (vagrant/lab.sh deps)")
    except subprocess.TimeoutExpired:
        fail("`vagrant ssh-config` did not answer in 300 s")
    hosts = parse_ssh_config(proc.stdout)
    if proc.returncode != 0 and not hosts:
        reason = " ".join(proc.stderr.split())[:400]
        fail(f"`vagrant ssh-config` failed ({reason}): is the lab up? vagrant/lab.sh up, or see docs/vagrant.md")
    return hosts


def inventory() -> dict[str, Any]:
    lab = load_lab()
    names = [str(node["name"]) for node in lab["nodes"]]
    prefix = int((lab.get("network") or {}).get("prefix", 24))
    config = ssh_config(names)
    hostvars: dict[str, dict[str, Any]] = {}
    for index, node in enumerate(lab["nodes"], start=1):
        name = str(node["name"])
        ssh = config.get(name)
        if ssh is None:
            fail(f"`vagrant ssh-config` has no entry for {name}: is it up? vagrant/lab.sh up {name}")
        options = [f"-o {key}={shlex.quote(ssh[key])}" for key in SSH_OPTIONS if key in ssh]
        hostvars[name] = {
            "ansible_host": ssh.get("HostName", name),
            "ansible_port": int(ssh.get("Port", 22)),
            "ansible_user": ssh.get("User", "vagrant"),
            "ansible_ssh_private_key_file": ssh.get("IdentityFile"),
            "ansible_ssh_common_args": " ".join(options),
            "ansible_ssh_pipelining": True,
            "ansible_become": True,
            "ansible_python_interpreter": PYTHON,
            "underlay_address": f"{node['ip']}/{prefix}",
            "node_index": index,
        }
        if not hostvars[name]["ansible_ssh_private_key_file"]:
            del hostvars[name]["ansible_ssh_private_key_file"]
    return {
        "_meta": {"hostvars": hostvars},
        "all": {"children": ["nodes"]},
        "nodes": {"hosts": names},
    }


def main() -> None:
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print(json.dumps(inventory(), indent=2, sort_keys=True))
    elif len(sys.argv) == 3 and sys.argv[1] == "--host":
        print(json.dumps(inventory()["_meta"]["hostvars"].get(sys.argv[2], {})))
    else:
        print(f"usage: {sys.argv[0]} --list | --host HOST", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
