"""system prune: the store's housekeeping; info: what this host can do."""

from __future__ import annotations

from typing import Annotated

import typer

from .options import context_of
from .output import confirmed, err, human_size, line

ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Do not prompt for confirmation.")]
FilterOpt = Annotated[list[str], typer.Option(
    "--filter", help="until=TIME (created before), label=KEY[=VALUE], label!=KEY[=VALUE].")]


def _section(title: str, items: list[str]) -> None:
    """Docker's prune output: a titled list and a blank line, or nothing when empty."""
    if items:
        line(f"{title}:")
        for item in items:
            line(item)
        line("")


def _images(untagged: list[str], deleted: list[str]) -> list[str]:
    from ..errors import ReferenceFormatError
    from ..remote import reference
    out = []
    for key in untagged:
        try:
            out.append(f"untagged: {reference.parse(key).familiar()}")
        except ReferenceFormatError:
            out.append(f"untagged: {key}")
    return out + [f"deleted: {digest}" for digest in deleted]


def prune_cmd(
    tctx: typer.Context,
    all_images: Annotated[bool, typer.Option("--all", "-a", help="Remove all unused images, not just dangling ones.")]
    = False,
    force: ForceOpt = False,
    volumes: Annotated[bool, typer.Option("--volumes", help="Prune volumes.")] = False,
    filter: FilterOpt = [],  # noqa: B006 - typer reads the default, never mutates it
) -> None:
    """Remove stopped containers, unused networks, dangling (-a: unused) images, volumes no
    container uses (--volumes), and the store's garbage: blobs, snapshots and partial
    downloads no image uses, damaged entries."""
    from ..ops.prune import parse_filters, prune_system
    filters = parse_filters(filter)
    what = ["all stopped containers", "all networks not used by at least one container"]
    if volumes:
        what.append("all volumes not used by at least one container")
    what.append("all images without at least one container associated to them" if all_images
                else "all dangling images")
    if not confirmed(force, "This will remove:\n" + "".join(f"  - {w}\n" for w in what)):
        return
    pruned = prune_system(context_of(tctx), all_images, volumes, filters)
    _section("Deleted Containers", pruned.containers)
    _section("Deleted Networks", pruned.networks)
    _section("Deleted Volumes", pruned.volumes)
    _section("Deleted Images", _images(pruned.untagged, pruned.deleted))
    line(f"Total reclaimed space: {human_size(pruned.freed)}")


def container_prune_cmd(tctx: typer.Context, force: ForceOpt = False,
                        filter: FilterOpt = []) -> None:  # noqa: B006 - typer reads the default
    """Remove all stopped containers."""
    from ..ops.prune import parse_filters, prune_containers
    filters = parse_filters(filter)
    if not confirmed(force, "This will remove all stopped containers."):
        return
    removed, freed = prune_containers(context_of(tctx), filters)
    _section("Deleted Containers", removed)
    line(f"Total reclaimed space: {human_size(freed)}")


def image_prune_cmd(
    tctx: typer.Context,
    all_images: Annotated[bool, typer.Option("--all", "-a", help="Remove all unused images, not just dangling ones.")]
    = False,
    force: ForceOpt = False,
    filter: FilterOpt = [],  # noqa: B006 - typer reads the default, never mutates it
) -> None:
    """Remove unused images."""
    from ..ops.prune import parse_filters, prune_images
    filters = parse_filters(filter)
    warning = ("This will remove all images without at least one container associated to them." if all_images
               else "This will remove all dangling images.")
    if not confirmed(force, warning):
        return
    removed = prune_images(context_of(tctx), all_images, filters)
    _section("Deleted Images", _images(removed.untagged, removed.deleted))
    line(f"Total reclaimed space: {human_size(removed.freed)}")


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
                           ("Seccomp", "Seccomp"), ("MinirunRootDir", "Root Dir")):
            line(f" {label}: {doc[key]}")
        line(f" Storage Driver: {doc['Driver']} ({_why(doc)})")
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


def _why(doc: dict[str, object]) -> str:
    status = doc["DriverStatus"]
    return str(status[0][1]) if isinstance(status, list) and status and isinstance(status[0], list) else ""


def _words(value: object, sep: str = " ") -> str:
    return sep.join(map(str, value)) if isinstance(value, list) else str(value)


def boot_cmd(tctx: typer.Context) -> None:
    """Start the containers whose restart policy is always, or unless-stopped and not stopped
    by the user (after a reboot: minirun-boot.service runs this)."""
    from ..ops.boot import boot
    for name in boot(context_of(tctx), err):
        line(name)


def df_cmd(
    tctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="table, json, or a template: {{.Type}} {{.Size}}")]
    = "table",
) -> None:
    """Show the disk usage of images, containers and volumes, and what a prune reclaims."""
    from ..ops.usage import disk_usage
    from .output import print_rows
    rows = []
    for u in disk_usage(context_of(tctx)):
        reclaimable = human_size(u.reclaimable)
        if u.size > 0:  # Docker's share of the whole, in whole percent
            reclaimable += f" ({100 * u.reclaimable // u.size}%)"
        rows.append({"Type": u.kind, "TotalCount": str(u.total), "Active": str(u.active),
                     "Size": human_size(u.size), "Reclaimable": reclaimable})
    print_rows(rows, False, format, [("TYPE", "Type"), ("TOTAL", "TotalCount"), ("ACTIVE", "Active"),
                                     ("SIZE", "Size"), ("RECLAIMABLE", "Reclaimable")],
               headers={"TotalCount": "TOTAL"})


def version_cmd(
    format: Annotated[str | None, typer.Option("--format", "-f", help="json, or a template: {{.Client.Version}}")]
    = None,
) -> None:
    """Show the version: Docker's Client and Server blocks (minirun is both: no daemon)."""
    import json
    import os
    import platform

    from .. import __version__
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    client = {"Version": __version__, "ApiVersion": "1.41", "PythonVersion": platform.python_version(),
              "Os": "linux", "Arch": arch}
    server = {"Version": __version__, "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux", "Arch": arch,
              "KernelVersion": os.uname().release, "Components": [{"Name": "Engine", "Version": __version__}]}
    doc = {"Client": client, "Server": server}
    if format == "json":
        line(json.dumps(doc))
        return
    if format is not None:
        from .template import render
        line(render(format, doc))
        return
    for text in ("Client:", f" Version:           {__version__}", " API version:       1.41",
                 f" Python version:    {client['PythonVersion']}", f" OS/Arch:           linux/{arch}", "",
                 "Server:", " Engine:",
                 f"  Version:          {__version__}", "  API version:      1.41 (minimum version 1.12)",
                 f"  OS/Arch:          linux/{arch}", f"  Kernel Version:   {os.uname().release}"):
        line(text)


def completion_cmd(
    shell: Annotated[str, typer.Argument(metavar="bash|zsh|fish")],
) -> None:
    """Print the shell completion script (commands, flags, container and image names).
    bash: minirun completion bash > /etc/bash_completion.d/minirun"""
    from .completion import script
    typer.echo(script(shell), nl=False)


def manual_cmd(tctx: typer.Context) -> None:
    """Print minirun's manual page (roff), made from the commands' own definitions:
    minirun manual > /usr/local/share/man/man1/minirun.1"""
    from typer.core import TyperGroup

    from .completion import manual
    root = tctx.find_root().command
    assert isinstance(root, TyperGroup)
    typer.echo(manual(root), nl=False)
