"""Image operations: pull, remove (rmi), prune. They report through return values and the
pull's events; the CLI prints."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Sequence

from ..errors import ImageNotKnown, ReferenceFormatError, StoreError
from ..records import TYPE_CHECKING, Record
from .context import Context, platform_mismatch, wanted_platform
from .gc import collect_snapshots, remove_damaged_containers

if TYPE_CHECKING:
    from ..content.images import ImageRecord
    from ..oci import Manifest
    from ..pull import Emit, PullResult
    from ..remote.reference import Reference


def pull_image(ctx: Context, image: str, platform: str | None, emit: Emit) -> tuple[Reference, PullResult]:
    """Pull ``image`` for ``platform`` (default: DOCKER_DEFAULT_PLATFORM, else this host's)."""
    from ..pull import pull
    from ..remote import credentials, reference
    ref = reference.parse(image)
    creds = credentials.lookup(ref.domain)
    result = pull(ref, ctx.images, ctx.registry_options(), wanted_platform(platform), emit, creds, ctx.snapshots)
    from ..containers import events
    events.record(ctx.root, "image", "pull", ref.familiar(), {"name": ref.familiar()})
    mismatch = platform_mismatch(str(ref), result.record, platform)
    if mismatch is not None:  # as Docker: pulled, and said (run refuses to run it)
        from .. import notices
        notices.say(f"WARNING: {mismatch}")
    return ref, result


def explain_reference(text: str, ref: Reference) -> None:
    """--explain: the reference as typed and as normalised, and why."""
    from .. import trace
    from ..remote import reference
    if trace.active():
        reasons = reference.normalisation(text, ref)
        trace.event("reference", "normalised", f"{text} -> {ref}" + (f" ({'; '.join(reasons)})" if reasons else ""),
                    typed=text, reference=str(ref), reasons=reasons)


class Removed(Record):
    untagged: list[str]      # references
    deleted: list[str]       # digests of the blobs deleted
    freed: int               # bytes
    containers: list[str] = []  # noqa: RUF012 - never mutated; IDs of damaged containers removed


def by_name(records: list[ImageRecord], name: str) -> list[ImageRecord]:
    from ..remote import reference
    try:
        key = str(reference.parse(name))
    except ReferenceFormatError:
        return []
    return [r for r in records if r.reference == key]


def by_id(records: list[ImageRecord], name: str) -> list[ImageRecord]:
    """The records of the image whose ID (``sha256:`` or not) or unique prefix of one, at least
    4 digits, is ``name``: each name of that image."""
    hexid = name.removeprefix("sha256:")
    if len(hexid) < 4 or not all(c in "0123456789abcdef" for c in hexid):
        return []
    hits = [r for r in records if r.config[7:].startswith(hexid)]
    if len({r.config for r in hits}) > 1:
        raise ImageNotKnown(f"{name}: ambiguous image ID prefix: it matches {len({r.config for r in hits})} images")
    return hits


def matching(records: list[ImageRecord], name: str) -> list[ImageRecord]:
    """The records ``name`` denotes, as Docker's daemon looks an image up: a reference first,
    else an image ID. Empty when nothing matches."""
    return by_name(records, name) or by_id(records, name)


def image_targets(records: list[ImageRecord], names: list[str], damaged: Collection[str] = (),
                  filed: Callable[[str], bool] = lambda _: False) -> list[str]:
    """The references ``names`` denote (see ``matching``); ``damaged`` entries by reference,
    and a reference ``filed`` says has a record, though one too damaged to name it."""
    from ..remote import reference
    targets: list[str] = []
    for name in names:
        matches = [r.reference for r in matching(records, name)]
        if not matches:
            try:
                key = str(reference.parse(name))
            except ReferenceFormatError:
                key = ""
            matches = [k for k in damaged if key in (k, name)] or ([key] if key and filed(key) else [])
        if not matches:
            raise ImageNotKnown(f"No such image: {name}")
        targets += [m for m in matches if m not in targets]
    return targets


def remove_images(ctx: Context, names: list[str], force: bool) -> Removed:
    """rmi: untag, then delete the blobs and snapshots nothing else uses. An image that a
    container uses is kept unless ``force``."""
    from ..containers.state import list_all
    store = ctx.images
    targets = image_targets(store.records(), names, store.damaged(), lambda key: store.path_of(key).exists())
    if not force:
        for _, state in list_all(store.root):
            if state.reference in targets:
                raise StoreError(
                    f'conflict: unable to remove image "{state.image}": container {state.id[:12]} '
                    f"({state.status}) uses it; remove the container first (minirun rm) or use -f")
    return Removed(*store.remove(targets, lambda records: collect_snapshots(store, records)))


def prune(ctx: Context, caches: bool = True) -> Removed:
    """Blobs, snapshots and partial downloads that no image references; damaged image entries,
    blobs (a damaged index, manifest or config is found by reading it) and containers; with
    ``caches``, the compiled seccomp programs (made again when needed)."""
    from ..runtime import seccomp_bpf
    from ..runtime.net import network
    store = ctx.images
    containers = remove_damaged_containers(ctx.root)
    network.remove_unused()  # the bridge and minirun's nftables table, when no container has a lease
    untagged, deleted, freed = store.remove([], lambda records: collect_snapshots(store, records), drop_damaged=True)
    return Removed(untagged, deleted, freed + (seccomp_bpf.prune_cache(ctx.root) if caches else 0), containers)


def tag_image(ctx: Context, source: str, target: str) -> Reference:
    """tag: ``target`` names the image ``source`` names (by reference or ID), as Docker's tag;
    a name ``target`` had before now names this image."""
    from ..content.files import now_iso
    from ..remote import reference
    ref = reference.parse(target)
    if ref.digest:
        raise ReferenceFormatError(f'tagging {source} as "{target}": refusing to create a tag with a digest reference')
    found = matching(ctx.images.records(), source)
    if not found:
        raise ImageNotKnown(f"No such image: {source}")
    record = found[0]
    ctx.images.put(record._replace(reference=str(ref), pulled=now_iso()))
    from ..containers import events
    events.record(ctx.root, "image", "tag", record.config, {"name": ref.familiar()})
    return ref


def push_targets(ctx: Context, name: str, all_tags: bool) -> list[Reference]:
    """What ``push NAME`` pushes: NAME (``:latest`` where it has no tag), or with ``all_tags``
    every tag of NAME's repository held here (Docker's -a)."""
    from ..remote import reference
    ref = reference.parse(name)
    if ref.digest:
        raise ReferenceFormatError(f'pushing "{name}": a digest reference cannot be pushed (push a tag)')
    if not all_tags:
        return [ref]
    if not ref.tag_defaulted:
        raise ReferenceFormatError(f'pushing "{name}": a tag cannot be used with --all-tags/-a')
    tags = []
    for record in ctx.images.records():
        with contextlib.suppress(ReferenceFormatError):
            other = reference.parse(record.reference)
            if (other.domain, other.path) == (ref.domain, ref.path) and other.tag and not other.digest:
                tags.append(other)
    if not tags:
        raise ImageNotKnown(f"An image does not exist locally with the tag: {ref.familiar_name}")
    return sorted(tags, key=lambda r: r.tag or "")


def push_image(ctx: Context, ref: Reference, emit: Emit) -> None:
    """Push one tag of an image held here, with the credentials ``login`` stored."""
    from ..push import push
    from ..remote import credentials
    push(ref, ctx.images, ctx.registry_options(), emit, credentials.lookup(ref.domain))
    from ..containers import events
    events.record(ctx.root, "image", "push", ref.familiar(), {"name": ref.familiar()})


def image_size(ctx: Context, manifest: Manifest, diff_ids: Sequence[str]) -> int:
    """Docker's image size (images SIZE, inspect .Size): its layers' files once unpacked (as
    root); else, with nothing unpacked to measure, what its compressed layers take."""
    from ..oci import chain_ids
    if ctx.snapshots is not None and diff_ids:
        size = ctx.snapshots.unpacked_size(chain_ids(list(diff_ids)))
        if size is not None:
            return size
    return sum(layer.size for layer in manifest.layers)


def layer_sizes(ctx: Context, manifest: Manifest, chains: Sequence[str]) -> list[int]:
    """Each layer's size (history, system df): its files as its snapshot measured them (see
    ``Snapshotter.layer_size``), else what its compressed blob takes."""
    measured = [ctx.snapshots.layer_size(c) if ctx.snapshots else None for c in chains]
    return [size if size is not None else layer.size for size, layer in zip(measured, manifest.layers, strict=False)]


class Step(Record):
    """One entry of an image's history, as docker history lists it."""
    image_id: str        # the image's ID on its newest step, else "<missing>"
    created: str
    created_by: str
    size: int
    comment: str


def history(ctx: Context, name: str) -> list[Step]:
    """The image's build steps, newest first; each step that made a layer has its size."""
    from ..oci import chain_ids, parse_config
    found = matching(ctx.images.records(), name)
    if not found:
        raise ImageNotKnown(f"No such image: {name}")
    record = found[0]
    config = parse_config(ctx.images.content.read(record.config), record.reference)
    manifest = ctx.images.manifest_of(record)
    sizes = layer_sizes(ctx, manifest, chain_ids(list(config.diff_ids)))
    entries = config.raw.get("history") or [{} for _ in manifest.layers]
    steps, layer = [], 0
    for entry in entries if isinstance(entries, list) else []:
        entry = entry if isinstance(entry, dict) else {}
        size = 0
        if not entry.get("empty_layer") and layer < len(sizes):
            size, layer = sizes[layer], layer + 1
        steps.append(Step("<missing>", str(entry.get("created") or ""), str(entry.get("created_by") or ""),
                          size, str(entry.get("comment") or "")))
    steps.reverse()
    if steps:
        steps[0] = steps[0]._replace(image_id=record.config)
    return steps
