"""The container commands of the typer app: ``ps``, ``rm``, and ``run``'s entry in it.

Registered on ``cli_app.app``; ``run`` itself is ``cli_run`` (see ``runargs`` for why).
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import typer

from .cli import _store
from .cli_app import _check_format, _since, app, print_rows
from .runargs import SUMMARY

# -- run: parsed and carried out by cli_run, without typer; listed here for help ----

@app.command("run", help=SUMMARY, add_help_option=False, context_settings={
    "ignore_unknown_options": True, "allow_extra_args": True, "allow_interspersed_args": False})
def run_cmd(ctx: typer.Context) -> int:
    """Reached only when global flags other than --storage-driver precede ``run``."""
    from .cli_run import run
    return run(list(ctx.args))


# -- ps, rm -------------------------------------------------------------------

def _status(state: Any) -> str:
    if state.status == "running":
        return f"Up {_since(state.created).removesuffix(' ago')}"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {_since(state.finished)}"
    return "Created"


@app.command("ps")
def ps_cmd(
    all: Annotated[bool, typer.Option("--all", "-a", help="Show all containers, not only running ones.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show IDs.")] = False,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List containers."""
    from .runtime.container import list_all
    _check_format(format)
    states = [s for _, s in list_all(_store().root) if all or s.status == "running"]
    rows = [{"ID": s.id[:12], "Image": s.image, "Command": json.dumps(" ".join(s.command)),
             "CreatedAt": s.created, "RunningFor": _since(s.created), "Status": _status(s),
             "State": s.status, "ExitCode": s.exit_code, "Names": s.name} for s in states]
    cols = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"), ("CREATED", "RunningFor"),
            ("STATUS", "Status"), ("NAMES", "Names")]
    if format == "table":  # Docker shortens the command in its table only
        rows = [{k: (str(v)[:22] + "…\"" if k == "Command" and len(str(v)) > 24 else v) for k, v in r.items()}
                for r in rows]
    print_rows(rows, quiet, format, cols)


@app.command("rm")
def rm_cmd(
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER...")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Kill a running container first.")] = False,
) -> None:
    """Remove containers and their root filesystems."""
    import signal
    import time

    from .rootfs import release_container
    from .runtime.cgroups import Cgroup, Limits
    from .runtime.container import ContainerConflict, find, refresh
    root = _store().root
    for key in containers:
        directory, state = find(root, key)
        if state.status == "running":
            if not force:
                raise ContainerConflict(f"cannot remove running container {state.id[:12]}: "
                                        "stop it first or use minirun rm -f")
            # Kill the container's process; the minirun waiting for it records the exit (137).
            target = state.pid or state.monitor
            if target:
                try:
                    os.kill(target, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while refresh(state).status == "running" and time.monotonic() < deadline:
                time.sleep(0.05)
        # Its minirun removes the cgroup when the program exits; a minirun that was killed
        # could not, so rm does (empty now: the program died with its minirun).
        Cgroup(state.id, Limits(), None).remove()
        release_container(directory)
        typer.echo(key)
