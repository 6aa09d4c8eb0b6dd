"""The one exception tree of minirun.

Every error names the operation, the object and the cause, so that ``cli.py`` can
print ``str(error)`` as the single line a user sees::

    MiniRunError
    ├── UsageError                 bad flag values, bad environment settings
    │   └── ArgumentsError         too few or too many arguments (exit 1, as Docker's)
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
    │   ├── ImageNotKnown          an image that is not in the store
    │   ├── BrokenImage            an image blob missing or damaged in the store (pull repairs)
    │   ├── NoSuchVolume           a volume that is not in the store
    │   └── NoSuchNetwork          a network that is not in the store
    ├── LayerError                 a layer that cannot be applied: bad tar, escapes, DiffID
    ├── CredentialsError           reading or writing Docker's config.json
    ├── ConfigError                minirun's own configuration file (/etc/minirun/config.toml)
    ├── OutputError                stdout or stderr cannot take what is written (a full disk)
    ├── InputError                 a file the user named cannot be read (load -i)
    ├── TemplateError              a --format template that does not parse, or a missing field
    ├── Interrupted                Ctrl-C (SIGINT) stopped the operation: exit 130
    └── ContainerError             containers, by name or ID, and their start
        ├── ContainerNotFound      no container has that name or ID (prefix)
        ├── ContainerConflict      a name in use, an ambiguous prefix, a running container
        └── ContainerStartError    the program could not be started; ``code`` is Docker's:
                                   125 minirun failed, 126 not executable, 127 not found

Python's own ``OSError`` is never let through to the user directly: the module that
does the I/O wraps it in a ``StoreError`` (or ``CredentialsError``) naming the path;
the container's setup reports the call, the path and errno (``mount proc on /proc: ...``).
"""

from __future__ import annotations


class MiniRunError(Exception):
    """Base of every error minirun reports to the user."""


class UsageError(MiniRunError):
    pass


class ArgumentsError(UsageError):
    """A command given too few or too many arguments: Docker's CLI exits 1 for these (run's
    too), where a flag it cannot parse is 125."""


class ConfigError(MiniRunError):
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
    """``errno``: the OSError's, when one caused it (ENOSPC is said as "no space left")."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class ImageNotKnown(StoreError):
    pass


class NoSuchVolume(StoreError):
    pass


class NoSuchNetwork(StoreError):
    pass


class BrokenImage(StoreError):
    """A blob an image needs is missing, or was damaged and has been removed: a pull
    fetches it again. ``digest`` names it."""

    def __init__(self, message: str, digest: str) -> None:
        super().__init__(message)
        self.digest = digest


class LayerError(MiniRunError):
    pass


class CredentialsError(MiniRunError):
    pass


# docker run's exit codes for a program that did not start (the program's own pass through).
EXIT_RUN_FAILED = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127


class OutputError(MiniRunError):
    pass


class TemplateError(MiniRunError):
    """A --format template that does not parse or names what is not there (Docker: exit 1)."""


class InputError(MiniRunError):
    """A file or stream the user named cannot be read (``load -i``)."""


class Interrupted(MiniRunError):
    """Raised by the CLI's SIGINT handler in place of KeyboardInterrupt, so that the typer
    layer does not take it, and an operation can say what an interruption leaves."""


class ContainerError(MiniRunError):
    pass


class ContainerNotFound(ContainerError):
    pass


class ContainerConflict(ContainerError):
    pass


class ContainerStartError(ContainerError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
