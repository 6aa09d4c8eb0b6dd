"""save: images as one tar archive in Docker 25's form, a docker-archive whose files are also
an OCI image layout (what ``load``, Docker and skopeo read back). What the save reads is held
(opened under the GC lock) before it writes, so that an rmi meanwhile cannot pull it away.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..content.blobs import ContentStore
from ..content.images import ImageRecord
from ..errors import BrokenImage, ImageNotKnown, OutputError, StoreError
from ..oci import (
    LAYER_TAR,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
)
from ..pids import owner_tag
from ..records import Record
from .context import Context

if TYPE_CHECKING:
    from ..remote.reference import Reference


class _Held(Record):
    record: ImageRecord
    ref: Reference | None                       # None: saved by ID, without a name
    config: bytes
    layers: list[tuple[Descriptor, BinaryIO]]   # each layer's blob, open


def _hold(ctx: Context, names: list[str], stack: contextlib.ExitStack) -> list[_Held]:
    """The images ``names`` name, every blob they need read or opened under the GC lock: an
    ``rmi`` or prune during the save unlinks them, but what is open stays readable (as
    Docker's save holds references on the layers it writes)."""
    from ..remote import reference as refs
    from .images import by_id, by_name
    content, held = ctx.images.content, []
    with ctx.images.pulling():
        known = ctx.images.records()
        for name in names:
            if hits := by_name(known, name):
                rec, ref = hits[0], refs.parse(name)
            elif hits := by_id(known, name):  # saved by ID: without a name, as Docker does
                rec, ref = hits[0], None
            else:
                raise ImageNotKnown(f"saving {name}: No such image: {name}")
            layers: list[tuple[Descriptor, BinaryIO]] = []
            for d in ctx.images.manifest_of(rec).layers:
                try:
                    layers.append((d, stack.enter_context(open(content.path(d.digest), "rb"))))
                except OSError as e:
                    raise BrokenImage(f"saving {name}: layer {d.digest}: {e.strerror}", d.digest) from None
            held.append(_Held(rec, ref, content.read(rec.config), layers))
    return held


class _Sink(io.RawIOBase):
    """The archive's destination, whose write failures (a full disk, /dev/full) are said as
    the save's; a closed pipe stays BrokenPipeError (the reader went away)."""

    def __init__(self, out: BinaryIO, where: str) -> None:
        self.out, self.where = out, where

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return self._said(lambda: self.out.write(data))

    def flush(self) -> None:
        self._said(self.out.flush)

    def _said(self, call: Callable[[], int | None]) -> int:
        try:
            return call() or 0
        except BrokenPipeError:
            raise
        except OSError as e:
            raise OutputError(f"saving to {self.where}: {e.strerror or e}") from None


class _Archive:
    """The tar being written: each name once (images share layers)."""

    def __init__(self, tf: tarfile.TarFile) -> None:
        self.tf, self.written = tf, set[str]()

    def add(self, name: str, data: bytes | Path) -> None:
        if name in self.written:
            return
        self.written.add(name)
        info = tarfile.TarInfo(name)
        if isinstance(data, Path):
            info.size = data.stat().st_size
            with open(data, "rb") as f:
                self.tf.addfile(info, f)
        else:
            info.size = len(data)
            self.tf.addfile(info, io.BytesIO(data))


def save(ctx: Context, names: list[str], out: BinaryIO, where: str) -> None:
    """A docker-archive of ``names`` that is also an OCI image layout (as Docker 25 writes)."""
    with contextlib.ExitStack() as stack:
        held = _hold(ctx, names, stack)
        sink = _Sink(out, where)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            _write(_Archive(tf), held, ctx.images.content)
        sink.flush()


def _write(archive: _Archive, held: list[_Held], content: ContentStore) -> None:
    docker: list[dict[str, object]] = []
    repositories: dict[str, dict[str, str]] = {}
    oci: list[dict[str, object]] = []
    for rec, ref, config, blobs in held:
        layers = [_uncompressed(content, d, raw, archive.add) for d, raw in blobs]
        archive.add(f"blobs/sha256/{rec.config[7:]}", config)
        own = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                          "config": {"mediaType": OCI_CONFIG, "digest": rec.config, "size": len(config)},
                          "layers": layers}).encode()
        digest = "sha256:" + hashlib.sha256(own).hexdigest()
        archive.add(f"blobs/sha256/{digest[7:]}", own)
        docker.append({"Config": f"blobs/sha256/{rec.config[7:]}", "RepoTags": [ref.familiar()] if ref else None,
                       "Layers": [f"blobs/sha256/{str(x['digest'])[7:]}" for x in layers]})
        entry: dict[str, object] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(own)}
        if ref is not None:
            repositories.setdefault(ref.familiar_name, {})[ref.tag or "latest"] = rec.config[7:]
            entry["annotations"] = {"io.containerd.image.name": str(ref),
                                    "org.opencontainers.image.ref.name": ref.tag or "latest"}
        oci.append(entry)
    archive.add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    archive.add("index.json", json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": oci}).encode())
    archive.add("manifest.json", json.dumps(docker).encode())
    archive.add("repositories", json.dumps(repositories).encode())  # the legacy form: repository -> tag -> ID


def _uncompressed(content: ContentStore, d: Descriptor, raw: BinaryIO,
                  add: Callable[[str, bytes | Path], None]) -> dict[str, str | int]:
    """A layer as the archive holds it (its uncompressed tar, named by its DiffID), through a
    temporary file in the store's ingest/ (a tar entry's size is written before it)."""
    from ..snapshots.layerstream import decompressed
    tmp = content.ingest_dir / f"save-{owner_tag()}-{d.digest[7:]}"
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as plain:
            reader = decompressed(raw, d.media_type)
            while data := reader.read(1 << 20):
                h.update(data)
                plain.write(data)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"saving layer {d.digest}: writing to the store: {e.strerror or e}", e.errno) from None
    try:
        diff = "sha256:" + h.hexdigest()
        size = tmp.stat().st_size
        add(f"blobs/sha256/{diff[7:]}", tmp)
    finally:
        tmp.unlink(missing_ok=True)
    return {"mediaType": LAYER_TAR[0], "digest": diff, "size": size}
