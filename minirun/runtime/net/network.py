"""Container networks on the host, as Docker's: the default bridge ``minirun0`` and a bridge per
user network (``mr-ID``), each made on first use; an address lease per container and network,
its veth pair (``eth0``, then ``eth1``... inside), and minirun's own nftables table for
outbound NAT, published ports and the isolation between networks.

Leases live under ``/run/minirun/net-<netns inode>/``: ``/run`` is emptied at boot, as the
bridge and the table are, and the directory belongs to one network namespace (the bridge
is that namespace's). A lease names its owner, the minirun process that runs the container,
with the process's start time: a lease whose owner is gone (killed, even by SIGKILL) is
reclaimed by the next run, ``rm`` or ``system prune``, with its published ports. The veth
pair needs no cleanup: it goes with the container's network namespace.
"""

import contextlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ... import notices
from ...content.files import file_lock
from ...errors import EXIT_RUN_FAILED, ContainerStartError, UsageError
from ...pids import alive, start_time
from .netconf import BRIDGE, TABLE, Net, PortMapping, Subnet, allocate, default_net, overlapping_route
from .netns import in_netns

RUN_DIR = Path("/run/minirun")
NAMES = "names.json"   # in the ``dns`` directory: what the resolvers answer (see resolver.py)


class Lease(NamedTuple):
    """An address held by a container on a network, with the ports published to it."""
    container: str
    address: str
    net: Net
    ports: tuple[PortMapping, ...]
    ifname: str = "eth0"          # inside the container
    link: str = ""                # the veth's host end

    @property
    def subnet(self) -> Subnet:
        return self.net.subnet


def _state_path() -> Path:
    """This network namespace's leases, lock and records (one bridge per namespace)."""
    return RUN_DIR / f"net-{os.stat('/proc/self/ns/net').st_ino}"


def _state_dir() -> Path:
    d = _state_path()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def firewall_state() -> dict[str, list[str]]:
    """For info: what the host's other firewalls would drop of the bridge's traffic and the
    accept rules minirun holds in them now (only while the bridge has containers)."""
    from . import firewall
    return firewall.described(_state_path() / FIREWALL_RECORD)  # (not made here: info may not be root)


def _nft() -> str | None:
    """Debian's nftables command, found on PATH (sudo's has /usr/sbin)."""
    import shutil  # here and subprocess below: only when the table is written, not every run
    return shutil.which("nft")


def _start_time(pid: int) -> int | None:
    return start_time(pid)


def _owner_alive(doc: dict[str, object]) -> bool:
    pid, started = doc.get("pid"), doc.get("start")
    return isinstance(pid, int) and isinstance(started, int) and alive(pid, started)


def _read_leases(d: Path) -> dict[Path, dict[str, object]]:
    out: dict[Path, dict[str, object]] = {}
    for path in d.glob("lease-*"):
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(path.read_text())
            if isinstance(doc, dict):
                out[path] = doc
    return out


def _ports_of(doc: dict[str, object]) -> list[PortMapping]:
    raw = doc.get("ports")
    return [PortMapping(*p) for p in raw] if isinstance(raw, list) else []


def _net_of(doc: dict[str, object]) -> Net:
    """The network a lease is on (a lease of an older minirun: the default bridge)."""
    if "net" not in doc:
        return default_net()
    return Net(str(doc["netname"]), str(doc["net"]), str(doc["bridge"]), Subnet.parse(str(doc["subnet"])),
               bool(doc.get("internal")), bool(doc.get("names")))


def _firewall_record(d: Path, bridge: str) -> Path:
    return d / (FIREWALL_RECORD if bridge == BRIDGE else f"firewall-{bridge}.json")


class _Locked:
    """The leases of this network namespace, under its lock: read, reclaimed, changed."""

    def __init__(self) -> None:
        self.dir = _state_dir()
        self.lock = file_lock(self.dir / "lock", what="another container's network setup")

    def __enter__(self) -> "_Locked":
        self.lock.__enter__()
        self.leases = _read_leases(self.dir)
        self.dirty = False  # the nftables table must be written again
        self.renamed = False  # the names the resolvers answer changed
        for path, doc in list(self.leases.items()):
            if not _owner_alive(doc):
                self.drop(path)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.renamed:
                self.write_names()
            for bridge in self.emptied:  # a bridge's last container gone: the host's firewalls closed
                from . import firewall
                firewall.close(_firewall_record(self.dir, bridge))
        finally:
            self.lock.__exit__(None, None, None)

    @property
    def emptied(self) -> list[str]:
        """Bridges whose accept rules are held in the host's firewalls but have no lease."""
        held = {str(doc.get("bridge") or BRIDGE) for doc in self.leases.values()}
        records = [(BRIDGE, self.dir / FIREWALL_RECORD)] + [(p.name[9:-5], p) for p in self.dir.glob("firewall-*.json")]
        return [bridge for bridge, record in records if record.exists() and bridge not in held]

    def drop(self, path: Path) -> None:
        doc = self.leases.pop(path)
        path.unlink(missing_ok=True)
        self.dirty = self.dirty or bool(_ports_of(doc)) or "net" in doc
        self.renamed = self.renamed or bool(doc.get("names"))

    def add(self, lease: Lease, doc: dict[str, object]) -> Path:
        path = self.dir / f"lease-{lease.address}"
        path.write_text(json.dumps(doc))
        self.leases[path] = doc
        self.renamed = self.renamed or lease.net.names
        return path

    def select(self, container: str | None = None, net_id: str | None = None) -> list[Lease]:
        return [lease_from(doc) for doc in self.leases.values()
                if (container is None or doc.get("container") == container)
                and (net_id is None or _net_of(doc).id == net_id)]

    def nets(self) -> list[Net]:
        """The default bridge and every network with a lease, for the table."""
        found = {n.id: n for n in (_net_of(doc) for doc in self.leases.values())}
        return [default_net(), *(n for key, n in sorted(found.items()) if key != "bridge")]

    def published(self) -> list[tuple[str, PortMapping]]:
        return [(str(doc.get("address")), p) for doc in self.leases.values() for p in _ports_of(doc)]

    def write_names(self) -> None:
        """The names the resolvers answer: each container on a network with names, under its
        name, its aliases and its short ID, in a file the unprivileged resolvers can read."""
        entries = [{"net": doc["net"], "container": doc["container"], "names": doc.get("aliases") or [],
                    "address": doc["address"]} for doc in self.leases.values() if doc.get("names")]
        d = self.dir / "dns"
        d.mkdir(mode=0o755, exist_ok=True)
        tmp = d / f".{NAMES}.{os.getpid()}"
        tmp.write_text(json.dumps(entries))
        tmp.chmod(0o644)
        os.replace(tmp, d / NAMES)

    def apply_rules(self, required: bool) -> None:
        """Write minirun's table from the leases, in one nft transaction."""
        nft = _nft()
        if nft is None:
            if required:
                raise UsageError("publishing ports (-p) needs nftables: apt-get install nftables")
            return
        import subprocess

        from .rules import ruleset
        r = subprocess.run([nft, "-f", "-"], input=ruleset(self.nets(), self.published()), capture_output=True,
                           text=True)
        if r.returncode != 0:
            message = (r.stderr.strip().splitlines() or ["failed"])[0]
            raise ContainerStartError(f"nft: writing table ip minirun: {message}", EXIT_RUN_FAILED)
        (self.dir / RULESET_MARK).touch()
        self.dirty = False


def _sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


# What was added to the host's other firewalls for the bridge (see firewall.py).
FIREWALL_RECORD = "firewall.json"

# Written beside the leases once this version's table is in: a bridge and table left by an
# earlier minirun (without the raw chain and the forward drop) are rewritten on the next run.
RULESET_MARK = "ruleset-2"


def _no_router_advertisements(link: str) -> None:
    """A container's router advertisement must not give the host (or the bridge) an IPv6
    address or route (CVE-2020-13401)."""
    try:
        _sysctl(f"/proc/sys/net/ipv6/conf/{link}/accept_ra", "0")
    except FileNotFoundError:  # no IPv6 in this kernel
        pass


def _ensure_bridge(locked: _Locked, net: Net) -> None:
    """The network's bridge with the gateway address, forwarding on, and the NAT table: made
    when it is missing (first use, or after a reboot)."""
    bridge = net.bridge
    try:
        socket.if_nametoindex(bridge)
    except OSError:
        pass
    else:  # made by an earlier minirun: its settings and table brought up to this one's
        if not (locked.dir / RULESET_MARK).exists():
            _no_router_advertisements(bridge)
            locked.dirty = True
        return
    with open("/proc/net/route") as f:
        clash = overlapping_route(net.subnet, f.read(), bridge)
    if clash is not None:
        if net.builtin:
            raise UsageError(f"the bridge subnet {net.subnet} overlaps the host's route to {clash}: "
                             "set MINIRUN_BRIDGE_SUBNET to a free range")
        raise UsageError(f"network {net.name}: its subnet {net.subnet} overlaps the host's route to {clash}")
    from .netlink import Netlink
    nl = Netlink()
    try:
        nl.new_link([["IFLA_IFNAME", bridge], ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "bridge"]]}]],
                    f"creating bridge {bridge}")
        index = socket.if_nametoindex(bridge)
        nl.add_address(index, net.subnet.gateway, net.subnet.prefix, f"adding {net.subnet.gateway} to {bridge}")
        nl.set_up(index, f"bringing {bridge} up")
    finally:
        nl.close()
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    # -p 127.0.0.1:...: a connection from the host's 127.0.0.1, DNAT'd to a container, leaves
    # through the bridge with that source, which the kernel lets out only with route_localnet
    # (Docker has its userland proxy for this). What route_localnet would let in (a container's
    # frame to the host's 127.0.0.1, CVE-2020-8558) minirun's table drops before routing.
    _sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")
    _no_router_advertisements(bridge)
    if _nft() is None:
        notices.say(f"nftables (nft) is not installed: containers on {bridge} reach only this host "
                    "(no NAT, no -p); apt-get install nftables")
    locked.dirty = True


def _port_free(m: PortMapping) -> bool:
    kind = socket.SOCK_STREAM if m.proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((m.host_ip, m.host_port))
        except OSError:
            return False
    return True


def _free_port(m: PortMapping, taken: set[tuple[str, int]]) -> int:
    """A port the kernel gives as free (and no container has), for -p CONTAINER_PORT and -P."""
    kind = socket.SOCK_STREAM if m.proto == "tcp" else socket.SOCK_DGRAM
    for _ in range(20):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((m.host_ip, 0))
            port = int(s.getsockname()[1])
        if (m.proto, port) not in taken:
            return port
    raise UsageError(f"no free host port for {m.container_port}/{m.proto}")


def _claim_ports(locked: _Locked, wanted: tuple[PortMapping, ...]) -> tuple[PortMapping, ...]:
    """The mappings with their host ports, each checked free on the host and among the other
    containers' (a DNAT does not bind, so both are asked)."""
    taken = {(p.proto, p.host_port): addr for addr, p in locked.published()}
    out: list[PortMapping] = []
    for m in wanted:
        if m.host_port == 0:
            m = m._replace(host_port=_free_port(m, set(taken)))
        owner = taken.get((m.proto, m.host_port))
        if owner is not None:
            raise UsageError(f"publishing {m}: port {m.host_port}/{m.proto} is already published "
                             f"by the container at {owner}")
        if not _port_free(m):
            raise UsageError(f"publishing {m}: port {m.host_port}/{m.proto} is already in use on the host")
        taken[(m.proto, m.host_port)] = "(this one)"
        out.append(m)
    return tuple(out)


class Owner(NamedTuple):
    """Who holds a lease: while this process lives (its start time told apart from a reused
    PID) the address stays the container's."""
    pid: int
    start: int | None

    @classmethod
    def me(cls) -> "Owner":
        return cls(os.getpid(), _start_time(os.getpid()))


class Endpoint(NamedTuple):
    """What a container asks of a network: its name and aliases (for the resolvers), an
    address (--ip; "": the first free one), the interface inside."""
    name: str = ""
    aliases: tuple[str, ...] = ()
    ip: str = ""
    ifname: str = "eth0"


def link_name(container: str, ifname: str) -> str:
    """The veth's host end (at most 15 characters, as the kernel's names)."""
    return f"mr{container[:12]}" if ifname == "eth0" else f"mx{container[:12]}{ifname[3:]}"


def reserve(container: str, ports: tuple[PortMapping, ...], net: Net | None = None,
            endpoint: Endpoint | None = None, owner: Owner | None = None) -> Lease:
    """An address on ``net`` (the default bridge; made if missing) for ``container``, held
    while ``owner`` (this process) lives or until ``release``; its published ports checked
    free and set up."""
    net, endpoint = net or default_net(), endpoint or Endpoint()
    with _Locked() as locked:
        _ensure_bridge(locked, net)
        if not any((doc.get("bridge") or BRIDGE) == net.bridge for doc in locked.leases.values()):
            # the bridge's first container: the host's firewalls opened for it
            from . import firewall
            record = _firewall_record(locked.dir, net.bridge)
            firewall.close(record)
            firewall.open_for(net.bridge, TABLE, record)
        claimed = _claim_ports(locked, ports)
        taken = {str(doc.get("address")) for doc in locked.leases.values()}
        address = _address(net, endpoint.ip, taken)
        owner = owner or Owner.me()
        lease = Lease(container, address, net, claimed, endpoint.ifname, link_name(container, endpoint.ifname))
        doc: dict[str, object] = {"container": container, "address": address, "pid": owner.pid,
                                  "start": owner.start, "ports": [list(p) for p in claimed]}
        if not net.builtin:
            names = [n for n in (endpoint.name, *endpoint.aliases, container[:12]) if n]
            doc.update({"net": net.id, "netname": net.name, "bridge": net.bridge, "subnet": str(net.subnet),
                        "internal": net.internal, "names": net.names, "aliases": names,
                        "ifname": endpoint.ifname, "link": lease.link})
            locked.dirty = True
        path = locked.add(lease, doc)
        if claimed or locked.dirty:
            try:
                locked.apply_rules(required=bool(claimed))
            except BaseException:
                locked.drop(path)
                raise
        return lease


def _address(net: Net, wanted: str, taken: set[str]) -> str:
    if not wanted:
        return allocate(net.subnet, taken)
    if not net.subnet.contains(wanted):
        raise UsageError(f"invalid --ip {wanted}: not a host address of network {net.name}'s subnet {net.subnet}")
    if wanted in taken:
        raise UsageError(f"Address already in use: {wanted} on network {net.name}")
    return wanted


def holding() -> _Locked:
    """This namespace's leases, locked (``with``): no container joins or leaves meanwhile."""
    return _Locked()


def leases_of(container: str | None = None, net_id: str | None = None) -> list[Lease]:
    """The live leases (of a container, of a network)."""
    with _Locked() as locked:
        return locked.select(container, net_id)


def release(container: str, net_id: str | None = None) -> None:
    """Give back the container's leases (its addresses, its ports; on one network, or all),
    and any whose owner died. A veth pair goes with its network namespace: the kernel removes
    it in the background, a few milliseconds after the container's end (removing it here
    would cost 15 ms of every run: the kernel waits for a grace period)."""
    with _Locked() as locked:
        for path, doc in list(locked.leases.items()):
            if doc.get("container") == container and (net_id is None or _net_of(doc).id == net_id):
                locked.drop(path)
        if locked.dirty:
            with contextlib.suppress(UsageError, ContainerStartError):
                locked.apply_rules(required=False)


def detach(lease: Lease) -> None:
    """network disconnect: the container's interface on the network goes (with the veth's
    host end), and its lease."""
    from .netlink import Netlink
    with contextlib.suppress(OSError):
        index = socket.if_nametoindex(lease.link)
        nl = Netlink()
        try:
            nl.delete_link(index, f"removing {lease.link}")
        finally:
            nl.close()
    release(lease.container, lease.net.id)


def remove_bridge(bridge: str) -> bool:
    """The bridge device, if it is there (network rm, prune)."""
    try:
        index = socket.if_nametoindex(bridge)
    except OSError:
        return False
    from .netlink import Netlink
    nl = Netlink()
    try:
        nl.delete_link(index, f"removing bridge {bridge}")
    finally:
        nl.close()
    return True


def remove_unused(bridges: tuple[str, ...] = ()) -> bool:
    """system prune: the default bridge, ``bridges`` (the user networks') and the table go when
    no container holds a lease. True when they were removed (only root has them)."""
    if os.geteuid() != 0:
        return False
    with _Locked() as locked:
        if locked.leases:
            if locked.dirty:
                with contextlib.suppress(UsageError, ContainerStartError):
                    locked.apply_rules(required=False)
            return False
        for bridge in bridges:
            remove_bridge(bridge)
        if not remove_bridge(BRIDGE):
            return False
        nft = _nft()
        if nft is not None:
            import subprocess
            subprocess.run([nft, "delete", "table", "ip", "minirun"], capture_output=True)
        return True


class Wiring(NamedTuple):
    """What a container's namespace gets beside its interfaces: a resolver (on a user
    network), asking ``upstream`` for other names."""
    resolver: bool = False
    container: str = ""
    upstream: list[str] = []  # noqa: RUF012 - never changed; a list, as JSON gives it back


def lease_doc(lease: Lease) -> dict[str, object]:
    n = lease.net
    return {"container": lease.container, "address": lease.address, "ports": [list(p) for p in lease.ports],
            "ifname": lease.ifname, "link": lease.link, "net": n.id, "netname": n.name, "bridge": n.bridge,
            "subnet": str(n.subnet), "internal": n.internal, "names": n.names}


def lease_from(doc: dict[str, object]) -> Lease:
    ifname = str(doc.get("ifname") or "eth0")
    return Lease(str(doc["container"]), str(doc["address"]), _net_of(doc), tuple(_ports_of(doc)), ifname,
                 str(doc.get("link") or link_name(str(doc["container"]), ifname)))


def wire_up(leases: list[Lease], pid: int, wiring: Wiring, ready: Callable[[], object] = lambda: None) -> None:
    """The container's interfaces, one per lease, and its resolver; ``ready`` is called once
    the container may run (its resolver's sockets bound: no query of its is lost)."""
    for lease in leases:
        attach(lease, pid)
    if wiring.resolver:
        from . import resolver
        resolver.spawn(pid, wiring.container, wiring.upstream, str(_state_dir() / "dns"), ready)
    else:
        ready()


def attach(lease: Lease, pid: int) -> None:
    """The container's veth pair: the host end on the network's bridge, ``lease.ifname`` in the
    network namespace of ``pid`` with the lease's address (and, for ``eth0`` on a network with
    a way out, the default route through the bridge)."""
    from .netlink import Netlink
    host_end, inside = lease.link or link_name(lease.container, lease.ifname), lease.ifname
    nl = Netlink()
    try:
        bridge = socket.if_nametoindex(lease.net.bridge)
        peer = {"attrs": [["IFLA_IFNAME", inside], ["IFLA_NET_NS_PID", pid]]}
        nl.new_link([["IFLA_IFNAME", host_end], ["IFLA_MASTER", bridge],
                     ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "veth"],
                                                  ["IFLA_INFO_DATA", {"attrs": [["VETH_INFO_PEER", peer]]}]]}]],
                    f"creating veth {host_end}")
        _no_router_advertisements(host_end)
        nl.set_up(socket.if_nametoindex(host_end), f"bringing {host_end} up")
    finally:
        nl.close()
    with in_netns(pid):
        inner = Netlink()
        index = socket.if_nametoindex(inside)
    try:
        inner.add_address(index, lease.address, lease.subnet.prefix, f"adding {lease.address} to {inside}")
        inner.set_up(index, f"bringing {inside} up")
        if inside == "eth0" and not lease.net.internal:
            inner.add_default_route(lease.subnet.gateway, f"adding the default route via {lease.subnet.gateway}")
    finally:
        inner.close()
