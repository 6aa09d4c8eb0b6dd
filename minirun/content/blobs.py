"""Content-addressed blobs: ingest (download resumable, verified at the end), commit, read.

Layout under the root (``MINIRUN_ROOT``)::

    blobs/sha256/<hex>      verified content, written once, renamed into place
    ingest/<hex>.partial    a blob being downloaded (kept across kills, resumed)
    ingest/<hex>.lock       flock held by the one process downloading that blob
    images/HASH.json        one per reference: reference -> digests (changed under images.lock)
    gc.lock                 pulls hold it shared, garbage collection exclusive

Nothing becomes visible under ``blobs/`` before its sha256 and size were checked,
so a pull killed at any moment leaves only partials and locks behind, and the
next pull resumes from them.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import sha256
from ..errors import BrokenImage, VerificationError
from ..records import TYPE_CHECKING
from .files import atomic_write, fsync_dir, make_private, store_error, wait_for_lock

if TYPE_CHECKING:
    from typing import IO


class Ingest:
    """One blob being written: resumable, verified, then renamed into the store.

    Hold it as a context manager; it locks the blob so that concurrent pulls of the
    same layer download it once (the second waits, then finds it complete).
    """

    def __init__(self, store: ContentStore, digest: str, size: int) -> None:
        self.store, self.digest, self.size = store, digest, size
        hexpart = digest.split(":", 1)[1]
        self.partial = store.ingest_dir / f"{hexpart}.partial"
        self._lock_path = store.ingest_dir / f"{hexpart}.lock"
        self._lock_fd = -1
        self._file: IO[bytes] | None = None
        self._hash = sha256.stream()
        self.offset = 0

    @property
    def complete(self) -> bool:
        return self.store.has(self.digest)

    def __enter__(self) -> Ingest:
        try:
            self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            wait_for_lock(self._lock_fd, False, f"another pull downloading {self.digest}")
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
            raise store_error("preparing download of", self.partial, e) from None
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
        self._hash = sha256.stream()
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
            raise store_error("writing", self.partial, e) from None
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
            fsync_dir(self.store.blob_dir)
        except OSError as e:
            raise store_error("storing", self.store.path(self.digest), e) from None


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.ingest_dir = root / "ingest"
        try:
            make_private(root)
            self.blob_dir.mkdir(exist_ok=True)
        except OSError as e:
            raise store_error("creating store in", root, e) from None

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
            raise store_error("reading", self.path(digest), e) from None
        actual = "sha256:" + sha256.hexdigest(data)
        if actual != digest:
            raise self.damaged(digest, actual)
        return data

    def check_file(self, digest: str) -> None:
        """Hash a (large) stored blob; a damaged one is removed and raised as BrokenImage.
        Layers are checked only when unpacking one failed: their DiffID is checked always."""
        h = sha256.stream()
        try:
            with open(self.path(digest), "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
        except OSError as e:
            raise store_error("reading", self.path(digest), e) from None
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
        actual = "sha256:" + sha256.hexdigest(data)
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
            raise store_error("removing", p, e) from None
