"""network create, ls, inspect, rm, prune, connect and disconnect: the records in the store
(containers/networks.py) and the leases on the host (runtime/net/network.py) together. Which
containers a network has is read from the leases, so no second record can disagree with them:
as Docker's, a network with a running container attached cannot be removed, one whose
containers are all stopped can (they fail to start until it is made again)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..containers import events
from ..containers.networks import BUILTIN, Network, Networks, builtin_id
from ..containers.state import find, load
from ..content.files import text_or_empty
from ..errors import ContainerConflict, NoSuchNetwork, StoreError, UsageError
from ..records import Record
from ..runtime.net import netconf
from ..spec.settings import Joined, to_annotations
from .containers import changing, configured

if TYPE_CHECKING:
    from pathlib import Path

    from ..runtime.net.leases import Lease
    from ..spec.settings import Settings
    from .context import Context


class NetworkRow(Record):
    """A network as ls and inspect show it; ``record`` None: a built-in one."""
    id: str
    name: str
    driver: str
    record: Network | None
    leases: list[Lease]


def _leases(net_id: str | None = None) -> list[Lease]:
    import os
    if os.geteuid() != 0:  # the leases are root's (/run/minirun)
        return []
    from ..runtime.net import network
    return network.leases_of(net_id=net_id)


def create_network(ctx: Context, name: str, subnet: str | None, gateway: str | None, internal: bool,
                   labels: dict[str, str], driver: str = "bridge") -> Network:
    if driver != "bridge":
        raise UsageError(f'invalid --driver "{driver}": minirun has bridge networks only')
    net = Networks(ctx.root).create(name, subnet, gateway, internal, labels, text_or_empty("/proc/net/route"))
    _event(ctx, "create", net)
    return net


def _event(ctx: Context, action: str, net: Network, **more: str) -> None:
    events.record(ctx.root, "network", action, net.id, {"name": net.name, "type": "bridge", **more})


def list_networks(ctx: Context) -> list[NetworkRow]:
    """The built-in ones, then the user networks, by name (as Docker's ls)."""
    leases = _leases()
    rows = [NetworkRow(builtin_id(name), name, driver, None,
                       [lease for lease in leases if lease.net.id == "bridge"] if name == "bridge" else [])
            for name, driver in BUILTIN.items()]
    rows += [NetworkRow(n.id, n.name, "bridge", n, [lease for lease in leases if lease.net.id == n.id])
             for n in Networks(ctx.root).all()]
    return sorted(rows, key=lambda r: r.name)


def find_row(ctx: Context, key: str) -> NetworkRow:
    for row in list_networks(ctx):
        if key in (row.name, row.id) or (len(key) >= 3 and row.id.startswith(key)):
            return row
    raise NoSuchNetwork(f"network {key} not found")


def inspect_doc(ctx: Context, row: NetworkRow) -> dict[str, Any]:
    """Docker's fields."""
    n = row.record
    subnet = n.subnet if n else (str(netconf.bridge_subnet()) if row.name == "bridge" else "")
    gateway = n.gateway if n else (netconf.bridge_subnet().gateway if row.name == "bridge" else "")
    containers = {}
    for lease in row.leases:
        try:
            name = load(ctx.root / "containers" / lease.container).name
        except StoreError:
            name = ""
        containers[lease.container] = {"Name": name, "EndpointID": "", "MacAddress": "",
                                       "IPv4Address": f"{lease.address}/{lease.subnet.prefix}", "IPv6Address": ""}
    return {"Name": row.name, "Id": row.id, "Created": n.created if n else "0001-01-01T00:00:00Z",
            "Scope": "local", "Driver": row.driver, "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None,
                     "Config": [{"Subnet": subnet, "Gateway": gateway}] if subnet else []},
            "Internal": bool(n and n.internal), "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": {"com.docker.network.bridge.name": n.bridge if n else netconf.BRIDGE} if row.driver == "bridge"
            else {}, "Labels": dict(n.labels) if n else {}}


def remove_network(ctx: Context, key: str) -> None:
    """As Docker's rm: refused for a built-in network and while a container is attached."""
    row = find_row(ctx, key)
    if row.record is None:
        raise ContainerConflict(f"{row.name} is a pre-defined network and cannot be removed")
    _remove(ctx, row.record)


def _remove(ctx: Context, net: Network) -> None:
    import os
    if os.geteuid() == 0:
        from ..runtime.net import network
        with network.holding() as held:  # no container joins it meanwhile
            if held.select(net_id=net.id):
                raise ContainerConflict(f"error while removing network: network {net.name} id {net.id} "
                                        "has active endpoints")
            network.remove_bridge(held, net.net())
            Networks(ctx.root).remove(net)
    else:
        Networks(ctx.root).remove(net)
    _event(ctx, "destroy", net)


def prune_networks(ctx: Context) -> list[str]:
    """The user networks no running container is attached to: their names, removed."""
    out = []
    for row in list_networks(ctx):
        if row.record is not None and not row.leases:
            try:
                _remove(ctx, row.record)
            except ContainerConflict:  # joined meanwhile
                continue
            out.append(row.name)
    return out


def _save_settings(directory: Path, spec: dict[str, Any], settings: Settings) -> None:
    from ..containers.state import save_config
    save_config(directory, {**spec, "annotations": {**(spec.get("annotations") or {}), **to_annotations(settings)}})


def connect(ctx: Context, net_key: str, container_key: str, aliases: tuple[str, ...], ip: str) -> None:
    """The container joins the network: at once when it runs (``ethN``), and on every start."""
    net = _user_network(ctx, net_key)
    if ip:
        netconf.choose(net.name, (), False, (), (), (), (), aliases, ip)  # its form checked
    directory, state = find(ctx.root, container_key)
    with changing(directory, container_key):
        state = load(directory)
        spec, settings = configured(ctx, directory)
        if settings.network in ("none", "host") or settings.network.startswith("container:"):
            raise ContainerConflict(f"container {state.name} cannot be connected to other networks: "
                                    f"its network is {settings.network}")
        if net.name in settings.networks():
            raise ContainerConflict(f"endpoint with name {state.name} already exists in network {net.name}")
        if state.status == "running" and state.pid is not None:
            _join_now(state.id, state.name, state.pid, state.pid_start, net, aliases, ip)
        joined = Joined(net.name, aliases, ip).text()
        _save_settings(directory, spec, settings._replace(connected=(*settings.connected, joined)))
    _event(ctx, "connect", net, container=state.id)


def _join_now(cid: str, name: str, pid: int, pid_start: int | None, net: Network, aliases: tuple[str, ...],
              ip: str) -> None:
    from ..runtime.net import network
    from ..runtime.net.leases import Owner
    from ..runtime.net.wiring import attach
    taken = {lease.ifname for lease in network.leases_of(cid)}
    ifname = next(f"eth{i}" for i in range(10) if f"eth{i}" not in taken)
    # Held while its PID 1 lives: it goes with the container, even one whose minirun was killed.
    lease = network.reserve(cid, (), net.net(), network.Endpoint(name, aliases, ip, ifname),
                            Owner(pid, pid_start))
    try:
        attach(lease, pid)
    except OSError as e:
        network.release(cid, net.id)
        raise ContainerConflict(f"connecting container {name} to network {net.name}: {e.strerror or e}") from None


def disconnect(ctx: Context, net_key: str, container_key: str) -> None:
    net = _user_network(ctx, net_key)
    directory, state = find(ctx.root, container_key)
    with changing(directory, container_key):
        state = load(directory)
        spec, settings = configured(ctx, directory)
        if net.name not in settings.networks():
            raise ContainerConflict(f"container {state.id[:12]} is not connected to network {net.name}")
        if state.status == "running":
            from ..runtime.net import network
            for lease in network.leases_of(state.id, net.id):
                network.detach(lease)
        if settings.network == net.name:  # its first network: it has none left to start on
            settings = settings._replace(network="none", network_alias=(), ip="", publish=())
        else:
            settings = settings._replace(connected=tuple(j.text() for j in settings.joined() if j.name != net.name))
        _save_settings(directory, spec, settings)
    _event(ctx, "disconnect", net, container=state.id)


def _user_network(ctx: Context, key: str) -> Network:
    row = find_row(ctx, key)
    if row.record is None:
        raise UsageError(f"network {row.name}: minirun connects and disconnects containers on user networks only")
    return row.record
