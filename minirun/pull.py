"""Pull an image: the only module that joins the registry client and the store.

It reports what happens as ``PullEvent``s (Docker's status words); rendering them
is ``progress.py``'s job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from . import trace
from .content.blobs import ContentStore
from .content.files import now_iso
from .content.images import ImageRecord, ImageStore
from .errors import BadResponse, BrokenImage, ManifestError, MiniRunError, VerificationError
from .oci import (
    Descriptor,
    ImageIndex,
    Manifest,
    Platform,
    chain_ids,
    parse_config,
    parse_manifest,
    select_manifest,
)
from .remote.credentials import Credentials
from .remote.endpoints import RegistryOptions
from .remote.reference import Reference
from .remote.registry import Repository
from .snapshots.rootfs import Snapshotter, ensure_image, snapshot_event, unpack_layer

PARALLEL_LAYERS = 3


@dataclass(frozen=True)
class PullEvent:
    status: str
    id: str | None = None        # a layer's 12 hex digits, or None for whole-pull lines
    current: int | None = None
    total: int | None = None

    @property
    def progress_only(self) -> bool:
        """A byte count (shown as a bar or JSON), not a line of Docker's plain output."""
        return self.status in ("Downloading", "Extracting", "Pushing")


Emit = Callable[[PullEvent], None]
Unpack = Callable[[int, Descriptor], None]   # (layer index, layer): make its snapshot


@dataclass(frozen=True)
class PullResult:
    record: ImageRecord
    downloaded: bool             # False: "Image is up to date"


class _Cancelled(MiniRunError):
    """Raised inside a download thread when another layer already failed."""


def _usable(images: ImageStore, record: ImageRecord, platform: Platform) -> bool:
    """The record is for this platform and all of its blobs are here (those read, sound)."""
    return record.is_for(platform) and images.complete(record)


def pull(ref: Reference, images: ImageStore, options: RegistryOptions, platform: Platform,
         emit: Emit, creds: Credentials | None = None, snapshots: Snapshotter | None = None) -> PullResult:
    """Pull ``ref``; with ``snapshots`` (root only) its layers are unpacked as they arrive."""
    repo = Repository(ref, options, creds)
    try:
        with images.pulling():
            try:
                return _pull_and_unpack(ref, repo, images, platform, emit, snapshots)
            except BrokenImage:
                # A blob found damaged has been removed (or was missing): fetched again now.
                return _pull_and_unpack(ref, repo, images, platform, emit, snapshots)
    finally:
        repo.close()


def _pull_and_unpack(ref: Reference, repo: Repository, images: ImageStore, platform: Platform,
                     emit: Emit, snapshots: Snapshotter | None) -> PullResult:
    result = _pull(ref, repo, images, platform, emit, snapshots)
    if snapshots is not None and not result.downloaded:
        ensure_image(images, snapshots, result.record)  # e.g. pulled earlier as non-root
    return result


def _pull(ref: Reference, repo: Repository, images: ImageStore, platform: Platform,
          emit: Emit, snapshots: Snapshotter | None) -> PullResult:
    content = images.content
    # Docker prints this once the registry has answered for the reference, not before.
    pulling_from = PullEvent(f"{ref.digest or ref.tag}: Pulling from {ref.path}")
    existing = images.get(str(ref))

    known: str | None = None
    if existing and _usable(images, existing, platform):
        if ref.digest:
            # Content-addressed: what we hold under this digest cannot have changed.
            known = existing.digest
        else:
            try:
                known = repo.head_manifest()
            except BadResponse:
                known = None  # some registries refuse HEAD; a GET tells the same
        if known == existing.digest:
            emit(pulling_from)
            _finish(ref, existing, emit, downloaded=False)
            return PullResult(existing, False)

    if known and content.has(known):
        top_body = content.read(known)
        top_digest = known
        media_type = ""
    else:
        top_body, media_type, top_digest = repo.get_manifest(ref.identifier)
    emit(pulling_from)
    what = str(ref)
    top = parse_manifest(top_body, media_type, what)
    content.put(top_digest, top_body)

    manifest_digest = top_digest
    if isinstance(top, ImageIndex):
        chosen = select_manifest(top, platform, what)
        if trace.active():
            _trace_index(top, top_digest, chosen, platform)
        if content.has(chosen.digest):
            body = content.read(chosen.digest)
        else:
            body, media_type, _ = repo.get_manifest(chosen.digest)
        manifest = parse_manifest(body, media_type or chosen.media_type, f"{what} ({chosen.platform})")
        if not isinstance(manifest, Manifest):
            raise ManifestError(f"{what}: index entry {chosen.digest} is itself an index")
        content.put(chosen.digest, body)
        manifest_digest = chosen.digest
    else:
        manifest = top
    trace.event("manifest", "manifest", f"manifest {manifest_digest} ({manifest.media_type}): config "
                f"{manifest.config.digest[:19]}..., {len(manifest.layers)} layer(s)", digest=manifest_digest,
                media_type=manifest.media_type, config=manifest.config.digest,
                layers=[d.digest for d in manifest.layers])

    fetched = _fetch(repo, content, manifest.config, None)
    config = parse_config(content.read(manifest.config.digest), what)
    trace.event("config", "config", f"config {manifest.config.digest} ({manifest.config.size} bytes, "
                f"{'fetched and verified' if fetched else 'already here'}): the image ID; "
                f"{len(config.diff_ids)} DiffID(s), platform {config.platform}",
                digest=manifest.config.digest, fetched=fetched, diff_ids=list(config.diff_ids))
    # Without unpacking, a config may omit diff_ids; to unpack, each layer needs its own.
    if (config.diff_ids or snapshots is not None) and len(config.diff_ids) != len(manifest.layers):
        raise ManifestError(f"{what}: config lists {len(config.diff_ids)} diff_ids "
                            f"for {len(manifest.layers)} layers")
    unpack: Unpack | None = None
    if snapshots is not None:
        snap = snapshots
        chains = chain_ids(config.diff_ids)

        def unpack(index: int, layer: Descriptor) -> None:
            if not snap.exists(chains[index]):
                emit(PullEvent("Extracting", layer.short_id, 0, layer.size))
                unpack_layer(images, snap, chains, index, layer, config.diff_ids[index])
            else:
                snapshot_event(False, chains[index], layer, config.diff_ids[index])

    _fetch_layers(repo, content, manifest.layers, emit, unpack)

    record = ImageRecord(
        reference=str(ref), digest=top_digest, manifest=manifest_digest,
        config=manifest.config.digest,
        platform=str(config.platform or platform), pulled=now_iso())
    images.put(record)
    _finish(ref, record, emit, downloaded=True)
    return PullResult(record, True)


def _trace_index(index: ImageIndex, digest: str, chosen: Descriptor, platform: Platform) -> None:
    trace.event("index", "index", f"image index {digest}: {len(index.manifests)} entries; this host is "
                f"{platform}", digest=digest, entries=len(index.manifests), platform=str(platform))
    for d in index.manifests:
        kind = d.annotations.get("vnd.docker.reference.type", "")
        if d is chosen:
            why = "picked: this host's platform"
        elif kind:
            why = f"skipped: an {kind} (not an image)"
        else:
            why = "skipped: another platform"
        trace.event("index", "picked" if d is chosen else "skipped", f"{d.platform}  {d.digest[:19]}...  {why}",
                    platform=str(d.platform), digest=d.digest, reason=why)


def _finish(ref: Reference, record: ImageRecord, emit: Emit, downloaded: bool) -> None:
    emit(PullEvent(f"Digest: {record.digest}"))
    if downloaded:
        emit(PullEvent(f"Status: Downloaded newer image for {ref.familiar()}"))
    else:
        emit(PullEvent(f"Status: Image is up to date for {ref.familiar()}"))


def _fetch(repo: Repository, content: ContentStore, desc: Descriptor,
           progress: Callable[[int], None] | None) -> bool:
    """Fetch one blob unless stored; True when it was downloaded here."""
    if content.has(desc.digest):
        return False
    with content.ingest(desc.digest, desc.size) as ingest:
        if ingest.complete:
            return False  # another pull finished it while we waited for the lock
        if ingest.offset == desc.size:
            # A pull killed after the last byte, before the rename: the registry has nothing
            # more to send (a Range past the end fails), so verify what is here and keep it.
            try:
                ingest.commit()
                return True
            except VerificationError:
                pass  # commit has reset it: fetched again from zero
        repo.fetch_blob(desc, ingest, progress)
    return True


def _fetch_layers(repo: Repository, content: ContentStore, layers: tuple[Descriptor, ...],
                  emit: Emit, unpack: Unpack | None) -> None:
    """Download missing layers, three at a time, and unpack them in order as they arrive.

    Unpacking layer N overlaps with downloading layers after it, as in Docker.
    """
    todo: list[Descriptor] = []
    for layer in layers:
        if content.has(layer.digest):
            emit(PullEvent("Already exists", layer.short_id))
        elif layer not in todo:
            emit(PullEvent("Pulling fs layer", layer.short_id))
            todo.append(layer)
    for layer in todo[PARALLEL_LAYERS:]:
        emit(PullEvent("Waiting", layer.short_id))

    stop = threading.Event()

    def work(layer: Descriptor) -> None:
        verifying = [False]

        def progress(current: int) -> None:
            if stop.is_set():
                raise _Cancelled("cancelled")
            if current >= layer.size and not verifying[0]:
                verifying[0] = True
                emit(PullEvent("Verifying Checksum", layer.short_id))
            elif not verifying[0]:
                emit(PullEvent("Downloading", layer.short_id, current, layer.size))

        if _fetch(repo, content, layer, progress):
            trace.event("layer", "verified", f"layer {layer.digest} ({layer.size} bytes, {layer.media_type}): "
                        "its sha256 matches; kept in the content store", digest=layer.digest, size=layer.size)
        emit(PullEvent("Download complete", layer.short_id))

    with ThreadPoolExecutor(max_workers=PARALLEL_LAYERS, thread_name_prefix="layer") as pool:
        futures: dict[str, Future[None]] = {d.digest: pool.submit(work, d) for d in todo}
        try:
            reported: set[str] = set()
            for index, layer in enumerate(layers):
                future = futures.get(layer.digest)
                if future is not None:
                    future.result()
                if unpack is not None:
                    unpack(index, layer)
                if future is not None and layer.digest not in reported:
                    # Docker reports "Pull complete" in layer order, once a layer is applied.
                    reported.add(layer.digest)
                    emit(PullEvent("Pull complete", layer.short_id))
        except BaseException:
            stop.set()
            for f in futures.values():
                f.cancel()
            wait(futures.values())
            errors = [f.exception() for f in futures.values() if not f.cancelled()]
            real = [e for e in errors if e is not None and not isinstance(e, _Cancelled)]
            if real:
                raise real[0] from None
            raise
