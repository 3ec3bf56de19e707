# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Resource model: named network namespaces."""

from __future__ import annotations

from typing import Any

from ansible_collections.cnfs.netlab.plugins.module_utils._netlink import NetlabError, Session, validate_netns
from ansible_collections.cnfs.netlab.plugins.module_utils._resource import Resource, State


def peers_elsewhere(session: Session, name: str) -> list[dict[str, Any]]:
    """The veth ends outside namespace ``name`` whose pairs start in it: removing ``name`` removes them too.

    Each as ``{"name", "netns", "bridge", "addresses"}`` (``netns`` None: the module's own namespace).
    """
    from ansible_collections.cnfs.netlab.plugins.module_utils._address import kernel_addresses
    from ansible_collections.cnfs.netlab.plugins.module_utils._link import link_kind, master_name, veth_peer

    ipr = session.ipr(name)
    out: list[dict[str, Any]] = []
    for msg in ipr.links() if ipr is not None else []:
        if link_kind(msg) != "veth" or msg.link_netnsid is None:
            continue  # not a veth, or both ends are in this namespace
        found = veth_peer(session, name, msg)
        if found is None:
            continue
        peer, peer_ns = found
        peer_ipr = session.ipr(peer_ns)
        addresses = kernel_addresses(peer_ipr, peer.index).get(peer.index, [])
        out.append(
            {
                "name": peer.name,
                "netns": peer_ns,
                "bridge": master_name(peer_ipr, peer),
                "addresses": addresses,
            }
        )
    return sorted(out, key=lambda x: (x["netns"] or "", x["name"]))


class NetnsResource(Resource):
    """A named namespace under /run/netns whose loopback is up.

    State shape: ``{"name": str, "loopback": "up" | "down"}``; with ``state: absent`` the state read
    also lists, under ``removes_peers``, the veth ends in other namespaces that go with it.
    """

    kind = "netns"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        name = spec["name"]
        if name.startswith("/"):
            raise NetlabError(f"netns {name!r}: give a name (it is created under /run/netns), not a path")
        validate_netns(name, "netns")

    @property
    def netns(self) -> str | None:  # the namespace is the object itself, it does not live in one
        return None

    @property
    def key(self) -> str:
        return f"netns {self.spec['name']}"

    def check(self, session: Session) -> None:
        session.plan.set_namespace(self.spec["name"], self.state == "present")

    def read(self, session: Session) -> State:
        name = self.spec["name"]
        ipr = session.ipr(name)
        if ipr is None:
            return None
        lo = ipr.get_link(name="lo")
        up = lo is not None and lo.up
        state: dict[str, Any] = {"name": name, "loopback": "up" if up else "down"}
        if self.state == "absent":  # what goes with it, for the diff (only then: it costs a lookup per veth)
            state["removes_peers"] = peers_elsewhere(session, name)
        return state

    def want(self, current: State) -> State:
        if self.state == "absent":
            return None
        return {"name": self.spec["name"], "loopback": "up"}

    def apply(self, session: Session, current: State, desired: State) -> None:
        name = self.spec["name"]
        if desired is None:
            session.remove_netns(name)
            return
        if current is None:
            session.create_netns(name)
        ipr = session.ipr(name)
        ipr.link("set", index=ipr.get_link(name="lo").index, state="up")

    def result(self, after: State) -> dict[str, Any]:
        return {"netns": after or {}}
