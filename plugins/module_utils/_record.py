# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record a node apply leaves on the node: what the collection owns there.

Private module_utils of cnfs.netlab, used by the ``node`` module (and, for the same rules on the controller,
by plugin_utils/_stage.py).

A record is a JSON object in a file on the node (the stage roles': ``/run/cnfs-netlab/stage.json``). The node
module reads two of its keys:

- ``resources``: the node module's lists (``namespaces``, ``bridges`` ... ``overlays``) of the apply that wrote
  it. With ``prune``, :func:`converge_resources` adds to the new lists the removal of everything the record
  holds and the new lists do not, so an apply over any earlier one ends as a fresh apply would.
- ``fixed``: values (label -> value) that an apply may not change silently, with ``fixed_message`` saying why
  (the stage roles record every node's index there: a node's subnet never moves by accident).
  :func:`fixed_changes` lists those the new record changes.

The module reads the record itself, in the same task that applies, so that an apply costs one module run per
node and not a read of the record first.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError

# The stage roles' record (plugin_utils/_stage.py RECORD_FILE is this one).
RECORD_PATH = "/run/cnfs-netlab/stage.json"
# The node module's lists a record's resources may hold, in dependency order.
KINDS = ("namespaces", "bridges", "veths", "addresses", "routes", "sysctls", "overlays")
DEFAULT_FIXED_MESSAGE = "{label} was {old!r} when the record was written and would now be {new!r}"


# ------------------------------------------------------------------ the file
def read_record(path: str) -> dict[str, Any] | None:
    """The record at ``path``, None when there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetlabError(f"record {path}: cannot be read ({exc}); remove it or choose another record_path") from exc
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise NetlabError(f"record {path}: is not JSON ({exc}); remove it or choose another record_path") from exc
    if not isinstance(record, dict):
        raise NetlabError(f"record {path}: is not a JSON object; remove it or choose another record_path")
    return record


def write_record(path: str, record: dict[str, Any], check_mode: bool) -> bool:
    """Write ``record`` as JSON to ``path`` (mode 0600, its directory made) unless it holds that already.

    Replaced atomically, so that a reader never sees half a record; returns whether it changed (or would).
    """
    text = json.dumps(record, sort_keys=True) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise NetlabError(f"record {path}: cannot be read ({exc}); remove it or choose another record_path") from exc
    if check_mode:
        return True
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise NetlabError(f"record {path}: cannot be written ({exc.strerror}); the network state is applied") from exc
    return True


def remove_record(path: str, check_mode: bool) -> bool:
    """Remove the record file; returns whether there was one."""
    if not os.path.lexists(path):
        return False
    if not check_mode:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise NetlabError(
                f"record {path}: cannot be removed ({exc.strerror}); the network state is removed"
            ) from exc
    return True


# ------------------------------------------------------------------ fixed values
def fixed_changes(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """One message per value of ``old``'s ``fixed`` that ``new`` gives another value (labels in both only)."""
    before = (old or {}).get("fixed") or {}
    after = (new or {}).get("fixed") or {}
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    template = str((new or {}).get("fixed_message") or DEFAULT_FIXED_MESSAGE)
    out = []
    for label in sorted(set(before) & set(after)):
        if before[label] != after[label]:
            try:
                out.append(template.format(label=label, old=before[label], new=after[label]))
            except (KeyError, IndexError, ValueError):
                out.append(DEFAULT_FIXED_MESSAGE.format(label=label, old=before[label], new=after[label]))
    return out


# ------------------------------------------------------------------ convergence against the record
def _key(kind: str, item: dict[str, Any]) -> tuple[Any, ...]:
    # .get: a new item without its key is refused by the node module's validation, with its position.
    netns = item.get("netns") or ""
    if kind in ("namespaces", "bridges", "veths"):
        return (netns, item.get("name"))
    if kind == "addresses":
        return (netns, item.get("dev"))
    if kind == "routes":
        return (netns, item.get("dest"), item.get("table") or "main", item.get("metric") or 0)
    if kind == "sysctls":
        return (netns, item.get("name"))
    if kind == "overlays":
        return (netns, item.get("backend"), item.get("name") or "")
    raise NetlabError(f"unknown kind {kind!r}")  # pragma: no cover


def _removal(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """The smallest item that removes ``item`` (removal matches the key only)."""
    netns = {"netns": item["netns"]} if item.get("netns") else {}
    if kind in ("namespaces", "bridges", "veths"):
        return {**netns, "name": item["name"], "state": "absent"}
    if kind == "addresses":
        return {**netns, "dev": item["dev"], "addresses": item.get("addresses") or [], "state": "absent"}
    if kind == "routes":
        out = {**netns, "dest": item["dest"], "state": "absent"}
        for key in ("table", "metric", "family"):
            if item.get(key) is not None:
                out[key] = item[key]
        return out
    if kind == "sysctls":  # restored from the journal it was set with
        journal = {"journal": item["journal"]} if item.get("journal") else {}
        return {**netns, "name": item["name"], **journal, "state": "restored"}
    out = {**netns, "backend": item["backend"], "state": "absent"}
    if item.get("name"):
        out["name"] = item["name"]
    return out


def _gone_with(new_keys: dict[str, set[tuple[Any, ...]]], old: dict[str, list[Any]]) -> tuple[set[str], set[str]]:
    """Namespaces and root devices of the record that the removals take away (with everything in or on them)."""
    namespaces = {i["name"] for i in old.get("namespaces", []) if ("", i["name"]) not in new_keys["namespaces"]}
    devices = {i["name"] for i in old.get("bridges", []) if ("", i["name"]) not in new_keys["bridges"]}
    devices |= {i["name"] for i in old.get("veths", []) if ("", i["name"]) not in new_keys["veths"]}
    return namespaces, devices


def as_items(kind: str, items: list[Any] | None) -> list[Any]:
    """A list of the node module's ``kind``, namespaces given by plain name as dicts (other entries as given)."""
    return [{"name": i} if kind == "namespaces" and isinstance(i, str) else i for i in items or []]


def _items(resources: Any, kind: str, where: str) -> list[dict[str, Any]]:
    """A list of the record's resources, every entry a dict."""
    items = as_items(kind, resources.get(kind))
    if not all(isinstance(i, dict) for i in items):
        raise NetlabError(f"{where}: resources.{kind} is not a list of dicts")
    return items


def recorded_resources(lists: dict[str, Any]) -> dict[str, list[Any]]:
    """What an apply owns, for the record's ``resources``: the items of every list that it creates or keeps."""
    return {
        kind: [i for i in as_items(kind, lists.get(kind)) if i.get("state") not in ("absent", "restored")]
        for kind in KINDS
    }


def converge_resources(
    new: dict[str, list[Any]] | None, record: dict[str, Any] | None, where: str = "record"
) -> dict[str, list[Any]]:
    """The node module's lists: ``new`` plus the removal of what only the record's ``resources`` hold.

    What lives inside a namespace or on a device that goes anyway is not listed (it goes with it).
    ``new`` None: remove everything the record holds (teardown).
    """
    new = new or {kind: [] for kind in KINDS}
    old_res = (record or {}).get("resources") or {}
    if not isinstance(old_res, dict):
        raise NetlabError(f"{where}: resources is not a dict of the node module's lists")
    old = {kind: _items(old_res, kind, where) for kind in KINDS}
    # The new lists as given (the node module validates them, naming an item by its position).
    new = {kind: list(new.get(kind) or []) for kind in KINDS}
    try:
        new_keys = {kind: {_key(kind, i) for i in as_items(kind, new[kind]) if isinstance(i, dict)} for kind in KINDS}
        gone_ns, gone_dev = _gone_with(new_keys, old)
        out: dict[str, list[Any]] = {kind: list(new[kind]) for kind in KINDS}
        for kind in KINDS:
            for item in old[kind]:
                if _key(kind, item) in new_keys[kind]:
                    continue
                netns = item.get("netns") or ""
                if kind != "namespaces" and netns and netns in gone_ns:
                    continue
                if kind == "veths" and item.get("peer_netns") in gone_ns:
                    continue  # the namespace takes its end, and the pair with it
                if kind == "addresses" and not netns and item["dev"] in gone_dev:
                    continue
                if (
                    kind == "addresses"
                    and netns
                    and not any(
                        isinstance(v, dict) and v.get("peer") == item["dev"] and v.get("peer_netns") == netns
                        for v in new["veths"]
                    )
                ):
                    continue  # the container end goes with its veth pair
                if kind == "routes" and not netns and item.get("dev") in gone_dev:
                    continue
                out[kind].append(_removal(kind, item))
    except KeyError as exc:
        raise NetlabError(f"{where}: an item of resources has no {exc.args[0]}") from None
    return out
