"""system prune: the store's housekeeping; info: what this host can do."""

from __future__ import annotations

from typing import Annotated

import typer

from ..ops import images as ops
from .options import context_of
from .output import err, human_size, line


def prune_cmd(
    tctx: typer.Context,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also volumes no container uses.")] = False,
) -> None:
    """Remove blobs, snapshots and partial downloads that no image references, and damaged
    image entries and containers, user networks no running container is on (volumes only
    with --volumes)."""
    ctx = context_of(tctx)
    from ..ops.networks import prune_networks
    networks = prune_networks(ctx)  # first: then the bridges and the table can go with them
    removed = ops.prune(ctx)
    for cid in removed.containers:
        line(f"Deleted container: {cid}")
    for name in networks:
        line(f"Deleted Network: {name}")
    for digest in removed.deleted:
        line(f"Deleted: {digest}")
    freed = removed.freed
    if volumes:
        from ..ops.volumes import prune_volumes
        names, more = prune_volumes(ctx)
        freed += more
        for name in names:
            line(f"Deleted Volume: {name}")
    line(f"Total reclaimed space: {human_size(freed)}")


def info_cmd(
    tctx: typer.Context,
    format: Annotated[str | None, typer.Option("--format", "-f", help="json for a JSON object")] = None,
) -> None:
    """What this host can do for minirun; exits 1 when run cannot work here (each missing part
    named with its fix, on stderr)."""
    import json

    from ..ops.info import gather
    from .output import err
    doc, problems = gather(context_of(tctx))
    if format == "json":
        line(json.dumps(doc, indent=2))
    elif format is not None:
        from .template import render
        line(render(format, doc))
    else:
        for key, label in (("KernelVersion", "Kernel Version"), ("OperatingSystem", "Operating System"),
                           ("Architecture", "Architecture"), ("NCPU", "CPUs"), ("CgroupVersion", "Cgroup Version"),
                           ("Driver", "Storage Driver"), ("Seccomp", "Seccomp"), ("MinirunRootDir", "Root Dir")):
            line(f" {label}: {doc[key]}")
        line(f" Total Memory: {human_size(int(str(doc['MemTotal'])))}")
        line(f" Cgroup Controllers: {_words(doc['CgroupControllers'])}")
        line(f" Namespaces: {_words(doc['Namespaces'])}")
        line(f" Network: bridge minirun0 (nftables: {'yes' if doc['Nftables'] else 'no: apt-get install nftables'})")
        line(f" Store Size: {human_size(int(str(doc['StoreBytes'])))}")
        line(f" Images: {doc['Images']}")
        line(f" Containers: {doc['Containers']} (running {doc['ContainersRunning']}, "
             f"stopped {doc['ContainersStopped']})")
        line(f" Registry Mirrors: {_words(doc['RegistryMirrors'], ', ') or '(none)'}")
        wall = doc["Firewall"]
        assert isinstance(wall, dict)
        found = ", ".join(wall["found"]) or "none seen dropping the bridge's traffic"
        line(f" Other Firewalls: {found} (looked at when the bridge's first container starts)")
        for rule in wall["added"]:
            line(f"  accepted for minirun0: {rule}")
        boot = "enabled" if doc["BootService"] else "not enabled (see README: Restart policies)"
        line(f" Restart After Reboot: {boot} (minirun-boot.service runs minirun system boot)")
        line(f" Config File: {doc['ConfigFile'] or '(none)'}")
        settings = doc["Settings"]
        assert isinstance(settings, dict)
        for var, setting in settings.items():  # where each setting in force came from
            line(f"  {var}={setting['Value']} (from {setting['Source']})")
    for p in problems:
        err(f"run cannot work here: {p.what}: {p.fix}")
    if problems:
        raise typer.Exit(1)


def _words(value: object, sep: str = " ") -> str:
    return sep.join(map(str, value)) if isinstance(value, list) else str(value)


def boot_cmd(tctx: typer.Context) -> None:
    """Start the containers whose restart policy is always, or unless-stopped and not stopped
    by the user (after a reboot: minirun-boot.service runs this)."""
    from ..ops.boot import boot
    for name in boot(context_of(tctx), err):
        line(name)
