"""A layer's bytes as the unpacker reads them: decompressed (gzip, zstd or none), hashed
for the config's DiffID while streaming, and bounded in size (a decompression bomb stops
at the limit)."""

from __future__ import annotations

import hashlib
import queue
import threading
import zlib
from typing import IO, BinaryIO

from ..errors import LayerError
from ..oci import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD

_CHUNK = 1 << 20


class _GzipReader:
    """Streaming gunzip of one or more members (zlib in C, no temp files), a piece at a time."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.z = zlib.decompressobj(47)

    def read(self, _n: int = -1) -> bytes:
        """The next decompressed piece (at most a chunk); empty at the clean end."""
        while True:
            if self.z.unconsumed_tail:
                data = self.z.unconsumed_tail
            elif self.z.eof:
                # One member ended; another may follow (concatenated gzip is valid).
                data = self.z.unused_data or self.raw.read(_CHUNK)
                if not data:
                    return b""
                self.z = zlib.decompressobj(47)
            else:
                data = self.raw.read(_CHUNK)
                if not data:
                    raise LayerError("gzip stream ends early (truncated layer)")
            try:
                piece = self.z.decompress(data, _CHUNK)
            except zlib.error as e:
                raise LayerError(f"gzip data is corrupt: {e}") from None
            if piece:
                return piece


class Chunks:
    """The layer's uncompressed bytes, in chunks, made by a thread beside the unpacker: read,
    decompressed, hashed for the DiffID and counted there (zlib, zstd and hashlib let go of
    the GIL on large buffers, so on two cores this runs while the unpacker writes files).
    Stops past ``limit`` bytes: the space free in the store ``free_in``, else a bound set
    against decompression bombs. At most ``_AHEAD`` chunks wait: memory stays bounded."""

    _AHEAD = 8

    def __init__(self, inner: IO[bytes] | _GzipReader, limit: int, free_in: str | None = None) -> None:
        self.inner, self.limit, self.free_in = inner, limit, free_in
        self.hash = hashlib.sha256()
        self.count = 0
        self.queue: queue.Queue[bytes | BaseException] = queue.Queue(self._AHEAD)
        self.stopped = threading.Event()
        self.done = False
        self.thread = threading.Thread(target=self._produce, name="layer-decompress", daemon=True)
        self.thread.start()

    def _produce(self) -> None:
        try:
            while not self.stopped.is_set():
                data = self.inner.read(_CHUNK)
                if not data:
                    break
                self.count += len(data)
                if self.count > self.limit:
                    raise self._too_big()
                self.hash.update(data)
                self.queue.put(data)
            self.queue.put(b"")
        except BaseException as e:  # noqa: BLE001 - handed to the unpacker, which raises it
            self.queue.put(e)

    def _too_big(self) -> LayerError:
        if self.free_in is not None:
            return LayerError(f"no space left in {self.free_in}: the uncompressed layer is larger "
                              f"than the {self.limit} bytes free there")
        return LayerError(f"uncompressed layer exceeds {self.limit} bytes (MINIRUN_MAX_LAYER_BYTES): "
                          "refusing a possible decompression bomb")

    def __call__(self) -> bytes:
        """The next chunk; empty at the end."""
        if self.done:
            return b""
        item = self.queue.get()
        if isinstance(item, BaseException):
            self.done = True
            raise item
        self.done = not item
        return item

    def drain(self) -> None:
        """Read to the end (what follows the archive's end counts for the DiffID too)."""
        while self():
            pass
        self.thread.join()

    def close(self) -> None:
        """Stop the thread (after an error, or once drained)."""
        self.stopped.set()
        while self.thread.is_alive():
            try:
                self.queue.get(timeout=0.05)  # a put waiting for room
            except queue.Empty:
                pass
        self.thread.join()

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def decompressed(raw: BinaryIO, media_type: str) -> IO[bytes] | _GzipReader:
    if media_type in LAYER_GZIP:
        return _GzipReader(raw)
    if media_type in LAYER_ZSTD:
        import zstandard
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    if media_type in LAYER_TAR:
        return raw
    if "foreign" in media_type or "nondistributable" in media_type:
        raise LayerError(f"foreign layer type {media_type!r} is not supported (Windows base layers)")
    raise LayerError(f"unknown layer media type {media_type!r}")
