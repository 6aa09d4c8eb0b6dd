"""The bridge beside other firewalls (issue 23), each reproduced in a test-made "host side"
namespace (see test_network.py): Docker's (iptables-nft `filter FORWARD` policy DROP with its
DOCKER-USER chain, and br_netfilter on, so bridged traffic meets it too) and a firewalld-like
`inet` table whose forward chain rejects. Containers reach each other and a server in a
further namespace routed through the host side; minirun's accept rules stay while the bridge
does (surveyed again when the ruleset changed) and go with `system prune`; a control shows the
firewalls do drop without them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.test_network import HostSide
from tests.integration.test_network import host as host  # the fixture, re-exported

DOCKER_LIKE = ("iptables -w -P FORWARD DROP && iptables -w -N DOCKER-USER && iptables -w -A FORWARD -j DOCKER-USER "
               "&& iptables -w -A DOCKER-USER -j RETURN")
FIREWALLD_LIKE = ("nft add table inet fwtest && nft add chain inet fwtest filter_FORWARD "
                  "'{ type filter hook forward priority 10; policy accept; }' && "
                  "nft add rule inet fwtest filter_FORWARD reject with icmpx admin-prohibited")


def _record(host: HostSide) -> Path:
    return Path("/run/minirun") / f"net-{os.stat(f'/run/netns/{host.name}').st_ino}" / "firewall.json"


def _ours(host: HostSide) -> str:
    """minirun's rules in the host side's other firewalls (empty when there are none)."""
    out = host.sh("iptables -w -S DOCKER-USER; nft list table inet fwtest").stdout
    return "\n".join(line for line in out.splitlines() if "minirun" in line)


def _handles(host: HostSide) -> list[str]:
    """minirun's rules in the firewalld-like table, with their handles."""
    out = host.sh("nft -a list table inet fwtest").stdout
    return [line.strip() for line in out.splitlines() if "minirun" in line]


def _detached(host: HostSide, *args: str) -> str:
    r = host.run("run", "-d", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _address(host: HostSide, cid: str) -> str:
    return str(json.loads(host.run("inspect", cid).stdout)[0]["NetworkSettings"]["IPAddress"])


def _get(host: HostSide, url: str) -> subprocess.CompletedProcess[str]:
    # (not as the container's PID 1: busybox's timeout execs its program and signals it, which
    # a PID 1 without a handler ignores)
    return host.run("run", "--rm", "busybox", "sh", "-c", f"busybox timeout 5 busybox wget -qO- {url}; true")


def test_the_bridge_works_beside_docker_and_firewalld_like_firewalls(host: HostSide, tmp_path: Path) -> None:
    subprocess.run(["modprobe", "br_netfilter"], capture_output=True)  # as Docker loads it (may be built in)
    assert host.sh(DOCKER_LIKE).returncode == 0 and host.sh(FIREWALLD_LIKE).returncode == 0
    bridged = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    if bridged.exists():
        assert host.sh(f"echo 1 > {bridged}").returncode == 0
    out = f"{host.name}out"  # a server beyond the host side, routed through it
    subprocess.run(["ip", "netns", "add", out], check=True)
    web = ""
    try:
        setup = (f"ip link add out0 type veth peer name out1 netns {out} && ip addr add 198.51.100.1/24 dev out0 && "
                 f"ip link set out0 up && ip -n {out} addr add 198.51.100.2/24 dev out1 && "
                 f"ip -n {out} link set out1 up && ip -n {out} link set lo up")
        assert host.sh(setup).returncode == 0
        www = tmp_path / "www"
        www.mkdir()
        (www / "index.html").write_text("outside\n")
        server = subprocess.Popen(["ip", "netns", "exec", out, "busybox", "httpd", "-f", "-p", "8000", "-h", str(www)])
        web = _detached(host, "busybox", "sh", "-c", "mkdir /www && echo neighbour > /www/index.html && "
                        "exec busybox httpd -f -p 80 -h /www")
        found = _ours(host)
        assert found.count("minirun") >= 6, found  # three rules in each firewall
        assert "DOCKER-USER" in found
        targets = ((f"http://{_address(host, web)}/", "neighbour\n"), ("http://198.51.100.2:8000/", "outside\n"))
        for url, text in targets:
            deadline = time.monotonic() + 20
            while (r := _get(host, url)).stdout != text and time.monotonic() < deadline:
                time.sleep(0.2)
            assert r.stdout == text, (url, r)
        wall = host.run("info").stdout
        assert "ip filter FORWARD (policy drop)" in wall, wall
        assert "inet fwtest filter_FORWARD (drops or rejects)" in wall, wall
        # The control: without minirun's rules, these firewalls drop the same traffic.
        close = ("from pathlib import Path; from minirun.runtime.net import firewall; "
                 f"firewall.close(Path('{_record(host)}'))")
        assert subprocess.run(host.nsenter(sys.executable, "-c", close)).returncode == 0  # in the host side's netns
        assert _ours(host) == ""
        assert _get(host, "http://198.51.100.2:8000/").stdout == ""
        server.terminate()
        server.wait(10)
    finally:
        if web:
            host.run("rm", "-f", web)
        subprocess.run(["ip", "netns", "del", out], check=True)
    # The rules stay with the bridge after its last container (as minirun's table does), and a
    # start finds them unchanged by the ruleset's generation: no survey, the same rules.
    assert host.run("run", "--rm", "busybox", "true").returncode == 0  # the control removed them: added again
    assert _ours(host).count("minirun") >= 6 and _record(host).exists(), _ours(host)
    assert isinstance(json.loads(_record(host).read_text())["generation"], int)
    kept = _handles(host)
    assert host.run("run", "--rm", "busybox", "true").returncode == 0
    assert _handles(host) == kept, kept  # a new survey would have put new rules, new handles
    # A firewalld-like reload (its table rewritten without minirun's rules): the next start sees
    # the generation changed and adds them again.
    reload = "nft flush chain inet fwtest filter_FORWARD && nft add rule inet fwtest filter_FORWARD reject"
    assert host.sh(reload).returncode == 0 and "fwtest" not in _ours(host)
    assert host.run("run", "--rm", "busybox", "true").returncode == 0
    assert _ours(host).count("minirun") >= 6 and _handles(host) != kept
    # prune leaves no rule and no bridge.
    assert host.run("system", "prune").returncode == 0
    assert _ours(host) == "" and not _record(host).exists() and "minirun0" not in host.links()
