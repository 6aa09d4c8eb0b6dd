"""Garbage collection of snapshots: what no image and no container uses goes.

Called by ``ImageStore.remove`` under the store's GC lock, so no pull or unpack is running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..store import ImageRecord, ImageStore


def collect_snapshots(images: ImageStore, records: list[ImageRecord]) -> list[str]:
    """Remove the snapshots (of every driver) that neither ``records`` nor any container uses;
    returns their ChainIDs."""
    from ..rootfs import DRIVERS, Snapshotter, chains_in_use
    from ..runtime.container import list_all
    keep = chains_in_use(images, records)
    for _, state in list_all(images.root):
        keep.update(state.chains)  # a container's root filesystem stacks these
    removed: list[str] = []
    for driver in DRIVERS:
        if (images.root / "snapshots" / driver).is_dir():
            removed += Snapshotter(images.root, driver).remove_unused(keep)
    return removed
