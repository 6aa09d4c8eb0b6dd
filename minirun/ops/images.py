"""Image operations: pull, remove (rmi), prune. They report through return values and the
pull's events; the CLI prints."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ImageNotKnown, ReferenceFormatError, StoreError
from .context import Context, wanted_platform
from .gc import collect_snapshots, remove_damaged_containers

if TYPE_CHECKING:
    from ..pull import Emit, PullResult
    from ..reference import Reference
    from ..store import ImageRecord


def pull_image(ctx: Context, image: str, platform: str | None, emit: Emit) -> tuple[Reference, PullResult]:
    """Pull ``image`` for ``platform`` (default: DOCKER_DEFAULT_PLATFORM, else this host's)."""
    from .. import credentials, reference
    from ..pull import pull
    ref = reference.parse(image)
    creds = credentials.lookup(ref.domain)
    return ref, pull(ref, ctx.images, ctx.registry_options(), wanted_platform(platform), emit, creds,
                     ctx.snapshots)


class Removed(NamedTuple):
    untagged: list[str]      # references
    deleted: list[str]       # digests of the blobs deleted
    freed: int               # bytes
    containers: list[str] = []  # noqa: RUF012 - never mutated; IDs of damaged containers removed


def image_targets(records: list[ImageRecord], names: list[str], damaged: Collection[str] = ()) -> list[str]:
    """The references ``names`` denote: a reference, or an image ID (or a unique prefix of
    one, as Docker allows) naming every tag of that image; ``damaged`` entries by reference."""
    from .. import reference
    targets: list[str] = []
    for name in names:
        hexid = name.removeprefix("sha256:")
        is_id = len(hexid) >= 4 and all(c in "0123456789abcdef" for c in hexid)
        matches = [r.reference for r in records if is_id and r.config.split(":", 1)[1].startswith(hexid)]
        if not matches:
            try:
                key = str(reference.parse(name))
            except ReferenceFormatError:
                key = ""
            matches = [r.reference for r in records if r.reference == key]
            matches += [k for k in damaged if key in (k, name)]
        if not matches:
            raise ImageNotKnown(f"No such image: {name}")
        targets += [m for m in matches if m not in targets]
    return targets


def remove_images(ctx: Context, names: list[str], force: bool) -> Removed:
    """rmi: untag, then delete the blobs and snapshots nothing else uses. An image that a
    container uses is kept unless ``force``."""
    from ..runtime.container import list_all
    store = ctx.images
    targets = image_targets(store.records(), names, store.damaged())
    if not force:
        for _, state in list_all(store.root):
            if state.reference in targets:
                raise StoreError(
                    f'conflict: unable to remove image "{state.image}": container {state.id[:12]} '
                    f"({state.status}) uses it; remove the container first (minirun rm) or use -f")
    return Removed(*store.remove(targets, lambda records: collect_snapshots(store, records)))


def prune(ctx: Context) -> Removed:
    """Blobs, snapshots and partial downloads that no image references; damaged image entries,
    blobs (a damaged index, manifest or config is found by reading it) and containers."""
    from ..runtime import network
    store = ctx.images
    containers = remove_damaged_containers(ctx.root)
    network.remove_unused()  # the bridge and minirun's nftables table, when no container has a lease
    return Removed(*store.remove([], lambda records: collect_snapshots(store, records), drop_damaged=True),
                   containers)
