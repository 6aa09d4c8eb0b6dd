"""What a bridged container must not do to the host or its neighbours (issue 22, findings 3 to
5), each tried for real inside a test-made "host side" namespace (see test_network.py): a raw
frame to the host's 127.0.0.1, a rogue IPv6 router advertisement, a neighbour reaching a port
that was never published.

The attacker's frames are sent from the container's network namespace (where its default
CAP_NET_RAW would send them) by the host's python3 through nsenter: the same kernel path as a
program inside, without building one. Each test has a control that shows the frame works
where it is meant to, so a broken frame cannot pass for a blocked one.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.integration.test_network import HostSide
from tests.integration.test_network import host as host  # the fixture, re-exported

# Sends a UDP datagram in a raw Ethernet frame on eth0: argv: dst MAC, src IP, dst IP, port.
_RAW_UDP = r"""
import socket, struct, sys
dst_mac, src_ip, dst_ip, port = bytes.fromhex(sys.argv[1].replace(":", "")), sys.argv[2], sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
payload = b"raw-frame"
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
def checksum(b):
    total = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while total >> 16: total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
addresses = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip)
ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0) + addresses
ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
for _ in range(5):
    s.send(dst_mac + s.getsockname()[4] + b"\x08\x00" + ip + udp)
"""

# Receives on the host side: which of 127.0.0.1:PORT and GATEWAY:PORT got a datagram in 3 s.
_LISTEN = r"""
import select, socket, sys, time
port, gateway = int(sys.argv[1]), sys.argv[2]
socks = {}
for address in ("127.0.0.1", gateway):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((address, port)); socks[s] = address
print("listening", flush=True)
got = set()
deadline = time.monotonic() + 3
while time.monotonic() < deadline:
    for s in select.select(list(socks), [], [], 0.2)[0]:
        s.recv(100); got.add(socks[s])
print(" ".join(sorted(got)) or "nothing", flush=True)
"""

# A router advertisement (prefix 2001:db8:77::/64, autonomous, a default router) in a raw frame
# to all nodes, from a link-local source, as a rogue router sends it.
_RA = r"""
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
mac = s.getsockname()[4]
src = bytes.fromhex("fe80000000000000") + bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:6]
dst = socket.inet_pton(socket.AF_INET6, "ff02::1")
prefix = struct.pack("!BBBBIII16s", 3, 4, 64, 0xC0, 86400, 14400, 0, socket.inet_pton(socket.AF_INET6, "2001:db8:77::"))
ra = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + prefix
pseudo = src + dst + struct.pack("!I3xB", len(ra), 58)
total = sum(struct.unpack("!%dH" % ((len(pseudo) + len(ra)) // 2), pseudo + ra))
while total >> 16: total = (total & 0xFFFF) + (total >> 16)
ra = ra[:2] + struct.pack("!H", ~total & 0xFFFF) + ra[4:]
ip6 = struct.pack("!IHBB", 6 << 28, len(ra), 58, 255) + src + dst
for _ in range(3):
    s.send(b"\x33\x33\x00\x00\x00\x01" + mac + b"\x86\xdd" + ip6 + ra)
"""


def _detached(host: HostSide, *args: str) -> tuple[str, int]:
    """A detached container on the bridge: its ID and its PID 1 (on the host)."""
    r = host.run("run", "-d", *args)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    state = json.loads((host.mr.root / "containers" / cid / "state.json").read_text())
    return cid, int(state["pid"])


def _in_netns(pid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net=/proc/{pid}/ns/net", *argv], capture_output=True, text=True, timeout=30)


def _bridge_mac(host: HostSide) -> str:
    out = host.sh("ip -o link show minirun0").stdout
    return out.split("link/ether ")[1].split()[0]


def test_a_raw_frame_from_a_container_never_reaches_the_hosts_loopback(host: HostSide) -> None:
    cid, pid = _detached(host, "busybox", "sleep", "60")
    try:
        address = json.loads(host.run("inspect", cid).stdout)[0]["NetworkSettings"]["IPAddress"]
        listener = subprocess.Popen(host.nsenter("python3", "-c", _LISTEN, "9999", "10.77.0.1"),
                                    stdout=subprocess.PIPE, text=True)
        assert listener.stdout is not None and listener.stdout.readline() == "listening\n"
        for target in ("127.0.0.1", "10.77.0.1"):  # the attack; the control (the bridge's own address)
            sent = _in_netns(pid, "python3", "-c", _RAW_UDP, _bridge_mac(host), address, target, "9999")
            assert sent.returncode == 0, sent.stderr
        out, _ = listener.communicate(timeout=30)
        assert out.strip() == "10.77.0.1", out  # the control arrived; the frame to 127.0.0.1 did not
        assert host.sh("cat /proc/sys/net/ipv4/conf/minirun0/route_localnet").stdout.strip() == "1"  # -p 127.0.0.1
    finally:
        host.run("rm", "-f", cid)


def test_a_router_advertisement_changes_no_route(host: HostSide) -> None:
    attacker, pid = _detached(host, "busybox", "sleep", "60")
    victim, victim_pid = _detached(host, "busybox", "sleep", "60")
    try:
        # IPv6 is off in a container, as in Docker without --ipv6.
        r = host.run("exec", victim, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6",
                     "/proc/sys/net/ipv6/conf/eth0/disable_ipv6")
        assert r.stdout.split() == ["1", "1"], r
        assert host.sh("cat /proc/sys/net/ipv6/conf/minirun0/accept_ra").stdout.strip() == "0"
        sent = _in_netns(pid, "python3", "-c", _RA)
        assert sent.returncode == 0, sent.stderr
        time.sleep(1.5)
        for where in (host.sh("ip -6 addr; ip -6 route"), _in_netns(victim_pid, "sh", "-c", "ip -6 addr; ip -6 route")):
            assert "2001:db8:77" not in where.stdout and "default" not in where.stdout, where.stdout
        # The control: where router advertisements are accepted, the same frame configures an address.
        host.sh("echo 2 > /proc/sys/net/ipv6/conf/minirun0/accept_ra")
        assert _in_netns(pid, "python3", "-c", _RA).returncode == 0
        deadline = time.monotonic() + 10
        while "2001:db8:77" not in host.sh("ip -6 addr show dev minirun0").stdout:
            assert time.monotonic() < deadline, "the control router advertisement was never accepted"
            time.sleep(0.2)
    finally:
        host.run("rm", "-f", attacker, victim)


def test_a_neighbour_reaches_published_ports_only(host: HostSide, tmp_path: Path) -> None:
    lan = f"{host.name}lan"
    subprocess.run(["ip", "netns", "add", lan], check=True)
    web = ""
    try:
        # A neighbour on the host's LAN with a route to the containers' subnet through the host.
        setup = (f"ip link add lan0 type veth peer name lan1 netns {lan} && ip addr add 198.51.100.1/24 dev lan0 && "
                 f"ip link set lan0 up && ip -n {lan} addr add 198.51.100.2/24 dev lan1 && "
                 f"ip -n {lan} link set lan1 up && ip -n {lan} link set lo up && "
                 f"ip -n {lan} route add 10.77.0.0/16 via 198.51.100.1")
        assert host.sh(setup).returncode == 0
        web, _ = _detached(host, "-p", "8080:81", "busybox", "sh", "-c", "mkdir /www && echo served > /www/index.html "
                           "&& busybox httpd -p 80 -h /www && exec busybox httpd -f -p 81 -h /www")
        address = json.loads(host.run("inspect", web).stdout)[0]["NetworkSettings"]["IPAddress"]
        host.wait_for("the published httpd", "busybox wget -qO- http://127.0.0.1:8080/ >/dev/null")
        host.wait_for("the unpublished httpd, from the host", f"busybox wget -qO- http://{address}:80/ >/dev/null")

        def from_lan(url: str) -> subprocess.CompletedProcess[str]:
            # (busybox wget's own -T crashes on a timeout here: timeout(1) bounds it instead)
            return subprocess.run(["ip", "netns", "exec", lan, "timeout", "3", "busybox", "wget", "-qO-", url],
                                  capture_output=True, text=True, timeout=30)

        r = from_lan("http://198.51.100.1:8080/")
        assert (r.returncode, r.stdout) == (0, "served\n"), r.stderr  # published: reachable
        r = from_lan(f"http://{address}:80/")
        assert r.returncode != 0 and r.stdout == "", r  # never published: dropped, as Docker
    finally:
        if web:
            host.run("rm", "-f", web)
        subprocess.run(["ip", "netns", "del", lan], check=True)
