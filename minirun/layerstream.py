"""A layer's bytes as the unpacker reads them: decompressed (gzip, zstd or none), hashed
for the config's DiffID while streaming, and bounded in size (a decompression bomb stops
at the limit)."""

from __future__ import annotations

import hashlib
import zlib
from typing import IO, BinaryIO

from .errors import LayerError
from .oci import LAYER_GZIP, LAYER_TAR, LAYER_ZSTD

_CHUNK = 1 << 20


class _GzipReader:
    """Streaming gunzip of one or more members (zlib in C, no temp files).

    Decompressed data is served from ``buf`` at offset ``pos``: tarfile reads in
    small pieces, and re-slicing the whole buffer on each read cost seconds.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.buf, self.pos = raw, b"", 0
        self.z = zlib.decompressobj(47)

    def _more(self) -> bool:
        """Decompress another piece into the buffer; False at the clean end."""
        if self.z.unconsumed_tail:
            data = self.z.unconsumed_tail
        elif self.z.eof:
            # One member ended; another may follow (concatenated gzip is valid).
            data = self.z.unused_data or self.raw.read(_CHUNK)
            if not data:
                return False
            self.z = zlib.decompressobj(47)
        else:
            data = self.raw.read(_CHUNK)
            if not data:
                raise LayerError("gzip stream ends early (truncated layer)")
        try:
            piece = self.z.decompress(data, _CHUNK)
        except zlib.error as e:
            raise LayerError(f"gzip data is corrupt: {e}") from None
        self.buf = self.buf[self.pos:] + piece
        self.pos = 0
        return True

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buf) - self.pos < n) and self._more():
            pass
        end = len(self.buf) if n < 0 else min(len(self.buf), self.pos + n)
        out = self.buf[self.pos:end]
        self.pos = end
        return out


class VerifyingReader:
    """Hashes and counts the uncompressed stream; stops past ``limit`` bytes: the space free
    in the store ``free_in``, else a bound set against decompression bombs."""

    def __init__(self, inner: IO[bytes] | _GzipReader, limit: int, free_in: str | None = None) -> None:
        self.inner, self.limit, self.free_in = inner, limit, free_in
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.count += len(data)
        if self.count > self.limit:
            if self.free_in is not None:
                raise LayerError(f"no space left in {self.free_in}: the uncompressed layer is larger "
                                 f"than the {self.limit} bytes free there")
            raise LayerError(f"uncompressed layer exceeds {self.limit} bytes (MINIRUN_MAX_LAYER_BYTES): "
                             "refusing a possible decompression bomb")
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

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
