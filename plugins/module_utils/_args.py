# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs of shared options (documented by the doc fragments of the same name)."""

from __future__ import annotations

from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._validate import ROUTE_TYPES

NETNS_ARG: dict[str, Any] = {"netns": {"type": "str"}}


# Argument specs of the resource modules, here so that the whole-node apply (`node`) validates each
# item of its lists exactly like the small module of that kind does. Each is the keyword arguments of
# AnsibleModule (argument_spec and its constraints): `AnsibleModule(**VETH_SPEC, supports_check_mode=True)`.
# Keep them in step with the modules' DOCUMENTATION.
STATE_ARG: dict[str, Any] = {"state": {"type": "str", "choices": ["present", "absent"], "default": "present"}}

NETNS_SPEC: dict[str, Any] = {
    "argument_spec": {"name": {"type": "str", "required": True}, **STATE_ARG},
}

VETH_SPEC: dict[str, Any] = {
    "argument_spec": {
        **NETNS_ARG,
        "name": {"type": "str", "required": True},
        "peer": {"type": "str"},
        "peer_netns": {"type": "str"},
        "mtu": {"type": "int"},
        "up": {"type": "bool", "default": True},
        "bridge": {"type": "str"},
        "mac": {"type": "str"},
        "peer_mac": {"type": "str"},
        **STATE_ARG,
    },
    "required_if": [("state", "present", ["peer"])],
}

BRIDGE_SPEC: dict[str, Any] = {
    "argument_spec": {
        **NETNS_ARG,
        "name": {"type": "str", "required": True},
        "mtu": {"type": "int"},
        "stp": {"type": "bool"},
        "up": {"type": "bool", "default": True},
        "ports": {"type": "list", "elements": "str"},
        "ports_exclusive": {"type": "bool", "default": False},
        **STATE_ARG,
    },
}

LINK_SPEC: dict[str, Any] = {
    "argument_spec": {
        **NETNS_ARG,
        "name": {"type": "str", "required": True},
        "up": {"type": "bool"},
        "mtu": {"type": "int"},
        "master": {"type": "str"},
        # The read-only facts of a netlink_info `links` item, so that one can be given back as it is.
        "kind": {"type": "str"},
        **{
            fact: {"type": "raw"}
            for fact in ("index", "operstate", "mac", "peer", "peer_netns", "stp", "ports", "vxlan")
        },
    },
}

ADDRESS_SPEC: dict[str, Any] = {
    "argument_spec": {
        **NETNS_ARG,
        "dev": {"type": "str", "required": True},
        "addresses": {"type": "list", "elements": "str", "default": []},
        "purge": {"type": "bool", "default": False},
        **STATE_ARG,
    },
}


ROUTE_SPEC: dict[str, Any] = {
    "argument_spec": {
        **NETNS_ARG,
        "dest": {"type": "str", "required": True},
        "family": {"type": "str", "choices": ["inet", "inet6"]},
        "gateway": {"type": "str"},
        "dev": {"type": "str"},
        "type": {"type": "str", "choices": list(ROUTE_TYPES), "default": "unicast"},
        "scope": {"type": "str"},
        "metric": {"type": "int"},
        "table": {"type": "str", "default": "main"},
        "onlink": {"type": "bool", "default": False},
        "proto": {"type": "str"},
        **STATE_ARG,
    },
    "required_if": [("onlink", True, ("gateway", "dev"))],
}

SYSCTL_JOURNAL = "/run/cnfs-netlab/sysctl-journal.json"

SYSCTL_SPEC: dict[str, Any] = {
    "argument_spec": {
        **NETNS_ARG,
        "name": {"type": "str", "required": True},
        "value": {"type": "raw"},
        "state": {"type": "str", "choices": ["present", "restored"], "default": "present"},
        "journal": {"type": "path", "default": SYSCTL_JOURNAL},
    },
    "required_if": [("state", "present", ("value",))],
}

OVERLAY_SPEC: dict[str, Any] = {
    "argument_spec": {
        "backend": {"type": "str", "choices": ["udp", "vxlan", "wireguard"], "default": "udp"},
        "name": {"type": "str"},
        "local": {"type": "str"},
        "subnet": {"type": "str"},
        "peers": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "name": {"type": "str", "required": True},
                "address": {"type": "str", "required": True},
                "subnet": {"type": "str", "required": True},
                "public_key": {"type": "str"},
            },
        },
        "port": {"type": "int"},
        "vni": {"type": "int"},
        "mtu": {"type": "int"},
        "underlay_dev": {"type": "str"},
        "key_file": {"type": "path"},
        "remove_key": {"type": "bool", "default": False},
        "state": {"type": "str", "choices": ["present", "absent", "key"], "default": "present"},
        **NETNS_ARG,
    },
    "required_if": [("state", "present", ["local", "subnet"])],
}
