"""A container's interfaces made (a veth pair per lease, moved into its network namespace) and
its resolver started: what the attaching helper (attacher.py) does, or run itself."""

from __future__ import annotations

import socket
from collections.abc import Callable

from ...records import Record
from .leases import Lease, link_name, state_dir
from .netconf import mac_of
from .netns import in_netns


def sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def no_router_advertisements(link: str) -> None:
    """A container's router advertisement must not give the host (or the bridge) an IPv6
    address or route (CVE-2020-13401)."""
    try:
        sysctl(f"/proc/sys/net/ipv6/conf/{link}/accept_ra", "0")
    except FileNotFoundError:  # no IPv6 in this kernel
        pass


class Wiring(Record):
    """What a container's namespace gets beside its interfaces: a resolver (on a user
    network), asking ``upstream`` for other names."""
    resolver: bool = False
    container: str = ""
    upstream: list[str] = []  # noqa: RUF012 - never changed; a list, as JSON gives it back


def wire_up(leases: list[Lease], pid: int, wiring: Wiring, ready: Callable[[], object] = lambda: None) -> None:
    """The container's interfaces, one per lease, and its resolver; ``ready`` is called once
    the container may run (its resolver's sockets bound: no query of its is lost)."""
    for lease in leases:
        attach(lease, pid)
    if wiring.resolver:
        from . import resolver
        resolver.spawn(pid, wiring.container, wiring.upstream, str(state_dir() / "dns"), ready)
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
        bridge = _index(lease.net.bridge)
        peer = {"attrs": [["IFLA_IFNAME", inside], ["IFLA_NET_NS_PID", pid], ["IFLA_ADDRESS", mac_of(lease.address)]]}
        nl.new_link([["IFLA_IFNAME", host_end], ["IFLA_MASTER", bridge],
                     ["IFLA_LINKINFO", {"attrs": [["IFLA_INFO_KIND", "veth"],
                                                  ["IFLA_INFO_DATA", {"attrs": [["VETH_INFO_PEER", peer]]}]]}]],
                    f"creating veth {host_end}")
        no_router_advertisements(host_end)
        nl.set_up(_index(host_end), f"bringing {host_end} up")
    finally:
        nl.close()
    with in_netns(pid):
        inner = Netlink()
        index = _index(inside)
    try:
        inner.add_address(index, lease.address, lease.subnet.prefix, f"adding {lease.address} to {inside}")
        inner.set_up(index, f"bringing {inside} up")
        if inside == "eth0" and not lease.net.internal:
            inner.add_default_route(lease.subnet.gateway, f"adding the default route via {lease.subnet.gateway}")
    finally:
        inner.close()


def _index(name: str) -> int:
    """The interface's index; an OSError naming it when there is none (yet, or any more)."""
    try:
        return socket.if_nametoindex(name)
    except OSError as e:
        raise OSError(e.errno, f"finding interface {name}: {e.strerror}") from None
