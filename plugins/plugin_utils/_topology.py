# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A lab's real topology, built from what cnfs.netlab.netlink_info gathered on each node.

Pure data in, text out (Graphviz DOT and Mermaid), so it is unit-testable and runs on the controller.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

OVERLAY_KINDS = ("tun", "vxlan", "wireguard", "geneve", "gre", "ipip")
SWITCH = "underlay"


@dataclass
class Iface:
    id: str
    host: str
    netns: str  # '' = the node's own namespace
    name: str
    kind: str
    addresses: list[str]
    mtu: int | None
    up: bool


@dataclass
class Topology:
    hosts: list[str] = field(default_factory=list)
    underlay: dict[str, str] = field(default_factory=dict)  # host -> underlay address
    namespaces: dict[str, list[str]] = field(default_factory=dict)  # host -> namespaces ('' first)
    ifaces: dict[str, Iface] = field(default_factory=dict)
    edges: list[tuple[str, str, str, str]] = field(default_factory=list)  # a, b, style, label
    routes: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (host, netns) -> lines


def _iface_id(host: str, netns: str | None, name: str) -> str:
    return f"{host}/{netns or '-'}/{name}"


def _in_any(address: str, networks: list[str]) -> bool:
    ip = ipaddress.ip_interface(address).ip
    return any(ip in ipaddress.ip_interface(n).network for n in networks)


def build(infos: dict[str, Any], underlay: dict[str, str] | None = None) -> Topology:
    """``infos``: host -> the result of netlink_info on that host; ``underlay``: host -> underlay address."""
    topo = Topology(hosts=sorted(infos), underlay=dict(underlay or {}))
    seen_pairs: set[frozenset[str]] = set()
    for host in topo.hosts:
        namespaces = (infos[host] or {}).get("namespaces") or {}
        topo.namespaces[host] = sorted(namespaces, key=lambda n: (n != "", n))
        for ns, facts in namespaces.items():
            addrs = {a["dev"]: a.get("addresses") or [] for a in facts.get("addresses") or []}
            for link in facts.get("links") or []:
                if link.get("kind") == "loopback":
                    continue
                iid = _iface_id(host, ns, link["name"])
                topo.ifaces[iid] = Iface(
                    iid,
                    host,
                    ns,
                    link["name"],
                    link.get("kind") or "device",
                    sorted(addrs.get(link["name"], [])),
                    link.get("mtu"),
                    bool(link.get("up")),
                )
            for link in facts.get("links") or []:
                iid = _iface_id(host, ns, link["name"])
                if link.get("kind") == "veth" and link.get("peer"):
                    peer = _iface_id(host, link.get("peer_netns") or "", link["peer"])
                    pair = frozenset((iid, peer))
                    if pair not in seen_pairs:
                        seen_pairs.add(pair)
                        # The end inside a container first, so Graphviz ranks containers above their node.
                        upper, lower = (iid, peer) if ns else (peer, iid)
                        topo.edges.append((upper, lower, "veth", "veth"))
                if link.get("master"):
                    topo.edges.append((iid, _iface_id(host, ns, link["master"]), "port", ""))
            lines = []
            # netlink_info leaves out what the kernel made by itself (connected routes): what is left
            # was configured, like the routes to other nodes' subnets (via a gateway or straight into a tunnel).
            for route in facts.get("routes") or []:
                via = f" via {route['gateway']}" if route.get("gateway") else ""
                lines.append(f"{route['dest']}{via} dev {route.get('dev')}")
            if lines:
                topo.routes[(host, ns)] = sorted(lines)
    # The underlay: the device that holds each node's underlay address joins the switch.
    for host in topo.hosts:
        addr = topo.underlay.get(host)
        for iface in topo.ifaces.values():
            if (
                iface.host == host
                and iface.netns == ""
                and addr
                and any(a.split("/")[0] == addr.split("/")[0] for a in iface.addresses)
            ):
                topo.edges.append((iface.id, SWITCH, "underlay", addr.split("/")[0]))
    # The overlay: a tunnel device on A whose routes lead to a subnet held on B joins B's tunnel device
    # whose routes lead back to A.
    subnets: dict[str, list[str]] = {}
    for host in topo.hosts:
        subnets[host] = [
            a
            for i in topo.ifaces.values()
            if i.host == host and i.netns == "" and i.kind == "bridge"
            for a in i.addresses
        ]
    overlay_routes: dict[str, list[tuple[str, str]]] = {}  # host -> (dev, dest)
    for (host, ns), lines in topo.routes.items():
        if ns != "":
            continue
        for line in lines:
            dest, dev = line.split(" ")[0], line.rsplit(" dev ", 1)[1]
            if (
                topo.ifaces.get(_iface_id(host, "", dev))
                and topo.ifaces[_iface_id(host, "", dev)].kind in OVERLAY_KINDS
            ):
                overlay_routes.setdefault(host, []).append((dev, dest))
    done: set[frozenset[str]] = set()
    for a in topo.hosts:
        for dev_a, dest in overlay_routes.get(a, []):
            if dest == "default":
                continue
            for b in topo.hosts:
                if b == a or not any(_in_any(s, [dest]) for s in subnets[b]):
                    continue
                back = (
                    [d for d, dst in overlay_routes.get(b, []) if dst != "default" and _in_any(subnets[a][0], [dst])]
                    if subnets[a]
                    else []
                )
                for dev_b in back[:1]:
                    pair = frozenset((_iface_id(a, "", dev_a), _iface_id(b, "", dev_b)))
                    if pair not in done:
                        done.add(pair)
                        kind = topo.ifaces[_iface_id(a, "", dev_a)].kind
                        topo.edges.append((_iface_id(a, "", dev_a), _iface_id(b, "", dev_b), "overlay", kind))
    return topo


def _label(iface: Iface) -> list[str]:
    lines = [f"{iface.name} ({iface.kind})"]
    lines += iface.addresses
    if iface.mtu and iface.mtu != 1500:
        lines.append(f"mtu {iface.mtu}")
    if not iface.up:
        lines.append("DOWN")
    return lines


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


SHAPES = {"bridge": "box3d", "veth": "box", "vxlan": "hexagon", "tun": "hexagon", "wireguard": "hexagon"}
EDGE_STYLES = {
    "veth": 'color="#1f77b4", penwidth=2',
    "port": 'style=dashed, color="#7f7f7f"',
    "underlay": 'color="#2ca02c", penwidth=2',
    "overlay": 'style=bold, color="#d62728", penwidth=2, constraint=false',
}


def to_dot(topo: Topology, title: str = "cnfs.netlab lab") -> str:
    out = [
        "digraph lab {",
        f"  label={_q(title)}; labelloc=t; fontname=Helvetica; rankdir=TB; compound=true; newrank=true;",
        '  node [fontname=Helvetica, fontsize=10, style="rounded,filled", fillcolor=white];',
        "  edge [dir=none, fontname=Helvetica, fontsize=9];",
        f'  {_q(SWITCH)} [label="underlay switch", shape=box, fillcolor="#e5f5e0"];',
    ]
    for n, host in enumerate(topo.hosts):
        addr = topo.underlay.get(host, "")
        out.append(f"  subgraph cluster_{n} {{")
        out.append(f'    label={_q(f"{host}  {addr}".strip())}; style="rounded"; bgcolor="#f7f7f7";')
        for m, ns in enumerate(topo.namespaces[host]):
            inner = "    "
            if ns:
                out.append(f"    subgraph cluster_{n}_{m} {{")
                out.append(f'      label={_q("netns " + ns)}; style="rounded,dashed"; bgcolor="#fffbe6";')
                inner = "      "
            for iface in topo.ifaces.values():
                if iface.host == host and iface.netns == ns:
                    shape = SHAPES.get(iface.kind, "box")
                    out.append(f"{inner}{_q(iface.id)} [label={_q(chr(10).join(_label(iface)))}, shape={shape}];")
            if (host, ns) in topo.routes:
                rid = _q(f"{host}/{ns or '-'}/routes")
                text = "routes:\n" + "\n".join(topo.routes[(host, ns)])
                out.append(f'{inner}{rid} [label={_q(text)}, shape=note, fillcolor="#eef3fb", fontsize=8];')
            if ns:
                out.append("    }")
        out.append("  }")
    for a, b, style, label in topo.edges:
        lab = f", label={_q(label)}" if label and style in ("overlay", "underlay") else ""
        out.append(f"  {_q(a)} -> {_q(b)} [{EDGE_STYLES[style]}{lab}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _mid(text: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in text)


def _mtext(lines: list[str]) -> str:
    return '"' + "<br/>".join(line.replace('"', "#quot;") for line in lines) + '"'


def to_mermaid(topo: Topology, title: str = "cnfs.netlab lab") -> str:
    out = ["---", f"title: {title}", "---", "flowchart TB", f'  {_mid(SWITCH)}[("underlay switch")]']
    for host in topo.hosts:
        title_h = f"{host} {topo.underlay.get(host, '')}".strip()
        out.append(f'  subgraph {_mid(host)}["{title_h}"]')
        for ns in topo.namespaces[host]:
            indent = "    "
            if ns:
                out.append(f'    subgraph {_mid(host + "/" + ns)}["netns {ns}"]')
                indent = "      "
            for iface in topo.ifaces.values():
                if iface.host == host and iface.netns == ns:
                    shape = ("[", "]")
                    if iface.kind == "bridge":
                        shape = ("[[", "]]")
                    elif iface.kind in OVERLAY_KINDS:
                        shape = ("{{", "}}")
                    out.append(f"{indent}{_mid(iface.id)}{shape[0]}{_mtext(_label(iface))}{shape[1]}")
            if (host, ns) in topo.routes:
                out.append(
                    f"{indent}{_mid(host + '/' + ns + '/routes')}>{_mtext(['routes:', *topo.routes[(host, ns)]])}]"
                )
            if ns:
                out.append("    end")
        out.append("  end")
    arrows = {"veth": "---", "port": "-.-", "underlay": "===", "overlay": "-.->"}
    for a, b, style, label in topo.edges:
        lab = f"|{label}|" if label and style in ("overlay", "underlay") else ""
        arrow = arrows[style] if style != "overlay" else "<-.->"
        out.append(f"  {_mid(a)} {arrow}{lab} {_mid(b)}")
    return "\n".join(out) + "\n"
