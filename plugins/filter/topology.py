# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that draw a lab from what cnfs.netlab.netlink_info gathered on its nodes."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.cnfs.netlab.plugins.plugin_utils._topology import build, to_dot, to_mermaid


def _build(infos: Any, underlay: Any):
    if not isinstance(infos, dict):
        raise AnsibleFilterError("topology filters take a dict: host name -> result of cnfs.netlab.netlink_info")
    for host, info in infos.items():
        if not isinstance(info, dict) or "namespaces" not in info:
            raise AnsibleFilterError(f"{host}: not a result of cnfs.netlab.netlink_info (no 'namespaces' key)")
    return build(infos, underlay or {})


def topology_dot(infos: dict[str, Any], underlay: dict[str, str] | None = None, title: str = "cnfs.netlab lab") -> str:
    return to_dot(_build(infos, underlay), title)


def topology_mermaid(
    infos: dict[str, Any], underlay: dict[str, str] | None = None, title: str = "cnfs.netlab lab"
) -> str:
    return to_mermaid(_build(infos, underlay), title)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"topology_dot": topology_dot, "topology_mermaid": topology_mermaid}
