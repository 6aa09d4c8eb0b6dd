"""system df: what the store's images, containers and volumes take, and what a prune could
give back, counted as Docker counts them (an image's layers shared with another counted once;
a container's writable layer; a volume's files)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import MiniRunError
from ..records import Record
from .context import Context

if TYPE_CHECKING:
    from ..containers.state import ContainerState


class Usage(Record):
    kind: str            # Images, Containers, Local Volumes, Build Cache
    total: int
    active: int
    size: int
    reclaimable: int


def disk_usage(ctx: Context) -> list[Usage]:
    from ..containers.state import list_all
    states = [state for _, state in list_all(ctx.root)]
    return [_images(ctx, {s.reference for s in states}), _containers(ctx, states), _volumes(ctx),
            Usage("Build Cache", 0, 0, 0, 0)]


def _images(ctx: Context, used: set[str]) -> Usage:
    """Each image (by ID) once; its layers' sizes (see ``image_size``), each layer once; the
    reclaimable part: layers no image in use has."""
    from ..oci import chain_ids, parse_config
    from .images import layer_sizes
    layers: dict[str, int] = {}
    active_layers: set[str] = set()
    ids: set[str] = set()
    active: set[str] = set()
    for record in ctx.images.records():
        try:
            config = parse_config(ctx.images.content.read(record.config), record.reference)
            manifest = ctx.images.manifest_of(record)
        except MiniRunError:
            continue
        ids.add(record.config)
        chains = chain_ids(list(config.diff_ids)) if config.diff_ids else [d.digest for d in manifest.layers]
        layers.update(zip(chains, layer_sizes(ctx, manifest, chains), strict=False))
        if record.reference in used:
            active.add(record.config)
            active_layers.update(chains)
    size = sum(layers.values())
    return Usage("Images", len(ids), len(active), size, size - sum(layers[c] for c in active_layers))


def _containers(ctx: Context, states: list[ContainerState]) -> Usage:
    """Their writable layers (overlay's upper directories); the stopped ones' reclaimable."""
    from .containers import writable_size
    size = reclaimable = running = 0
    for state in states:
        mine = writable_size(ctx, state.id)
        size += mine
        if state.status == "running":
            running += 1
        else:
            reclaimable += mine
    return Usage("Containers", len(states), running, size, reclaimable)


def _volumes(ctx: Context) -> Usage:
    from ..content.files import tree_size
    from .volumes import list_volumes
    rows = list_volumes(ctx)
    sizes = [tree_size(row.volume.data) for row in rows]
    unused = sum(size for size, row in zip(sizes, rows, strict=True) if not row.users)
    return Usage("Local Volumes", len(rows), sum(1 for row in rows if row.users), sum(sizes), unused)
