"""Count what crosses one interface of the underlay for a while, as JSON (the test's tcpdump: stdlib only).

usage: capture.py IFACE PORT STOPFILE [MAX_SECONDS]   (run inside the namespace of IFACE, with ip netns exec)

Captures until STOPFILE exists (or MAX_SECONDS, default 600, have passed); writes STOPFILE.ready once the
socket listens, so the caller starts its traffic after that.

Prints {"frames", "ipv4", "udp_port", "icmp", "inner", "other"}: IPv4 packets in total, UDP packets from or to
PORT, ICMP packets, packets whose source or destination is a container address (172.16.0.0/16: the overlay's
inner addresses, which an encrypted underlay never shows), and IPv4 packets that are none of these.
"""

import ipaddress
import json
import os
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
iface, port, stopfile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 600.0
inner = ipaddress.ip_network("172.16.0.0/16")
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
sock.bind((iface, 0))
sock.settimeout(0.2)
with open(stopfile + ".ready", "w") as ready:
    ready.write("listening\n")
counts = {"frames": 0, "ipv4": 0, "udp_port": 0, "icmp": 0, "inner": 0, "other": 0}
deadline = time.monotonic() + seconds
while time.monotonic() < deadline and not os.path.exists(stopfile):
    try:
        frame = sock.recv(65535)
    except TimeoutError:
        continue
    counts["frames"] += 1
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        continue
    counts["ipv4"] += 1
    ip = frame[14:]
    header = (ip[0] & 0x0F) * 4
    proto = ip[9]
    src, dst = ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
    if src in inner or dst in inner:
        counts["inner"] += 1
    elif proto == 17 and port in struct.unpack("!HH", ip[header : header + 4]):
        counts["udp_port"] += 1
    elif proto == 1:
        counts["icmp"] += 1
    else:
        counts["other"] += 1
print(json.dumps(counts))
