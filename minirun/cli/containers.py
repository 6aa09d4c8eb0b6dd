"""ps, rm, and run's face in the typer app (run itself is ``cli.run``, without typer)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from ..ops import containers as ops
from .options import FormatOpt, QuietOpt, context_of
from .output import check_format, err, line, print_rows, since

if TYPE_CHECKING:
    from ..runtime.container import ContainerState


def run_cmd(tctx: typer.Context) -> int:
    """Reached only when global flags other than --storage-driver precede ``run``."""
    from .run import run
    return run(list(tctx.args), context_of(tctx))


def _status(state: ContainerState) -> str:
    if state.status == "running":
        return f"Up {since(state.created).removesuffix(' ago')}"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {since(state.finished)}"
    if state.status == "dead":
        return "Dead"
    return "Created"


def ps_cmd(
    tctx: typer.Context,
    all: Annotated[bool, typer.Option("--all", "-a", help="Show all containers, not only running ones.")] = False,
    quiet: QuietOpt = False,
    format: FormatOpt = "table",
) -> None:
    """List containers."""
    check_format(format)
    states, damaged = ops.list_containers(context_of(tctx), all)
    for d in damaged:
        err(f"container {d.id[:12]}: {d.reason}; minirun rm {d.id[:12]} or minirun system prune removes it")
    rows = [{"ID": s.id[:12], "Image": s.image, "Command": json.dumps(" ".join(s.command)),
             "CreatedAt": s.created, "RunningFor": since(s.created), "Status": _status(s),
             "State": s.status, "ExitCode": s.exit_code, "Names": s.name, "Networks": s.network,
             "IPAddress": s.address or "", "Ports": ", ".join(s.ports)}
            for s in states]
    cols = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"), ("CREATED", "RunningFor"),
            ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")]
    if format == "table":  # Docker shortens the command in its table only
        rows = [{k: (str(v)[:22] + "…\"" if k == "Command" and len(str(v)) > 24 else v) for k, v in r.items()}
                for r in rows]
    print_rows(rows, quiet, format, cols)


def rm_cmd(
    tctx: typer.Context,
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER...")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Kill a running container first.")] = False,
) -> None:
    """Remove containers and their root filesystems."""
    ctx = context_of(tctx)
    for key in containers:
        ops.remove_container(ctx, key, force)
        line(key)
