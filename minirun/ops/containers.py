"""Container operations other than run: list, remove (with -f: kill first)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ContainerConflict, ContainerNotFound, StoreError, UsageError
from .context import Context

if TYPE_CHECKING:
    from ..runtime.cgroups import Cgroup
    from ..runtime.container import ContainerState, Damaged


def list_containers(ctx: Context, every: bool) -> tuple[list[ContainerState], list[Damaged]]:
    """Newest first; only running ones unless ``every``. Apart: those whose state is damaged."""
    from ..runtime.container import scan
    sound, damaged = scan(ctx.root)
    return [s for _, s in sound if every or s.status == "running"], damaged


@contextlib.contextmanager
def changing(directory: Path, key: str) -> Iterator[None]:
    """One command at a time changes a container (rm, stop, start until it runs): an flock on
    its directory, which the kernel drops if the command dies. A container removed while it
    was waited for is not found."""
    from ..store import file_lock
    try:
        with file_lock(directory, what=f"another command on container {key}", directory=True):
            if not (directory / "state.json").exists():
                raise ContainerNotFound(f"No such container: {key}")
            yield
    except StoreError:
        if not directory.exists():
            raise ContainerNotFound(f"No such container: {key}") from None  # removed meanwhile
        raise


def remove_container(ctx: Context, key: str, force: bool) -> None:
    """rm: a running container only with ``force`` (killed first, as Docker's rm -f). Two rm
    of one container are one after the other: the second finds it gone."""
    from ..runtime.cgroups import Cgroup, Limits
    from ..runtime.container import find, load
    directory, state = find(ctx.root, key)
    with changing(directory, key):
        with contextlib.suppress(StoreError):
            state = load(directory)  # as it is now (a damaged one stays as found)
        cgroup = Cgroup(state.id, Limits(), None, state.cgroup_parent)
        _stop(state, cgroup, force)
        # Its minirun removes the cgroup when the program exits; a minirun that was killed
        # could not, so rm does (empty now: the program died with its minirun).
        cgroup.remove()
        if state.network == "bridge":  # its minirun gives it back; a killed one could not
            from ..runtime import network
            network.release(state.id)
        release(directory, state)


def _stop(state: ContainerState, cgroup: Cgroup, force: bool) -> None:
    """Kill a running container (``force``): its process, or whatever its cgroup still holds
    when its state cannot tell (damaged). Only a PID that is still that process is killed."""
    from ..runtime.container import alive, refresh
    state = refresh(state)
    running = state.status == "running"
    leftovers = [] if running else cgroup.processes()
    if not (running or leftovers):
        return
    if not force:
        raise ContainerConflict(f"cannot remove running container {state.id[:12]}: "
                                "stop it first or use minirun rm -f")
    targets = [(state.pid, state.pid_start), (state.monitor, state.monitor_start)] if running \
        else [(pid, None) for pid in leftovers]
    for target, started in targets:
        if target and alive(target, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
            if running:
                break  # the container's process: its minirun records the exit (137)
    deadline = time.monotonic() + 10
    while refresh(state).status == "running" and time.monotonic() < deadline:
        if not alive(state.pid, state.pid_start) and time.monotonic() > deadline - 9:
            break  # dead, but its minirun does not record it (stopped, SIGSTOP): not waited for
        time.sleep(0.05)


def release(directory: Path, state: ContainerState) -> None:
    """Remove it; a removal that failed part way leaves it listed as dead (best effort: the
    store may be read-only) and raises."""
    from ..errors import StoreError
    from ..rootfs import release_container
    from ..runtime.container import save
    try:
        release_container(directory)
    except StoreError:
        with contextlib.suppress(StoreError, OSError):
            save(directory, state.dead())
        raise


def _current(ctx: Context, key: str) -> tuple[Path, ContainerState]:
    """The container as it is now (its state read again, a dead monitor seen)."""
    from ..runtime.container import find
    return find(ctx.root, key)


def is_running(directory: Path) -> bool:
    from ..runtime.container import load, refresh
    try:
        return refresh(load(directory)).status == "running"
    except StoreError:
        return False  # removed meanwhile


def kill_container(ctx: Context, key: str, signum: int) -> None:
    """kill: a signal to the container's PID 1 (only while its PID is still that process)."""
    from ..runtime.container import alive
    _, state = _current(ctx, key)
    if state.status != "running" or not alive(state.pid, state.pid_start):
        raise ContainerConflict(f"cannot kill container {key}: it is not running")
    if state.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signum)


def stop_container(ctx: Context, key: str, timeout: float | None = None, signum: int | None = None) -> None:
    """stop: ``signum`` (None: its stop signal, SIGTERM unless the image or --stop-signal said
    another), then SIGKILL after ``timeout`` seconds (None: its stop timeout, 10 unless said;
    negative: no SIGKILL); returns once its monitor has recorded the exit. A stopped container
    is left as it is (as Docker); an rm -f meanwhile waits for the stop."""
    from ..runtime.signals import parse
    directory, state = _current(ctx, key)
    if state.status != "running":
        return
    if signum is None:
        try:
            signum = parse(state.stop_signal)
        except UsageError:  # checked when it was run: a damaged state
            signum = signal.SIGTERM
    seconds = float(state.stop_timeout) if timeout is None else timeout
    with changing(directory, key):
        _stop_running(ctx, key, directory, seconds if seconds >= 0 else float("inf"), signum)


def _stop_running(ctx: Context, key: str, directory: Path, timeout: float, signum: int) -> None:
    for sig, seconds in ((signum, timeout), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ContainerConflict):
            kill_container(ctx, key, sig)
        deadline = time.monotonic() + seconds
        while is_running(directory) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not is_running(directory):
            return


def wait_container(ctx: Context, key: str) -> int:
    """wait: until the container is no longer running; its exit code."""
    from ..runtime.container import load, refresh
    directory, state = _current(ctx, key)
    while is_running(directory):
        time.sleep(0.05)
    try:
        state = refresh(load(directory))
    except StoreError:
        raise ContainerNotFound(f"No such container: {key} (removed while waited for)") from None
    return state.exit_code if state.exit_code is not None else -1


def logs_of(ctx: Context, key: str) -> tuple[Path, ContainerState]:
    """Where the container's log is; one run with --log-driver none says so (as Docker)."""
    from ..runtime.container import load_run_args
    from ..runtime.logs import log_path
    directory, state = _current(ctx, key)
    if not log_path(directory).exists():
        try:
            driver = load_run_args(directory).get("log_driver")
        except StoreError:
            driver = None
        if driver == "none":
            raise ContainerConflict(f"container {key}: configured logging driver does not support reading "
                                    "(--log-driver none)")
        raise ContainerConflict(f"container {key} has no log")
    return directory, state


def exec_container(ctx: Context, key: str, argv: list[str], env: list[str], user: str | None,
                   workdir: str | None, interactive: bool, privileged: bool, tty: bool = False) -> int:
    """exec: ``argv`` in the running container, with its environment (and ``env``), working
    directory, user and capabilities (all with ``privileged``), on a terminal of its own with
    ``tty``; its exit status."""
    from ..runtime import caps, spec
    from ..runtime.cgroups import Cgroup, Limits
    from ..runtime.container import alive, load_filter
    from ..runtime.execute import ExecSpec, exec_in
    directory, state = _current(ctx, key)
    if state.status != "running" or not state.pid or not alive(state.pid, state.pid_start):
        raise ContainerConflict(f"container {key} is not running")
    program = load_filter(directory) if state.seccomp else b""
    if workdir is not None and not workdir.startswith("/"):
        raise UsageError(f'invalid -w "{workdir}": the working directory must be an absolute path')
    capabilities = caps.capability_set(True, (), (), caps.last_cap()) if privileged else frozenset(state.capabilities)
    merged = spec.environment({"Env": state.env}, env, os.environ, state.hostname)
    return exec_in(state.pid, Cgroup(state.id, Limits(), None, state.cgroup_parent),
                   ExecSpec(tuple(argv), merged, workdir or state.workdir,
                            user if user is not None else state.user, capabilities, interactive, tty, program,
                            state.no_new_privileges, tuple((r, s, h) for r, s, h in state.rlimits)),
                   still_running=lambda: alive(state.pid, state.pid_start))

