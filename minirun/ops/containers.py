"""Container operations other than run: list, remove (with -f: kill first)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ContainerConflict
from .context import Context

if TYPE_CHECKING:
    from ..runtime.container import ContainerState


def list_containers(ctx: Context, every: bool) -> list[ContainerState]:
    """Newest first; only running ones unless ``every``."""
    from ..runtime.container import list_all
    return [s for _, s in list_all(ctx.root) if every or s.status == "running"]


def remove_container(ctx: Context, key: str, force: bool) -> None:
    """rm: a running container only with ``force`` (killed first, as Docker's rm -f)."""
    from ..runtime.cgroups import Cgroup, Limits
    from ..runtime.container import alive, find, refresh
    directory, state = find(ctx.root, key)
    if state.status == "running":
        if not force:
            raise ContainerConflict(f"cannot remove running container {state.id[:12]}: "
                                    "stop it first or use minirun rm -f")
        # Kill the container's process (only while its PID is still that process: never one
        # that has the PID now); the minirun waiting for it records the exit (137).
        for target, started in ((state.pid, state.pid_start), (state.monitor, state.monitor_start)):
            if target and alive(target, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(target, signal.SIGKILL)
                break
        deadline = time.monotonic() + 10
        while refresh(state).status == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
    # Its minirun removes the cgroup when the program exits; a minirun that was killed
    # could not, so rm does (empty now: the program died with its minirun).
    Cgroup(state.id, Limits(), None).remove()
    release(directory, state)


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
