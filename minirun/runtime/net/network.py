"""Container networks on the host, as Docker's: the default bridge ``minirun0`` and a bridge per
user network (``mr-ID``), each made on first use; an address lease per container and network
(leases.py), its veth pair (``eth0``, then ``eth1``... inside; wiring.py), and minirun's own
nftables table for outbound NAT, published ports and the isolation between networks
(rules.py). The veth pair needs no cleanup: it goes with the container's network namespace.
"""

from __future__ import annotations

import contextlib
import os
import socket

from ... import notices
from ...errors import ContainerStartError, UsageError
from ...records import Record
from .leases import (
    FIREWALL_RECORD,
    RULESET_MARK,
    Lease,
    Locked,
    Owner,
    firewall_record,
    link_name,
    net_doc,
    net_of,
    nft_path,
    state_path,
)
from .netconf import BRIDGE, TABLE, Net, PortMapping, allocate, default_net, mac_of, overlapping_route
from .wiring import no_router_advertisements, sysctl


def firewall_state() -> dict[str, list[str]]:
    """For info: what the host's other firewalls would drop of the bridge's traffic and the
    accept rules minirun holds in them now (only while the bridge has containers)."""
    from . import firewall
    return firewall.described(state_path() / FIREWALL_RECORD)  # (not made here: info may not be root)


def _ensure_bridge(locked: Locked, net: Net) -> None:
    """The network's bridge with the gateway address, forwarding on, and the NAT table: made
    when it is missing (first use, or after a reboot)."""
    bridge = net.bridge
    try:
        socket.if_nametoindex(bridge)
    except OSError:
        pass
    else:  # made by an earlier minirun: its settings and table brought up to this one's
        if not (locked.dir / RULESET_MARK).exists():
            no_router_advertisements(bridge)
            locked.dirty = True
        if not net.builtin and not any(d.get("bridge") == bridge for d in locked.bridges()):
            locked.remember(net, made=True)
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
        # A MAC of its own, set: else the bridge takes its lowest port's, and changes it as
        # containers come and go, while the others still send to the one they cached.
        nl.new_link([["IFLA_IFNAME", bridge], ["IFLA_ADDRESS", mac_of(net.subnet.gateway)],
                     ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "bridge"]]}]], f"creating bridge {bridge}")
        index = socket.if_nametoindex(bridge)
        nl.add_address(index, net.subnet.gateway, net.subnet.prefix, f"adding {net.subnet.gateway} to {bridge}")
        nl.set_up(index, f"bringing {bridge} up")
    finally:
        nl.close()
    sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    # -p 127.0.0.1:...: a connection from the host's 127.0.0.1, DNAT'd to a container, leaves
    # through the bridge with that source, which the kernel lets out only with route_localnet
    # (Docker has its userland proxy for this). What route_localnet would let in (a container's
    # frame to the host's 127.0.0.1, CVE-2020-8558) minirun's table drops before routing.
    sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")
    no_router_advertisements(bridge)
    if nft_path() is None:
        notices.say(f"nftables (nft) is not installed: containers on {bridge} reach only this host "
                    "(no NAT, no -p); apt-get install nftables")
    locked.dirty = True
    if not net.builtin:
        locked.remember(net, made=True)


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


def _claim_ports(locked: Locked, wanted: tuple[PortMapping, ...]) -> tuple[PortMapping, ...]:
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


class Endpoint(Record):
    """What a container asks of a network: its name and aliases (for the resolvers), an
    address (--ip; "": the first free one), the interface inside."""
    name: str = ""
    aliases: tuple[str, ...] = ()
    ip: str = ""
    ifname: str = "eth0"


def reserve(container: str, ports: tuple[PortMapping, ...], net: Net | None = None,
            endpoint: Endpoint | None = None, owner: Owner | None = None) -> Lease:
    """An address on ``net`` (the default bridge; made if missing) for ``container``, held
    while ``owner`` (this process) lives or until ``release``; its published ports checked
    free and set up."""
    net, endpoint = net or default_net(), endpoint or Endpoint()
    with Locked() as locked:
        _ensure_bridge(locked, net)
        record = firewall_record(locked.dir, net.bridge)
        first = not any((doc.get("bridge") or BRIDGE) == net.bridge for doc in locked.leases.values())
        if first and not locked.firewall_current(record):
            # The bridge's first container, and the ruleset changed since the last survey (or
            # none was made): the host's firewalls opened for it again. (With containers on it,
            # removing and adding the rules would drop their traffic in between.)
            from . import firewall
            firewall.close(record)
            firewall.open_for(net.bridge, TABLE, record, locked.generation)
        claimed = _claim_ports(locked, ports)
        taken = {str(doc.get("address")) for doc in locked.leases.values()}
        address = _address(net, endpoint.ip, taken)
        owner = owner or Owner.me()
        lease = Lease(container, address, net, claimed, endpoint.ifname, link_name(container, endpoint.ifname))
        doc: dict[str, object] = {"container": container, "address": address, "pid": owner.pid,
                                  "start": owner.start, "ports": [list(p) for p in claimed]}
        if not net.builtin:
            names = [n for n in (endpoint.name, *endpoint.aliases, container[:12]) if n]
            doc.update({**net_doc(net), "aliases": names, "ifname": endpoint.ifname, "link": lease.link})
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


def holding() -> Locked:
    """This namespace's leases, locked (``with``): no container joins or leaves meanwhile."""
    return Locked()


def leases_of(container: str | None = None, net_id: str | None = None) -> list[Lease]:
    """The live leases (of a container, of a network)."""
    with Locked() as locked:
        return locked.select(container, net_id)


def release(container: str, net_id: str | None = None) -> None:
    """Give back the container's leases (its addresses, its ports; on one network, or all),
    and any whose owner died. A veth pair goes with its network namespace: the kernel removes
    it in the background, a few milliseconds after the container's end (removing it here
    would cost 15 ms of every run: the kernel waits for a grace period)."""
    with Locked() as locked:
        for path, doc in list(locked.leases.items()):
            if doc.get("container") == container and (net_id is None or net_of(doc).id == net_id):
                locked.drop(path)
        if locked.dirty:
            with contextlib.suppress(UsageError, ContainerStartError):
                locked.apply_rules(required=False)


def detach(lease: Lease) -> None:
    """network disconnect: the container's interface on the network goes (with the veth's
    host end), and its lease."""
    with contextlib.suppress(OSError):  # gone already (the container ended meanwhile)
        _delete_link(lease.link, "veth")
    release(lease.container, lease.net.id)


def remove_bridge(locked: Locked, net: Net) -> None:
    """A user network's bridge (network rm, prune), if it is there, and its rules (the host
    firewalls' too)."""
    _delete_link(net.bridge)
    _close_firewalls(locked, net.bridge)
    if any(d.get("bridge") == net.bridge for d in locked.bridges()):
        locked.remember(net, made=False)
        with contextlib.suppress(UsageError, ContainerStartError):
            locked.apply_rules(required=False)


def _close_firewalls(locked: Locked, bridge: str) -> None:
    """The accept rules held for a bridge in the host's other firewalls, removed (they stay
    while it is there, as minirun's table does: a container's coming and going changes neither)."""
    record = firewall_record(locked.dir, bridge)
    if record.exists():
        from . import firewall
        firewall.close(record)


def _delete_link(link: str, what: str = "bridge") -> bool:
    """Remove a link of the host's (a bridge, a veth's host end) if it is there."""
    try:
        index = socket.if_nametoindex(link)
    except OSError:
        return False
    from .netlink import Netlink
    nl = Netlink()
    try:
        nl.delete_link(index, f"removing {what} {link}")
    finally:
        nl.close()
    return True


def remove_unused() -> bool:
    """system prune: the default bridge and the table go when no container holds a lease (a
    user network's bridge goes with the network). True when they were removed (only root has
    them)."""
    if os.geteuid() != 0:
        return False
    with Locked() as locked:
        if locked.leases:
            if locked.dirty:
                with contextlib.suppress(UsageError, ContainerStartError):
                    locked.apply_rules(required=False)
            return False
        _close_firewalls(locked, BRIDGE)
        if not _delete_link(BRIDGE):
            return False
        nft = nft_path()
        if nft is not None:
            import subprocess
            subprocess.run([nft, "delete", "table", "ip", "minirun"], capture_output=True)
        (locked.dir / RULESET_MARK).unlink(missing_ok=True)  # the next bridge writes it whole again
        return True
