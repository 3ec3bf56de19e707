"""Print the overlay-related kernel state of an emulated node as JSON, read with `ip`, `bridge`,
/proc/sys and /proc -- independently of the module under test. WireGuard devices are read over generic
netlink with pyroute2's WireGuard socket directly (no `wg` on the test hosts): their public key (the kernel
derives it from the private key it holds), listen port and peers; never the private key.

usage: node_state.py NETNS
       node_state.py --wireguard DEV...   (run inside the namespace: prints the devices' configuration)
"""

import json
import os
import subprocess
import sys


def wireguard(devs):
    from pyroute2 import WireGuard

    out = {}
    with WireGuard() as wg:
        for dev in devs:
            config = {"public_key": None, "listen_port": None, "has_private_key": False, "peers": {}}
            for msg in wg.info(dev):
                key = msg.get_attr("WGDEVICE_A_PUBLIC_KEY")
                if key:
                    config["public_key"] = key.decode()
                config["has_private_key"] |= msg.get_attr("WGDEVICE_A_PRIVATE_KEY") is not None
                if msg.get_attr("WGDEVICE_A_LISTEN_PORT") is not None:
                    config["listen_port"] = msg.get_attr("WGDEVICE_A_LISTEN_PORT")
                for peer in msg.get_attr("WGDEVICE_A_PEERS") or []:
                    entry = config["peers"].setdefault(
                        peer.get_attr("WGPEER_A_PUBLIC_KEY").decode(), {"endpoint": None, "allowed_ips": []}
                    )
                    endpoint = peer.get_attr("WGPEER_A_ENDPOINT")
                    if endpoint is not None:
                        entry["endpoint"] = f"{endpoint['addr']}:{endpoint['port']}"
                    entry["allowed_ips"] += [a["addr"] for a in peer.get_attr("WGPEER_A_ALLOWEDIPS") or []]
                    entry["allowed_ips"].sort()
                    handshake = peer.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
                    entry["handshake"] = bool(handshake and handshake["tv_sec"])
            out[dev] = config
    return out


if sys.argv[1] == "--wireguard":
    print(json.dumps(wireguard(sys.argv[2:])))
    sys.exit(0)

ns = sys.argv[1]


def run(*argv):
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []


links = {link["ifname"]: link for link in run("ip", "-n", ns, "-d", "-j", "addr", "show")}
state = {
    "links": links,
    "routes": [r for r in run("ip", "-n", ns, "-j", "route", "show", "table", "main") if r.get("protocol") != "kernel"],
    "fdb": run("bridge", "-n", ns, "-j", "fdb", "show", "dev", "vxlan0") if "vxlan0" in links else [],
    "neigh": run("ip", "-4", "-n", ns, "-j", "neigh", "show", "dev", "vxlan0") if "vxlan0" in links else [],
    "tunnels": {},
}
for dev in sorted(d for d in links if d.startswith("tun-")):
    sysctl = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-n",
            f"net.ipv6.conf.{dev}.disable_ipv6",
            f"net.ipv4.conf.{dev}.rp_filter",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    tunnel = {"disable_ipv6": int(sysctl[0]), "rp_filter": int(sysctl[1]), "pid": None, "netns": None, "cmdline": None}
    tunnel["tun_attached"] = False
    try:
        with open(f"/run/cnfs-netlab/overlay/{ns}/{dev}.pid") as fh:
            pid = int(fh.read())
        tunnel["pid"] = pid
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            tunnel["cmdline"] = fh.read().replace(b"\0", b" ").decode().strip()
        # the kernel names the device of an open tun file in the file's fdinfo ("iff:\t<dev>")
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/net/tun":
                with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
                    tunnel["tun_attached"] = tunnel["tun_attached"] or f"iff:\t{dev}" in fh.read().splitlines()
        tunnel["netns"] = subprocess.run(
            ["ip", "netns", "identify", str(pid)], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, ValueError, subprocess.CalledProcessError):
        pass
    state["tunnels"][dev] = tunnel
wg_devs = sorted(d for d, link in links.items() if link.get("linkinfo", {}).get("info_kind") == "wireguard")
state["wireguard"] = {}
# Policy rules and the routes of the wireguard backend's table (container traffic to peer nodes' underlay addresses).
state["rules"] = [r for r in run("ip", "-4", "-n", ns, "-j", "rule", "show") if r.get("table") == "52000"]
state["table_routes"] = run("ip", "-4", "-n", ns, "-j", "route", "show", "table", "52000") if state["rules"] else []
if wg_devs:
    state["wireguard"] = json.loads(
        subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, __file__, "--wireguard", *wg_devs],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
print(json.dumps(state))
