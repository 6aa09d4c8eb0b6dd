"""A container's leases on this network namespace's networks, as files: an address held (with
its published ports) while its owner lives, under one lock per namespace.

Leases live under ``/run/minirun/net-<netns inode>/``: ``/run`` is emptied at boot, as the
bridges and the table are, and the directory belongs to one network namespace (the bridges
are that namespace's). A lease names its owner, the minirun process that runs the container
(or, for ``network connect``, the container's PID 1), with the process's start time: a lease
whose owner is gone (killed, even by SIGKILL) is reclaimed by whoever takes the lock next,
with its published ports. Beside them: ``dns/names.json`` (what the resolvers answer, rewritten
whenever a lease on a user network comes or goes) and the records of the host firewalls'
accept rules.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from ...content.files import file_lock
from ...errors import EXIT_RUN_FAILED, ContainerStartError, UsageError
from ...pids import alive, start_time
from ...records import Record
from .netconf import BRIDGE, Net, PortMapping, Subnet, default_net
from .nftgen import generation

RUN_DIR = Path("/run/minirun")
NAMES = "names.json"   # in the ``dns`` directory: what the resolvers answer (see resolver.py)
BRIDGES = "bridges.json"   # the user networks' bridges made here (their rules are in the table)

# What was added to the host's other firewalls for the default bridge (see firewall.py); a user
# network's bridge has firewall-BRIDGE.json.
FIREWALL_RECORD = "firewall.json"


# Written beside the leases once this version's table is in: a bridge and table left by an
# earlier minirun (without the raw chain and the forward drop) are rewritten on the next run.
RULESET_MARK = "ruleset-2"


class Lease(Record):
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


class Owner(Record):
    """Who holds a lease: while this process lives (its start time told apart from a reused
    PID) the address stays the container's."""
    pid: int
    start: int | None

    @classmethod
    def me(cls) -> Owner:
        return cls(os.getpid(), start_time(os.getpid()))


def link_name(container: str, ifname: str) -> str:
    """The veth's host end (at most 15 characters, as the kernel's names)."""
    return f"mr{container[:12]}" if ifname == "eth0" else f"mx{container[:12]}{ifname[3:]}"


def state_path() -> Path:
    """This network namespace's leases, lock and records (one bridge per namespace)."""
    return RUN_DIR / f"net-{os.stat('/proc/self/ns/net').st_ino}"


def state_dir() -> Path:
    d = state_path()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def nft_path() -> str | None:
    """Debian's nftables command, found on PATH (sudo's has /usr/sbin)."""
    import shutil  # here and subprocess below: only when the table is written, not every run
    return shutil.which("nft")


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


def ports_of(doc: dict[str, object]) -> list[PortMapping]:
    raw = doc.get("ports")
    return [PortMapping(*p) for p in raw] if isinstance(raw, list) else []


def net_of(doc: dict[str, object]) -> Net:
    """The network a lease is on (a lease of an older minirun: the default bridge)."""
    if "net" not in doc:
        return default_net()
    return Net(str(doc["netname"]), str(doc["net"]), str(doc["bridge"]), Subnet.parse(str(doc["subnet"])),
               bool(doc.get("internal")), bool(doc.get("names")))


def firewall_record(d: Path, bridge: str) -> Path:
    return d / (FIREWALL_RECORD if bridge == BRIDGE else f"firewall-{bridge}.json")


def _replace_json(path: Path, doc: object, mode: int | None = None) -> None:
    """``path`` replaced whole by ``doc`` (a reader sees the old file or the new one; these
    files are rebuilt from the leases and the host, so no fsync)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc))
    if mode is not None:
        tmp.chmod(mode)
    os.replace(tmp, path)


def _firewall_doc(record: Path) -> dict[str, object]:
    """A firewall record as written by firewall.open_for ({} when missing or unreadable)."""
    try:
        doc = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


class Locked:
    """The leases of this network namespace, under its lock: read, reclaimed, changed."""

    def __init__(self) -> None:
        self.dir = state_dir()
        self.lock = file_lock(self.dir / "lock", what="another container's network setup")

    def __enter__(self) -> Locked:
        self.lock.__enter__()
        self.leases = _read_leases(self.dir)
        self.dirty = False  # the nftables table must be written again
        self.renamed = False  # the names the resolvers answer changed
        self.generation = generation()  # the ruleset's, as this lock was taken
        for path, doc in list(self.leases.items()):
            if not _owner_alive(doc):
                self.drop(path)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.renamed:
                self.write_names()
            self._carry_generation()
        finally:
            self.lock.__exit__(None, None, None)

    def firewall_current(self, record: Path) -> bool:
        """Whether the host firewalls' survey for a bridge (its ``record``) still holds: nothing
        in the ruleset changed since it was made, but by minirun under this lock."""
        return self.generation is not None and _firewall_doc(record).get("generation") == self.generation

    def _carry_generation(self) -> None:
        """The ruleset changed under this lock by minirun's own hand (its table written, a
        survey's rules added): the surveys that held as it was taken hold still. (A change by
        another tool in these milliseconds would pass unseen until the ruleset next changes.)"""
        if self.generation is None:
            return
        now = generation()
        if now is None or now == self.generation:
            return
        for record in [self.dir / FIREWALL_RECORD, *self.dir.glob("firewall-*.json")]:
            doc = _firewall_doc(record)
            if doc.get("generation") == self.generation:
                _replace_json(record, {**doc, "generation": now})

    def drop(self, path: Path) -> None:
        doc = self.leases.pop(path)
        path.unlink(missing_ok=True)
        self.dirty = self.dirty or bool(ports_of(doc))
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
                and (net_id is None or net_of(doc).id == net_id)]

    def nets(self) -> list[Net]:
        """The default bridge and every user network whose bridge is made, for the table (its
        rules stay while the bridge does: a container's coming and going changes nothing)."""
        found = {n.id: n for n in (net_of(doc) for doc in self.bridges())}
        return [default_net(), *(n for key, n in sorted(found.items()) if key != "bridge")]

    def bridges(self) -> list[dict[str, object]]:
        """The user networks' bridges made in this namespace (``bridges.json``), as lease docs."""
        try:
            docs = json.loads((self.dir / BRIDGES).read_text())
        except (OSError, ValueError):
            return []
        return [d for d in docs if isinstance(d, dict) and "net" in d] if isinstance(docs, list) else []

    def remember(self, net: Net, made: bool) -> None:
        """A user network's bridge is there (``made``) or gone: the table is written again."""
        kept = [d for d in self.bridges() if d.get("bridge") != net.bridge]
        if made:
            kept.append(net_doc(net))
        _replace_json(self.dir / BRIDGES, kept)
        self.dirty = True

    def published(self) -> list[tuple[str, PortMapping]]:
        return [(str(doc.get("address")), p) for doc in self.leases.values() for p in ports_of(doc)]

    def write_names(self) -> None:
        """The names the resolvers answer: each container on a network with names, under its
        name, its aliases and its short ID, in a file the unprivileged resolvers can read."""
        entries = [{"net": doc["net"], "container": doc["container"], "names": doc.get("aliases") or [],
                    "address": doc["address"]} for doc in self.leases.values() if doc.get("names")]
        d = self.dir / "dns"
        d.mkdir(mode=0o755, exist_ok=True)
        _replace_json(d / NAMES, entries, 0o644)

    def apply_rules(self, required: bool) -> None:
        """Write minirun's table from the leases, in one nft transaction."""
        nft = nft_path()
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


def net_doc(n: Net) -> dict[str, object]:
    """A user network as leases and bridges.json keep it (``net_of`` reads it back)."""
    return {"net": n.id, "netname": n.name, "bridge": n.bridge, "subnet": str(n.subnet), "internal": n.internal,
            "names": n.names}


def lease_doc(lease: Lease) -> dict[str, object]:
    return {"container": lease.container, "address": lease.address, "ports": [list(p) for p in lease.ports],
            "ifname": lease.ifname, "link": lease.link, **net_doc(lease.net)}


def lease_from(doc: dict[str, object]) -> Lease:
    ifname = str(doc.get("ifname") or "eth0")
    return Lease(str(doc["container"]), str(doc["address"]), net_of(doc), tuple(ports_of(doc)), ifname,
                 str(doc.get("link") or link_name(str(doc["container"]), ifname)))
