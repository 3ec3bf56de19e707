# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the stage roles: the plans of the lab description, the record of a plan, and verify's checks and
table. The logic is in plugin_utils/_stage.py and plugin_utils/_verify.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.cnfs.netlab.plugins.module_utils import _record
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError
from ansible_collections.cnfs.netlab.plugins.plugin_utils import _stage, _verify

# The host variables the planner reads, besides the lab description's cnfs_netlab_* settings.
_HOST_KEYS = ("node_index", "underlay_ip", "underlay_address", "ansible_host")


def _host_view(hostvars: Any, host: str) -> dict[str, Any]:
    try:
        hv = hostvars[host]
    except KeyError:
        raise AnsibleFilterError(f"stage_plans: {host} is not a host of the inventory") from None
    keys = [_stage.VAR_PREFIX + k for k in _stage.LAB_DEFAULTS] + list(_HOST_KEYS)
    return {k: hv[k] for k in keys if k in hv}


def _records(records: Any) -> dict[str, Any]:
    return {h: r for h, r in (records or {}).items() if isinstance(r, Mapping) and isinstance(r.get("plan"), Mapping)}


def _as_json(plan: dict[str, Any]) -> dict[str, str]:
    resources = plan["resources"]
    out = {"backend": plan.get("backend", ""), "record": json.dumps(plan["record"])}
    out.update({key: json.dumps(resources.get(key, [])) for key in _record.KINDS})
    return out


def stage_plans(
    hostvars: Any,
    stage: str,
    nodes: list[str],
    overrides: dict[str, Any] | None = None,
    as_json: bool = False,
) -> dict[str, Any]:
    try:
        plans = _stage.plan_stage(
            stage, list(nodes), {h: _host_view(hostvars, h) for h in nodes}, dict(overrides or {})
        )
    except NetlabError as exc:
        raise AnsibleFilterError(f"the plan cannot work: {exc}") from None
    # Each plan carries its record (stage_record's value), so that the apply task calls no filter: a filter in a
    # task's arguments loads this collection's filter plugins again in every host's worker process.
    out = {host: {**plan, "record": _stage.record(stage, plan)} for host, plan in plans.items()}
    if as_json:
        # What the stage roles keep (plan.yml). Ansible walks every value of a task's result, and of the variables
        # of every host for each of its tasks, several times over; as text, the 500 KB of plans of 32 nodes x 16
        # containers cost what a few strings per node cost (planning task 0.44-0.63 s -> 0.09-0.14 s, the whole
        # warm run 8.7 s -> 7.8 s).
        return {host: _as_json(plan) for host, plan in out.items()}
    return out


def stage_record(plan: dict[str, Any]) -> dict[str, Any]:
    return _stage.record(plan["stage"], plan)


def verify_checks(records: dict[str, Any], host: str, options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    plans = {h: _stage.recorded_plan(r) for h, r in _records(records).items()}
    if host not in plans:
        return []
    o = options or {}
    return _verify.checks(
        plans,
        host,
        count=int(o.get("count", 1)),
        timeout=float(o.get("timeout", 1.0)),
        tcp_port=o.get("tcp_port"),
        dont_fragment=o.get("dont_fragment"),
    )


def verify_table(
    records: dict[str, Any],
    hosts: list[str],
    reach: dict[str, Any],
    infos: dict[str, Any] | None = None,
    stage: str = "",
) -> dict[str, Any]:
    plans = {h: _stage.recorded_plan(r) for h, r in _records(records).items()}
    extra: list[dict[str, Any]] = []
    for host in hosts:
        plan = plans.get(host)
        if plan is None:
            continue
        if stage and plan["stage"] != stage:
            extra.append(
                {
                    "ok": False,
                    "source": host,
                    "target": "applied stage",
                    "address": "-",
                    "detail": f"the node holds stage {plan['stage']}, not {stage}",
                }
            )
        info = (infos or {}).get(host)
        if isinstance(info, Mapping) and "namespaces" in info:
            extra += [
                {
                    "ok": False,
                    "source": host,
                    "target": "leftover",
                    "address": "-",
                    "detail": f"{what} (not of stage {plan['stage']})",
                }
                for what in _verify.leftovers(plan, dict(info))
            ]
    return _verify.table(list(hosts), plans, dict(reach or {}), extra)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "stage_plans": stage_plans,
            "stage_record": stage_record,
            "verify_checks": verify_checks,
            "verify_table": verify_table,
        }
