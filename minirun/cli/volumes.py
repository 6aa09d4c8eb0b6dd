"""volume create, ls, inspect, rm, prune in the typer app (Docker's output)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ..ops import volumes as ops
from ..spec.flags import label_matches
from .many import each, print_docs
from .options import context_of, filters
from .output import confirmed, human_size, line, print_rows

if TYPE_CHECKING:
    from ..containers.volumes import Volume


def labels_from(given: list[str]) -> dict[str, str]:
    out = {}
    for text in given:
        key, _, value = text.partition("=")
        if not key:
            raise UsageError(f'invalid label "{text}": expected KEY[=VALUE]')
        out[key] = value
    return out


def create_cmd(
    tctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="[VOLUME]")] = "",
    label: Annotated[list[str], typer.Option("--label", help="KEY=VALUE (repeatable).")] = [],  # noqa: B006
) -> None:
    """Create a volume (an anonymous one without a name); prints its name."""
    line(ops.create_volume(context_of(tctx), name, labels_from(label)).name)


def _doc(v: Volume) -> dict[str, object]:
    """Docker's fields."""
    return {"CreatedAt": v.created, "Driver": "local", "Labels": v.labels or None, "Mountpoint": str(v.data),
            "Name": v.name, "Options": None, "Scope": "local"}


def _filters(given: list[str]) -> dict[str, list[str]]:
    return filters(given, ("dangling", "name", "label"), "dangling=true|false, name=NAME or label=KEY[=VALUE]")


def _matches(row: ops.VolumeRow, key: str, values: list[str]) -> bool:
    v = row.volume
    if key == "dangling":
        return any((not row.users) == (x.lower() in ("true", "1")) for x in values)
    if key == "name":
        return any(x in v.name for x in values)
    return any(label_matches(v.labels, x) for x in values)


def ls_cmd(
    tctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only names.")] = False,
    filter: Annotated[list[str], typer.Option("--filter", "-f", help="dangling=true, name=, label= (repeatable).")]
    = [],  # noqa: B006 - typer reads the default, never mutates it
    format: Annotated[str, typer.Option("--format", help="table, json, or a template: {{.Name}}")] = "table",
) -> None:
    """List volumes."""
    wanted = _filters(filter)
    rows = [r for r in ops.list_volumes(context_of(tctx)) if all(_matches(r, k, vs) for k, vs in wanted.items())]
    print_rows([{"Driver": "local", "Name": r.volume.name, "Mountpoint": str(r.volume.data),
                 "Labels": ",".join(f"{k}={v}" for k, v in r.volume.labels.items()), "Scope": "local"} for r in rows],
               quiet, format, [("DRIVER", "Driver"), ("VOLUME NAME", "Name")], quiet_key="Name",
               headers={"Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Scope": "SCOPE"})


def inspect_cmd(
    tctx: typer.Context,
    names: Annotated[list[str], typer.Argument(metavar="VOLUME...")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="json, or a template: {{.Mountpoint}}")]
    = None,
) -> None:
    """Volumes as JSON, with Docker's field names."""
    ctx = context_of(tctx)
    print_docs(names, lambda name: _doc(ops.get_volume(ctx, name)), format)


def rm_cmd(
    tctx: typer.Context,
    names: Annotated[list[str], typer.Argument(metavar="VOLUME...")],
    force: Annotated[bool, typer.Option("--force", "-f", help="No error for a volume that is not there.")] = False,
) -> None:
    """Remove volumes no container uses."""
    ctx = context_of(tctx)
    each(names, lambda name: ops.remove_volume(ctx, name, force))


def prune_cmd(
    tctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask.")] = False,
) -> None:
    """Remove every volume no container uses."""
    if not confirmed(force, "This will remove all local volumes not used by at least one container."):
        return
    removed, freed = ops.prune_volumes(context_of(tctx))
    if removed:
        line("Deleted Volumes:")
        for name in removed:
            line(name)
        line("")
    line(f"Total reclaimed space: {human_size(freed)}")
