"""Container networking as data: Docker's -p forms, resolv.conf and hosts, address
allocation, route overlap, and the nftables table minirun writes."""

from __future__ import annotations

import pytest

from minirun.errors import UsageError
from minirun.runtime.net import netconf
from minirun.runtime.net.netconf import PortMapping, Subnet


def test_port_forms_as_docker_accepts_them() -> None:
    assert netconf.parse_ports("8080:80") == [PortMapping("", 8080, 80, "tcp")]
    assert netconf.parse_ports("127.0.0.1:8080:80/udp") == [PortMapping("127.0.0.1", 8080, 80, "udp")]
    assert netconf.parse_ports("0.0.0.0:8080:80") == [PortMapping("", 8080, 80, "tcp")]
    assert netconf.parse_ports("80") == [PortMapping("", 0, 80, "tcp")]            # any free host port
    assert netconf.parse_ports("127.0.0.1::80") == [PortMapping("127.0.0.1", 0, 80, "tcp")]
    assert netconf.parse_ports("8000-8002:9000-9002") == [PortMapping("", 8000 + i, 9000 + i, "tcp") for i in range(3)]
    assert str(netconf.parse_ports("8080:80/udp")[0]) == "0.0.0.0:8080->80/udp"
    assert netconf.exposed_ports({"ExposedPorts": {"80/tcp": {}, "53/udp": {}, "bad/x": {}}}) == \
        [PortMapping("", 0, 80, "tcp"), PortMapping("", 0, 53, "udp")]   # -P
    for bad in ("8080:80/sctp", "x:80", "70000:80", "1-3:1-2", "1:2:3:4", "300.1.1.1:80:80", "0:80", "9-8:9-8"):
        with pytest.raises(UsageError, match="invalid -p"):
            netconf.parse_ports(bad)


def test_modes_and_their_conflicts() -> None:
    assert netconf.choose("default", (), False, (), (), (), ()).mode == "bridge"
    assert netconf.choose("container:web", (), False, (), (), (), ()).mode == "container:web"
    for bad in ("bridged", "container:", ""):
        with pytest.raises(UsageError, match="invalid --network"):
            netconf.choose(bad, (), False, (), (), (), ())
    with pytest.raises(UsageError, match="need the bridge network"):
        netconf.choose("host", ("80",), False, (), (), (), ())
    with pytest.raises(UsageError, match="conflict with --network container"):
        netconf.choose("container:web", (), False, ("1.1.1.1",), (), (), ())
    with pytest.raises(UsageError, match="invalid --dns"):
        netconf.choose("bridge", (), False, ("nameserver",), (), (), ())
    with pytest.raises(UsageError, match="invalid --add-host"):
        netconf.choose("bridge", (), False, (), (), (), ("db:not-an-ip",))
    assert netconf.choose("bridge", (), False, (), (), (), ("db:10.0.0.9", "gw=host-gateway")).add_hosts == \
        (("db", "10.0.0.9"), ("gw", "host-gateway"))


def test_resolv_conf_as_docker_rewrites_it() -> None:
    resolved = "# systemd-resolved\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"
    assert netconf.resolv_conf(resolved) == \
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\noptions edns0 trust-ad\n"
    mixed = "nameserver 127.0.0.1\nnameserver 192.0.2.53\nnameserver ::1\ndomain corp\n"
    assert netconf.resolv_conf(mixed) == "nameserver 192.0.2.53\nsearch corp\n"
    assert netconf.resolv_conf(mixed, ("192.0.2.1",), ("a.test", "b.test"), ("ndots:2",)) == \
        "nameserver 192.0.2.1\nsearch a.test b.test\noptions ndots:2\n"


def test_hosts_file() -> None:
    text = netconf.hosts_file("box", "10.77.0.5", [("db", "192.0.2.9")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost" and lines[-2:] == ["192.0.2.9\tdb", "10.77.0.5\tbox"]
    assert netconf.hosts_file("box", None, []).splitlines()[-1] == "127.0.1.1\tbox"


def test_allocation_and_subnets() -> None:
    net = Subnet.parse("10.77.0.0/16")
    assert (str(net), net.gateway) == ("10.77.0.0/16", "10.77.0.1")
    assert netconf.allocate(net, set()) == "10.77.0.2"
    assert netconf.allocate(net, {"10.77.0.2", "10.77.0.3"}) == "10.77.0.4"
    small = Subnet.parse("192.168.5.0/29")   # .1 the gateway, .2-.6 for containers, .7 broadcast
    assert netconf.allocate(small, {f"192.168.5.{i}" for i in range(2, 6)}) == "192.168.5.6"
    with pytest.raises(UsageError, match="no free address"):
        netconf.allocate(small, {f"192.168.5.{i}" for i in range(2, 7)})
    for bad in ("10.77.0.0", "10.77.0.0/33", "10.77.0.0/4", "10.777.0.0/16", "x/16"):
        with pytest.raises(UsageError, match="invalid bridge subnet"):
            Subnet.parse(bad)


ROUTES = """Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT
eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
minirun0\t00004D0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
"""


def test_overlap_with_the_hosts_routes() -> None:
    assert netconf.overlapping_route(Subnet.parse("10.77.0.0/16"), ROUTES) is None  # default and own skipped
    assert netconf.overlapping_route(Subnet.parse("192.168.0.0/16"), ROUTES) == "192.168.2.0/24 on eth0"
    assert netconf.overlapping_route(Subnet.parse("192.168.2.128/25"), ROUTES) == "192.168.2.0/24 on eth0"


def test_ruleset_is_minirun_s_table_only() -> None:
    rules = netconf.ruleset(Subnet.parse("10.77.0.0/16"), [("10.77.0.2", PortMapping("", 8080, 80, "tcp")),
                                                            ("10.77.0.3", PortMapping("127.0.0.1", 53, 5353, "udp"))])
    assert rules.startswith("table ip minirun {}\ndelete table ip minirun\ntable ip minirun {")
    assert "\t\ttcp dport 8080 dnat to 10.77.0.2:80\n" in rules
    assert "\t\tip daddr 127.0.0.1 udp dport 53 dnat to 10.77.0.3:5353\n" in rules
    assert 'ip saddr 10.77.0.0/16 oifname != "minirun0" masquerade' in rules
    tables = [line for line in rules.splitlines() if line.startswith("table") or "table " in line]
    assert all("table ip minirun" in line for line in tables)


def test_ruleset_lets_into_the_bridge_only_published_ports_and_replies() -> None:
    rules = netconf.ruleset(Subnet.parse("10.77.0.0/16"), [])
    forward = rules[rules.index("chain forward"):].split("}")[0].splitlines()
    into = [line.strip() for line in forward if 'oifname "minirun0"' in line]
    assert into == ['oifname "minirun0" ct state established,related accept',
                    'oifname "minirun0" ct status dnat accept', 'oifname "minirun0" drop']
    raw = rules[rules.index("chain raw"):].split("}")[0]
    assert "hook prerouting priority raw" in raw  # before routing: route_localnet never sees them
    assert 'iifname "minirun0" ip daddr 127.0.0.0/8 drop' in raw
    assert 'iifname "minirun0" ip saddr 127.0.0.0/8 drop' in raw
