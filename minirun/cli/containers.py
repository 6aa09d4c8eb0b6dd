"""ps, rm, logs, stop, kill, wait, and run's face in the typer app (run itself is ``cli.run``,
without typer)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ..ops import containers as ops
from ..ops.start import start_container
from . import completion as complete
from .many import each, print_docs
from .options import QuietOpt, context_of
from .output import docker_created, err, human_size, line, print_rows, since, write

if TYPE_CHECKING:
    from pathlib import Path

    from ..containers.logs import Entry
    from ..containers.state import ContainerState
    from ..ops.context import Context


RunWords = Annotated[list[str] | None, typer.Argument(metavar="[OPTIONS] IMAGE [COMMAND] [ARG...]",
                                                     autocompletion=complete.run_words)]


def run_cmd(tctx: typer.Context, words: RunWords = None) -> int:
    """Reached only when global flags other than --storage-driver precede ``run``."""
    from .run import run
    return run([*(words or []), *tctx.args], lambda: context_of(tctx))


def create_cmd(tctx: typer.Context, words: RunWords = None) -> int:
    """Reached only when global flags other than --storage-driver precede ``create``."""
    from .run import run
    return run([*(words or []), *tctx.args], lambda: context_of(tctx), create=True)


def _status(state: ContainerState, root: Path) -> str:
    if state.status == "running":  # since it started (its last start), not since it was made
        up = since(state.started_at or state.created).removesuffix(" ago")
        return f"Up {up}{_health(root / 'containers' / state.id)}"
    if state.waiting_to_restart():
        return f"Restarting ({state.exit_code}) {since(state.finished)}"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {since(state.finished)}"
    if state.status == "dead":
        return "Dead"
    return "Created"


def _health(directory: Path) -> str:
    """ps's word on a running container's health check, as Docker's."""
    from ..ops.health import read
    health = read(directory)
    if health is None:
        return ""
    status = health.get("Status")
    return " (health: starting)" if status == "starting" else f" ({status})"


def ps_cmd(
    tctx: typer.Context,
    all: Annotated[bool, typer.Option("--all", "-a", help="Show all containers, not only running ones.")] = False,
    quiet: QuietOpt = False,
    format: Annotated[str, typer.Option("--format", help="table, json, or a template: {{.ID}} {{.Names}}")]
    = "table",
    filter: Annotated[list[str], typer.Option(
        "--filter", "-f", help="status=, name=REGEXP, id=, label=, ancestor=, exited=, before=, since=, volume=, "
        "network=, health= (repeatable).")]
    = [],  # noqa: B006 - typer reads the default, never mutates it
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Full IDs and commands.")] = False,
    last: Annotated[int, typer.Option("--last", "-n", help="The N last created (all states).")] = -1,
    latest: Annotated[bool, typer.Option("--latest", "-l", help="The last created (all states).")] = False,
    size: Annotated[bool, typer.Option("--size", "-s", help="Display total file sizes.")] = False,
) -> None:
    """List containers."""
    from .psfilter import Matcher, parse
    wanted = parse(filter)
    if latest:
        last = 1
    states, damaged = ops.list_containers(context_of(tctx), all or bool(wanted) or last >= 0)
    # (``all`` is the flag here)
    ctx = context_of(tctx)
    if wanted:
        match = Matcher(ctx, wanted, states)
        states = [s for s in states if match(s)]
    if last >= 0:
        states = states[:last]  # (newest first)
    for d in damaged:
        err(f"container {d.id[:12]}: {d.reason}; minirun rm {d.id[:12]} or minirun system prune removes it")
    size = size or ".Size" in format  # (as Docker's: a format that shows the size asks for it)
    rows = [_ps_row(ctx, s, no_trunc, "Networks" in format, size) for s in states]
    cols = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"), ("CREATED", "RunningFor"),
            ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")] + ([("SIZE", "Size")] if size else [])
    if format == "table" and not no_trunc:  # Docker shortens the command in its table only
        rows = [{k: (str(v)[:22] + "…\"" if k == "Command" and len(str(v)) > 24 else v) for k, v in r.items()}
                for r in rows]
    print_rows(rows, quiet, format, cols, headers={"CreatedAt": "CREATED AT", "State": "STATE", "Networks": "NETWORKS",
                                                   "ExitCode": "EXIT CODE", "IPAddress": "IP ADDRESS"})


def _ps_row(ctx: Context, s: ContainerState, no_trunc: bool, networks: bool, size: bool) -> dict[str, object]:
    row: dict[str, object] = {
        "ID": s.id if no_trunc else s.id[:12], "Image": s.image, "Command": json.dumps(" ".join(s.command)),
        "CreatedAt": docker_created(s.created), "RunningFor": since(s.created), "Status": _status(s, ctx.root),
        "State": s.status, "ExitCode": s.exit_code, "Names": s.name,
        "Networks": ops.network_of(ctx, s) if networks else "", "IPAddress": s.address or "",
        "Ports": ", ".join(s.ports) if s.status == "running" else ""}
    if size:  # its writable layer, and with its image's (Docker's "virtual")
        own, image = ops.sizes_of(ctx, s)
        row["Size"] = f"{human_size(own)} (virtual {human_size(own + image)})"
    return row


def rm_cmd(
    tctx: typer.Context,
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER...", autocompletion=complete.containers)],
    force: Annotated[bool, typer.Option("--force", "-f", help="Kill a running container first.")] = False,
    volumes: Annotated[bool, typer.Option("--volumes", "-v", help="Remove its anonymous volumes too.")] = False,
) -> None:
    """Remove containers and their root filesystems."""
    from ..errors import ContainerNotFound
    ctx = context_of(tctx)
    # -f: one that is not there is said, and is no failure (as Docker 20.10's, and rm -f's)
    each(containers, lambda key: ops.remove_container(ctx, key, force, volumes),
         harmless=(ContainerNotFound,) if force else ())


def _check_time(seconds: float | None) -> None:
    """-t: seconds, a number (nan and inf are not; negative: no SIGKILL)."""
    import math
    if seconds is not None and not math.isfinite(seconds):  # a flag that does not parse: 125, as Docker's
        raise typer.BadParameter(f'"{seconds}": expected seconds (negative: no SIGKILL)', param_hint="'--time'")


def stop_cmd(
    tctx: typer.Context,
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER...", autocompletion=complete.containers)],
    time: Annotated[float | None, typer.Option(
        "--time", "-t", help="Seconds before SIGKILL (default: its --stop-timeout, 10).")] = None,
    signal_name: Annotated[str | None, typer.Option(
        "--signal", "-s", help="Signal to send first (default: its stop signal, SIGTERM).")] = None,
) -> None:
    """Stop running containers: a signal (SIGTERM), then SIGKILL after a timeout."""
    from ..runtime.signals import parse
    _check_time(time)
    ctx, signum = context_of(tctx), None if signal_name is None else parse(signal_name)
    each(containers, lambda key: ops.stop_container(ctx, key, time, signum))


def kill_cmd(
    tctx: typer.Context,
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER...", autocompletion=complete.containers)],
    signal_name: Annotated[str, typer.Option("--signal", "-s", help="Signal to send.")] = "SIGKILL",
) -> None:
    """Send a signal (SIGKILL) to running containers."""
    from ..runtime.signals import parse
    ctx, signum = context_of(tctx), parse(signal_name)
    each(containers, lambda key: ops.kill_container(ctx, key, signum))


def wait_cmd(
    tctx: typer.Context,
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER...", autocompletion=complete.containers)],
    condition: Annotated[str, typer.Option("--condition", help="not-running (default), next-exit or removed.")]
    = "not-running",
) -> None:
    """Wait until containers stop; print their exit codes."""
    ctx = context_of(tctx)
    each(containers, lambda key: ops.wait_container(ctx, key, condition), lambda _, code: str(code))


def port_cmd(
    tctx: typer.Context,
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    private: Annotated[str | None, typer.Argument(metavar="[PRIVATE_PORT[/PROTO]]")] = None,
) -> None:
    """The host addresses a running container's ports are published on."""
    from ..errors import ContainerConflict, UsageError
    mappings = ops.ports_of(context_of(tctx), container)
    if private is None:
        for inner, host in mappings:
            line(f"{inner} -> {host}")
        return
    port, _, proto = private.partition("/")
    if not port.isdigit() or proto not in ("", "tcp", "udp", "sctp"):
        raise UsageError(f'invalid port "{private}": expected PORT[/tcp|udp|sctp]')
    wanted = f"{int(port)}/{proto or 'tcp'}"
    hosts = [host for inner, host in mappings if inner == wanted]
    if not hosts:
        raise ContainerConflict(f"No public port '{wanted}' published for {container}")
    for host in hosts:
        line(host)


def top_cmd(
    tctx: typer.Context,
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    ps_args: Annotated[list[str] | None, typer.Argument(metavar="[ps OPTIONS]")] = None,
) -> None:
    """A running container's processes, as the host's ps shows them (-ef unless given)."""
    for row in ops.top(context_of(tctx), container, list(ps_args or [])):
        line(row)


def logs_cmd(
    tctx: typer.Context,
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Follow until the container exits.")] = False,
    tail: Annotated[str, typer.Option("--tail", "-n", help="Lines from the end (all).")] = "all",
    timestamps: Annotated[bool, typer.Option("--timestamps", "-t", help="Show each line's time.")] = False,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only lines since a time (2026-01-02T15:04:05Z, Unix seconds) or for a while (10m).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only lines before a time, or so long ago.")] = None,
) -> None:
    """A container's output: its stdout to stdout, its stderr to stderr."""
    import time as clock

    from ..containers import logs
    from ..errors import UsageError
    if tail != "all" and not tail.isdigit():
        raise UsageError(f'invalid --tail "{tail}": expected a number or all')
    now = clock.time_ns()
    first = logs.parse_time(since, now) if since else ""
    end = logs.parse_time(until, now, "--until") if until else "~"  # "~" sorts after every stamp
    ctx = context_of(tctx)
    directory, _ = ops.logs_of(ctx, container)
    offset = logs.size(directory)
    entries = [e for e in logs.entries(directory) if first <= e.time < end]
    if tail != "all":
        entries = entries[len(entries) - int(tail):] if int(tail) else []
    for entry in entries:
        _show(entry, timestamps)
    if follow:
        for entry in logs.follow(directory, offset, lambda: ops.is_running(directory)):
            if first <= entry.time < end:
                _show(entry, timestamps)


def _show(entry: Entry, timestamps: bool) -> None:
    stream = sys.stdout if entry.stream == "stdout" else sys.stderr
    write(stream, (f"{entry.time} " if timestamps else "") + entry.text)


def exec_cmd(
    tctx: typer.Context,
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    command: Annotated[list[str], typer.Argument(metavar="COMMAND [ARG...]")],
    interactive: Annotated[bool, typer.Option("--interactive", "-i", help="Keep stdin open.")] = False,
    tty: Annotated[bool, typer.Option("--tty", "-t", help="Allocate a pseudo-terminal.")] = False,
    env: Annotated[list[str], typer.Option("--env", "-e", help="Set an environment variable.")] = [],  # noqa: B006
    user: Annotated[str | None, typer.Option("--user", "-u", help="User (name|uid[:group|gid]).")] = None,
    workdir: Annotated[str | None, typer.Option("--workdir", "-w", help="Working directory.")] = None,
    privileged: Annotated[bool, typer.Option("--privileged", help="All capabilities.")] = False,
    env_file: Annotated[list[str], typer.Option("--env-file", help="Read environment variables from a file.")]
    = [],  # noqa: B006 - typer reads the default, never mutates it
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Run it in the background (output dropped).")]
    = False,
) -> None:
    """Run a command in a running container; exits with its code (126/127 as run)."""
    from ..ops.making import read_env_files
    code = ops.exec_container(context_of(tctx), container, command, [*read_env_files(env_file), *env], user,
                              workdir, interactive, privileged, tty, detach)
    raise typer.Exit(code)


def inspect_cmd(
    tctx: typer.Context,
    names: Annotated[list[str], typer.Argument(metavar="CONTAINER|IMAGE...", autocompletion=complete.any_name)],
    format: Annotated[str | None, typer.Option("--format", "-f", help="json, or a template: {{.State.Status}}")]
    = None,
) -> None:
    """Containers and images as JSON, with Docker's field names."""
    from ..ops.inspect import as_json, inspect
    ctx = context_of(tctx)
    print_docs(names, lambda name: inspect(ctx, name), format, as_json)


def start_cmd(
    tctx: typer.Context,
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER...", autocompletion=complete.containers)],
    attach: Annotated[bool, typer.Option("--attach", "-a", help="Stay with it: its output, its exit code.")]
    = False,
    interactive: Annotated[bool, typer.Option("--interactive", "-i", help="Attached, with stdin (if run with -i).")]
    = False,
) -> None:
    """Start stopped containers again, with their flags and their files as they left them."""
    ctx = context_of(tctx)
    if attach or interactive:
        if len(containers) != 1:
            from ..errors import UsageError
            raise UsageError("start -a or -i takes one container")
        code = start_container(ctx, containers[0], True, err, interactive)
        raise typer.Exit(code or 0)

    def start(key: str) -> None:
        start_container(ctx, key, False, err)

    each(containers, start)


def restart_cmd(
    tctx: typer.Context,
    containers: Annotated[list[str], typer.Argument(metavar="CONTAINER...", autocompletion=complete.containers)],
    time: Annotated[float | None, typer.Option(
        "--time", "-t", help="Seconds before SIGKILL (default: its --stop-timeout, 10).")] = None,
) -> None:
    """Stop containers (if running) and start them again, in a monitor."""
    _check_time(time)
    ctx = context_of(tctx)

    def restart(key: str) -> None:
        ops.stop_container(ctx, key, time)
        start_container(ctx, key, False, err)

    each(containers, restart)
