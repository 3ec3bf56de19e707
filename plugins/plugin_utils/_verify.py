# Copyright (c) cnfs.netlab contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""verify's checks, leftovers and table, from the plans the apply recorded on the nodes (pure, unit-tested)."""

from __future__ import annotations

from typing import Any

from ansible_collections.cnfs.netlab.plugins.plugin_utils._stage import OVERLAY_KIND

OVERLAY_KINDS = ("tun", "vxlan", "wireguard")


def sources(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The node first (netns None), then each of its containers."""
    out: list[dict[str, Any]] = [{"name": plan["node"], "netns": None, "container": None}]
    out += [
        {"name": f"{plan['node']} {c['name']}", "netns": c["netns"], "container": c["name"]} for c in plan["containers"]
    ]
    return out


def checks(
    plans: dict[str, dict[str, Any]],
    host: str,
    count: int = 1,
    timeout: float = 1.0,
    tcp_port: int | None = None,
    dont_fragment: bool | None = None,
) -> list[dict[str, Any]]:
    """The reachability targets of ``host``: every source's in turn, each with its source's netns.

    Stages 1 and 2 stay on the node; stages 3 and 4 check every node, bridge and container from everywhere.
    """
    me = plans[host]
    stage = me["stage"]
    local = stage in ("network_namespace", "single_node")
    df = (stage == "overlay") if dont_fragment is None else bool(dont_fragment)
    out: list[dict[str, Any]] = []
    for src in sources(me):
        base: dict[str, Any] = {"count": int(count), "timeout": float(timeout)}
        if src["netns"] is not None:
            base["netns"] = src["netns"]
        for p in plans.values():
            own = p["node"] == me["node"]
            if src["container"] is None:
                want_node, want_bridge, want_containers = not own, own or not local, own or not local
            else:
                want_node = want_bridge = own or not local
                want_containers = (own and stage != "network_namespace") or not local
            if want_node:
                out.append({**base, "name": p["node"], "address": p["node_address"]})
            if want_bridge and p.get("bridge"):
                out.append({**base, "name": f"{p['node']} {p['bridge']['name']}", "address": p["bridge"]["address"]})
            if not want_containers:
                continue
            for c in p["containers"]:
                if own and c["name"] == src["container"]:
                    continue
                label = f"{p['node']} {c['name']}"
                out.append({**base, "name": label, "address": c["address"]})
                if tcp_port is not None:
                    out.append(
                        {**base, "name": f"{label} tcp/{tcp_port}", "address": c["address"], "tcp_port": int(tcp_port)}
                    )
                if df and src["container"] is not None and not own:
                    out.append(
                        {**base, "name": f"{label} full-size DF", "address": c["address"], "dont_fragment": True}
                    )
    return out


def leftovers(plan: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """What the node holds of this collection's kinds that the recorded plan does not: namespaces, bridges,
    veths to a namespace, overlay devices, addresses of the bridge. ``info``: cnfs.netlab.netlink_info's result."""
    namespaces = info.get("namespaces") or {}
    res = plan["resources"]
    want_ns = {n["name"] for n in res["namespaces"]}
    found = []
    for name in sorted(n for n in namespaces if n and n not in want_ns):
        found.append(f"namespace {name}")
    root = namespaces.get("") or {}
    want_bridges = {b["name"] for b in res.get("bridges", [])}
    want_veths = {v["name"] for v in res["veths"]}
    overlays = res.get("overlays", [])
    for link in root.get("links") or []:
        kind, name = link.get("kind"), link["name"]
        if kind == "bridge" and name not in want_bridges:
            found.append(f"bridge {name}")
        elif kind == "veth" and link.get("peer_netns") and name not in want_veths:
            found.append(f"veth {name}")
        elif kind in OVERLAY_KINDS:
            mine = any(
                OVERLAY_KIND[o["backend"]] == kind
                and (name == o["name"] or (kind == "tun" and name.startswith(o["name"] + "-")))
                for o in overlays
            )
            if not mine:
                found.append(f"{kind} device {name}")
    if plan.get("bridge"):
        want = f"{plan['bridge']['address']}/{plan['bridge']['prefix']}"
        for entry in root.get("addresses") or []:
            if entry.get("dev") == plan["bridge"]["name"]:
                found += [f"address {a} on {entry['dev']}" for a in entry.get("addresses") or [] if a != want]
    return found


def table(
    hosts: list[str],
    plans: dict[str, dict[str, Any]],
    reach: dict[str, Any],
    extra_rows: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """{lines, total, failed}: one row per result of every host's reachability run, then ``extra_rows``
    ({ok, source, target, address, detail}: leftovers, a stage that differs)."""
    rows: list[dict[str, Any]] = []
    missing = []
    for host in hosts:
        result = reach.get(host)
        plan = plans.get(host)
        if result is None or plan is None:
            missing.append(host)
            continue
        srcs = sources(plan)
        if "results" not in result:
            detail = result.get("msg") or "not run"
            rows += [
                {"ok": False, "source": s["name"], "target": "all targets", "address": "-", "detail": detail}
                for s in srcs
            ]
            continue
        names = {s["netns"] or "": s["name"] for s in srcs}
        for r in result["results"]:
            ok = bool(r.get("ok"))
            detail = f"{float(r.get('rtt_ms') or 0):.3f} ms" if ok else (r.get("error") or "failed")
            netns = r.get("netns") or ""
            rows.append(
                {
                    "ok": ok,
                    "source": names.get(netns, netns),
                    "target": r["name"],
                    "address": r["address"],
                    "detail": detail,
                }
            )
    rows += list(extra_rows or [])
    for host in missing:
        rows.append(
            {
                "ok": False,
                "source": host,
                "target": "all targets",
                "address": "-",
                "detail": "not run: the host failed, was unreachable, or holds no applied stage",
            }
        )
    widths = [
        max([len(h)] + [len(str(r[k])) for r in rows])
        for h, k in (("FROM", "source"), ("TO", "target"), ("ADDRESS", "address"))
    ]

    def line(result: str, src: str, dst: str, addr: str, detail: str) -> str:
        return f"{result:<6}  {src.ljust(widths[0])}  ->  {dst.ljust(widths[1])}  {addr.ljust(widths[2])}  {detail}"

    failed = sum(1 for r in rows if not r["ok"])
    lines = [line("RESULT", "FROM", "TO", "ADDRESS", "DETAIL")]
    lines += [
        line("PASSED" if r["ok"] else "FAILED", str(r["source"]), str(r["target"]), str(r["address"]), str(r["detail"]))
        for r in rows
    ]
    stages = sorted({p["stage"] for p in plans.values()}) or ["none"]
    lines.append(f"TOTAL   stage {', '.join(stages)}, {len(rows)} checks, {len(rows) - failed} PASSED, {failed} FAILED")
    return {"lines": lines, "total": len(rows), "failed": failed}
