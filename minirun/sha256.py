"""sha256 for the few small documents a warm run hashes (an image's config, ChainIDs, the
seccomp cache key) without loading OpenSSL: ``hashlib`` imports ``_hashlib``, whose
libcrypto costs a start 1.5 ms here, while the interpreter's own implementation loads in
0.04 ms. Streams (layers, blobs being downloaded) take ``hashlib``'s, where OpenSSL's speed
counts; it is imported only then."""

from __future__ import annotations

from .records import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    class Hash(Protocol):
        def update(self, data: bytes, /) -> None: ...
        def hexdigest(self) -> str: ...


def _builtin() -> Callable[[bytes], Hash] | None:
    for name in ("_sha256", "_sha2"):  # 3.11; 3.12 and later
        try:
            return __import__(name).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    return None


_SMALL = _builtin()


def hexdigest(data: bytes) -> str:
    """The sha256 of a small document, as hex."""
    if _SMALL is not None:
        return _SMALL(data).hexdigest()
    import hashlib
    return hashlib.sha256(data).hexdigest()


def stream() -> Hash:
    """A sha256 to feed a large stream (OpenSSL's)."""
    import hashlib
    return hashlib.sha256()
