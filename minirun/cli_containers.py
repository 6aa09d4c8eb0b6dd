"""The container commands of the CLI: ``run``, ``ps``, ``rm``.

Registered on ``cli.app``; like ``cli.py``, the only other place that prints. Exit
codes for ``run`` follow Docker: the program's own, or 125/126/127 (see cli.py).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer

from .cli import (
    InsecureOpt,
    MirrorOpt,
    PlatformOpt,
    ProgramExited,
    _check_format,
    _err,
    _since,
    _snapshotter,
    _store,
    app,
    do_pull,
    print_rows,
    wanted_platform,
)
from .errors import UsageError

# -- run ----------------------------------------------------------------------

@app.command("run", context_settings={"allow_interspersed_args": False, "help_option_names": ["--help"]})
def run_cmd(
    image: Annotated[str, typer.Argument(metavar="IMAGE")],
    command: Annotated[list[str] | None, typer.Argument(metavar="[COMMAND] [ARG...]")] = None,
    rm: Annotated[bool, typer.Option("--rm", help="Remove the container when it exits.")] = False,
    name: Annotated[str | None, typer.Option("--name")] = None,
    env: Annotated[list[str], typer.Option("--env", "-e", metavar="K=V|K")] = [],  # noqa: B006
    env_file: Annotated[list[str], typer.Option("--env-file", metavar="FILE")] = [],  # noqa: B006
    workdir: Annotated[str | None, typer.Option("--workdir", "-w")] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", metavar="NAME|UID[:GROUP|GID]")] = None,
    entrypoint: Annotated[str | None, typer.Option("--entrypoint")] = None,
    hostname: Annotated[str | None, typer.Option("--hostname", "-h")] = None,
    interactive: Annotated[bool, typer.Option("--interactive", "-i", help="Keep stdin open.")] = False,
    tty: Annotated[bool, typer.Option("--tty", "-t", help="Allocate a pseudo-terminal.")] = False,
    network: Annotated[str, typer.Option("--network", metavar="none|host")] = "none",
    volume: Annotated[list[str], typer.Option("--volume", "-v", metavar="/HOST:/CONTAINER[:ro]")] = [],  # noqa: B006
    tmpfs: Annotated[list[str], typer.Option("--tmpfs", metavar="/PATH[:OPTIONS]")] = [],  # noqa: B006
    read_only: Annotated[bool, typer.Option("--read-only", help="Mount the root filesystem read-only.")] = False,
    privileged: Annotated[bool, typer.Option("--privileged", help="All capabilities, no masked paths.")] = False,
    cap_add: Annotated[list[str], typer.Option("--cap-add", metavar="CAP")] = [],  # noqa: B006
    cap_drop: Annotated[list[str], typer.Option("--cap-drop", metavar="CAP")] = [],  # noqa: B006
    memory: Annotated[str | None, typer.Option("--memory", "-m", metavar="SIZE", help="e.g. 512m")] = None,
    cpus: Annotated[str | None, typer.Option("--cpus", metavar="N", help="e.g. 0.5")] = None,
    pids_limit: Annotated[int | None, typer.Option("--pids-limit", metavar="N")] = None,
    init: Annotated[bool, typer.Option("--init", help="Run a reaper as PID 1 for the program.")] = False,
    platform: PlatformOpt = None,
    registry_mirror: MirrorOpt = [],  # noqa: B006
    insecure_registry: InsecureOpt = [],  # noqa: B006
) -> None:
    """Run a command in a new container (pulling the image if it is not here)."""
    from . import reference
    from .oci import parse_config
    from .rootfs import ensure_image, release_container
    from .runtime import caps, cgroups, container, process, spec
    from .store import now_iso

    if os.geteuid() != 0:
        raise UsageError("run needs root (namespaces, mounts): use sudo minirun run ...")
    if network not in ("none", "host"):
        raise UsageError(f'invalid --network "{network}": expected none or host (bridge comes later)')
    ref = reference.parse(image)
    images = _store()
    record = images.get(str(ref))
    if record is None or not record.is_for(wanted_platform(platform)):
        _err_plain(f"Unable to find image '{ref.familiar()}' locally")
        do_pull(image, platform, "auto", registry_mirror, insecure_registry, sys.stderr)
        record = images.get(str(ref))
        assert record is not None
    snap = _snapshotter(images)
    chains = ensure_image(images, snap, record)
    config = parse_config(images.content.read(record.config), record.reference).raw.get("config") or {}

    env_lines: list[str] = []
    for path in env_file:
        try:
            text = open(path).read()
        except OSError as e:
            raise UsageError(f"reading env file {path}: {e.strerror}") from None
        env_lines += spec.parse_env_file(text, path, os.environ)
    argv = spec.command(config, list(command or []), entrypoint)
    binds = tuple(spec.parse_volume(v) for v in volume)
    tmpfs_mounts = tuple(spec.parse_tmpfs(t) for t in tmpfs)
    last_cap = int(open("/proc/sys/kernel/cap_last_cap").read())
    capabilities = caps.capability_set(privileged, cap_add, cap_drop, last_cap)
    limits = cgroups.parse_limits(memory, cpus, pids_limit)
    state, directory, files = container.create(images.root, image, list(argv), name, hostname,
                                               record.reference, chains)
    host = container.hostname_of(directory)
    run_spec = spec.RunSpec(
        argv=argv, env=spec.environment(config, env_lines + list(env), os.environ, host),
        cwd=workdir or config.get("WorkingDir") or "/", user=user if user is not None else config.get("User") or "",
        hostname=host, interactive=interactive, binds=binds, tmpfs=tmpfs_mounts,
        read_only=read_only, privileged=privileged, capabilities=capabilities, init=init, tty=tty)
    mounts = snap.prepare(chains, directory)
    code = 125

    def started(pid: int) -> None:
        state.status, state.pid, state.monitor = "running", pid, os.getpid()
        container.save(directory, state)

    try:
        code = process.start(run_spec, mounts, mounts[-1].target, files, network,
                             cgroups.Cgroup(state.id, limits), started)
    except process.ContainerStartError as e:
        code = e.code
        _err(str(e))
    finally:
        state.status, state.exit_code, state.pid = "exited", code, None
        state.finished = now_iso()
        if rm:
            release_container(directory)
        else:
            container.save(directory, state)
    raise ProgramExited(code)


def _err_plain(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


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
        Cgroup(state.id, Limits()).remove()
        release_container(directory)
        typer.echo(key)
