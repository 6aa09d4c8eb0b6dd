"""load: images from docker-archive / OCI tar files or OCI layout directories, for machines
without a registry.

load reads a docker-archive (``manifest.json``), an OCI image layout (``index.json``) as a tar
(gzip-compressed or not) or a directory; every file is hashed as it is unpacked into the
store's ``ingest/``, every blob is checked against its digest and every layer against the
config's DiffIDs before anything enters the store; a failure leaves nothing behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

from ..content.files import now_iso
from ..content.images import ImageRecord
from ..errors import LayerError, ManifestError, StoreError, VerificationError
from ..oci import (
    LAYER_GZIP,
    LAYER_TAR,
    LAYER_ZSTD,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageIndex,
    Manifest,
    Platform,
    parse_config,
    parse_manifest,
    select_manifest,
)
from ..pids import owner_tag
from ..records import Record
from .context import Context

if TYPE_CHECKING:
    pass

class File(Record):
    path: Path      # where it was unpacked
    digest: str     # sha256 of its bytes
    size: int


class Loaded(Record):
    reference: str | None   # None: the archive names no tag
    manifest: bytes         # an OCI manifest over the blobs below
    blobs: dict[str, File]  # digest -> file: config and layers
    config: str
    platform: str


def _fail(source: str, why: str) -> VerificationError:
    return VerificationError(f"loading {source}: {why}")


# -- reading an archive -----------------------------------------------------------------------

def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    head = stream.read(2)
    body: IO[bytes] = stream
    if head == b"\x1f\x8b":
        body = gzip.GzipFile(fileobj=_Prefixed(head, stream))  # type: ignore[assignment]
        head = b""
    if head:
        yield head
    while chunk := body.read(1 << 20):
        yield chunk


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        data = self.head[:len(b)] or self.rest.read(len(b))
        self.head = self.head[len(data):] if self.head else b""
        b[:len(data)] = data
        return len(data)


def extract(stream: BinaryIO, into: Path, source: str) -> dict[str, File]:
    """Every regular file of the tar in ``stream``, hashed, by its normalised name (symlinks,
    as old docker-archives link shared layers, name their target's file)."""
    from ..snapshots.inroot import split_name
    from ..snapshots.tarstream import TarStream
    pieces = _chunks(stream)
    tar = TarStream(lambda: next(pieces, b""))
    files: dict[str, File] = {}
    links: dict[str, str] = {}
    try:
        for n, entry in enumerate(tar):
            name = "/".join(split_name(entry.name))
            if entry.isreg():
                path, h = into / str(n), hashlib.sha256()
                with _Into(path, source) as out:
                    for piece in tar.content(entry):
                        h.update(piece)
                        out.write(piece)
                files[name] = File(path, "sha256:" + h.hexdigest(), entry.size)
            elif entry.issym():
                links[name] = "/".join(split_name(os.path.join(os.path.dirname(name), entry.linkname)))
    except (LayerError, OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _fail(source, f"not a complete archive ({e})") from None
    for name, target in links.items():
        if target in files:
            files[name] = files[target]
    return files


class _Into:
    """A work file in the store's ingest/, whose write failures (a full or read-only store)
    are said as the store's, never as a damaged archive."""

    def __init__(self, path: Path, source: str) -> None:
        self.source = source
        try:
            self.file = open(path, "wb")  # closed by __exit__
        except OSError as e:
            raise _store_full(source, e) from None

    def __enter__(self) -> _Into:
        return self

    def write(self, data: bytes | memoryview) -> None:
        try:
            self.file.write(data)
        except OSError as e:
            raise _store_full(self.source, e) from None

    def __exit__(self, *exc: object) -> None:
        try:
            self.file.close()
        except OSError as e:
            if exc[0] is None:
                raise _store_full(self.source, e) from None


def _store_full(source: str, e: OSError) -> StoreError:
    return StoreError(f"loading {source}: writing to the store: {e.strerror or e}", e.errno)


def _json(files: dict[str, File], name: str, source: str) -> object:
    if name not in files:
        raise _fail(source, f"{name} is missing")
    try:
        return json.loads(files[name].path.read_bytes())
    except ValueError as e:
        raise _fail(source, f"{name} is not valid JSON ({e})") from None


def _diff_id(f: File, media_type: str) -> str:
    """The sha256 of the layer's uncompressed tar."""
    from ..snapshots.layerstream import decompressed
    if media_type in LAYER_TAR:
        return f.digest
    h = hashlib.sha256()
    with open(f.path, "rb") as raw:
        reader = decompressed(raw, media_type)
        while data := reader.read(1 << 20):
            h.update(data)
    return "sha256:" + h.hexdigest()


def _layer_type(f: File) -> str:
    with open(f.path, "rb") as raw:
        magic = raw.read(4)
    if magic[:2] == b"\x1f\x8b":
        return LAYER_GZIP[0]
    return LAYER_ZSTD[0] if magic == b"\x28\xb5\x2f\xfd" else LAYER_TAR[0]


def _image(config: File, layers: list[tuple[File, str]], reference: str | None, source: str) -> Loaded:
    """Checked against the config's DiffIDs; the manifest that the store will hold for it."""
    parsed = parse_config(config.path.read_bytes(), source)
    if len(parsed.diff_ids) != len(layers):
        raise _fail(source, f"the config lists {len(parsed.diff_ids)} layers, the archive {len(layers)}")
    for (f, media_type), want in zip(layers, parsed.diff_ids, strict=True):
        try:
            got = _diff_id(f, media_type)
        except (LayerError, EOFError, zlib.error) as e:
            raise _fail(source, f"layer {f.digest} is damaged ({e})") from None
        if got != want:
            raise _fail(source, f"layer {f.digest} has DiffID {got}, the config says {want}")
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": t, "digest": f.digest, "size": f.size} for f, t in layers]}).encode()
    blobs = {config.digest: config} | {f.digest: f for f, _ in layers}
    return Loaded(reference, manifest, blobs, config.digest, str(parsed.platform or Platform.host()))


def docker_archive(files: dict[str, File], source: str) -> list[Loaded]:
    doc = _json(files, "manifest.json", source)
    if not isinstance(doc, list):
        raise _fail(source, "manifest.json is not a list")
    out = []
    for item in doc:
        if not isinstance(item, dict) or item.get("Config") not in files or not isinstance(item.get("Layers"), list):
            raise _fail(source, "manifest.json names a config or layers the archive does not hold")
        missing = [x for x in item["Layers"] if x not in files]
        if missing:
            raise _fail(source, f"layer {missing[0]} is missing")
        layers = [(files[x], _layer_type(files[x])) for x in item["Layers"]]
        tags: list[str | None] = [t for t in item.get("RepoTags") or [] if isinstance(t, str)]
        out += [_image(files[item["Config"]], layers, tag, source) for tag in tags or [None]]
    return out


def oci_layout(files: dict[str, File], source: str) -> list[Loaded]:
    doc = _json(files, "index.json", source)
    try:
        index = parse_manifest(json.dumps(doc).encode(), OCI_INDEX, source)
    except ManifestError as e:
        raise _fail(source, str(e)) from None
    assert isinstance(index, ImageIndex)
    out = []
    for desc in index.manifests:
        notes = desc.annotations
        name = notes.get("io.containerd.image.name") or notes.get("org.opencontainers.image.ref.name")
        manifest = _manifest(files, desc.digest, desc.media_type, source)
        if isinstance(manifest, ImageIndex):  # several platforms: this host's
            pick = select_manifest(manifest, Platform.host(), source)
            manifest = _manifest(files, pick.digest, pick.media_type, source)
        assert isinstance(manifest, Manifest)
        layers = [(_blob(files, d.digest, source), d.media_type) for d in manifest.layers]
        reference = name if name and (":" in name or "/" in name) else None
        out.append(_image(_blob(files, manifest.config.digest, source), layers, reference, source))
    return out


def _blob(files: dict[str, File], digest: str, source: str) -> File:
    name = "blobs/" + digest.replace(":", "/")
    f = files.get(name)
    if f is None:
        raise _fail(source, f"blob {digest} is missing")
    if f.digest != digest:
        raise _fail(source, f"blob {digest} is damaged (its content has digest {f.digest})")
    return f


def _manifest(files: dict[str, File], digest: str, media_type: str, source: str) -> Manifest | ImageIndex:
    try:
        return parse_manifest(_blob(files, digest, source).path.read_bytes(), media_type, source)
    except ManifestError as e:
        raise _fail(source, str(e)) from None


# -- load and save ----------------------------------------------------------------------------

def load(ctx: Context, stream: BinaryIO | None, directory: Path | None, source: str) -> list[str]:
    """Load every image of the archive (``stream``) or OCI layout (``directory``); returns the
    reference of each, once all are in the store."""
    from ..remote import reference as refs
    work = ctx.images.content.ingest_dir / f"load-{owner_tag()}"
    try:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    except OSError as e:
        raise _store_full(source, e) from None
    try:
        if directory is not None:
            files = read_layout(directory, source)
        else:
            assert stream is not None
            files = extract(stream, work, source)
        images = docker_archive(files, source) if "manifest.json" in files else oci_layout(files, source)
        if not images:
            raise _fail(source, "the archive holds no image")
        # an image the archive gives no name is kept by its ID (Docker's <none>)
        named = [(str(refs.parse(img.reference)) if img.reference else img.config, img) for img in images]
        _keep(ctx, named, work, source)
        return [name for name, _ in named]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _keep(ctx: Context, named: list[tuple[str, Loaded]], work: Path, source: str) -> None:
    """Move the checked blobs into the store and file each image under its name. A failure
    here (a full or read-only store) leaves blobs that no image names: prune's to remove."""
    content = ctx.images.content
    try:
        with ctx.images.pulling():
            blobs = {digest: f for _, img in named for digest, f in img.blobs.items() if not content.has(digest)}
            for digest, f in blobs.items():  # the user's layout directory: copied (never moved) first,
                if f.path.parent != work:    # so that a full store stops the load before any blob is in
                    shutil.copyfile(f.path, work / f"copy-{digest[7:]}")
                    blobs[digest] = f._replace(path=work / f"copy-{digest[7:]}")
            for digest, f in blobs.items():
                if f.path.exists():  # (two images' blobs may be one file)
                    os.replace(f.path, content.path(digest))
            for _, img in named:
                content.put("sha256:" + hashlib.sha256(img.manifest).hexdigest(), img.manifest)
            for name, img in named:
                digest = "sha256:" + hashlib.sha256(img.manifest).hexdigest()
                ctx.images.put(ImageRecord(name, digest, digest, img.config, img.platform, now_iso()))
    except OSError as e:
        raise _store_full(source, e) from None
    except StoreError as e:
        raise StoreError(f"loading {source}: {e}", e.errno) from None


def read_layout(directory: Path, source: str) -> dict[str, File]:
    """An OCI layout directory's regular files, hashed where they are (symlinks are not
    followed: a layout holds none)."""
    files: dict[str, File] = {}
    for top, _, names in os.walk(directory):
        for name in names:
            path = Path(top) / name
            if path.is_symlink() or not path.is_file():
                continue
            h = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            except OSError as e:
                raise _fail(source, f"reading {path}: {e.strerror}") from None
            files[str(path.relative_to(directory))] = File(path, "sha256:" + h.hexdigest(), path.stat().st_size)
    return files
