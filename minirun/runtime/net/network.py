"""Container networks on the host, as Docker's default bridge: the bridge ``minirun0`` (made
on first use), an address lease per container, its veth pair (``eth0`` inside), and
minirun's own nftables table for outbound NAT and published ports.

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
from pathlib import Path
from typing import NamedTuple

from ... import notices
from ...content.files import file_lock
from ...errors import EXIT_RUN_FAILED, ContainerStartError, UsageError
from ...pids import alive, start_time
from .. import _libc
from .netconf import BRIDGE, TABLE, PortMapping, Subnet, allocate, bridge_subnet, overlapping_route, ruleset

RUN_DIR = Path("/run/minirun")


class Lease(NamedTuple):
    """An address held by a container, with the ports published to it."""
    container: str
    address: str
    subnet: Subnet
    ports: tuple[PortMapping, ...]


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


class _Locked:
    """The leases of this network namespace, under its lock: read, reclaimed, changed."""

    def __init__(self) -> None:
        self.dir = _state_dir()
        self.lock = file_lock(self.dir / "lock", what="another container's network setup")

    def __enter__(self) -> "_Locked":
        self.lock.__enter__()
        self.leases = _read_leases(self.dir)
        self.dirty = False  # the nftables table must be written again
        for path, doc in list(self.leases.items()):
            if not _owner_alive(doc):
                self.drop(path)
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__(None, None, None)

    def drop(self, path: Path) -> None:
        doc = self.leases.pop(path)
        path.unlink(missing_ok=True)
        self.dirty = self.dirty or bool(_ports_of(doc))

    def published(self) -> list[tuple[str, PortMapping]]:
        return [(str(doc.get("address")), p) for doc in self.leases.values() for p in _ports_of(doc)]

    def apply_rules(self, net: Subnet, required: bool) -> None:
        """Write minirun's table from the leases, in one nft transaction."""
        nft = _nft()
        if nft is None:
            if required:
                raise UsageError("publishing ports (-p) needs nftables: apt-get install nftables")
            return
        import subprocess
        r = subprocess.run([nft, "-f", "-"], input=ruleset(net, self.published()), capture_output=True, text=True)
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


def _ensure_bridge(locked: _Locked, net: Subnet) -> None:
    """The bridge with the gateway address, forwarding on, and the NAT table: made when it
    is missing (first use, or after a reboot)."""
    try:
        socket.if_nametoindex(BRIDGE)
    except OSError:
        pass
    else:  # made by an earlier minirun: its settings and table brought up to this one's
        if not (locked.dir / RULESET_MARK).exists():
            _no_router_advertisements(BRIDGE)
            locked.dirty = True
        return
    with open("/proc/net/route") as f:
        clash = overlapping_route(net, f.read())
    if clash is not None:
        raise UsageError(f"the bridge subnet {net} overlaps the host's route to {clash}: "
                         "set MINIRUN_BRIDGE_SUBNET to a free range")
    from .netlink import Netlink
    nl = Netlink()
    try:
        nl.new_link([["IFLA_IFNAME", BRIDGE], ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "bridge"]]}]],
                    f"creating bridge {BRIDGE}")
        index = socket.if_nametoindex(BRIDGE)
        nl.add_address(index, net.gateway, net.prefix, f"adding {net.gateway} to {BRIDGE}")
        nl.set_up(index, f"bringing {BRIDGE} up")
    finally:
        nl.close()
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    # -p 127.0.0.1:...: a connection from the host's 127.0.0.1, DNAT'd to a container, leaves
    # through the bridge with that source, which the kernel lets out only with route_localnet
    # (Docker has its userland proxy for this). What route_localnet would let in (a container's
    # frame to the host's 127.0.0.1, CVE-2020-8558) minirun's table drops before routing.
    _sysctl(f"/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet", "1")
    _no_router_advertisements(BRIDGE)
    if _nft() is None:
        notices.say(f"nftables (nft) is not installed: containers on {BRIDGE} reach only this host "
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


def reserve(container: str, ports: tuple[PortMapping, ...]) -> Lease:
    """An address on the bridge (made if missing) for ``container``, owned by this process
    until ``release``; its published ports checked free and set up."""
    net = bridge_subnet()
    with _Locked() as locked:
        _ensure_bridge(locked, net)
        if not locked.leases:  # the bridge's first container: the host's firewalls opened for it
            from . import firewall
            firewall.close(locked.dir / FIREWALL_RECORD)
            firewall.open_for(BRIDGE, TABLE, locked.dir / FIREWALL_RECORD)
        claimed = _claim_ports(locked, ports)
        taken = {str(doc.get("address")) for doc in locked.leases.values()}
        address = allocate(net, taken)
        me = os.getpid()
        doc = {"container": container, "address": address, "pid": me, "start": _start_time(me),
               "ports": [list(p) for p in claimed]}
        path = locked.dir / f"lease-{address}"
        path.write_text(json.dumps(doc))
        locked.leases[path] = doc
        if claimed or locked.dirty:
            try:
                locked.apply_rules(net, required=bool(claimed))
            except BaseException:
                locked.drop(path)
                raise
        return Lease(container, address, net, claimed)


def _host_end(container: str) -> str:
    return f"mr{container[:12]}"


def release(container: str) -> None:
    """Give back the container's lease (its address, its ports), and any whose owner died.
    Its veth pair goes with its network namespace: the kernel removes it in the background,
    a few milliseconds after the container's end (removing it here would cost 15 ms of every
    run: the kernel waits for a grace period)."""
    with _Locked() as locked:
        for path, doc in list(locked.leases.items()):
            if doc.get("container") == container:
                locked.drop(path)
        if not locked.leases and (locked.dir / FIREWALL_RECORD).exists():  # its last container
            from . import firewall
            firewall.close(locked.dir / FIREWALL_RECORD)
        if locked.dirty:
            with contextlib.suppress(UsageError, ContainerStartError):
                locked.apply_rules(bridge_subnet(), required=False)


def remove_unused() -> bool:
    """system prune: the bridge and the table go when no container holds a lease. True when
    they were removed (only root has them)."""
    if os.geteuid() != 0:
        return False
    with _Locked() as locked:
        if locked.leases:
            if locked.dirty:
                with contextlib.suppress(UsageError, ContainerStartError):
                    locked.apply_rules(bridge_subnet(), required=False)
            return False
        from . import firewall
        firewall.close(locked.dir / FIREWALL_RECORD)
        try:
            index = socket.if_nametoindex(BRIDGE)
        except OSError:
            return False
        from .netlink import Netlink
        nl = Netlink()
        try:
            nl.delete_link(index, f"removing bridge {BRIDGE}")
        finally:
            nl.close()
        nft = _nft()
        if nft is not None:
            import subprocess
            subprocess.run([nft, "delete", "table", "ip", "minirun"], capture_output=True)
        return True


def attach(lease: Lease, pid: int) -> None:
    """The container's veth pair: the host end on the bridge, ``eth0`` in the network
    namespace of ``pid`` with the lease's address and a default route through the bridge."""
    from .netlink import Netlink
    host_end = _host_end(lease.container)
    nl = Netlink()
    try:
        bridge = socket.if_nametoindex(BRIDGE)
        peer = {"attrs": [["IFLA_IFNAME", "eth0"], ["IFLA_NET_NS_PID", pid]]}
        nl.new_link([["IFLA_IFNAME", host_end], ["IFLA_MASTER", bridge],
                     ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "veth"],
                                                  ["IFLA_INFO_DATA", {"attrs": [["VETH_INFO_PEER", peer]]}]]}]],
                    f"creating veth {host_end}")
        _no_router_advertisements(host_end)
        nl.set_up(socket.if_nametoindex(host_end), f"bringing {host_end} up")
    finally:
        nl.close()
    # setns moves only this thread; a netlink socket stays in the namespace it was made in.
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    theirs = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _libc.setns(theirs, _libc.CLONE_NEWNET, f"/proc/{pid}/ns/net")
        try:
            inner = Netlink()
            eth0 = socket.if_nametoindex("eth0")
        finally:
            _libc.setns(own, _libc.CLONE_NEWNET, "/proc/thread-self/ns/net")
    finally:
        os.close(own)
        os.close(theirs)
    try:
        inner.add_address(eth0, lease.address, lease.subnet.prefix, f"adding {lease.address} to eth0")
        inner.set_up(eth0, "bringing eth0 up")
        inner.add_default_route(lease.subnet.gateway, f"adding the default route via {lease.subnet.gateway}")
    finally:
        inner.close()
