"""run's network: from the checked flags to what the container gets (its namespace, address,
published ports and /etc files), and back when it ends. Never prints."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..containers.state import find
from ..content.files import text_or_empty
from ..errors import ContainerConflict
from ..pids import alive
from ..records import TYPE_CHECKING, Record
from ..runtime.net import netconf

if TYPE_CHECKING:
    from ..oci import RunConfig
    from ..runtime.net.attacher import Attacher
    from ..runtime.net.leases import Lease
    from ..runtime.net.netconf import Choice, Net
    from ..spec.settings import Joined


class Wired(Record):
    """What run hands on: the /etc files' text, what the state records, the network
    namespace for config.json (``network_path``: "" a new one, None the host's, else the
    path of the one joined), and for the runtime: ``attach`` (a bridged container's veth,
    given its PID) and ``joined`` (the joined namespace, open: unwire closes it)."""
    etc: dict[str, str]
    address: str | None
    ports: list[str]
    network_path: str | None = ""
    attach: Callable[[int], None] | None = None
    joined: dict[str, int] | None = None


def wire(root: Path, choice: Choice, cid: str, hostname: str, config: RunConfig,
         helper: Attacher | None = None, name: str = "", connected: Sequence[Joined] = ()) -> Wired:
    """Reserve what the container's network needs (on a bridge: an address on each of its
    networks, published ports); ``unwire`` gives it back. ``helper`` (``attacher.for_mode``)
    attaches it; ``name`` and ``connected`` (network connect's, as its settings keep them)
    are for user networks."""
    etc = {"/etc/hostname": hostname + "\n"}
    host_resolv = text_or_empty("/etc/resolv.conf")
    if choice.mode == "host":  # the host's own files, as Docker
        etc.update({"/etc/hosts": text_or_empty("/etc/hosts"), "/etc/resolv.conf": host_resolv})
        return Wired(etc, None, [], network_path=None)
    if choice.mode.startswith("container:"):
        fd, pid, other = _joined(root, choice.mode.partition(":")[2])
        etc.update({"/etc/hosts": text_or_empty(str(other / "hosts")),
                    "/etc/resolv.conf": text_or_empty(str(other / "resolv.conf"))})
        return Wired(etc, None, [], network_path=f"/proc/{pid}/ns/net", joined={"network": fd})
    leases = _reserve(root, choice, cid, config, name, connected) if choice.mode != "none" else []
    names = [lease.net for lease in leases if lease.net.names]
    if names:
        etc["/etc/resolv.conf"] = netconf.embedded_resolv_conf(host_resolv, choice.dns_search, choice.dns_option)
    else:
        etc["/etc/resolv.conf"] = netconf.resolv_conf(host_resolv, choice.dns, choice.dns_search, choice.dns_option)
    first = leases[0] if leases else None
    gateway = first.subnet.gateway if first else netconf.bridge_subnet().gateway
    extra = [(host, gateway if ip == "host-gateway" else ip) for host, ip in choice.add_hosts]
    etc["/etc/hosts"] = netconf.hosts_file(hostname, first.address if first else None, extra)
    if first is None:
        return Wired(etc, None, [])
    from ..runtime.net.wiring import Wiring
    # An internal network's resolver asks no one outside (as Docker's): nothing goes out.
    outside = [] if all(n.internal for n in names) else netconf.upstream(host_resolv, choice.dns)
    wiring = Wiring(bool(names), cid, outside)

    def attach(pid: int) -> None:
        if helper is None:
            from ..runtime.net.wiring import wire_up
            wire_up(leases, pid, wiring)
        else:
            helper.attach(leases, pid, wiring)

    return Wired(etc, first.address, [str(p) for p in first.ports], attach=attach)


def _reserve(root: Path, choice: Choice, cid: str, config: RunConfig, name: str,
             connected: Sequence[Joined]) -> list[Lease]:
    """An address on each of the container's networks (the first with its published ports)."""
    from ..runtime.net import network  # (not for none: it loads socket, 3 ms of a start)
    wanted = [(find_network(root, choice.mode), network.Endpoint(name, choice.aliases, choice.ip))]
    for joined in connected:
        wanted.append((find_network(root, joined.name), network.Endpoint(name, joined.aliases, joined.ip)))
    ports = choice.ports + (tuple(netconf.exposed_ports(dict(config))) if choice.publish_all else ())
    leases: list[Lease] = []
    try:
        for i, (net, endpoint) in enumerate(wanted):
            leases.append(network.reserve(cid, ports if i == 0 else (), net, endpoint._replace(ifname=f"eth{i}")))
    except BaseException:
        network.release(cid)
        raise
    return leases


def find_network(root: Path, key: str) -> Net:
    """A network by name or ID: the default bridge, or a user network's record."""
    if key in ("bridge", "default"):
        return netconf.default_net()
    from ..containers.networks import Networks
    return Networks(root).find(key).net()


def _joined(root: Path, key: str) -> tuple[int, int, Path]:
    """--network container:KEY: its network namespace, open, its PID and its directory."""
    directory, state = find(root, key)
    if state.status != "running" or state.pid is None or not alive(state.pid, state.pid_start):
        raise ContainerConflict(f"joining the network of container {key}: it is not running")
    return os.open(f"/proc/{state.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC), state.pid, directory


def unwire(cid: str, wired: Wired | None) -> None:
    """The container ended: its lease (address, ports) goes; the veth went with its namespace."""
    if wired is None:
        return
    for fd in (wired.joined or {}).values():
        os.close(fd)
    if wired.attach is not None:
        from ..runtime.net import network
        network.release(cid)


