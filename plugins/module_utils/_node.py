# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole-node apply: every resource of a node, in dependency order, in one session.

Private module_utils of cnfs.netlab, used by the ``node`` module.

:func:`build_resources` turns the module's lists into resource models (the same classes the small
modules use, validated with the same argument specs), ordered so that one :func:`converge` can run
them: removals first, in reverse dependency order, then creations/updates in dependency order
(namespaces -> bridges -> veths -> links -> addresses -> routes -> sysctls -> overlays).

The run uses a :class:`CachedSession` (module_utils/_nlcache.py): the models read the same
namespaces many times, and pyroute2's per-request cost made a warm run of 512 containers take
tens of seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._args import (
    ADDRESS_SPEC,
    BRIDGE_SPEC,
    LINK_SPEC,
    NETNS_SPEC,
    OVERLAY_SPEC,
    ROUTE_SPEC,
    SYSCTL_SPEC,
    VETH_SPEC,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, list_netns
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession
from ansible_collections.cnfs.netlab.plugins.module_utils._record import (
    KINDS as RECORD_KINDS,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._record import (
    RECORD_PATH,
    converge_resources,
    fixed_changes,
    read_record,
    recorded_resources,
    remove_record,
    write_record,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, converge

# (option, argument spec of its items, the item state that removes) in dependency order.
KINDS: list[tuple[str, dict[str, Any], str]] = [
    ("namespaces", NETNS_SPEC, "absent"),
    ("bridges", BRIDGE_SPEC, "absent"),
    ("veths", VETH_SPEC, "absent"),
    ("links", LINK_SPEC, ""),
    ("addresses", ADDRESS_SPEC, "absent"),
    ("routes", ROUTE_SPEC, "absent"),
    ("sysctls", SYSCTL_SPEC, "restored"),
    ("overlays", OVERLAY_SPEC, "absent"),
]


# ------------------------------------------------------------------ argument spec
def item_spec(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options and constraints that validate one item of a list, like the small module does.

    ``state`` has no default in the items: an item without one takes the node's state. Sysctl
    items also accept ``absent`` (meaning ``restored``), like the node's own state.
    """
    options = {key: dict(value) for key, value in spec["argument_spec"].items()}
    if "state" in options:
        options["state"].pop("default", None)
        if "restored" in options["state"].get("choices", []):  # sysctls: absent means restored
            options["state"]["choices"] = [*options["state"]["choices"], "absent"]
    constraints = {key: value for key, value in spec.items() if key != "argument_spec"}
    return options, constraints


def argument_spec() -> dict[str, Any]:
    """The node module's own options; the items of the lists are validated by :func:`validate_items`.

    (Declaring the items' options here would make them a second copy of every small module's
    documentation; validating them with the small modules' specs keeps one.)
    """
    spec: dict[str, Any] = {
        "netns": {"type": "str"},
        "namespaces": {"type": "list", "elements": "raw", "default": []},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "purge_namespaces": {"type": "bool", "default": False},
        "namespace_prefix": {"type": "str"},
        "rollback": {"type": "bool", "default": True},
        "record": {"type": "dict"},
        "record_path": {"type": "path", "default": RECORD_PATH},
        "record_fixed": {"type": "str", "choices": ["enforce", "update"], "default": "enforce"},
        "prune": {"type": "bool", "default": False},
    }
    for option, _spec, _remove in KINDS[1:]:
        spec[option] = {"type": "list", "elements": "dict", "default": []}
    return spec


def validate_items(option: str, items: list[Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each item validated and completed (defaults) by the small module's argument spec.

    Errors name the item by its position, like ``veths[3]: missing required arguments: name``.
    """
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible.module_utils.errors import UnsupportedError

    options, constraints = item_spec(spec)
    validator = ArgumentSpecValidator(options, **constraints)
    out = []
    for num, item in enumerate(items):
        if not isinstance(item, dict):
            raise NetlabError(f"{option}[{num}]: {item!r} is not a dict of the options of its module")
        checked = validator.validate(item)
        if checked.error_messages:
            messages = [
                f"unsupported option {error.msg}" if isinstance(error, UnsupportedError) else error.msg
                for error in checked.errors
            ]
            raise NetlabError(f"{option}[{num}]: {'; '.join(messages)}")
        out.append(checked.validated_parameters)
    return out


# ------------------------------------------------------------------ building the resources
def _models() -> dict[str, Callable[[dict[str, Any]], Resource]]:
    from ansible_collections.cnfs.netlab.plugins.module_utils._address import AddressResource
    from ansible_collections.cnfs.netlab.plugins.module_utils._link import (
        BridgeResource,
        LinkResource,
        VethResource,
    )
    from ansible_collections.cnfs.netlab.plugins.module_utils._netns import NetnsResource
    from ansible_collections.cnfs.netlab.plugins.module_utils._route import RouteResource
    from ansible_collections.cnfs.netlab.plugins.module_utils._sysctl import SysctlResource

    models: dict[str, Callable[[dict[str, Any]], Resource]] = {
        "namespaces": NetnsResource,
        "bridges": BridgeResource,
        "veths": VethResource,
        "links": LinkResource,
        "addresses": AddressResource,
        "routes": RouteResource,
        "sysctls": SysctlResource,
    }
    try:
        from ansible_collections.cnfs.netlab.plugins.module_utils._overlay_backends import select_backend
    except ImportError:  # pragma: no cover - the overlay model is optional
        pass
    else:
        models["overlays"] = select_backend
    return models


def namespace_items(values: list[Any]) -> list[dict[str, Any]]:
    """`namespaces` items: a plain name or a dict {name, state}, validated like the netns module's options."""
    items = [{"name": value} if isinstance(value, str) else value for value in values]
    for num, value in enumerate(items):
        if not isinstance(value, dict):
            raise NetlabError(f"namespaces[{num}]: {value!r} is neither a name nor a dict with name (and state)")
    return validate_items("namespaces", items, NETNS_SPEC)


def build_resources(params: dict[str, Any], existing_namespaces: list[str] | None = None) -> list[Resource]:
    """The node's resources in the order converge() must run them (pure apart from listing /run/netns).

    Every item takes the node's ``netns`` when it has none and the node's ``state`` when it has none
    (``absent`` means ``restored`` for sysctls; with the node's state absent every item is removed,
    and ``links`` items, which only change existing interfaces, are skipped). Removals run first in
    reverse dependency order, then the rest in dependency order. With ``purge_namespaces``, every
    namespace under /run/netns whose name starts with ``namespace_prefix`` and is not listed is removed.
    """
    models = _models()
    node_state = params.get("state") or "present"
    default_netns = params.get("netns")
    items: dict[str, list[dict[str, Any]]] = {"namespaces": namespace_items(params.get("namespaces") or [])}
    for option, spec, _remove in KINDS[1:]:
        items[option] = validate_items(option, params.get(option) or [], spec)
    if items["overlays"] and "overlays" not in models:  # pragma: no cover
        raise NetlabError("overlays: the overlay model is not available in this release")

    if params.get("purge_namespaces"):
        prefix = params.get("namespace_prefix") or ""
        if not prefix:
            raise NetlabError("purge_namespaces needs namespace_prefix: the prefix of the namespaces this node owns")
        listed = {item["name"] for item in items["namespaces"]}
        names = list_netns() if existing_namespaces is None else existing_namespaces
        for name in names:
            if name.startswith(prefix) and name not in listed:
                items["namespaces"].append({"name": name, "state": "absent"})

    removals: list[Resource] = []
    others: list[Resource] = []
    seen: dict[str, str] = {}
    for option, _spec, remove_state in KINDS:
        model = models[option]
        for num, item in enumerate(items[option]):
            where = f"{option}[{num}]"
            if option != "namespaces" and item.get("netns") is None:
                item["netns"] = default_netns
            if node_state == "absent":
                if option == "links":
                    continue
                item["state"] = remove_state
            elif item.get("state") is None:
                item["state"] = "present"
            elif option == "sysctls" and item["state"] == "absent":
                item["state"] = "restored"
            try:
                res = model(item)
            except NetlabError as exc:
                raise NetlabError(f"{where}: {exc}") from None
            if res.key in seen:
                raise NetlabError(f"{where}: {res.key} is listed twice (also as {seen[res.key]}); list it once")
            seen[res.key] = where
            (removals if item.get("state") in ("absent", "restored") else others).append(res)
    return removals[::-1] + others


# ------------------------------------------------------------------ running it
def summarize(outcome: dict[str, Any]) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
    """Counts per kind (created, changed, removed, unchanged) and the diff of the changed resources only."""
    summary: dict[str, dict[str, int]] = {}
    before_all, after_all = outcome["diff"]["before"], outcome["diff"]["after"]
    diff: dict[str, dict[str, Any]] = {"before": {}, "after": {}}
    for res, _after in outcome["states"]:
        counts = summary.setdefault(res.kind, {"created": 0, "changed": 0, "removed": 0, "unchanged": 0})
        before, after = before_all[res.key], after_all[res.key]
        if before == after:
            counts["unchanged"] += 1
            continue
        if before is None:
            counts["created"] += 1
        elif after is None:
            counts["removed"] += 1
        else:
            counts["changed"] += 1
        diff["before"][res.key] = before
        diff["after"][res.key] = after
    return summary, diff


def plan_with_record(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The lists to apply (with ``prune``, plus the removal of what only the record holds) and the record to write.

    Refuses, before anything changes, a record for a removal and a change of the record's fixed values.
    """
    path = params.get("record_path") or RECORD_PATH
    record, prune = params.get("record"), params.get("prune")
    if record is not None and params.get("state") == "absent":
        raise NetlabError("record: a removal (state=absent) records nothing; drop record (prune removes the record)")
    enforce = record is not None and params.get("record_fixed", "enforce") == "enforce"
    old = read_record(path) if prune or enforce else None
    if enforce:
        changes = fixed_changes(old, record)
        if changes:
            raise NetlabError(f"record {path}: {'; '.join(changes)}")
    if not prune:
        return params, record
    lists = converge_resources({kind: params.get(kind) or [] for kind in RECORD_KINDS}, old, f"record {path}")
    if record is not None:
        record = {**record, "resources": recorded_resources(params)}
    return {**params, **lists}, record


def run_node(module: Any) -> None:
    """The node module: build the resources, converge them in one cached session, report."""
    from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import pyroute2_import_error

    missing = pyroute2_import_error()
    if missing is not None:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("pyroute2"), exception=missing)
    params = module.params
    try:
        lists, record = plan_with_record(params)
        resources = build_resources(lists)
        with CachedSession() as session:
            outcome = converge(session, resources, module.check_mode, rollback=params["rollback"])
        # Only after every resource converged: a record names what the collection owns on the node.
        if params["prune"] and params["state"] == "absent":
            record_changed = remove_record(params["record_path"], module.check_mode)
        else:
            record_changed = record is not None and write_record(params["record_path"], record, module.check_mode)
    except NetlabError as exc:
        module.fail_json(msg=str(exc))
    summary, diff = summarize(outcome)
    module.exit_json(
        changed=outcome["changed"] or record_changed,
        summary=summary,
        diff=diff,
        record_changed=record_changed,
        invocation=invocation(params),
    )


def invocation(params: dict[str, Any]) -> dict[str, Any]:
    """The ``invocation`` of the result: the options as given, except that each list and the record are their item
    counts. Ansible's default echoes every item back, which is the node's whole state again (20 KB at 16 containers)
    for the controller to decode and copy on every host, on every run."""
    args: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, (list, dict)):
            what = "item" if isinstance(value, list) else "key"
            args[key] = f"{len(value)} {what}{'' if len(value) == 1 else 's'}"
        else:
            args[key] = value
    return {"module_args": args}
