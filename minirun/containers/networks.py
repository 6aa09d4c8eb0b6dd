"""User-defined networks: one record each in the store (``<root>/networks/ID.json``), as Docker
keeps its networks across reboots. A record is all there is until a container joins: the
bridge (``mr-`` and 12 hex digits of the ID) and minirun's rules for it are made on first use
(see runtime/net/network.py), after a reboot too. The default ``bridge`` and ``host`` and
``none`` are built in: they have no record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from ..content.files import atomic_write, file_lock, store_error
from ..errors import ContainerConflict, NoSuchNetwork, StoreError, UsageError
from ..records import Record
from ..runtime.net.netconf import Net, Subnet, bridge_subnet, ip_int, ip_text, pick_subnet
from .state import now_rfc3339, valid_name

BUILTIN = {"bridge": "bridge", "host": "host", "none": "null"}   # name: driver


def builtin_id(name: str) -> str:
    """A stable ID for a built-in network (Docker's are random, made once per daemon)."""
    return hashlib.sha256(f"minirun-network-{name}".encode()).hexdigest()


class Network(Record):
    id: str
    name: str
    created: str
    subnet: str
    gateway: str
    internal: bool = False
    labels: dict[str, str] = {}  # noqa: RUF012 - never changed

    @property
    def bridge(self) -> str:
        return f"mr-{self.id[:12]}"

    def net(self) -> Net:
        return Net(self.name, self.id, self.bridge, Subnet.parse(self.subnet), self.internal, names=True)


def _check_gateway(subnet: Subnet, gateway: str) -> None:
    """minirun's bridges hold the subnet's first address (as docker0): a --gateway must be it."""
    try:
        ip_int(gateway)
    except ValueError:
        raise UsageError(f'invalid --gateway "{gateway}": not an IPv4 address') from None
    if gateway != subnet.gateway:
        raise UsageError(f"invalid --gateway {gateway}: minirun's bridge takes the subnet's first address, "
                         f"{subnet.gateway}")


class Networks:
    def __init__(self, root: Path) -> None:
        self.dir = root / "networks"
        self.lock = root / "networks.lock"

    def all(self) -> list[Network]:
        if not self.dir.is_dir():
            return []
        out = []
        for path in sorted(self.dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                d = json.loads(path.read_bytes())
                out.append(Network(str(d["id"]), str(d["name"]), str(d["created"]), str(d["subnet"]),
                                   str(d["gateway"]), bool(d.get("internal")),
                                   {str(k): str(v) for k, v in (d.get("labels") or {}).items()}))
        return sorted(out, key=lambda n: n.name)

    def find(self, key: str) -> Network:
        """By name, ID or unique ID prefix (as Docker); NoSuchNetwork otherwise."""
        nets = self.all()
        for n in nets:
            if key in (n.name, n.id):
                return n
        matching = [n for n in nets if key and n.id.startswith(key)]
        if len(matching) == 1:
            return matching[0]
        if len(matching) > 1:
            raise ContainerConflict(f"network {key} is ambiguous ({len(matching)} matches found)")
        raise NoSuchNetwork(f"network {key} not found")

    def create(self, name: str, subnet: str | None, gateway: str | None, internal: bool,
               labels: dict[str, str], route_table: str) -> Network:
        if not valid_name(name):
            raise UsageError(f'invalid network name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
        if name in BUILTIN:
            raise ContainerConflict(f"network with name {name} already exists")
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise store_error("creating", self.dir, e) from None
        with file_lock(self.lock):
            nets = self.all()
            if any(n.name == name for n in nets):
                raise ContainerConflict(f"network with name {name} already exists")
            taken = [bridge_subnet(), *(Subnet.parse(n.subnet) for n in nets)]
            if subnet is None:
                chosen = pick_subnet(taken, route_table)
            else:
                chosen = Subnet.parse(subnet, "--subnet")
                if any(chosen.overlaps(t.network, t.mask) for t in taken):
                    raise ContainerConflict(f"Pool overlaps with other one on this address space: {chosen}")
            if gateway is not None:
                _check_gateway(chosen, gateway)
            nid = os.urandom(32).hex()
            net = Network(nid, name, now_rfc3339(), f"{ip_text(chosen.network)}/{chosen.prefix}", chosen.gateway,
                          internal, labels)
            try:
                atomic_write(self.dir / f"{nid}.json", json.dumps(net._asdict()).encode())
            except OSError as e:
                raise store_error("creating network", self.dir / f"{nid}.json", e) from None
            return net

    def remove(self, net: Network) -> None:
        try:
            (self.dir / f"{net.id}.json").unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StoreError(f"removing network {net.name}: {e.strerror}") from None
