"""system prune: the store's housekeeping."""

from __future__ import annotations

import typer

from ..ops import images as ops
from .options import context_of
from .output import human_size, line


def prune_cmd(tctx: typer.Context) -> None:
    """Remove blobs, snapshots and partial downloads that no image references, and damaged
    image entries and containers."""
    removed = ops.prune(context_of(tctx))
    for cid in removed.containers:
        line(f"Deleted container: {cid}")
    for digest in removed.deleted:
        line(f"Deleted: {digest}")
    line(f"Total reclaimed space: {human_size(removed.freed)}")
