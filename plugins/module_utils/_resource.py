# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The resource model shared by every module and by the whole-node apply.

Each kind of object (namespace, link, address, route, sysctl, overlay) is a
:class:`Resource` subclass with four steps:

``check(session)``
    Validate against the kernel and against what earlier resources of the same run
    will do (``session.plan``, _plan.py). Raise :class:`NetlabError`. Never changes anything.
``read(session)``
    The current state, in the same shape the modules accept, or ``None`` when absent.
``want(current)``
    The desired state given the current one (attributes the user left out keep their
    current value), or ``None`` for absent. Pure.
``apply(session, current, desired)``
    Make the kernel match ``desired``. Only called when ``current != desired`` and not
    in check mode.

:func:`converge` runs a list of resources in order, in one session: every ``check``
first (so bad input changes nothing), then read -> want -> compare -> apply per
resource. Check mode and real mode share this one path; the diff is built from the
same before/after values that decide ``changed``.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    NetlinkError,
    Session,
    kernel_message,
    keyed,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._nlcache import CachedSession

# Evaluated at run time on managed nodes (Python >= 3.9 there), hence typing's spelling.
State = Optional[dict[str, Any]]  # noqa: UP045


class Resource:
    """Base class: subclasses set ``kind`` and implement the four steps."""

    kind = "resource"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.state = spec.get("state", "present")

    @property
    def netns(self) -> str | None:
        return self.spec.get("netns")

    @property
    def key(self) -> str:
        """A stable, human-readable identity, used in messages and as the diff key."""
        return keyed(f"{self.kind} {self.spec.get('name')}", self.netns)

    def check(self, session: Session) -> None:
        if self.state == "present":
            session.require_netns(self.netns, self.key)

    def read(self, session: Session) -> State:
        raise NotImplementedError

    def want(self, current: State) -> State:
        raise NotImplementedError

    def apply(self, session: Session, current: State, desired: State) -> None:
        raise NotImplementedError

    def result(self, after: State) -> dict[str, Any]:
        """Extra return values of the module for this resource."""
        return {}

    def rollback(self, session: Session, before: State) -> None:
        """Put back ``before``, the state read before this run changed the resource (``None``: remove it).

        The default applies ``before`` as the desired state; models whose apply needs more override it.
        """
        current = self.read(session)
        if current != before:
            self.apply(session, current, before)


def merge(current: State, desired: dict[str, Any]) -> dict[str, Any]:
    """Desired attributes over current ones: a ``None`` in ``desired`` means "leave as it is"."""
    out = dict(current or {})
    for key, value in desired.items():
        if value is not None or key not in out:
            out[key] = value
    return out


def roll_back(session: Session, applied: list[tuple[Resource, State, State]]) -> str:
    """Undo the changes of ``applied`` (resource, before, after), last first; say what was put back.

    Removals are not undone: what a removed namespace or veth held (addresses, routes, processes) is not
    known any more. Removals run first in a node apply, so a refusal later in the run leaves them done.
    """
    drop = getattr(session, "drop_caches", None)
    if drop is not None:  # the refused request may have changed more than the cache knows
        drop(None, everywhere=True)
    undone: list[str] = []
    kept: list[str] = []
    failed: list[str] = []
    for res, before, after in reversed(applied):
        if after is None:
            kept.append(res.key)
            continue
        try:
            res.rollback(session, before)
        except (NetlabError, NetlinkError) as exc:
            failed.append(f"{res.key} ({kernel_message(exc) if isinstance(exc, NetlinkError) else exc})")
        else:
            undone.append(res.key)
    parts = [f"rolled back: {', '.join(undone)}" if undone else "nothing to roll back"]
    if kept:
        parts.append(f"removals not undone: {', '.join(kept)}")
    if failed:
        parts.append(f"rolling back FAILED for: {'; '.join(failed)}")
    return "; ".join(parts)


class RefusedError(NetlabError):
    """A change that the kernel (or the model's apply) refused; the message names the resource."""


def converge_one(
    session: Session, res: Resource, check_mode: bool, applied: list[tuple[Resource, State, State]]
) -> tuple[State, State]:
    """One resource through read -> want -> compare -> apply (not in check mode); return (before, after).

    A change is recorded in ``applied`` before it is made, so that rolling back after a refusal covers it too.
    Shared by :func:`converge` and by models that converge resources of their own (the overlay's routes).
    """
    before = res.read(session)
    after = res.want(before)
    if before != after and not check_mode:
        applied.append((res, before, after))
        try:
            res.apply(session, before, after)
        except NetlinkError as exc:
            raise RefusedError(f"{res.key}: the kernel refused the change ({kernel_message(exc)})") from None
        except NetlabError as exc:
            raise RefusedError(str(exc)) from None
    return before, after


def converge(session: Session, resources: list[Resource], check_mode: bool, rollback: bool = False) -> dict[str, Any]:
    """Bring every resource to its desired state; return ``changed``, ``diff`` and per-resource states.

    With ``rollback``, a change the kernel refuses midway undoes what the run had changed (the refused
    resource included, see :func:`roll_back`) and the error says so.
    """
    for res in resources:
        res.check(session)
    changed = False
    before_all: dict[str, Any] = {}
    after_all: dict[str, Any] = {}
    states: list[tuple[Resource, State]] = []
    applied: list[tuple[Resource, State, State]] = []
    for res in resources:
        try:
            before, after = converge_one(session, res, check_mode, applied)
        except RefusedError as exc:
            message = str(exc)
            if rollback:
                message = f"{message}; {roll_back(session, applied)}"
            raise NetlabError(message) from None
        changed = changed or before != after
        before_all[res.key] = before
        after_all[res.key] = after
        states.append((res, after))
    return {
        "changed": changed,
        "diff": {"before": before_all, "after": after_all},
        "states": states,
    }


def run_module(module: Any, resources: list[Resource], single: bool = True) -> None:
    """Glue for an AnsibleModule: converge, turn errors into fail_json, exit with diff and return values.

    With ``single`` the diff and return values are those of the one resource (the small modules);
    otherwise they are keyed by resource (the whole-node apply).
    """
    from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import pyroute2_import_error

    missing = pyroute2_import_error()
    if missing is not None:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("pyroute2"), exception=missing)
    try:
        # The same cached fast reader as the node module, so the small modules' tests exercise it too.
        with CachedSession() as session:
            outcome = converge(session, resources, module.check_mode)
    except NetlabError as exc:
        module.fail_json(msg=str(exc))
    result: dict[str, Any] = {"changed": outcome["changed"]}
    if single:
        res, after = outcome["states"][0]
        key = res.key
        result["diff"] = {
            "before": outcome["diff"]["before"][key] or {},
            "after": outcome["diff"]["after"][key] or {},
            "before_header": key,
            "after_header": key,
        }
        result.update(res.result(after))
    else:
        result["diff"] = outcome["diff"]
    module.exit_json(**result)


def run_resource_module(spec: dict[str, Any], resource_class: type[Resource]) -> None:
    """The whole ``main()`` of a small module: one resource built from the module's parameters.

    ``spec`` is the argument spec shared with the node module's items (module_utils/_args.py).
    """
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(**spec, supports_check_mode=True)
    try:
        resource = resource_class(dict(module.params))
    except NetlabError as exc:
        module.fail_json(msg=str(exc))
    run_module(module, [resource])
