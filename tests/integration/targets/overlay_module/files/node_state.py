"""Print the overlay-related kernel state of an emulated node as JSON, read with `ip`, `bridge`,
/proc/sys and /proc -- independently of the module under test.

usage: node_state.py NETNS
"""

import json
import subprocess
import sys

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
    try:
        with open(f"/run/cnfs-netlab/overlay/{ns}/{dev}.pid") as fh:
            pid = int(fh.read())
        tunnel["pid"] = pid
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            tunnel["cmdline"] = fh.read().replace(b"\0", b" ").decode().strip()
        tunnel["netns"] = subprocess.run(
            ["ip", "netns", "identify", str(pid)], check=True, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, ValueError, subprocess.CalledProcessError):
        pass
    state["tunnels"][dev] = tunnel
print(json.dumps(state))
