"""Container networking as data: Docker's -p forms, resolv.conf and hosts, address
allocation, route overlap, and the nftables table minirun writes."""

from __future__ import annotations

import pytest

from minirun.errors import UsageError
from minirun.runtime.net import netconf
from minirun.runtime.net.netconf import PortMapping, Subnet
from minirun.runtime.net.rules import ruleset


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
    assert netconf.choose("bridged", (), False, (), (), (), ()).mode == "bridged"  # a user network's name
    for bad in ("container:", "", "-x", "a b"):
        with pytest.raises(UsageError, match="invalid --network"):
            netconf.choose(bad, (), False, (), (), (), ())
    with pytest.raises(UsageError, match="need a bridge network"):
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
    rules = ruleset([DEFAULT], [("10.77.0.2", PortMapping("", 8080, 80, "tcp")),
                                ("10.77.0.3", PortMapping("127.0.0.1", 53, 5353, "udp"))])
    assert rules.startswith("table ip minirun {}\ndelete table ip minirun\ntable ip minirun {")
    assert "\t\ttcp dport 8080 dnat to 10.77.0.2:80\n" in rules
    assert "\t\tip daddr 127.0.0.1 udp dport 53 dnat to 10.77.0.3:5353\n" in rules
    assert 'ip saddr 10.77.0.0/16 oifname != "minirun0" masquerade' in rules
    tables = [line for line in rules.splitlines() if line.startswith("table") or "table " in line]
    assert all("table ip minirun" in line for line in tables)


def test_ruleset_lets_into_the_bridge_only_published_ports_and_replies() -> None:
    rules = ruleset([DEFAULT], [])
    forward = rules[rules.index("chain forward"):].split("}")[0].splitlines()
    into = [line.strip() for line in forward if 'oifname "minirun0"' in line]
    assert into == ['iifname "minirun0" oifname "minirun0" accept', 'oifname "minirun0" ct status dnat accept',
                    'oifname "minirun0" ct state established,related accept', 'oifname "minirun0" drop']
    raw = rules[rules.index("chain raw"):].split("}")[0]
    assert "hook prerouting priority raw" in raw  # before routing: route_localnet never sees them
    assert 'iifname "minirun0" ip daddr 127.0.0.0/8 drop' in raw
    assert 'iifname "minirun0" ip saddr 127.0.0.0/8 drop' in raw


DEFAULT = netconf.Net("bridge", "bridge", "minirun0", Subnet.parse("10.77.0.0/16"))
ONE = netconf.Net("one", "b" * 64, "mr-bbbbbbbbbbbb", Subnet.parse("10.78.0.0/24"), names=True)
TWO = netconf.Net("two", "a" * 64, "mr-aaaaaaaaaaaa", Subnet.parse("10.78.1.0/24"), names=True)
SHUT = netconf.Net("shut", "c" * 64, "mr-cccccccccccc", Subnet.parse("10.78.2.0/24"), internal=True, names=True)


def _forward(rules: str) -> list[str]:
    return [line.strip() for line in rules[rules.index("chain forward"):].split("\n\t}")[0].splitlines()[2:]]


@pytest.mark.parametrize("order", [[DEFAULT, ONE, TWO, SHUT], [DEFAULT, TWO, SHUT, ONE]])
def test_networks_are_isolated_but_published_ports_reach_every_one(order: list[netconf.Net]) -> None:
    forward = _forward(ruleset(order, []))
    first_drop = next(i for i, line in enumerate(forward) if line.endswith("drop"))
    dnat = [i for i, line in enumerate(forward) if "ct status dnat accept" in line]
    internal = [i for i, line in enumerate(forward) if line in ('iifname "mr-cccccccccccc" drop',
                                                                'oifname "mr-cccccccccccc" drop')]
    # an internal network's drops come first: nothing of it goes out, not even to a published port
    assert internal == [first_drop, first_drop + 1]
    assert len(dnat) == 3 and all(first_drop < i < min(j for j, line in enumerate(forward)
                                                         if "oifname {" in line) for i in dnat)
    isolation = next(line for line in forward if line.startswith('iifname "mr-bbbbbbbbbbbb" oifname {'))
    assert sorted(isolation.split("{")[1].split("}")[0].replace(",", " ").split()) == \
        ['"minirun0"', '"mr-aaaaaaaaaaaa"', '"mr-cccccccccccc"'] and isolation.endswith("} drop")
    assert forward.index('iifname "mr-bbbbbbbbbbbb" oifname "mr-bbbbbbbbbbbb" accept') < first_drop


def test_an_internal_network_has_no_way_out() -> None:
    rules = ruleset([DEFAULT, SHUT], [])
    assert "ip saddr 10.78.2.0/24 oifname" not in rules  # no masquerade
    assert 'iifname "mr-cccccccccccc" ip daddr 127.0.0.0/8 drop' in rules


ROUTES_LAN = """Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT
eth0\t00004E0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""  # 10.78.0.0/24 on eth0


def test_pick_subnet_skips_taken_ones_and_the_host_s_routes() -> None:
    assert netconf.pick_subnet([], "") == Subnet.parse("10.78.0.0/24")
    assert netconf.pick_subnet([Subnet.parse("10.78.0.0/24")], "") == Subnet.parse("10.78.1.0/24")
    assert netconf.pick_subnet([], ROUTES_LAN) == Subnet.parse("10.78.1.0/24")
    with pytest.raises(UsageError, match="non-overlapping IPv4 address pool"):
        netconf.pick_subnet([Subnet.parse("10.78.0.0/16")], "")


def test_contains_only_host_addresses() -> None:
    net = Subnet.parse("10.78.3.0/24")
    assert net.contains("10.78.3.2") and net.contains("10.78.3.254")
    assert not any(net.contains(a) for a in ("10.78.3.0", "10.78.3.1", "10.78.3.255", "10.78.4.2", "x"))


def test_a_user_network_s_resolv_conf_and_upstream() -> None:
    host = "nameserver 127.0.0.53\nsearch corp.test\noptions edns0\n"
    assert netconf.embedded_resolv_conf(host) == \
        "nameserver 127.0.0.11\nsearch corp.test\noptions ndots:0 edns0\n"
    assert netconf.embedded_resolv_conf(host, ("a.test",), ("ndots:3",)) == \
        "nameserver 127.0.0.11\nsearch a.test\noptions ndots:3\n"
    assert netconf.upstream(host, ()) == ["127.0.0.53"]  # asked from the host's namespace: reachable
    assert netconf.upstream(host, ("192.0.2.53",)) == ["192.0.2.53"]
    assert netconf.upstream("", ()) == ["8.8.8.8", "8.8.4.4"]
