"""Container networking as data (pure): the network modes, ``-p`` port mappings and
``--add-host`` as Docker parses them, the ``/etc/resolv.conf`` and ``/etc/hosts`` a
container gets, address allocation in the bridge's subnet, and minirun's nftables ruleset.

IPv4 addresses are handled as integers here (the ``ipaddress`` module costs a run's start
2 ms to import, and this is all it would do).
"""

from __future__ import annotations

import re
import struct

from ...errors import UsageError
from ...records import Record

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


def mac_of(address: str) -> str:
    """The MAC address an interface with ``address`` gets, as Docker's (02:42 and the IPv4
    address; locally administered): an address given again comes with the same MAC, so
    what a neighbour cached for it (the host's ARP entry, valid for ~30 s) stays right."""
    return "02:42:" + ":".join(f"{(ip_int(address) >> shift) & 0xFF:02x}" for shift in (24, 16, 8, 0))


class Subnet(Record):
    network: int
    prefix: int

    @classmethod
    def parse(cls, text: str, what: str = "bridge subnet") -> Subnet:
        address, _, bits = text.partition("/")
        try:
            prefix = int(bits)
            value = ip_int(address)
        except ValueError:
            raise UsageError(f'invalid {what} "{text}": expected an IPv4 CIDR such as 10.77.0.0/16') from None
        if not 8 <= prefix <= 29:
            raise UsageError(f'invalid {what} "{text}": the prefix must be between /8 and /29')
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

    def contains(self, address: str) -> bool:
        """A host address of the subnet (not its network, gateway or broadcast address)."""
        try:
            value = ip_int(address)
        except ValueError:
            return False
        broadcast = self.network + (1 << (32 - self.prefix)) - 1
        return value & self.mask == self.network and self.network + 1 < value < broadcast

    def overlaps(self, network: int, mask: int) -> bool:
        both = self.mask & mask
        return (self.network & both) == (network & both)


class Net(Record):
    """A network as the host side has it: the default bridge (``bridge``) or a user network."""
    name: str
    id: str             # "bridge" for the default, else 64 hex digits
    bridge: str         # its bridge device
    subnet: Subnet
    internal: bool = False   # no route out, nothing in but from its own containers
    names: bool = False      # its containers resolve each other's names (user networks, as Docker)

    @property
    def builtin(self) -> bool:
        return self.id == "bridge"


def default_net() -> Net:
    return Net("bridge", "bridge", BRIDGE, bridge_subnet())


def bridge_subnet() -> Subnet:
    """MINIRUN_BRIDGE_SUBNET, else the default."""
    import os
    return Subnet.parse(os.environ.get("MINIRUN_BRIDGE_SUBNET") or DEFAULT_SUBNET)


USER_POOL = "10.78.0.0/16"   # user networks: a /24 each, the first free one
USER_PREFIX = 24


def pick_subnet(taken: list[Subnet], route_table: str, pool: str = USER_POOL) -> Subnet:
    """The first /24 of the pool that overlaps neither another minirun network nor a route of
    the host (as Docker's pools: never a subnet the host already reaches)."""
    base = Subnet.parse(pool)
    size = 1 << (32 - USER_PREFIX)
    for n in range(1 << max(0, USER_PREFIX - base.prefix)):
        candidate = Subnet(base.network + n * size, USER_PREFIX)
        if any(candidate.overlaps(t.network, t.mask) for t in taken):
            continue
        if overlapping_route(candidate, route_table, bridge="") is None:
            return candidate
    raise UsageError(f"could not find an available, non-overlapping IPv4 address pool among {pool} "
                     "to assign to the network")


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


class PortMapping(Record):
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
    """bridge (Docker's default), none, host, container:NAME|ID or a user network's name (or ID)."""
    if text == "default":
        return "bridge"
    if text in MODES or (text.startswith("container:") and len(text) > len("container:")):
        return text
    if re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", text):
        return text
    raise UsageError(f'invalid --network "{text}": expected bridge, none, host, container:NAME|ID or a network')


def is_user_network(mode: str) -> bool:
    return mode not in MODES and not mode.startswith("container:")


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


class _Resolv(Record):
    servers: list[str]
    domains: list[str]
    options: list[str]


def _parse_resolv(host_text: str) -> _Resolv:
    """The host's resolv.conf: its nameservers (all of them), search domains and options."""
    servers, domains, opts = [], [], []
    for line in host_text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "nameserver":
            servers.append(words[1])
        elif words and words[0] in ("search", "domain"):
            domains = words[1:]
        elif words and words[0] == "options":
            opts += words[1:]
    return _Resolv(servers, domains, opts)


def _resolv_text(servers: list[str], domains: list[str], opts: list[str]) -> str:
    lines = [f"nameserver {s}" for s in servers]
    if domains and domains != ["."]:
        lines.append("search " + " ".join(domains))
    if opts:
        lines.append("options " + " ".join(opts))
    return "\n".join(lines) + "\n"


def resolv_conf(host_text: str, dns: tuple[str, ...] = (), search: tuple[str, ...] = (),
                options: tuple[str, ...] = ()) -> str:
    """The host's resolv.conf as Docker rewrites it for a container: loopback nameservers
    (systemd-resolved's 127.0.0.53) cannot be reached from another network namespace and are
    dropped, with Docker's fallback when none remain; --dns, --dns-search and --dns-option
    replace their parts."""
    host = _parse_resolv(host_text)
    reachable = [s for s in host.servers if not (s.startswith("127.") or s == "::1")]
    return _resolv_text(list(dns) or reachable or list(FALLBACK_DNS), list(search) or host.domains,
                        list(options) or host.options)


def upstream(host_text: str, dns: tuple[str, ...]) -> list[str]:
    """Where a user network's resolver sends other names: --dns, else the host's nameservers,
    loopback ones included (the resolver asks from the host's namespace, as Docker's)."""
    return list(dns) or _parse_resolv(host_text).servers or list(FALLBACK_DNS)


def embedded_resolv_conf(host_text: str, search: tuple[str, ...] = (), options: tuple[str, ...] = ()) -> str:
    """A container on a user network: its resolver, the host's (or --dns-search's) search
    domains, ``ndots:0`` and the options given, as Docker writes it."""
    host = _parse_resolv(host_text)
    opts = list(options) or host.options
    if not any(o.startswith("ndots:") for o in opts):
        opts.insert(0, "ndots:0")
    return _resolv_text(["127.0.0.11"], list(search) or host.domains, opts)


def hosts_file(hostname: str, address: str | None, extra: list[tuple[str, str]]) -> str:
    """Docker's /etc/hosts: localhost lines, --add-host entries, the container's own name on
    its address (no address: 127.0.1.1, as a host without a network has it)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    lines += [f"{ip}\t{name}" for name, ip in extra]
    lines.append(f"{address or '127.0.1.1'}\t{hostname}")
    return "\n".join(lines) + "\n"


class Choice(Record):
    """run's network flags, parsed and checked."""
    mode: str                             # bridge, none, host, container:NAME|ID
    ports: tuple[PortMapping, ...] = ()
    publish_all: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_option: tuple[str, ...] = ()
    add_hosts: tuple[tuple[str, str], ...] = ()
    aliases: tuple[str, ...] = ()          # --network-alias (user networks)
    ip: str = ""                           # --ip (user networks)


def choose(network: str, publish: tuple[str, ...], publish_all: bool, dns: tuple[str, ...],
           dns_search: tuple[str, ...], dns_option: tuple[str, ...], add_host: tuple[str, ...],
           aliases: tuple[str, ...] = (), ip: str = "") -> Choice:
    mode = parse_mode(network)
    ports = tuple(m for spec in publish for m in parse_ports(spec))
    if (ports or publish_all) and (mode in ("none", "host") or mode.startswith("container:")):
        raise UsageError(f"-p and -P need a bridge network, not --network {mode}")
    if (aliases or ip) and not is_user_network(mode):
        raise UsageError("--network-alias and --ip are supported on user-defined networks only")
    if ip:
        try:
            ip_int(ip)
        except ValueError:
            raise UsageError(f'invalid --ip "{ip}": not an IPv4 address') from None
    for server in dns:
        try:
            ip_int(server)
        except ValueError:
            if ":" not in server:
                raise UsageError(f'invalid --dns "{server}": not an IP address') from None
    if mode.startswith("container:") and (dns or dns_search or dns_option or add_host):
        raise UsageError("--dns, --dns-search, --dns-option and --add-host conflict with --network container:")
    return Choice(mode, ports, publish_all, dns, dns_search, dns_option,
                  tuple(parse_add_host(h) for h in add_host), aliases, ip)
