"""Garbage collection of snapshots: what no image and no container uses goes.

Called by ``ImageStore.remove`` under the store's GC lock, so no pull or unpack is running.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..records import TYPE_CHECKING

if TYPE_CHECKING:
    from ..content.images import ImageRecord, ImageStore


def collect_snapshots(images: ImageStore, records: list[ImageRecord]) -> tuple[list[str], int]:
    """Remove the snapshots (of every driver) that neither ``records`` nor any container uses;
    returns their ChainIDs and the bytes freed."""
    from ..containers.state import scan
    from ..snapshots.rootfs import DRIVERS, Snapshotter, chains_in_use
    keep = chains_in_use(images, records)
    containers, damaged = scan(images.root)
    if damaged:
        return [], 0  # a container whose state cannot be read may stack any snapshot
    for _, state in containers:
        keep.update(state.chains)  # a container's root filesystem stacks these
    removed: list[str] = []
    freed = 0
    for driver in DRIVERS:
        if (images.root / "snapshots" / driver).is_dir():
            chains, size = Snapshotter(images.root, driver).remove_unused(keep)
            removed += chains
            freed += size
    return removed, freed


def remove_damaged_containers(root: Path) -> list[str]:
    """Containers whose state cannot be read, and directories left without one (a kill in the
    middle of a create or rm), that have no process left in their cgroup: nothing can use
    them. Returns their IDs; a removal that fails is left for later."""
    from ..containers.state import scan
    from ..content.files import file_lock
    from ..errors import StoreError
    from ..runtime.cgroups import Cgroup, Limits, parent_from
    from ..snapshots.rootfs import release_container
    removed = []
    base = root / "containers"
    with file_lock(root / "containers.lock"):  # no container is being created meanwhile
        leftovers = [d for d in base.iterdir() if len(d.name) == 64 and not (d / "state.json").exists()] \
            if base.is_dir() else []
        for directory in [d.directory for d in scan(root)[1]] + leftovers:
            cgroup = Cgroup(directory.name, Limits(), None, parent_from(os.environ))  # its state is damaged
            if cgroup.processes():
                continue
            cgroup.remove()
            with contextlib.suppress(StoreError):
                release_container(directory)
                removed.append(directory.name)
    # The exit codes --rm containers left for their waiters: a wait reads one within moments
    import time

    from ..containers.state import ENDED, sweep_exit_codes
    sweep_exit_codes(base / ENDED, time.time() - 60)
    return removed
