"""Container operations other than run: list, remove (with -f: kill first)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ContainerConflict, ContainerNotFound, StoreError
from .context import Context

if TYPE_CHECKING:
    from ..runtime.cgroups import Cgroup
    from ..runtime.container import ContainerState, Damaged


def list_containers(ctx: Context, every: bool) -> tuple[list[ContainerState], list[Damaged]]:
    """Newest first; only running ones unless ``every``. Apart: those whose state is damaged."""
    from ..runtime.container import scan
    sound, damaged = scan(ctx.root)
    return [s for _, s in sound if every or s.status == "running"], damaged


def remove_container(ctx: Context, key: str, force: bool) -> None:
    """rm: a running container only with ``force`` (killed first, as Docker's rm -f). Two rm
    of one container are one after the other: the second finds it gone."""
    from ..runtime.cgroups import Cgroup, Limits
    from ..runtime.container import find, load
    from ..store import file_lock
    directory, state = find(ctx.root, key)
    try:
        with file_lock(directory, what=f"another rm of container {state.id[:12]}", directory=True):
            if not (directory / "state.json").exists():
                raise ContainerNotFound(f"No such container: {key}")
            with contextlib.suppress(StoreError):
                state = load(directory)  # as it is now (a damaged one stays as found)
            cgroup = Cgroup(state.id, Limits(), None)
            _stop(state, cgroup, force)
            # Its minirun removes the cgroup when the program exits; a minirun that was killed
            # could not, so rm does (empty now: the program died with its minirun).
            cgroup.remove()
            if state.network == "bridge":  # its minirun gives it back; a killed one could not
                from ..runtime import network
                network.release(state.id)
            release(directory, state)
    except StoreError as e:
        if not directory.exists():
            raise ContainerNotFound(f"No such container: {key}") from None  # removed meanwhile
        raise e from None


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
