"""Pull an image: the only module that joins the registry client and the store.

It reports what happens as ``PullEvent``s (Docker's status words); rendering them
is ``progress.py``'s job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass

from .credentials import Credentials
from .errors import BadResponse, ManifestError, MiniRunError
from .oci import Descriptor, ImageIndex, Manifest, Platform, parse_config, parse_manifest, select_manifest
from .reference import Reference
from .registry import RegistryOptions, Repository
from .store import ContentStore, ImageRecord, ImageStore, now_iso

PARALLEL_LAYERS = 3


@dataclass(frozen=True)
class PullEvent:
    status: str
    id: str | None = None        # a layer's 12 hex digits, or None for whole-pull lines
    current: int | None = None
    total: int | None = None


Emit = Callable[[PullEvent], None]


@dataclass(frozen=True)
class PullResult:
    record: ImageRecord
    downloaded: bool             # False: "Image is up to date"
    requests: tuple[str, ...]    # what was asked of the registry, in order


class _Cancelled(MiniRunError):
    """Raised inside a download thread when another layer already failed."""


def _usable(images: ImageStore, record: ImageRecord, platform: Platform) -> bool:
    """The record is for this platform and all of its blobs are here."""
    try:
        same = Platform.parse(record.platform) == platform
    except MiniRunError:
        same = False
    return same and all(images.content.has(d) for d in images.blobs_of(record))


def pull(ref: Reference, images: ImageStore, options: RegistryOptions, platform: Platform,
         emit: Emit, creds: Credentials | None = None) -> PullResult:
    repo = Repository(ref, options, creds)
    try:
        with images.pulling():
            return _pull(ref, repo, images, platform, emit)
    finally:
        repo.close()


def _pull(ref: Reference, repo: Repository, images: ImageStore, platform: Platform,
          emit: Emit) -> PullResult:
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
            return PullResult(existing, False, tuple(repo.requests))

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

    _fetch(repo, content, manifest.config, None)
    config = parse_config(content.read(manifest.config.digest), what)
    if config.diff_ids and len(config.diff_ids) != len(manifest.layers):
        raise ManifestError(f"{what}: config lists {len(config.diff_ids)} diff_ids "
                            f"for {len(manifest.layers)} layers")
    _fetch_layers(repo, content, manifest.layers, emit)

    record = ImageRecord(
        reference=str(ref), digest=top_digest, manifest=manifest_digest,
        config=manifest.config.digest,
        platform=str(config.platform or platform), pulled=now_iso())
    images.put(record)
    _finish(ref, record, emit, downloaded=True)
    return PullResult(record, True, tuple(repo.requests))


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
        repo.fetch_blob(desc, ingest, progress)
    return True


def _fetch_layers(repo: Repository, content: ContentStore, layers: tuple[Descriptor, ...],
                  emit: Emit) -> None:
    todo: list[Descriptor] = []
    seen: set[str] = set()
    for layer in layers:
        if layer.digest in seen:
            continue
        seen.add(layer.digest)
        if content.has(layer.digest):
            emit(PullEvent("Already exists", layer.short_id))
        else:
            emit(PullEvent("Pulling fs layer", layer.short_id))
            todo.append(layer)
    for layer in todo[PARALLEL_LAYERS:]:
        emit(PullEvent("Waiting", layer.short_id))
    if not todo:
        return

    stop = threading.Event()
    done: dict[str, threading.Event] = {d.digest: threading.Event() for d in todo}
    order_lock = threading.Lock()
    next_index = [0]

    def report_in_order() -> None:
        # Docker reports "Pull complete" in layer order, as layers are applied in order.
        with order_lock:
            while next_index[0] < len(todo) and done[todo[next_index[0]].digest].is_set():
                emit(PullEvent("Pull complete", todo[next_index[0]].short_id))
                next_index[0] += 1

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

        _fetch(repo, content, layer, progress)
        emit(PullEvent("Download complete", layer.short_id))
        done[layer.digest].set()
        report_in_order()

    with ThreadPoolExecutor(max_workers=PARALLEL_LAYERS, thread_name_prefix="layer") as pool:
        futures = [pool.submit(work, layer) for layer in todo]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in finished if f.exception() is not None]
        if errors:
            stop.set()
            for f in futures:
                f.cancel()
            wait(futures)
            real = [e for e in errors if not isinstance(e, _Cancelled)]
            raise (real or errors)[0]  # type: ignore[misc]
