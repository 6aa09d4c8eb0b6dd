"""What every operation works with, made once per command: the store, its snapshots, the
registry settings. Nothing here prints.

The parts are built on first use and kept: a ``run`` that pulls builds the store and
probes overlayfs once. The registry's settings are read (and its modules imported) only
when asked for: ``run`` of a cached image must not load the HTTP client.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..content.blobs import ContentStore
from ..content.files import default_root
from ..content.images import ImageStore
from ..oci import Platform
from ..records import TYPE_CHECKING
from ..snapshots.rootfs import Snapshotter, choose_driver

if TYPE_CHECKING:
    from ..content.images import ImageRecord, ImageStore
    from ..oci import Platform
    from ..remote.endpoints import RegistryOptions


class Context:
    def __init__(self, root: Path, driver: str | None = None, mirrors: tuple[str, ...] = (),
                 insecure: tuple[str, ...] = ()) -> None:
        self.root = root
        self.driver = driver        # --storage-driver; None: MINIRUN_STORAGE_DRIVER or a probe
        self.mirrors = mirrors      # --registry-mirror (else MINIRUN_REGISTRY_MIRROR)
        self.insecure = insecure    # --insecure-registry (with MINIRUN_INSECURE_REGISTRIES)
        self._images: ImageStore | None = None
        self._snapshots: Snapshotter | None = None

    @classmethod
    def from_environment(cls, driver: str | None = None, mirrors: tuple[str, ...] = (),
                         insecure: tuple[str, ...] = ()) -> Context:
        return cls(default_root(), driver, mirrors, insecure)

    @property
    def images(self) -> ImageStore:
        if self._images is None:
            self._images = ImageStore(self.root, ContentStore(self.root))
        return self._images

    @property
    def snapshots(self) -> Snapshotter | None:
        """Snapshots need root (devices, ownership, mounts); others only download."""
        if self._snapshots is None and os.geteuid() == 0:
            self._snapshots = Snapshotter(self.root, choose_driver(self.root, self.driver))
        return self._snapshots

    def registry_options(self) -> RegistryOptions:
        from ..remote.endpoints import RegistryOptions, parse_mirror  # (httpx: a pull's only)
        env_mirrors = [m for m in os.environ.get("MINIRUN_REGISTRY_MIRROR", "").split(",") if m.strip()]
        env_insecure = [h.strip() for h in os.environ.get("MINIRUN_INSECURE_REGISTRIES", "").split(",")
                        if h.strip()]
        mirrors = [parse_mirror(m) for m in (self.mirrors or env_mirrors)]
        return RegistryOptions(mirrors, [*self.insecure, *env_insecure])

    def with_registry(self, mirrors: tuple[str, ...], insecure: tuple[str, ...]) -> Context:
        """The same store with a command's own registry flags."""
        other = Context(self.root, self.driver, mirrors, insecure)
        other._images, other._snapshots = self._images, self._snapshots
        return other


def asked_platform(flag: str | None) -> bool:
    """Whether a platform was asked for (--platform or DOCKER_DEFAULT_PLATFORM), not taken
    from this host."""
    return bool(flag or os.environ.get("DOCKER_DEFAULT_PLATFORM"))


def platform_mismatch(ref: str, record: ImageRecord, flag: str | None) -> str | None:
    """Docker's words when an image asked for by platform is another one's (a registry's
    single-platform manifest has no index to choose from): None when it matches, or when no
    platform was asked for."""
    want = wanted_platform(flag)
    if not asked_platform(flag) or record.is_for(want):
        return None
    return (f"image with reference {ref} was found but does not match the specified platform: "
            f"wanted {want}, actual: {record.platform}")


def wanted_platform(flag: str | None) -> Platform:
    """--platform, else DOCKER_DEFAULT_PLATFORM, else this host's (as Docker)."""
    text = flag or os.environ.get("DOCKER_DEFAULT_PLATFORM")
    return Platform.parse(text) if text else Platform.host()
