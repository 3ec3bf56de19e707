# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource model: one kernel parameter (sysctl), with a journal of original values.

State shape::

    {"netns": str | None, "name": "net.ipv4.ip_forward", "value": "1", "original": "0" | None}

``value`` is compared normalised (whitespace collapsed to single spaces, as ``sysctl`` prints it).
``original`` is the value journaled before this collection first changed the key, ``None`` when
there is no journal entry. ``state: present`` records it (once: the FIRST original is kept across
later changes) before writing; ``state: restored`` writes it back and drops the entry.

Journal: a JSON file on the node (default ``/run/cnfs-netlab/sysctl-journal.json``)::

    {"version": 1, "entries": {"<netns, or '' for the module's own namespace>": {"<name>": "<original>"}}}

Files under /proc/sys/net resolve in the network namespace of the thread that opens them, so the
model opens them inside ``session.inside(netns)``. Only ``net.*`` keys are per namespace.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._args import SYSCTL_JOURNAL
from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import (
    NetlabError,
    Session,
    keyed,
    validate_netns,
    where,
)
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State

PROC_SYS = "/proc/sys"
DEFAULT_JOURNAL = SYSCTL_JOURNAL  # the module option's default (module_utils/_args.py)
JOURNAL_VERSION = 1


# ---------------------------------------------------------------------------- pure helpers
def parse_name(name: Any) -> tuple[str, str]:
    """(dotted name, path below /proc/sys) of a sysctl key.

    Like sysctl(8): components are separated by '.', and a '/' inside a component stands for a '.'
    of the file name (``net.ipv4.conf.eth0/100.rp_filter``); if the first separator is '/', the whole
    name uses '/' as separator (``net/ipv4/conf/eth0.100/rp_filter``).
    """
    text = str(name).strip() if name is not None else ""
    if not text:
        raise NetlabError("sysctl: name is required, like net.ipv4.ip_forward")
    dot, slash = text.find("."), text.find("/")
    if slash != -1 and (dot == -1 or slash < dot):
        parts = text.split("/")
    else:
        parts = [p.replace("/", ".") for p in text.split(".")]
    if any(p in ("", ".", "..") or "\x00" in p or p != p.strip() for p in parts):
        raise NetlabError(f"sysctl {text!r} is not a valid key name: write it like net.ipv4.conf.eth0.rp_filter")
    dotted = ".".join(p.replace(".", "/") for p in parts)
    return dotted, "/".join(parts)


def normalise_value(value: Any, what: str = "sysctl") -> str:
    """The value as sysctl prints it: whitespace collapsed; booleans 1/0, lists joined by spaces."""
    if value is None:
        raise NetlabError(f"{what}: value is required with state=present")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):  # not `list | tuple`: module_utils also run on Python < 3.10
        return " ".join(normalise_value(v, what) for v in value)
    if isinstance(value, dict):
        raise NetlabError(f"{what}: value must be a string, a number or a list, not a mapping")
    return " ".join(str(value).split())


def is_namespaced(dotted: str) -> bool:
    """Only net.* keys belong to a network namespace; every other key is global to the machine."""
    return dotted == "net" or dotted.startswith("net.")


def interface_of(dotted: str) -> str | None:
    """The interface a per-interface key refers to (net.ipv4.conf.<if>.x, net.ipv6.neigh.<if>.x), or None."""
    parts = dotted.split(".")
    if len(parts) >= 5 and parts[0] == "net" and parts[2] in ("conf", "neigh") and parts[3] not in ("all", "default"):
        return parts[3].replace("/", ".")
    return None


def journal_key(netns: str | None) -> str:
    return netns or ""


def journal_get(data: dict[str, Any], netns: str | None, name: str) -> str | None:
    value = data.get("entries", {}).get(journal_key(netns), {}).get(name)
    return value if isinstance(value, str) else None


def journal_record(data: dict[str, Any], netns: str | None, name: str, original: str) -> bool:
    """Record the original once; True when this call added it (an existing entry is never overwritten)."""
    entries = data.setdefault("entries", {}).setdefault(journal_key(netns), {})
    if name in entries:
        return False
    entries[name] = original
    return True


def journal_drop(data: dict[str, Any], netns: str | None, name: str) -> bool:
    entries = data.get("entries", {})
    ns_entries = entries.get(journal_key(netns), {})
    if name not in ns_entries:
        return False
    del ns_entries[name]
    if not ns_entries:
        del entries[journal_key(netns)]
    return True


# ---------------------------------------------------------------------------- the journal file
class Journal:
    """The JSON journal of original values; reads are lock-free, changes happen under ``edit()``."""

    def __init__(self, path: str) -> None:
        if not path or not os.path.isabs(path) or os.path.normpath(path) != path:
            raise NetlabError(f"sysctl: journal {path!r} must be a clean absolute path, like {DEFAULT_JOURNAL}")
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return {"version": JOURNAL_VERSION, "entries": {}}
        except (OSError, ValueError) as exc:
            raise NetlabError(
                f"sysctl journal {self.path} cannot be read ({exc}); repair or remove it "
                "(the original values it held are then lost)"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise NetlabError(f"sysctl journal {self.path} is not a journal of cnfs.netlab; repair or remove it")
        return data

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Load under an exclusive lock, yield the data, write it back atomically when the block succeeds."""
        directory = os.path.dirname(self.path)
        try:
            os.makedirs(directory, mode=0o755, exist_ok=True)
            lock = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise NetlabError(
                f"sysctl journal {self.path} cannot be written ({exc.strerror}); choose another journal"
            ) from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.load()
            yield data
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, self.path)
        finally:
            os.close(lock)


# ---------------------------------------------------------------------------- the resource
class SysctlResource(Resource):
    """One sysctl key in one namespace (or a global key, without netns)."""

    kind = "sysctl"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        validate_netns(self.netns)
        self.name, self.relpath = parse_name(spec.get("name"))
        if self.state not in ("present", "restored"):
            raise NetlabError(f"{self.key}: state {self.state!r} is not one of present, restored")
        if self.netns and not is_namespaced(self.name):
            raise NetlabError(
                f"{self.key}: only net.* keys belong to a network namespace; {self.name} is global to the machine: "
                "omit netns to set it (it then affects every namespace)"
            )
        self.value = normalise_value(spec.get("value"), self.key) if self.state == "present" else None
        self.journal = Journal(spec.get("journal") or DEFAULT_JOURNAL)
        self.path = os.path.join(PROC_SYS, self.relpath)
        self._previous: str | None = None
        self._journaled: str | None = None

    @property
    def key(self) -> str:
        return keyed(f"sysctl {getattr(self, 'name', self.spec.get('name'))}", self.netns)

    # -- kernel access ------------------------------------------------------------------
    def _stat(self, session: Session) -> os.stat_result | None:
        with session.inside(self.netns):
            try:
                return os.stat(self.path)
            except FileNotFoundError:
                return None

    def _read_value(self, session: Session) -> str | None:
        with session.inside(self.netns):
            try:
                with open(self.path, encoding="utf-8", errors="surrogateescape") as fh:
                    return normalise_value(fh.read())
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise NetlabError(f"{self.key}: cannot read {self.path} ({exc.strerror})") from None

    def _write_value(self, session: Session, value: str) -> None:
        with session.inside(self.netns):
            try:
                with open(self.path, "w", encoding="utf-8") as fh:
                    fh.write(value)
            except OSError as exc:
                code = errno.errorcode.get(exc.errno or 0, exc.errno)
                if exc.errno in (errno.EINVAL, errno.ERANGE):
                    raise NetlabError(
                        f"{self.key}: the kernel refused the value {value!r} ({code}: {exc.strerror}); "
                        "give a value this key accepts (see the kernel's ip-sysctl documentation)"
                    ) from None
                if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise NetlabError(
                        f"{self.key}: {self.path} cannot be written ({code}: {exc.strerror}); "
                        "it is read-only here (a read-only /proc/sys, or a key only the initial namespace may set)"
                    ) from None
                raise NetlabError(f"{self.key}: writing {value!r} failed ({code}: {exc.strerror})") from None

    # -- the four steps -----------------------------------------------------------------
    def check(self, session: Session) -> None:
        if self.state == "present":
            session.require_netns(self.netns, self.key)
        elif self.journal_original() is None:
            return  # nothing to restore
        if not session.netns_exists(self.netns):
            if self.state == "present":  # the namespace is made by an earlier resource of the run
                self._check_in_new_namespace(session)
            return  # restored in a namespace that is gone: the entry is dropped
        st = self._stat(session)
        if st is None:
            dev = interface_of(self.name)
            if dev is not None and session.plan.link_created(self.netns, dev):
                return  # the interface is created by an earlier resource of this run
            raise NetlabError(
                f"{self.key}: there is no such key {where(self.netns)} ({self.path} does not exist); check the name "
                "(sysctl -a lists the keys), or create first the interface or load first the module it belongs to"
            )
        if stat.S_ISDIR(st.st_mode):
            raise NetlabError(f"{self.key}: this is a directory of keys, not a key; name one of the keys in it")
        if not st.st_mode & 0o444:
            raise NetlabError(
                f"{self.key}: this key is write-only, so its value cannot be compared; it is not supported"
            )
        if not st.st_mode & 0o222:
            raise NetlabError(f"{self.key}: this key is read-only; it cannot be set")

    def _check_in_new_namespace(self, session: Session) -> None:
        """A key of a namespace this run creates: its interface must be planned, or the key must exist here.

        (A new namespace has the per-namespace keys every namespace has; checking them before the run
        makes the namespace keeps bad input from changing anything.)
        """
        dev = interface_of(self.name)
        if dev is not None:
            if session.plan.link_created(self.netns, dev):
                return
            raise NetlabError(
                f"{self.key}: there is no such key: interface {dev!r} does not exist {where(self.netns)} and no "
                "earlier resource of this run creates it; create the interface first or correct the name"
            )
        if not os.path.exists(self.path):
            raise NetlabError(
                f"{self.key}: there is no such key ({self.path} does not exist); check the name (sysctl -a lists "
                "the keys)"
            )

    def journal_original(self) -> str | None:
        return journal_get(self.journal.load(), self.netns, self.name)

    def read(self, session: Session) -> State:
        original = self.journal_original()
        value = self._read_value(session) if session.netns_exists(self.netns) else None
        self._previous = value
        self._journaled = original
        if value is None and original is None:
            return None
        return {"netns": self.netns, "name": self.name, "value": value, "original": original}

    def want(self, current: State) -> State:
        shape = {"netns": self.netns, "name": self.name}
        if self.state == "restored":
            if current is None or current["original"] is None:
                return current
            value = current["original"] if current["value"] is not None else None
            return {**shape, "value": value, "original": None}
        original = current["original"] if current is not None else None
        if original is None and current is not None and current["value"] != self.value:
            original = current["value"]
        return {**shape, "value": self.value, "original": original}

    def apply(self, session: Session, current: State, desired: State) -> None:
        if desired is None:  # never: a sysctl is not removed, only set or restored
            return
        if self.state == "restored":
            if desired["value"] is not None and (current is None or current["value"] != desired["value"]):
                self._write_value(session, desired["value"])
            with self.journal.edit() as data:
                journal_drop(data, self.netns, self.name)
            return
        value = desired["value"]
        added = False
        if current is not None and current["value"] is not None and current["value"] != value:
            with self.journal.edit() as data:  # BEFORE the first change: the original, once
                added = journal_record(data, self.netns, self.name, current["value"])
        if current is None or current["value"] != value:
            try:
                self._write_value(session, value)
            except NetlabError:
                if added:
                    with self.journal.edit() as data:
                        journal_drop(data, self.netns, self.name)
                raise
            stored = self._read_value(session)
            if stored != value:
                restored = self._restore(session, current, added)
                raise NetlabError(
                    f"{self.key}: the kernel accepted {value!r} but reads it back as {stored!r}; {restored}; "
                    f"write the value the way the kernel shows it ({stored!r}) so that later runs report no change"
                )

    def _restore(self, session: Session, current: State, added: bool) -> str:
        """Put back the value this run overwrote (and drop the journal entry it added); say what was done."""
        old = current["value"] if current is not None else None
        if added:
            with self.journal.edit() as data:
                journal_drop(data, self.netns, self.name)
        if old is None:
            return "there was no value to put back"
        try:
            self._write_value(session, old)
        except NetlabError as exc:
            return f"putting back the old value {old!r} failed too ({exc})"
        return f"the old value {old!r} was put back"

    def rollback(self, session: Session, before: State) -> None:
        """Write back the value read before the run and drop a journal entry this run added."""
        if before is None or before.get("value") is None:
            return
        if self._read_value(session) != before["value"]:
            self._write_value(session, before["value"])
        if before.get("original") is None:
            with self.journal.edit() as data:
                journal_drop(data, self.netns, self.name)
        elif self.state == "restored":
            with self.journal.edit() as data:
                journal_record(data, self.netns, self.name, before["original"])

    def result(self, after: State) -> dict[str, Any]:
        original = self._journaled if self.state == "restored" else (after or {}).get("original")
        return {"sysctl": after or {}, "previous": self._previous, "original": original}
