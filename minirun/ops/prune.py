"""container prune, image prune and system prune as Docker's: stopped containers, dangling
(or with ``all_images``, unused) images, unused networks and volumes, then the store's own
garbage (blobs and snapshots no image uses, partial downloads, damaged entries). Filters:
``until=TIME`` (created before) and ``label=KEY[=VALUE]`` / ``label!=...``."""

from __future__ import annotations

import time

from ..containers.state import parse_stamp
from ..errors import ContainerError, ImageNotKnown, StoreError, UsageError
from ..records import Record
from ..spec.flags import label_matches
from .context import Context
from .images import Removed

KEYS = ("until", "label", "label!")


class Pruned(Record):
    containers: list[str]             # IDs
    networks: list[str]               # names
    volumes: list[str]                # names
    untagged: list[str]               # references
    deleted: list[str]                # digests: blobs, snapshots
    freed: int                        # bytes


class Filters(Record):
    until: float | None               # Unix seconds
    labels: list[str]                 # KEY or KEY=VALUE: each must hold
    not_labels: list[str]             # none may hold

    def keeps(self, created: str, labels: dict[str, str]) -> bool:
        """Whether a thing created at ``created`` with ``labels`` is to be pruned."""
        if self.until is not None and _seconds(created) >= self.until:
            return False
        if not all(label_matches(labels, want) for want in self.labels):
            return False
        return not any(label_matches(labels, want) for want in self.not_labels)


def parse_filters(given: list[str]) -> Filters:
    """--filter until=TIME|label=KEY[=VALUE]|label!=KEY[=VALUE], as Docker's prune takes them."""
    from ..containers.logs import parse_time
    until: float | None = None
    labels: list[str] = []
    not_labels: list[str] = []
    for text in given:
        key, eq, value = text.partition("=")
        if not eq or key not in KEYS:
            raise UsageError(f'invalid filter "{text}": prune takes until=, label= and label!=')
        if key == "until":
            until = _seconds(parse_time(value, time.time_ns(), "until filter"))
        else:
            (labels if key == "label" else not_labels).append(value)
    return Filters(until, labels, not_labels)


def _seconds(stamp: str) -> float:
    when = parse_stamp(stamp)
    return 0.0 if when is None else when.timestamp()


def prune_containers(ctx: Context, filters: Filters) -> tuple[list[str], int]:
    """Every container that is not running (nor waiting for its restart) and passes the
    filters, removed as ``rm`` removes it; one started or removed meanwhile is left to that.
    Returns their IDs and the bytes their writable layers held."""
    from .containers import labels_of, list_containers, remove_container, writable_size
    states, _ = list_containers(ctx, every=True)
    removed: list[str] = []
    freed = 0
    for state in states:
        if state.status == "running" or state.waiting_to_restart():
            continue
        if not filters.keeps(state.created, labels_of(ctx, state)):
            continue
        size = writable_size(ctx, state.id)
        try:
            remove_container(ctx, state.id, force=False)
        except (ContainerError, StoreError):
            continue
        removed.append(state.id)
        freed += size
    return removed, freed


def unused_images(ctx: Context, all_images: bool, filters: Filters) -> list[str]:
    """The references image prune removes: dangling ones (kept by ID alone, Docker's <none>),
    or with ``all_images`` every one no container uses."""
    from ..containers.state import list_all
    from ..oci import parse_config
    used = {state.reference for _, state in list_all(ctx.root)}
    out = []
    for record in ctx.images.records():
        if record.reference in used or not (all_images or record.untagged):
            continue
        try:
            config = parse_config(ctx.images.content.read(record.config), record.reference)
        except (StoreError, ValueError):
            continue
        if filters.keeps(config.created or "", dict(config.run_config.get("Labels") or {})):
            out.append(record.reference)
    return out


def prune_images(ctx: Context, all_images: bool, filters: Filters, caches: bool = False) -> Removed:
    """image prune: the unused images' references untagged, then what nothing uses deleted
    (and damaged entries and containers: ``images.prune``; ``caches``: the compiled seccomp
    programs too, as system prune empties them)."""
    from .images import prune as collect
    from .images import remove_images
    untagged: list[str] = []
    deleted: list[str] = []
    freed = 0
    for reference in unused_images(ctx, all_images, filters):
        try:
            removed = remove_images(ctx, [reference], force=False)
        except (ImageNotKnown, StoreError):
            continue  # removed or taken into use meanwhile
        untagged += removed.untagged
        deleted += removed.deleted
        freed += removed.freed
    rest = collect(ctx, caches)
    return Removed(untagged + rest.untagged, deleted + rest.deleted, freed + rest.freed, rest.containers)


def prune_system(ctx: Context, all_images: bool, volumes: bool, filters: Filters) -> Pruned:
    """system prune: stopped containers, unused networks, (volumes,) unused images, garbage."""
    from .networks import prune_networks
    containers, freed = prune_containers(ctx, filters)
    networks = prune_networks(ctx)  # before the images' GC: then the bridges and the table go too
    names: list[str] = []
    if volumes:
        from .volumes import prune_volumes
        names, more = prune_volumes(ctx)
        freed += more
    images = prune_images(ctx, all_images, filters, caches=True)
    return Pruned(containers + images.containers, networks, names, images.untagged, images.deleted,
                  freed + images.freed)
