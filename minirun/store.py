"""The local store: content-addressed blobs and the index of image references.

Layout under the root (``MINIRUN_ROOT``)::

    blobs/sha256/<hex>      verified content, written once, renamed into place
    ingest/<hex>.partial    a blob being downloaded (kept across kills, resumed)
    ingest/<hex>.lock       flock held by the one process downloading that blob
    images.json             reference -> digests, rewritten whole under images.lock
    gc.lock                 pulls hold it shared, garbage collection exclusive

Nothing becomes visible under ``blobs/`` before its sha256 and size were checked,
so a pull killed at any moment leaves only partials and locks behind, and the
next pull resumes from them.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, NamedTuple

from . import notices
from .errors import BrokenImage, ImageNotKnown, ManifestError, MiniRunError, StoreError, VerificationError
from .oci import ImageIndex, Manifest, Platform, parse_manifest


def default_root() -> Path:
    env = os.environ.get("MINIRUN_ROOT")
    if env:
        return Path(env).absolute()  # made absolute once: mount options and chdirs need it
    if os.geteuid() == 0:
        return Path("/var/lib/minirun")
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "minirun"


# Directories whose content a host user must never reach: snapshots and a container's upper
# directory can hold setuid-root programs and device nodes from images, and shared
# snapshots are what later containers run. Only the store's owner (root) traverses them,
# as Docker keeps /var/lib/docker 0710 and its layers 0700.
PRIVATE_DIRS = ("blobs", "ingest", "snapshots", "containers")


def make_private(root: Path) -> None:
    """Create the store's root and PRIVATE_DIRS as 0700, and tighten them where an older
    minirun made them 0755. The root itself is tightened only when it is a store (it may be
    a directory the user named, such as /srv, that others need)."""
    is_store = (root / "images.json").exists() or (root / "blobs").is_dir()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (root, *(root / d for d in PRIVATE_DIRS)):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            path.mkdir(mode=0o700, exist_ok=True)  # umask can only take bits away
            continue
        if mode & 0o077 and (path != root or is_store):
            os.chmod(path, 0o700)


def _os_error(action: str, path: Path | str, e: OSError) -> StoreError:
    return StoreError(f"{action} {path}: {e.strerror or e}", e.errno)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, whole."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _os_error("writing", path, e) from None


@contextlib.contextmanager
def replacing(path: str) -> Iterator[BinaryIO]:
    """A file written whole or not at all at ``path``, which may lie outside the store, in a
    directory another user owns (``save -o /tmp/x.tar``): the partial file has a name nobody
    can predict and is created with O_EXCL and O_NOFOLLOW (a symlink planted there is never
    followed), mode 0600 as Docker's, then renamed over ``path`` (a symlink there is replaced,
    not followed)."""
    import secrets
    head, tail = os.path.split(path)
    partial = os.path.join(head, f".{tail}.{secrets.token_hex(8)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with open(fd, "wb") as f:
            yield f
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


# A wait on a lock is said after this long (a prune waiting for pulls, a pull waiting for a
# prune, a second pull of the same layer), rather than being silent.
NOTICE_AFTER = 1.0


def _flock(fd: int, shared: bool, what: str) -> None:
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    deadline = time.monotonic() + NOTICE_AFTER
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.02)
    notices.say(f"waiting for {what}")
    fcntl.flock(fd, mode)


@contextlib.contextmanager
def file_lock(path: Path, shared: bool = False, what: str = "", directory: bool = False) -> Iterator[None]:
    """An flock on ``path`` (a lock file, made if missing, or a ``directory``); the kernel
    drops it when the process dies, even by SIGKILL. ``what`` is what a wait is said to be for."""
    try:
        if directory:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise _os_error("opening lock", path, e) from None
    try:
        _flock(fd, shared, what or f"the lock {path}")
        yield
    finally:
        os.close(fd)


class Ingest:
    """One blob being written: resumable, verified, then renamed into the store.

    Hold it as a context manager; it locks the blob so that concurrent pulls of the
    same layer download it once (the second waits, then finds it complete).
    """

    def __init__(self, store: "ContentStore", digest: str, size: int) -> None:
        self.store, self.digest, self.size = store, digest, size
        hexpart = digest.split(":", 1)[1]
        self.partial = store.ingest_dir / f"{hexpart}.partial"
        self._lock_path = store.ingest_dir / f"{hexpart}.lock"
        self._lock_fd = -1
        self._file: IO[bytes] | None = None
        self._hash = hashlib.sha256()
        self.offset = 0

    @property
    def complete(self) -> bool:
        return self.store.has(self.digest)

    def __enter__(self) -> "Ingest":
        try:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            _flock(self._lock_fd, False, f"another pull downloading {self.digest}")
            if not self.complete:
                self._file = open(self.partial, "a+b")
                self._file.seek(0)
                # Hash what an earlier, interrupted pull left, so we can resume after it.
                while chunk := self._file.read(1 << 20):
                    self._hash.update(chunk)
                self.offset = self._file.tell()
                if self.offset > self.size:
                    self.reset()
        except OSError as e:
            self.__exit__(None, None, None)
            raise _os_error("preparing download of", self.partial, e) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def reset(self) -> None:
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate()
        self._hash = hashlib.sha256()
        self.offset = 0

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        if self.offset + len(chunk) > self.size:
            raise VerificationError(
                f"downloading {self.digest}: the registry sent more than the "
                f"{self.size} bytes the manifest declares")
        try:
            self._file.write(chunk)
        except OSError as e:
            raise _os_error("writing", self.partial, e) from None
        self._hash.update(chunk)
        self.offset += len(chunk)

    def commit(self) -> None:
        """Check size and sha256; on success the blob is in the store, else reset."""
        assert self._file is not None
        actual = "sha256:" + self._hash.hexdigest()
        if self.offset != self.size or actual != self.digest:
            got = self.offset
            self.reset()
            raise VerificationError(
                f"verifying {self.digest}: got {got} bytes with digest {actual}, "
                f"expected {self.size} bytes")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            os.replace(self.partial, self.store.path(self.digest))
            _fsync_dir(self.store.blob_dir)
        except OSError as e:
            raise _os_error("storing", self.store.path(self.digest), e) from None


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        try:
            make_private(root)
            self.blob_dir.mkdir(exist_ok=True)
        except OSError as e:
            raise _os_error("creating store in", root, e) from None

    def path(self, digest: str) -> Path:
        return self.blob_dir / digest.split(":", 1)[1]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def read(self, digest: str) -> bytes:
        """A small blob (manifest, index, config), checked against its digest on every read as
        Docker does: a damaged one is removed (a pull fetches it again) and raised."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BrokenImage(f"reading blob {digest}: not in the store at {self.root}", digest) from None
        except OSError as e:
            raise _os_error("reading", self.path(digest), e) from None
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise self.damaged(digest, actual)
        return data

    def check_file(self, digest: str) -> None:
        """Hash a (large) stored blob; a damaged one is removed and raised as BrokenImage.
        Layers are checked only when unpacking one failed: their DiffID is checked always."""
        h = hashlib.sha256()
        try:
            with open(self.path(digest), "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as e:
            raise _os_error("reading", self.path(digest), e) from None
        actual = "sha256:" + h.hexdigest()
        if actual != digest:
            raise self.damaged(digest, actual)

    def damaged(self, digest: str, actual: str) -> BrokenImage:
        """Remove a blob whose content is not its digest (nothing can use it) and describe it."""
        try:
            self.path(digest).unlink(missing_ok=True)
            done = "removed it: pulling the image again fetches it"
        except OSError as e:
            done = f"could not remove it: {e.strerror}"
        return BrokenImage(f"blob {digest} in the store at {self.root} is damaged (its content has "
                           f"digest {actual}); {done}", digest)

    def put(self, digest: str, data: bytes) -> None:
        """Store small content (manifests, configs) already in memory, verified."""
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise VerificationError(f"verifying {digest}: content has digest {actual}")
        if not self.has(digest):
            atomic_write(self.path(digest), data)

    def ingest(self, digest: str, size: int) -> Ingest:
        return Ingest(self, digest, size)

    def digests(self) -> set[str]:
        return {"sha256:" + p.name for p in self.blob_dir.iterdir() if len(p.name) == 64}

    def remove(self, digest: str) -> int:
        """Remove a blob; returns the bytes freed."""
        p = self.path(digest)
        try:
            size = p.stat().st_size
            p.unlink()
            return size
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise _os_error("removing", p, e) from None


class ImageRecord(NamedTuple):
    reference: str   # docker.io/library/hello-world:latest or ...@sha256:..., or the image ID (untagged)
    digest: str      # what the reference resolved to: index or manifest digest
    manifest: str    # the platform's manifest
    config: str      # the image ID is this digest
    platform: str
    pulled: str

    @property
    def untagged(self) -> bool:
        """Kept by its ID alone (loaded from an archive that gave it no name), as Docker's <none>."""
        return is_image_id(self.reference)

    def is_for(self, platform: Platform) -> bool:
        try:
            return Platform.parse(self.platform) == platform
        except MiniRunError:
            return False  # an unreadable record is for no platform: pull again


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())  # as datetime's isoformat in UTC


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def is_image_id(key: str) -> bool:
    return _DIGEST.fullmatch(key) is not None


def _record(key: str, value: object) -> ImageRecord:
    """One entry of images.json, checked; ValueError says what is wrong with it."""
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    try:
        record = ImageRecord(**value)
    except TypeError:
        raise ValueError("missing or unknown fields") from None
    if not all(isinstance(field, str) for field in record):
        raise ValueError("a field that is not text")
    if record.reference != key:
        raise ValueError(f'filed under "{key}" but names "{record.reference}"')
    for name in ("digest", "manifest", "config"):
        if not _DIGEST.fullmatch(getattr(record, name)):
            raise ValueError(f'its {name} "{getattr(record, name)}" is not a sha256 digest')
    return record


class _Index(NamedTuple):
    records: dict[str, ImageRecord]
    damaged: dict[str, tuple[object, str]]   # key -> (the entry as found, what is wrong)


class ImageStore:
    """The image references index, read and rewritten whole under a file lock.

    Each entry is checked when read: a damaged one is left out of ``records()`` (listed by
    ``damaged()``, so that the CLI can name it) and written back as it was, never blocking
    the others; ``system prune`` and ``rmi`` of its reference remove it."""

    def __init__(self, root: Path, content: ContentStore) -> None:
        self.root, self.content = root, content
        self.index_path = root / "images.json"
        self.lock_path = root / "images.lock"
        self.gc_lock_path = root / "gc.lock"
        self._damaged: dict[str, str] = {}

    def _load(self) -> _Index:
        try:
            doc = json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return _Index({}, {})
        except OSError as e:
            raise _os_error("reading", self.index_path, e) from None
        except ValueError as e:
            raise StoreError(f"reading {self.index_path}: not valid JSON ({e})") from None
        entries = doc.get("images") if isinstance(doc, dict) else None
        if not isinstance(entries, dict):
            raise StoreError(f"reading {self.index_path}: unexpected structure")
        index = _Index({}, {})
        for key, value in entries.items():
            try:
                index.records[key] = _record(key, value)
            except ValueError as e:
                index.damaged[key] = (value, str(e))
        self._damaged = {k: why for k, (_, why) in index.damaged.items()}
        return index

    def _save(self, index: _Index) -> None:
        entries: dict[str, object] = {k: v._asdict() for k, v in index.records.items()}
        entries.update({k: raw for k, (raw, _) in index.damaged.items()})
        doc = {"version": 1, "images": dict(sorted(entries.items()))}
        atomic_write(self.index_path, json.dumps(doc, indent=1).encode())

    def damaged(self) -> dict[str, str]:
        """The entries the last read found damaged: reference -> what is wrong."""
        return dict(self._damaged)

    def records(self) -> list[ImageRecord]:
        with file_lock(self.lock_path, shared=True):
            return list(self._load().records.values())

    def get(self, reference: str) -> ImageRecord | None:
        return {r.reference: r for r in self.records()}.get(reference)

    def put(self, record: ImageRecord) -> None:
        """File ``record`` under its reference. An image has an ID entry only while no name
        refers to it (as Docker's <none>): a name given to it replaces that entry, and an ID
        entry for an image that has a name is not added."""
        with file_lock(self.lock_path):
            index = self._load()
            named = [r for r in index.records.values() if r.config == record.config and not r.untagged]
            if record.untagged and named:
                return
            index.records.pop(record.config, None)
            index.records[record.reference] = record
            index.damaged.pop(record.reference, None)  # a pull repairs a damaged entry
            self._save(index)

    def pulling(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) for the whole of a pull, so GC never removes blobs it is fetching."""
        return file_lock(self.gc_lock_path, shared=True, what=f"a prune or rmi in {self.root} to finish")

    def blobs_of(self, record: ImageRecord) -> set[str]:
        """The blobs ``record`` uses that are here and sound. Index, manifest and config are
        read, so checked (a damaged one is removed and left out: GC may then delete the layers
        only it named, and a pull fetches them again); layers are named by the manifest."""
        out: set[str] = set()
        for digest in dict.fromkeys((record.digest, record.manifest, record.config)):
            try:
                data = self.content.read(digest)
            except StoreError:
                continue  # not here, or damaged (and so removed)
            out.add(digest)
            if digest == record.manifest:
                with contextlib.suppress(ManifestError):
                    m = parse_manifest(data, None, record.reference)
                    if isinstance(m, Manifest):
                        out.update(layer.digest for layer in m.layers if self.content.has(layer.digest))
        return out

    def complete(self, record: ImageRecord) -> bool:
        """Every blob of the image is here, its index, manifest and config sound."""
        blobs = self.blobs_of(record)
        if not {record.digest, record.manifest, record.config} <= blobs:
            return False
        m = parse_manifest(self.content.read(record.manifest), None, record.reference)
        return isinstance(m, Manifest) and all(layer.digest in blobs for layer in m.layers)

    def manifest_of(self, record: ImageRecord) -> Manifest:
        m = parse_manifest(self.content.read(record.manifest), None, record.reference)
        if isinstance(m, ImageIndex):
            raise StoreError(f"reading {record.reference}: stored manifest is an index")
        return m

    def remove(
        self, references: list[str], collect: Callable[[list[ImageRecord]], tuple[list[str], int]] | None = None,
        drop_damaged: bool = False,
    ) -> tuple[list[str], list[str], int]:
        """Untag references and collect blobs nothing uses any more.

        ``references`` may name damaged entries (removed as they are); ``drop_damaged``
        removes every damaged entry (prune). ``collect`` runs under the same exclusive lock
        (no pull or unpack is running), given the images that remain, to remove other unused
        things (snapshots); what it returns (names, bytes) is added to the result.
        Returns the references removed, the deleted digests and the bytes freed.
        """
        with file_lock(self.gc_lock_path, what=f"the pulls and runs unpacking in {self.root} to finish"), \
                file_lock(self.lock_path):
            index = self._load()
            missing = [r for r in references if r not in index.records and r not in index.damaged]
            if missing:
                raise ImageNotKnown(f"removing image {missing[0]}: no such image")
            for key in references:
                index.records.pop(key, None)
            for key in list(index.damaged) if drop_damaged else references:
                index.damaged.pop(key, None)
            self._save(index)
            keep: set[str] = set()
            for rec in index.records.values():
                keep |= self.blobs_of(rec)
            deleted, freed = [], 0
            for digest in sorted(self.content.digests() - keep):
                freed += self.content.remove(digest)
                deleted.append(digest)
            freed += self._remove_stale_ingests()
            if collect is not None:
                more, more_freed = collect(list(index.records.values()))
                deleted += more
                freed += more_freed
            return list(references), deleted, freed

    def _remove_stale_ingests(self) -> int:
        """Partial downloads and their locks: nobody holds those while we hold the GC lock
        (every pull holds it shared first)."""
        freed = 0
        for p in self.content.ingest_dir.iterdir():
            if p.suffix in (".partial", ".lock"):
                with contextlib.suppress(OSError):
                    freed += p.stat().st_size
                    p.unlink()
        return freed
