"""Container networking as data (pure): the network modes, ``-p`` port mappings and
``--add-host`` as Docker parses them, the ``/etc/resolv.conf`` and ``/etc/hosts`` a
container gets, address allocation in the bridge's subnet, and minirun's nftables ruleset.

IPv4 addresses are handled as integers here (the ``ipaddress`` module costs a run's start
2 ms to import, and this is all it would do).
"""

import struct
from typing import NamedTuple

from ...errors import UsageError

BRIDGE = "minirun0"
DEFAULT_SUBNET = "10.77.0.0/16"   # apart from Docker's 172.17.0.0/16 and Podman's 10.88.0.0/16
TABLE = "minirun"                 # nftables: table ip minirun, minirun's own
FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")  # Docker's, when the host has only loopback nameservers
MODES = ("bridge", "none", "host")


def ip_int(text: str) -> int:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 and (p == "0" or not p.startswith("0"))
                                   for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    return int(struct.unpack("!I", bytes(int(p) for p in parts))[0])


def ip_text(value: int) -> str:
    return ".".join(str(b) for b in struct.pack("!I", value))


class Subnet(NamedTuple):
    network: int
    prefix: int

    @classmethod
    def parse(cls, text: str) -> "Subnet":
        address, _, bits = text.partition("/")
        try:
            prefix = int(bits)
            value = ip_int(address)
        except ValueError:
            raise UsageError(f'invalid bridge subnet "{text}": expected an IPv4 CIDR such as 10.77.0.0/16') from None
        if not 8 <= prefix <= 29:
            raise UsageError(f'invalid bridge subnet "{text}": the prefix must be between /8 and /29')
        mask = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
        return cls(value & mask, prefix)

    @property
    def mask(self) -> int:
        return (0xFFFFFFFF << (32 - self.prefix)) & 0xFFFFFFFF

    @property
    def gateway(self) -> str:
        """The bridge's own address: the first in the subnet, as Docker's docker0."""
        return ip_text(self.network + 1)

    def __str__(self) -> str:
        return f"{ip_text(self.network)}/{self.prefix}"

    def overlaps(self, network: int, mask: int) -> bool:
        both = self.mask & mask
        return (self.network & both) == (network & both)


def bridge_subnet() -> Subnet:
    """MINIRUN_BRIDGE_SUBNET, else the default."""
    import os
    return Subnet.parse(os.environ.get("MINIRUN_BRIDGE_SUBNET") or DEFAULT_SUBNET)


def allocate(subnet: Subnet, taken: set[str]) -> str:
    """The lowest free host address after the gateway (never the broadcast address)."""
    last = subnet.network + (1 << (32 - subnet.prefix)) - 2
    for value in range(subnet.network + 2, last + 1):
        if ip_text(value) not in taken:
            return ip_text(value)
    raise UsageError(f"no free address left in the bridge subnet {subnet}: remove stopped containers")


def overlapping_route(subnet: Subnet, route_table: str, bridge: str = BRIDGE) -> str | None:
    """A route of the host (``/proc/net/route``) that the subnet would shadow, or None. The
    default route and the bridge's own route do not count."""
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or fields[0] == bridge:
            continue
        try:  # the kernel prints each address as a host-order (little-endian) number
            dest, mask = (int(struct.unpack("<I", bytes.fromhex(f))[0]) for f in (fields[1], fields[7]))
        except (ValueError, struct.error):
            continue
        if mask and subnet.overlaps(dest, mask):
            return f"{ip_text(dest)}/{bin(mask).count('1')} on {fields[0]}"
    return None


class PortMapping(NamedTuple):
    host_ip: str          # "" for every address of the host
    host_port: int        # 0: any free port, chosen when the container starts
    container_port: int
    proto: str            # tcp or udp

    def __str__(self) -> str:
        """As ``docker ps`` shows it."""
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}->{self.container_port}/{self.proto}"


def _port_range(text: str, spec: str) -> tuple[int, int]:
    low, dash, high = text.partition("-")
    try:
        first, last = int(low), int(high) if dash else int(low)
    except ValueError:
        raise UsageError(f'invalid -p "{spec}": "{text}" is not a port or a range') from None
    if not (1 <= first <= last <= 65535):
        raise UsageError(f'invalid -p "{spec}": ports are 1 to 65535, a range low-high')
    return first, last


def parse_ports(spec: str) -> list[PortMapping]:
    """Docker's ``-p``: ``[[HOST_IP:][HOST_PORT[-END]]:]CONTAINER_PORT[-END][/tcp|/udp]``."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise UsageError(f'invalid -p "{spec}": the protocol is tcp or udp')
    host_ip, host, container = "", "", body
    if body.count(":") == 1:
        host, container = body.split(":")
    elif body.count(":") == 2:
        host_ip, host, container = body.split(":")
        try:
            ip_int(host_ip)
        except ValueError:
            raise UsageError(f'invalid -p "{spec}": "{host_ip}" is not an IPv4 address') from None
        host_ip = "" if host_ip == "0.0.0.0" else host_ip
    elif ":" in body:
        raise UsageError(f'invalid -p "{spec}": expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]')
    c_first, c_last = _port_range(container, spec)
    if not host:
        return [PortMapping(host_ip, 0, p, proto) for p in range(c_first, c_last + 1)]
    h_first, h_last = _port_range(host, spec)
    if h_last - h_first != c_last - c_first:
        raise UsageError(f'invalid -p "{spec}": the host and container ranges differ in length')
    return [PortMapping(host_ip, h_first + i, c_first + i, proto) for i in range(c_last - c_first + 1)]


def exposed_ports(config: dict[str, object]) -> list[PortMapping]:
    """-P: the image's ExposedPorts (``"80/tcp": {}``), each on a free host port."""
    out = []
    for key in config.get("ExposedPorts") or {}:  # type: ignore[attr-defined]
        port, _, proto = str(key).partition("/")
        if port.isdigit() and (proto or "tcp") in ("tcp", "udp"):
            out.append(PortMapping("", 0, int(port), proto or "tcp"))
    return out


def parse_mode(text: str) -> str:
    """bridge (Docker's default), none, host or container:NAME|ID."""
    if text == "default":
        return "bridge"
    if text in MODES or (text.startswith("container:") and len(text) > len("container:")):
        return text
    raise UsageError(f'invalid --network "{text}": expected bridge, none, host or container:NAME|ID')


def parse_add_host(text: str) -> tuple[str, str]:
    """``NAME:IP`` (or ``NAME=IP``); IP may be ``host-gateway``."""
    sep = "=" if "=" in text else ":"
    name, _, address = text.partition(sep)
    if not name or not address:
        raise UsageError(f'invalid --add-host "{text}": expected NAME:IP')
    if address != "host-gateway" and ":" not in address:
        try:
            ip_int(address)
        except ValueError:
            raise UsageError(f'invalid --add-host "{text}": "{address}" is not an IP address') from None
    return name, address


def resolv_conf(host_text: str, dns: tuple[str, ...] = (), search: tuple[str, ...] = (),
                options: tuple[str, ...] = ()) -> str:
    """The host's resolv.conf as Docker rewrites it for a container: loopback nameservers
    (systemd-resolved's 127.0.0.53) cannot be reached from another network namespace and are
    dropped, with Docker's fallback when none remain; --dns, --dns-search and --dns-option
    replace their parts."""
    servers, domains, opts = [], [], []
    for line in host_text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            if not (words[1].startswith("127.") or words[1] == "::1"):
                servers.append(words[1])
        elif words and words[0] in ("search", "domain"):
            domains = words[1:]
        elif words and words[0] == "options":
            opts += words[1:]
    servers = list(dns) or servers or list(FALLBACK_DNS)
    domains = list(search) if search else domains
    opts = list(options) if options else opts
    lines = [f"nameserver {s}" for s in servers]
    if domains and domains != ["."]:
        lines.append("search " + " ".join(domains))
    if opts:
        lines.append("options " + " ".join(opts))
    return "\n".join(lines) + "\n"


def hosts_file(hostname: str, address: str | None, extra: list[tuple[str, str]]) -> str:
    """Docker's /etc/hosts: localhost lines, --add-host entries, the container's own name on
    its address (no address: 127.0.1.1, as a host without a network has it)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    lines += [f"{ip}\t{name}" for name, ip in extra]
    lines.append(f"{address or '127.0.1.1'}\t{hostname}")
    return "\n".join(lines) + "\n"


def ruleset(subnet: Subnet, published: list[tuple[str, PortMapping]], bridge: str = BRIDGE) -> str:
    """minirun's whole nftables table, replaced in one transaction (``nft -f``): outbound
    masquerade for the subnet, and a DNAT per published port (container address, mapping),
    from the host's own addresses, 127.0.0.1 included, and from containers through them."""
    dnat = []
    for address, m in published:
        match = f"ip daddr {m.host_ip} " if m.host_ip else ""
        dnat.append(f"\t\t{match}{m.proto} dport {m.host_port} dnat to {address}:{m.container_port}")
    return "\n".join([
        f"table ip {TABLE} {{}}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        # Before routing and NAT: nothing from the bridge to or from the host's loopback range
        # (route_localnet is on for -p 127.0.0.1; a container's raw frame must not use it).
        "\tchain raw {",
        "\t\ttype filter hook prerouting priority raw; policy accept;",
        f'\t\tiifname "{bridge}" ip daddr 127.0.0.0/8 drop',
        f'\t\tiifname "{bridge}" ip saddr 127.0.0.0/8 drop',
        "\t}",
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        "\t\tfib daddr type local jump publish",
        "\t}",
        "\tchain output {",
        "\t\ttype nat hook output priority -100; policy accept;",
        "\t\tfib daddr type local jump publish",
        "\t}",
        "\tchain publish {",
        *dnat,
        "\t}",
        "\tchain postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        f'\t\tip saddr {subnet} oifname != "{bridge}" masquerade',
        # 127.0.0.1 -> container (route_localnet on the bridge), and a container reaching
        # another through a published port: answered through the bridge's address.
        f'\t\toifname "{bridge}" ip saddr 127.0.0.0/8 masquerade',
        f'\t\toifname "{bridge}" ip saddr {subnet} ct status dnat masquerade',
        "\t}",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        f'\t\tiifname "{bridge}" accept',
        f'\t\toifname "{bridge}" ct state established,related accept',
        f'\t\toifname "{bridge}" ct status dnat accept',
        # Into the bridge from elsewhere (a neighbour routing to the subnet through this host):
        # only published ports and replies, as Docker.
        f'\t\toifname "{bridge}" drop',
        "\t}",
        "}",
    ]) + "\n"


class Choice(NamedTuple):
    """run's network flags, parsed and checked."""
    mode: str                             # bridge, none, host, container:NAME|ID
    ports: tuple[PortMapping, ...] = ()
    publish_all: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_option: tuple[str, ...] = ()
    add_hosts: tuple[tuple[str, str], ...] = ()


def choose(network: str, publish: tuple[str, ...], publish_all: bool, dns: tuple[str, ...],
           dns_search: tuple[str, ...], dns_option: tuple[str, ...], add_host: tuple[str, ...]) -> Choice:
    mode = parse_mode(network)
    ports = tuple(m for spec in publish for m in parse_ports(spec))
    if (ports or publish_all) and mode != "bridge":
        raise UsageError(f"-p and -P need the bridge network, not --network {mode}")
    for server in dns:
        try:
            ip_int(server)
        except ValueError:
            if ":" not in server:
                raise UsageError(f'invalid --dns "{server}": not an IP address') from None
    if mode.startswith("container:") and (dns or dns_search or dns_option or add_host):
        raise UsageError("--dns, --dns-search, --dns-option and --add-host conflict with --network container:")
    return Choice(mode, ports, publish_all, dns, dns_search, dns_option,
                  tuple(parse_add_host(h) for h in add_host))
