"""The one exception tree of minirun.

Every error names the operation, the object and the cause, so that ``cli.py`` can
print ``str(error)`` as the single line a user sees::

    MiniRunError
    ├── UsageError                 bad flag values, bad environment settings
    ├── ReferenceFormatError       an image reference that does not parse
    ├── RegistryError              anything the registry (or the way to it) said
    │   ├── ConnectionFailed       no route, refused, TLS failure, timeouts
    │   ├── AuthenticationFailed   401/403 after authenticating, bad token answer
    │   ├── NotFound               manifest or blob unknown, repository unknown
    │   ├── RateLimited            429 that retrying cannot fix (Docker Hub's pull limit)
    │   └── BadResponse            5xx after retries, malformed answers
    ├── ManifestError              manifests we cannot use (schema 1, bad JSON, no platform)
    │   └── PlatformNotFound
    ├── VerificationError          content that does not match its digest or size
    ├── StoreError                 the local store: disk full, permissions, corrupt index
    │   └── ImageNotKnown          an image that is not in the store
    ├── LayerError                 a layer that cannot be applied: bad tar, escapes, DiffID
    └── CredentialsError           reading or writing Docker's config.json

Python's own ``OSError`` is never let through to the user directly: the module that
does the I/O wraps it in a ``StoreError`` (or ``CredentialsError``) naming the path.
"""

from __future__ import annotations


class MiniRunError(Exception):
    """Base of every error minirun reports to the user."""


class UsageError(MiniRunError):
    pass


class ReferenceFormatError(MiniRunError):
    pass


class RegistryError(MiniRunError):
    pass


class ConnectionFailed(RegistryError):
    pass


class AuthenticationFailed(RegistryError):
    pass


class NotFound(RegistryError):
    pass


class RateLimited(RegistryError):
    def __init__(self, message: str, remaining: str | None = None) -> None:
        super().__init__(message)
        self.remaining = remaining


class BadResponse(RegistryError):
    pass


class ManifestError(MiniRunError):
    pass


class PlatformNotFound(ManifestError):
    pass


class VerificationError(MiniRunError):
    pass


class StoreError(MiniRunError):
    pass


class ImageNotKnown(StoreError):
    pass


class LayerError(MiniRunError):
    pass


class CredentialsError(MiniRunError):
    pass
