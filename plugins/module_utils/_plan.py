# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a run: what the resources checked so far will leave, so later ones are checked against it.

Every resource's ``check`` runs before anything changes (check mode and real runs alike); a resource that
depends on an earlier one of the same run (an address on a veth the run creates, a route via that address, a
sysctl of that interface) asks the plan, not the kernel. One key form for namespaces: the namespace file
(``/run/netns/con1`` for ``con1``), None for the task's own namespace.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._nsfs import netns_path


class _Unplanned:
    def __repr__(self) -> str:
        return "UNPLANNED"


UNPLANNED: Any = _Unplanned()  # Plan.link(): no earlier resource of the run decides this link


def ns_key(netns: str | None) -> str | None:
    return netns_path(netns) if netns else None


class Plan:
    """Namespaces that will exist or go, links that will exist (their kind) or go, address lists interfaces
    will have."""

    def __init__(self) -> None:
        # Per namespace key: the checks ask per namespace (address_view) as often as per object.
        self._namespaces: dict[str, bool] = {}
        self._links: dict[str | None, dict[str, str | None]] = {}
        self._addresses: dict[str | None, dict[str, list[str]]] = {}

    # -- namespaces ------------------------------------------------------------------
    def set_namespace(self, netns: str, exists: bool) -> None:
        self._namespaces[netns_path(netns)] = exists

    def namespace(self, netns: str | None) -> bool | None:
        """True/False: an earlier resource creates/removes it; None: not planned."""
        return None if netns is None else self._namespaces.get(netns_path(netns))

    # -- links -----------------------------------------------------------------------
    def set_link(self, netns: str | None, name: str, kind: str | None) -> None:
        """``name`` in ``netns`` will be a link of ``kind`` (None: will be gone)."""
        self._links.setdefault(ns_key(netns), {})[name] = kind

    def link(self, netns: str | None, name: str) -> Any:
        """The kind the link will have, None when it will be gone, UNPLANNED when no resource decided."""
        return self._links.get(ns_key(netns), {}).get(name, UNPLANNED)

    def link_created(self, netns: str | None, name: str) -> bool:
        """Whether an earlier resource of the run makes the link exist."""
        return self.link(netns, name) not in (None, UNPLANNED)

    def links_in(self, netns: str | None) -> dict[str, str | None]:
        """Name -> kind (None: will be gone) of the planned links of one namespace."""
        return dict(self._links.get(ns_key(netns), {}))

    # -- addresses -------------------------------------------------------------------
    def set_addresses(self, netns: str | None, dev: str, addresses: list[str]) -> None:
        self._addresses.setdefault(ns_key(netns), {})[dev] = list(addresses)

    def addresses(self, netns: str | None, dev: str) -> list[str] | None:
        """The address list ``dev`` will have, or None when no resource of the run sets it."""
        found = self._addresses.get(ns_key(netns), {}).get(dev)
        return None if found is None else list(found)

    def addresses_in(self, netns: str | None) -> dict[str, list[str]]:
        return {dev: list(a) for dev, a in self._addresses.get(ns_key(netns), {}).items()}

    def touches(self, netns: str | None) -> bool:
        """Whether an earlier resource plans a link or an address list in ``netns``."""
        key = ns_key(netns)
        return bool(self._links.get(key) or self._addresses.get(key))
