"""Container networks (issue 11), as root, each test inside a network namespace it made: the
"host side" (its bridge, its nftables table, a veth pair holding 192.0.2.1, the
servers and clients standing for the host) lives there, so the real host's interfaces and
firewall are never touched and no container reaches an address outside the test's
namespaces. Images are pulled first in the real namespace (the registry is on its
loopback); minirun then runs in the test's namespace through nsenter (``ip netns exec``
would hide the cgroup mounts behind a fresh /sys)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import Minirun, created

_names = itertools.count()
BRIDGED = ["lo", "minirun0", "side0", "side1"]   # the host side's links, the bridge made
OTHER = "192.0.2.1"   # the host side's address besides the bridge's (TEST-NET-1)


@dataclass
class HostSide:
    name: str
    mr: Minirun

    def nsenter(self, *argv: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.name}", *argv]

    def env(self, **more: str) -> dict[str, str]:
        return self.mr.env(MINIRUN_NETWORK="bridge", **more)

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.nsenter(*self.mr.argv(*args)), env=self.env(**env), capture_output=True,
                              text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.nsenter(*self.mr.argv(*args)), env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def sh(self, line: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A command on the host side."""
        return subprocess.run(self.nsenter("sh", "-c", line), capture_output=True, text=True, timeout=timeout)

    def links(self) -> list[str]:
        return sorted(line.split(":")[1].strip().split("@")[0]
                      for line in self.sh("ip -o link").stdout.splitlines())

    def settled_links(self, expected: list[str], seconds: float = 10) -> list[str]:
        """The links once ``expected`` (the kernel removes a veth in the background, shortly
        after its container's namespace is gone), or as they are after ``seconds``."""
        deadline = time.monotonic() + seconds
        while (found := self.links()) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return found

    def leases(self) -> list[str]:
        d = Path("/run/minirun") / f"net-{os.stat(f'/run/netns/{self.name}').st_ino}"
        return sorted(p.name for p in d.glob("lease-*")) if d.is_dir() else []

    def published_rules(self) -> list[str]:
        out = self.sh("nft list chain ip minirun publish").stdout
        return [line.strip() for line in out.splitlines() if "dnat" in line]

    def wait_for(self, what: str, check: str, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while self.sh(check).returncode != 0:
            assert time.monotonic() < deadline, f"{what}: never"
            time.sleep(0.1)


@pytest.fixture
def host(mr: Minirun) -> Iterator[HostSide]:
    name = f"mrtest{os.getpid()}x{next(_names)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    side = HostSide(name, mr)
    try:
        # A veth pair holds the other address (the dummy module may be missing from a kernel).
        setup = (f"ip link set lo up && ip link add side0 type veth peer name side1 && "
                 f"ip addr add {OTHER}/24 dev side0 && ip link set side0 up && ip link set side1 up")
        assert side.sh(setup).returncode == 0
        assert mr("pull", "-q", "busybox").returncode == 0
        yield side
    finally:
        state = Path("/run/minirun") / f"net-{os.stat(f'/run/netns/{name}').st_ino}"
        subprocess.run(["ip", "netns", "del", name], check=True)
        shutil.rmtree(state, ignore_errors=True)


def _serve(host: HostSide, tmp_path: Path, text: str) -> subprocess.Popen[bytes]:
    """busybox httpd on the host side, port 8000 of every address, serving ``text``."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text(text)
    server = subprocess.Popen(host.nsenter("busybox", "httpd", "-f", "-p", "8000", "-h", str(www)))
    host.wait_for("the host side's httpd", "busybox wget -qO- http://127.0.0.1:8000/ >/dev/null")
    return server


def test_eth0_has_an_address_a_route_and_named_files(host: HostSide) -> None:
    r = host.run("run", "--rm", "-h", "box", "busybox", "sh", "-c",
                 "busybox ip -o -4 addr show eth0; busybox ip route; cat /etc/hosts")
    assert r.returncode == 0, r.stderr
    assert "inet 10.77.0.2/16" in r.stdout and "default via 10.77.0.1 dev eth0" in r.stdout, r.stdout
    assert r.stdout.endswith("10.77.0.2\tbox\n")
    assert host.settled_links(["lo", "minirun0", "side0", "side1"]) == ["lo", "minirun0", "side0", "side1"]
    assert host.leases() == []  # and its veth went with its namespace


def test_a_container_reaches_the_host_side(host: HostSide, tmp_path: Path) -> None:
    server = _serve(host, tmp_path, "from the host side\n")
    try:
        for address in ("10.77.0.1", OTHER):
            r = host.run("run", "--rm", "busybox", "busybox", "wget", "-qO-", f"http://{address}:8000/")
            assert (r.returncode, r.stdout) == (0, "from the host side\n"), (address, r.stderr)
    finally:
        server.kill()
        server.wait()


def test_run_d_starts_on_the_bridge_though_its_cli_was_killed(host: HostSide) -> None:
    """run -d's network helper is forked by the CLI and asked by the monitor: it is not killed
    with the CLI (as a foreground run's is), so a CLI killed once the container exists, before
    its network is attached, leaves it running with its eth0, as before the helper."""
    for i in range(3):
        name = f"orphan{i}"
        p = host.popen("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "busybox ip -o -4 addr show eth0; exec sleep 60")
        created(host.mr, name)
        os.kill(p.pid, signal.SIGKILL)
        p.communicate(timeout=30)
        deadline = time.monotonic() + 20
        while "inet 10.77.0." not in (logs := host.run("logs", name)).stdout:
            assert time.monotonic() < deadline, (i, logs, host.run("ps", "-a").stdout)
            time.sleep(0.1)
        assert name in host.run("ps").stdout
        assert host.run("rm", "-f", name).returncode == 0
    assert host.settled_links(["lo", "minirun0", "side0", "side1"]) == ["lo", "minirun0", "side0", "side1"]
    assert host.leases() == []


def _address_of(host: HostSide, name: str) -> str:
    rows = [json.loads(line) for line in host.run("ps", "--format", "json").stdout.splitlines()]
    return str(next(r["IPAddress"] for r in rows if r["Names"] == name))


def _wait_running(host: HostSide, name: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while name not in host.run("ps").stdout:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.1)


def _remove(host: HostSide, proc: subprocess.Popen[str], name: str) -> None:
    """End a container run in the background (its PID 1 ignores SIGTERM, as under Docker)."""
    host.run("rm", "-f", name)
    proc.communicate(timeout=30)


def test_two_containers_exchange_data(host: HostSide) -> None:
    server = host.popen("run", "--rm", "--name", "listener", "busybox", "busybox", "nc", "-l", "-p", "5000")
    _wait_running(host, "listener", server)
    address = _address_of(host, "listener")
    assert address.startswith("10.77.0.")
    deadline = time.monotonic() + 20
    while True:  # until nc listens
        r = host.run("run", "--rm", "busybox", "sh", "-c", f"echo across the bridge | busybox nc {address} 5000")
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    out, errors = server.communicate(timeout=30)
    assert (server.returncode, out) == (0, "across the bridge\n"), errors


def _udp(host: HostSide, address: str, port: int) -> str:
    code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1)\n"
            "for _ in range(10):\n"
            f"    s.sendto(b'ping', ('{address}', {port}))\n"
            "    try: print(s.recv(100).decode()); break\n"
            "    except OSError: pass\n")
    return subprocess.run(host.nsenter("python3", "-c", code), capture_output=True, text=True, timeout=30).stdout


def test_published_ports_tcp_and_udp(host: HostSide) -> None:
    assert host.mr("pull", "-q", "probe").returncode == 0
    web = host.popen("run", "--rm", "--name", "web", "-p", "8080:80", "busybox", "sh", "-c",
                     "mkdir /www && echo published > /www/index.html && exec busybox httpd -f -p 80 -h /www")
    udp = host.popen("run", "--rm", "--name", "echo", "-p", "5353:53/udp", "probe", "/probe", "udpecho", "53")
    try:
        _wait_running(host, "web", web)
        _wait_running(host, "echo", udp)
        host.wait_for("the published httpd", "busybox wget -qO- http://127.0.0.1:8080/ >/dev/null")
        for address in ("127.0.0.1", OTHER, "10.77.0.1"):
            r = host.sh(f"busybox wget -qO- http://{address}:8080/")
            assert (r.returncode, r.stdout) == (0, "published\n"), (address, r.stderr)
            assert _udp(host, address, 5353) == "echo:ping\n", address
        r = host.run("run", "--rm", "busybox", "busybox", "wget", "-qO-", f"http://{OTHER}:8080/")
        assert (r.returncode, r.stdout) == (0, "published\n"), r.stderr  # another container, through the host
        ps = host.run("ps").stdout
        assert "0.0.0.0:8080->80/tcp" in ps and "0.0.0.0:5353->53/udp" in ps, ps
        # port (issue 26), as Docker prints it
        assert host.run("port", "web").stdout == "80/tcp -> 0.0.0.0:8080\n"
        assert host.run("port", "echo", "53/udp").stdout == "0.0.0.0:5353\n"
        r = host.run("port", "web", "81")
        assert r.returncode == 1 and r.stderr == "minirun: No public port '81/tcp' published for web\n", r
    finally:
        _remove(host, web, "web")
        _remove(host, udp, "echo")
    assert host.published_rules() == [] and host.leases() == []


def test_a_busy_port_is_refused_and_nothing_is_left(host: HostSide) -> None:
    holder = subprocess.Popen(host.nsenter("busybox", "nc", "-l", "-p", "8081"))
    try:
        host.wait_for("the holder", "busybox netstat -ltn | grep -q ':8081 '")
        r = host.run("run", "--rm", "--name", "late", "-p", "8081:80", "busybox", "true")
        assert r.returncode == 125 and r.stderr.count("\n") == 1 and "already in use on the host" in r.stderr, r
    finally:
        holder.kill()
        holder.wait()
    first = host.popen("run", "--rm", "--name", "first", "-p", "8082:80", "busybox", "sleep", "30")
    try:
        _wait_running(host, "first", first)
        r = host.run("run", "--rm", "--name", "second", "-p", "8082:80", "busybox", "true")
        assert r.returncode == 125 and "already published by the container at 10.77.0.2" in r.stderr, r
        assert len(host.leases()) == 1 and len(host.published_rules()) == 1
    finally:
        _remove(host, first, "first")
    assert host.run("ps", "-a", "-q").stdout == "" and host.leases() == [] and host.published_rules() == []


def test_dns_and_hosts_flags(host: HostSide) -> None:
    r = host.run("run", "--rm", "-h", "web1", "--dns", "192.0.2.53", "--dns-search", "example.test",
                 "--dns-option", "ndots:2", "--add-host", "db:192.0.2.9", "--add-host", "gw:host-gateway",
                 "busybox", "sh", "-c", "cat /etc/resolv.conf; echo --; cat /etc/hosts")
    assert r.returncode == 0, r.stderr
    resolv, hosts = r.stdout.split("--\n")
    assert resolv == "nameserver 192.0.2.53\nsearch example.test\noptions ndots:2\n"
    assert hosts.splitlines()[-3:] == ["192.0.2.9\tdb", "10.77.0.1\tgw", "10.77.0.2\tweb1"]
    r = host.run("run", "--rm", "busybox", "cat", "/etc/resolv.conf")
    assert "127.0.0.53" not in r.stdout and r.stdout.startswith("nameserver ")


def test_none_host_and_container_modes(host: HostSide) -> None:
    r = host.run("run", "--rm", "--network", "none", "busybox", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in r.stdout.splitlines()] == ["lo"], r
    r = host.run("run", "--rm", "--network", "host", "busybox", "sh", "-c", "busybox ip -o -4 addr; cat /etc/hosts")
    assert f"inet {OTHER}/24" in r.stdout and r.stdout.endswith(Path("/etc/hosts").read_text()), r
    first = host.popen("run", "--rm", "--name", "first", "busybox", "sleep", "30")
    try:
        _wait_running(host, "first", first)
        r = host.run("run", "--rm", "--network", "container:first", "busybox", "busybox", "ip", "-o", "-4", "addr",
                     "show", "eth0")
        assert r.returncode == 0 and "inet 10.77.0.2/16" in r.stdout, r
        r = host.run("run", "--rm", "--network", "container:nosuch", "busybox", "true")
        assert r.returncode == 125 and "No such container: nosuch" in r.stderr
    finally:
        _remove(host, first, "first")


def test_twenty_at_once_get_distinct_addresses(host: HostSide) -> None:
    procs = [host.popen("run", "--rm", "busybox", "sh", "-c", "busybox ip -o -4 addr show eth0; sleep 1")
             for _ in range(20)]
    addresses = []
    for p in procs:
        out, errors = p.communicate(timeout=120)
        assert p.returncode == 0, errors
        addresses.append(out.split()[3])
    assert len(set(addresses)) == 20 and all(a.startswith("10.77.0.") for a in addresses), addresses
    assert host.leases() == [] and host.settled_links(BRIDGED) == BRIDGED


def test_a_killed_minirun_leaks_nothing_for_good(host: HostSide) -> None:
    p = host.popen("run", "--name", "doomed", "-p", "8090:80", "busybox", "sleep", "60")
    _wait_running(host, "doomed", p)
    assert len(host.leases()) == 1 and len(host.published_rules()) == 1
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert len(host.leases()) == 1  # its owner is gone: the next run takes it back, with its port
    r = host.run("run", "--rm", "-p", "8090:80", "busybox", "true")
    assert r.returncode == 0, r.stderr
    assert host.leases() == [] and host.published_rules() == []
    r = host.run("rm", "-f", "doomed")
    assert r.returncode == 0, r.stderr
    assert host.leases() == [] and host.published_rules() == [] and host.settled_links(BRIDGED) == BRIDGED
    # The published port is free to bind again on the host side.
    r = host.sh("busybox nc -l -p 8090 & pid=$!; sleep 0.3; busybox netstat -ltn | grep -c ':8090 '; kill $pid")
    assert r.stdout.strip() == "1", r
    r = host.run("system", "prune")
    assert r.returncode == 0, r.stderr
    assert host.links() == ["lo", "side0", "side1"] and host.sh("nft list table ip minirun").returncode != 0


def test_without_nftables(host: HostSide, tmp_path: Path) -> None:
    """No nft on PATH: the bridge works without NAT (said once, when it is made); -p is one
    clear error."""
    no_nft = "/usr/bin:/bin"
    assert shutil.which("nft", path=no_nft) is None
    server = _serve(host, tmp_path, "no NAT needed\n")
    try:
        r = host.run("run", "--rm", "busybox", "busybox", "wget", "-qO-", "http://10.77.0.1:8000/", PATH=no_nft)
        assert (r.returncode, r.stdout) == (0, "no NAT needed\n"), r.stderr
        assert r.stderr == ("minirun: nftables (nft) is not installed: containers on minirun0 reach only this "
                            "host (no NAT, no -p); apt-get install nftables\n")
        r = host.run("run", "--rm", "busybox", "true", PATH=no_nft)
        assert (r.returncode, r.stderr) == (0, "")  # said once
    finally:
        server.kill()
        server.wait()
    r = host.run("run", "--rm", "-p", "8085:80", "busybox", "true", PATH=no_nft)
    assert r.returncode == 125 and r.stderr == \
        "minirun: publishing ports (-p) needs nftables: apt-get install nftables\n", r.stderr
    assert host.leases() == [] and host.sh("nft list table ip minirun").returncode != 0


def test_a_subnet_that_overlaps_a_route_is_refused(host: HostSide) -> None:
    r = host.run("run", "--rm", "busybox", "true", MINIRUN_BRIDGE_SUBNET="192.0.2.0/25")
    assert r.returncode == 125 and r.stderr == (
        "minirun: the bridge subnet 192.0.2.0/25 overlaps the host's route to 192.0.2.0/24 on side0: "
        "set MINIRUN_BRIDGE_SUBNET to a free range\n"), r.stderr
    assert host.links() == ["lo", "side0", "side1"] and host.leases() == []
    r = host.run("run", "--rm", "busybox", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
                 MINIRUN_BRIDGE_SUBNET="198.51.100.0/24")
    assert r.returncode == 0 and "inet 198.51.100.2/24" in r.stdout, r
