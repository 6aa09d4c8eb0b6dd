"""Push an image from the store to a registry: its layers and config (each skipped when the
registry has it, mounted when another repository of that registry has it, else uploaded),
then its manifest under the tag, byte for byte as stored, so its digest is the same.

It reports what happens as ``PullEvent``s with Docker's push words (``Preparing``,
``Layer already exists``, ``Mounted from REPO``, ``Pushing``, ``Pushed``)."""

from __future__ import annotations

from collections.abc import Iterator

from . import sha256
from .content.blobs import ContentStore
from .content.images import ImageRecord, ImageStore
from .errors import BrokenImage, ImageNotKnown, ManifestError, MiniRunError, StoreError, VerificationError
from .oci import OCI_MANIFEST, Descriptor, Manifest, parse_config, parse_manifest
from .pull import Emit, PullEvent
from .records import Record
from .remote.credentials import Credentials
from .remote.endpoints import RegistryOptions
from .remote.reference import Reference, parse
from .remote.upload import CHUNK, Uploads


class Pushed(Record):
    tag: str
    digest: str
    size: int


def push(ref: Reference, images: ImageStore, options: RegistryOptions, emit: Emit,
         creds: Credentials | None = None) -> Pushed:
    """Push the image ``ref`` names here (``ref`` has a tag) to the registry it names."""
    record = images.get(str(ref))
    if record is None:
        raise ImageNotKnown(f"An image does not exist locally with the tag: {ref.familiar_name}")
    content = images.content
    with images.pulling():  # GC leaves its blobs alone meanwhile
        body = content.read(record.manifest)
        manifest = parse_manifest(body, "", str(ref))
        if not isinstance(manifest, Manifest):
            raise ManifestError(f"pushing {ref.familiar()}: its manifest {record.manifest} is an index")
        config = parse_config(content.read(manifest.config.digest), str(ref))
        ids = [d[7:19] for d in config.diff_ids] if len(config.diff_ids) == len(manifest.layers) \
            else [d.short_id for d in manifest.layers]
        sources = _sources(images, ref, record)
        uploads = Uploads(ref, options, creds, tuple(sorted(set(sources.values()))))
        try:
            for short in dict.fromkeys(ids):
                emit(PullEvent("Preparing", short))
            for short, layer in dict(zip(ids, manifest.layers, strict=True)).items():
                _push_blob(uploads, content, layer, sources.get(layer.digest), short, emit)
            _push_blob(uploads, content, manifest.config, None, None, emit)
            # (an OCI manifest may leave its mediaType out: it is one by its shape then)
            digest = uploads.put_manifest(ref.tag or "latest", body, manifest.media_type or OCI_MANIFEST)
        finally:
            uploads.close()
    emit(PullEvent(f"{ref.tag or 'latest'}: digest: {digest} size: {len(body)}"))
    return Pushed(ref.tag or "latest", digest, len(body))


def _sources(images: ImageStore, ref: Reference, record: ImageRecord) -> dict[str, str]:
    """Layer digest -> another repository of the same registry that has it (where this store
    pulled or pushed it from), for a cross-repository mount."""
    out: dict[str, str] = {}
    for other in images.records():
        if other.untagged or other.reference == record.reference:
            continue
        try:
            theirs = parse(other.reference)
            if theirs.domain != ref.domain or theirs.path == ref.path:
                continue
            manifest = images.manifest_of(other)
        except MiniRunError:
            continue
        for layer in manifest.layers:
            out.setdefault(layer.digest, theirs.path)
    return out


def _push_blob(uploads: Uploads, content: ContentStore, desc: Descriptor, source: str | None,
               short: str | None, emit: Emit) -> None:
    def say(status: str, current: int | None = None) -> None:
        if short is not None:
            emit(PullEvent(status, short, current, desc.size if current is not None else None))

    if uploads.has_blob(desc.digest):
        say("Layer already exists")
        return
    if source is not None and uploads.mount(desc.digest, source):
        say(f"Mounted from {source}")
        return
    if not content.has(desc.digest):
        raise BrokenImage(f"pushing {desc.digest}: not in the store at {content.root}; pull the image again",
                          desc.digest)

    def chunks() -> Iterator[bytes]:
        """The blob's bytes as they are read, checked: a blob damaged on disk is never pushed."""
        h, sent = sha256.stream(), 0
        try:
            with open(content.path(desc.digest), "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                    sent += len(chunk)
                    say("Pushing", sent)
                    yield chunk
        except OSError as e:
            raise StoreError(f"reading {content.path(desc.digest)}: {e.strerror}", e.errno) from None
        if "sha256:" + h.hexdigest() != desc.digest:
            raise VerificationError(f"pushing {desc.digest}: the stored blob is damaged (its content has "
                                    f"digest sha256:{h.hexdigest()}); pull the image again")

    uploads.upload(desc.digest, desc.size, chunks)
    say("Pushed")
