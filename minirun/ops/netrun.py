"""run's network: from the checked flags to what the container gets (its namespace, address,
published ports and /etc files), and back when it ends. Never prints."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..containers.state import find
from ..content.files import text_or_empty
from ..errors import ContainerConflict
from ..pids import alive
from ..runtime.net import netconf

if TYPE_CHECKING:
    from ..oci import RunConfig
    from ..runtime.net.attacher import Attacher
    from ..runtime.net.netconf import Choice
    from ..runtime.net.network import Lease


class Wired(NamedTuple):
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


def helper_for(mode: str) -> Attacher | None:
    """For a container on the bridge, the helper that attaches it, started now so that it has
    loaded its netlink messages by the time the container needs them (see runtime.net.attacher)."""
    if mode not in ("bridge", "default") or os.geteuid() != 0:
        return None
    from ..runtime.net.attacher import Attacher
    return Attacher()


def wire(root: Path, choice: Choice, cid: str, hostname: str, config: RunConfig,
         helper: Attacher | None = None) -> Wired:
    """Reserve what the container's network needs (bridge: an address, published ports);
    ``unwire`` gives it back. ``helper`` (``helper_for``) attaches a bridged container."""
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
    etc["/etc/resolv.conf"] = netconf.resolv_conf(host_resolv, choice.dns, choice.dns_search, choice.dns_option)
    lease: Lease | None = None
    if choice.mode == "bridge":
        from ..runtime.net import network  # (not for none: it loads socket, 3 ms of a start)
        ports = choice.ports + (tuple(netconf.exposed_ports(dict(config))) if choice.publish_all else ())
        lease = network.reserve(cid, ports)
    gateway = lease.subnet.gateway if lease else netconf.bridge_subnet().gateway
    extra = [(name, gateway if ip == "host-gateway" else ip) for name, ip in choice.add_hosts]
    etc["/etc/hosts"] = netconf.hosts_file(hostname, lease.address if lease else None, extra)
    if lease is None:
        return Wired(etc, None, [])
    bound = lease

    def attach(pid: int) -> None:
        from ..runtime.net import network
        if helper is None:
            network.attach(bound, pid)
        else:
            helper.attach(cid, bound.address, bound.subnet.network, bound.subnet.prefix, pid)

    return Wired(etc, lease.address, [str(p) for p in lease.ports], attach=attach)


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


