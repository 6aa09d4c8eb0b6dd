"""User-defined networks (issue 27), as root, inside a network namespace each test made (see
test_network.py): their bridges, the isolation between them, --internal, connect and
disconnect, and the resolvers that let containers find each other by name. Names other than
the containers' go to a test resolver on the host side (192.0.2.1:53), never a real one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.integration.test_network import BRIDGED, OTHER, HostSide, _serve, _wait_running
from tests.integration.test_network import host as host  # the fixture, used here too

SIDE = ["lo", "side0", "side1"]  # the host side's links where the default bridge was never made

# The test's upstream resolver: upstream.test is 192.0.2.77, every other name NXDOMAIN.
_UPSTREAM = r"""
import socket, sys
from dnslib import DNSRecord, RR, QTYPE, A, RCODE
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(4096)
    q = DNSRecord.parse(data)
    r = q.reply()
    if str(q.q.qname).rstrip(".") == "upstream.test" and q.q.qtype == QTYPE.A:
        r.add_answer(RR(q.q.qname, QTYPE.A, rdata=A("192.0.2.77"), ttl=60))
    else:
        r.header.rcode = RCODE.NXDOMAIN
    s.sendto(r.pack(), peer)
"""

# A query from inside a container's network namespace: rcode and A/AAAA answers, as JSON.
_ASK = r"""
import json, sys
from dnslib import DNSRecord
q = DNSRecord.question(sys.argv[1], sys.argv[2])
r = DNSRecord.parse(q.send("127.0.0.11", 53, timeout=3, tcp=sys.argv[3] == "tcp"))
print(json.dumps([r.header.rcode, [str(a.rdata) for a in r.rr]]))
"""


@pytest.fixture
def upstream(host: HostSide) -> Iterator[None]:
    p = subprocess.Popen(host.nsenter(sys.executable, "-c", _UPSTREAM, OTHER), stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        yield
    finally:
        p.kill()
        p.wait()


def _detached(host: HostSide, *args: str) -> str:
    r = host.run("run", "-d", "--dns", OTHER, *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _pid(host: HostSide, name: str) -> int:
    return int(host.run("inspect", "-f", "{{.State.Pid}}", name).stdout)


def _ask(host: HostSide, name: str, qname: str, qtype: str = "A", tcp: bool = False) -> tuple[int, list[str]]:
    r = subprocess.run(["nsenter", f"--net=/proc/{_pid(host, name)}/ns/net", sys.executable, "-c", _ASK, qname,
                        qtype, "tcp" if tcp else "udp"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rcode, answers = json.loads(r.stdout)
    return rcode, answers


def _address(host: HostSide, name: str, network: str) -> str:
    r = host.run("inspect", "-f", f"{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}", name)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _resolvers(cid: str) -> list[int]:
    r = subprocess.run(["pgrep", "-f", f"minirun.runtime.net.resolver {cid}"], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def _settled(what: str, check: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_names_resolve_on_their_network_only(host: HostSide, upstream: None) -> None:
    assert host.run("network", "create", "app").returncode == 0
    assert host.run("network", "create", "--internal", "back").returncode == 0
    db = _detached(host, "--network", "app", "--name", "db", "--network-alias", "database", "busybox",
                   "sleep", "60")
    _detached(host, "--network", "app", "--name", "web", "busybox", "sleep", "60")
    _detached(host, "--network", "back", "--name", "other", "busybox", "sleep", "60")
    address = _address(host, "db", "app")
    assert address.startswith("10.78.0.")
    for qname in ("db", "DB.", "database", db[:12]):
        assert _ask(host, "web", qname) == (0, [address]), qname
    assert _ask(host, "web", "db", tcp=True) == (0, [address])
    assert _ask(host, "web", "db", "AAAA") == (0, [])             # known, no IPv6 address: NOERROR, empty
    assert _ask(host, "web", "upstream.test") == (0, ["192.0.2.77"])   # forwarded to --dns
    assert _ask(host, "web", "nosuch.test") == (3, [])            # upstream's NXDOMAIN passed on
    assert _ask(host, "other", "db") == (3, [])                   # another network: not found, not asked out
    assert _ask(host, "other", "upstream.test") == (3, [])        # internal: nothing goes out
    r = host.run("run", "--rm", "--network", "app", "busybox", "cat", "/etc/resolv.conf")
    assert r.stdout == "nameserver 127.0.0.11\noptions ndots:0\n", r
    r = host.run("run", "--rm", "--network", "app", "busybox", "sh", "-c", "busybox nslookup db | tail -n +3")
    assert f"Address: {address}" in r.stdout, r
    # The default bridge keeps Docker's default-bridge behaviour: no names.
    r = host.run("run", "--rm", "busybox", "cat", "/etc/resolv.conf")
    assert "127.0.0.11" not in r.stdout
    # Removed: gone for the others at once; its resolver ends with it.
    assert _resolvers(db)
    assert host.run("rm", "-f", "db").returncode == 0
    assert _ask(host, "web", "db") == (3, [])
    _settled("db's resolver ends", lambda: not _resolvers(db))
    r = host.run("network", "rm", "app")
    assert r.returncode == 1 and "has active endpoints" in r.stderr, r
    assert host.run("rm", "-f", "web", "other").returncode == 0
    assert host.run("network", "rm", "app", "back").stdout == "app\nback\n"
    assert host.settled_links(BRIDGED) == BRIDGED and host.leases() == []


def test_isolation_internal_and_published_ports(host: HostSide, tmp_path: object) -> None:
    for name in ("one", "two"):
        assert host.run("network", "create", name).returncode == 0
    assert host.run("network", "create", "--internal", "--subnet", "10.99.5.0/24", "shut").returncode == 0
    server = _serve(host, tmp_path, "host side\n")  # type: ignore[arg-type]
    try:
        _detached(host, "--network", "one", "--name", "web", "-p", "8088:80", "busybox", "sh", "-c",
                  "mkdir /www && echo in one > /www/index.html && exec busybox httpd -f -p 80 -h /www")
        address = _address(host, "web", "one")
        host.wait_for("the published httpd", "busybox wget -qO- http://127.0.0.1:8088/ >/dev/null")

        def fetch(network: str, url: str) -> subprocess.CompletedProcess[str]:
            # (sh stays PID 1: timeout's signal would not end a PID 1 wget)
            return host.run("run", "--rm", "--network", network, "busybox", "sh", "-c",
                            f"busybox timeout 3 busybox wget -qO- {url} || exit 1")

        def said(network: str, url: str, expected: str) -> None:
            r = fetch(network, url)
            assert r.stdout == expected, (network, url, r, host.leases(), host.sh("ip neigh; ip -br link").stdout,
                                          host.sh("nft list table ip minirun").stdout)

        # (busybox-static's wget cannot look names up: its glibc has no NSS modules to load)
        said("one", f"http://{address}/", "in one\n")                          # same network
        assert fetch("two", f"http://{address}/").returncode != 0                  # another network: no reach
        assert fetch("bridge", f"http://{address}/").returncode != 0               # nor the default bridge
        said("two", f"http://{OTHER}:8088/", "in one\n")                        # published: as from outside
        said("one", f"http://{OTHER}:8000/", "host side\n")                     # a way out
        assert fetch("shut", f"http://{OTHER}:8000/").returncode != 0              # internal: none
        assert fetch("shut", f"http://{address}/").returncode != 0
        r = host.run("run", "--rm", "--network", "shut", "--ip", "10.99.5.42", "busybox", "sh", "-c",
                     "busybox ip -o -4 addr show eth0; busybox ip route; cat /sys/class/net/eth0/address")
        assert "inet 10.99.5.42/24" in r.stdout and "default" not in r.stdout, r
        # Docker's MACs: from the address (one given again comes with the MAC the others cached
        # for it), and the bridge's own, fixed (not its lowest port's, which changes as they go).
        assert r.stdout.endswith("\n02:42:0a:63:05:2a\n"), r
        options = json.loads(host.run("network", "inspect", "shut").stdout)[0]["Options"]
        bridge = options["com.docker.network.bridge.name"]
        assert "link/ether 02:42:0a:63:05:01 " in host.sh(f"ip -o link show dev {bridge}").stdout
        r = host.run("run", "--rm", "--network", "shut", "--ip", "10.99.6.1", "busybox", "true")
        assert r.returncode == 125 and "not a host address of network shut" in r.stderr, r
        r = host.run("run", "--rm", "--ip", "10.77.0.9", "busybox", "true")
        assert r.returncode == 125 and "user-defined networks only" in r.stderr, r
    finally:
        server.kill()
        server.wait()
        host.run("rm", "-f", "web")
    assert host.run("network", "prune", "-f").stdout == "Deleted Networks:\none\nshut\ntwo\n\n"
    assert host.settled_links(BRIDGED) == BRIDGED and host.leases() == []
    assert "mr-" not in host.sh("nft list table ip minirun").stdout


def test_connect_and_disconnect_a_running_container(host: HostSide, upstream: None) -> None:
    for name in ("front", "back"):
        assert host.run("network", "create", name).returncode == 0
    _detached(host, "--network", "front", "--name", "api", "busybox", "sleep", "60")
    _detached(host, "--network", "back", "--name", "store", "busybox", "sleep", "60")
    assert _ask(host, "api", "store") == (3, [])
    r = host.run("network", "connect", "--alias", "service", "back", "api")
    assert r.returncode == 0, r.stderr
    api_back = _address(host, "api", "back")
    assert _ask(host, "store", "api") == (0, [api_back]) and _ask(host, "store", "service") == (0, [api_back])
    assert _ask(host, "api", "store") == (0, [_address(host, "store", "back")])  # its resolver sees back now
    r = host.run("exec", "api", "busybox", "ip", "-o", "-4", "addr", "show", "eth1")
    assert f"inet {api_back}/24" in r.stdout, r
    inspect = json.loads(host.run("network", "inspect", "back").stdout)[0]
    assert sorted(c["Name"] for c in inspect["Containers"].values()) == ["api", "store"]
    r = host.run("network", "connect", "back", "api")
    assert r.returncode == 1 and "already exists in network back" in r.stderr, r
    assert host.run("network", "disconnect", "back", "api").returncode == 0
    assert _ask(host, "store", "api") == (3, [])
    assert host.run("exec", "api", "busybox", "ip", "link", "show", "eth1").returncode != 0
    # A stopped container keeps what it was connected to: it joins again when it starts.
    assert host.run("network", "connect", "back", "api").returncode == 0
    assert host.run("stop", "-t", "0", "api").returncode == 0
    assert host.run("start", "api").returncode == 0
    assert _ask(host, "store", "api")[1] == [_address(host, "api", "back")]
    assert host.run("rm", "-f", "api", "store").returncode == 0
    assert host.run("network", "rm", "front", "back").returncode == 0
    assert host.settled_links(SIDE) == SIDE and host.leases() == []


def test_a_killed_minirun_s_resolver_and_leases_are_reclaimed(host: HostSide) -> None:
    assert host.run("network", "create", "app").returncode == 0
    p = host.popen("run", "--network", "app", "--name", "doomed", "busybox", "sleep", "60")
    _wait_running(host, "doomed", p)
    cid = host.run("inspect", "-f", "{{.Id}}", "doomed").stdout.strip()
    assert len(_resolvers(cid)) == 1 and len(host.leases()) == 1
    p.send_signal(signal.SIGKILL)
    p.wait()
    _settled("the resolver ends with its container", lambda: not _resolvers(cid))
    r = host.run("network", "rm", "app")  # its lease's owner is gone: taken back, so the network goes
    assert r.returncode == 0, r.stderr
    assert host.run("rm", "-f", "doomed").returncode == 0
    assert host.settled_links(SIDE) == SIDE and host.leases() == []


def test_twenty_join_at_once_and_all_resolve_all(host: HostSide) -> None:
    assert host.run("network", "create", "many").returncode == 0
    names = [f"w{i}" for i in range(20)]
    procs = [host.popen("run", "-d", "--network", "many", "--name", n, "busybox", "sleep", "120") for n in names]
    cids = []
    for p in procs:
        out, errors = p.communicate(timeout=120)
        assert p.returncode == 0, errors
        cids.append(out.strip())
    addresses = {n: _address(host, n, "many") for n in names}
    assert len(set(addresses.values())) == 20
    script = "for n in " + " ".join(names) + "; do busybox nslookup $n 2>&1 | tail -n +3 | grep Address; done"
    for n in names:
        r = host.run("exec", n, "sh", "-c", script)
        assert r.stdout.split() == [w for m in names for w in ("Address:", addresses[m])], (n, r)
    assert host.run("rm", "-f", *names).returncode == 0
    assert host.run("network", "rm", "many").returncode == 0
    assert host.settled_links(SIDE) == SIDE and host.leases() == []
    _settled("every resolver ends", lambda: not any(_resolvers(cid) for cid in cids))


def test_network_verbs_as_docker(host: HostSide) -> None:
    r = host.run("network", "create", "--label", "team=a", "--subnet", "10.99.1.0/24", "lab")
    assert r.returncode == 0 and len(r.stdout.strip()) == 64, r
    assert host.run("network", "create", "lab").stderr == "minirun: network with name lab already exists\n"
    r = host.run("network", "create", "--subnet", "10.99.1.128/25", "clash")
    assert r.returncode == 1 and "Pool overlaps with other one on this address space" in r.stderr, r
    assert host.run("network", "create", "bridge").returncode == 1
    r = host.run("network", "create", "--subnet", "192.0.2.0/24", "x")  # the host side's own route
    assert r.returncode == 0  # (Docker allows a given subnet; the bridge is refused when it is made)
    r = host.run("run", "--rm", "--network", "x", "busybox", "true")
    assert r.returncode == 125 and "overlaps the host's route to 192.0.2.0/24 on side0" in r.stderr, r
    ls = host.run("network", "ls").stdout.splitlines()
    assert ls[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [row.split()[1:] for row in ls[1:]] == [["bridge", "bridge", "local"], ["host", "host", "local"],
                                                    ["lab", "bridge", "local"], ["none", "null", "local"],
                                                    ["x", "bridge", "local"]]
    assert host.run("network", "ls", "-q", "--filter", "label=team=a").stdout.strip() == \
        host.run("network", "inspect", "-f", "{{.Id}}", "lab").stdout.strip()[:12]
    doc = json.loads(host.run("network", "inspect", "lab").stdout)[0]
    assert doc["IPAM"]["Config"] == [{"Subnet": "10.99.1.0/24", "Gateway": "10.99.1.1"}]
    assert (doc["Driver"], doc["Labels"], doc["Internal"]) == ("bridge", {"team": "a"}, False)
    r = host.run("run", "--rm", "--network", "nosuch", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "minirun: network nosuch not found\n"), r
    r = host.run("network", "rm", "bridge")
    assert r.returncode == 1 and "pre-defined network" in r.stderr
    r = host.run("network", "rm", "lab", "nosuch", "x")
    assert (r.returncode, r.stdout) == (1, "lab\nx\n") and "network nosuch not found" in r.stderr, r
