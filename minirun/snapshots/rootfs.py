"""Layer snapshots keyed by ChainID, and container root filesystems as mount data.

Layout under ``<root>/snapshots/<driver>/``::

    <chain hex>/fs          the snapshot (overlay: the layer's diff; vfs: a full tree)
    l/<16 hex>              short symlink to ../<chain hex>/fs, for short mount options
    tmp/<chain hex>.<pid>/  a snapshot being made; renamed into place only when complete
    tmp/<chain hex>.lock    flock held by the one process unpacking that chain

The overlay driver applies a layer through an overlay mount of its parents with the
new snapshot as upper directory, so overlayfs itself writes whiteouts and opaque
directories in its own format. The vfs driver (for stores on overlayfs, or forced)
applies each layer to a copy of its parent, as Docker's vfs driver does.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .. import trace
from ..content.files import atomic_write, file_lock, ignore_failure, remove_tree, spread_children, tree_size
from ..content.images import ImageRecord, ImageStore
from ..errors import BrokenImage, LayerError, ManifestError, StoreError, UsageError
from ..oci import Descriptor, chain_ids, parse_config
from ..runtime.mount import Mount, mount, unmount

DRIVERS = ("overlay", "vfs")
DIFF_SIZE = "diffsize"  # in a snapshot's directory: its layer's size as Docker counts it
_SHORT = 16


def _overlay_works(directory: Path) -> bool:
    """Try a real overlay mount in the store: the only reliable test (overlay on overlay fails)."""
    probe = directory / f"probe.{os.getpid()}"
    try:
        for sub in ("lower", "upper", "work", "merged"):
            (probe / sub).mkdir(parents=True, exist_ok=True)
        mount(Mount("overlay", "overlay", str(probe / "merged"),
                    (f"lowerdir={probe / 'lower'}", f"upperdir={probe / 'upper'}", f"workdir={probe / 'work'}")))
        unmount(str(probe / "merged"))
        return True
    except OSError:
        return False
    finally:
        if not os.path.ismount(probe / "merged"):
            remove_tree(probe, ignore_failure)


def _copy_tree(source: Path, dest: Path) -> None:
    """The vfs driver's copy: everything kept (owners, modes, links, xattrs), shared blocks where
    the filesystem can. subprocess is imported here: overlay's start path never needs it."""
    import subprocess
    subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(dest)], check=True, capture_output=True)


def check_driver(name: str) -> str:
    if name not in DRIVERS:
        raise UsageError(f'invalid storage driver "{name}": expected overlay or vfs')
    return name


def choose_driver(root: Path, wanted: str | None) -> str:
    wanted = wanted or os.environ.get("MINIRUN_STORAGE_DRIVER") or None
    if wanted is not None:
        return check_driver(wanted)
    base = root / "snapshots"
    base.mkdir(parents=True, exist_ok=True)
    # The probe mounts and unmounts an overlay, 1.5 to 2.5 ms of every run: its verdict is
    # kept for the filesystem the store is on (a store moved to another one is probed again).
    verdict, device = base / "driver", str(base.stat().st_dev)
    with contextlib.suppress(OSError, ValueError):
        known_device, _, known = verdict.read_text().partition(" ")
        if known_device == device and known in DRIVERS:
            return known
    driver = "overlay" if _overlay_works(base) else "vfs"
    with contextlib.suppress(StoreError):
        atomic_write(verdict, f"{device} {driver}".encode())
    return driver


class Snapshotter:
    def __init__(self, root: Path, driver: str) -> None:
        self.driver = driver
        self.dir = root / "snapshots" / driver
        self.tmp = self.dir / "tmp"
        self.links = self.dir / "l"
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            self.links.mkdir(exist_ok=True)
        except OSError as e:
            raise StoreError(f"creating snapshot directory {self.dir}: {e.strerror}") from None

    def fs(self, chain: str) -> Path:
        return self.dir / chain.split(":", 1)[1] / "fs"

    def short(self, chain: str) -> str:
        return f"l/{chain.split(':', 1)[1][:_SHORT]}"

    def exists(self, chain: str) -> bool:
        """The snapshot is complete (renamed into place), its short link repaired if a kill
        came between the rename and the link."""
        if not self.fs(chain).is_dir():
            return False
        hexid = chain.split(":", 1)[1]
        link = self.links / hexid[:_SHORT]
        if not os.path.islink(link):
            with contextlib.suppress(FileExistsError):
                link.symlink_to(f"../{hexid}/fs")
        return True

    def chains(self) -> set[str]:
        return {"sha256:" + p.name for p in self.dir.iterdir() if len(p.name) == 64}

    def _lower(self, chains: list[str]) -> str:
        return "lowerdir=" + ":".join(self.short(c) for c in reversed(chains))  # top first

    def _discard(self, path: Path) -> None:
        _unmount_and_remove(path, path / "merged")

    def unpack(self, chain: str, parents: list[str], blob: Path, layer: Descriptor, diff_id: str,
               limit: int | None = None) -> bool:
        """Make the snapshot for ``chain`` unless it exists; True when made here."""
        hexid = chain.split(":", 1)[1]
        with file_lock(self.tmp / f"{hexid}.lock", what=f"another unpack of layer {layer.digest}"):
            if self.exists(chain):
                return False
            for stale in self.tmp.glob(f"{hexid}.*"):
                if stale.is_dir():
                    self._discard(stale)  # left by an unpack that was killed
            work = self.tmp / f"{hexid}.{os.getpid()}"
            spread_children(self.tmp)  # the layer away from the inodes a removal just freed
            work.mkdir()
            try:
                size = self._apply(work, parents, blob, layer, diff_id, limit)
                final = self.dir / hexid
                final.mkdir(exist_ok=True)  # may be left empty by a kill just after this line
                with contextlib.suppress(OSError):  # for images' SIZE (as Docker's)
                    (final / DIFF_SIZE).write_text(str(size))
                os.rename(work / "fs", final / "fs")
                link = self.links / hexid[:_SHORT]
                with contextlib.suppress(FileNotFoundError):
                    link.unlink()
                link.symlink_to(f"../{hexid}/fs")
            except OSError as e:
                raise StoreError(f"unpacking layer {layer.digest} into {work}: {e.strerror or e}") from None
            finally:
                self._discard(work)
            return True

    def _apply(self, work: Path, parents: list[str], blob: Path, layer: Descriptor, diff_id: str,
               limit: int | None) -> int:
        """The layer applied in ``work/fs``; its uncompressed size."""
        fs = work / "fs"
        free_in = None
        if limit is None:
            env = os.environ.get("MINIRUN_MAX_LAYER_BYTES")
            if env:
                limit = int(env)
            else:
                st = os.statvfs(self.dir)
                limit, free_in = st.f_bavail * st.f_frsize, str(self.dir.parent.parent)
        # Here: the run path of a cached image never needs them.
        from .unpack import Applier, apply_layer
        from .unpack_upper import UpperApplier
        if self.driver == "vfs" and parents:
            _copy_tree(self.fs(parents[-1]), fs)
        else:
            fs.mkdir()
        # overlay: into the snapshot's own directory, reading the layers below (no mount:
        # a create through one looked the name up in every lower layer first).
        applier = UpperApplier(str(fs), [str(self.fs(c)) for c in reversed(parents)]) \
            if self.driver == "overlay" and parents else Applier(str(fs))
        try:
            with open(blob, "rb") as raw:
                apply_layer(applier, raw, layer.media_type, diff_id, limit, free_in)
            return applier.content_size
        except LayerError as e:
            raise LayerError(f"unpacking layer {layer.digest}: {e}") from None

    def unpacked_size(self, chains: list[str]) -> int | None:
        """The image's size as Docker's SIZE: its layers' (see ``layer_size``); None when a
        snapshot is missing."""
        sizes = [self.layer_size(chain) for chain in chains]
        return None if None in sizes else sum(s for s in sizes if s is not None)

    def layer_size(self, chain: str) -> int | None:
        """A layer's files as Docker counts them (see ``Applier.content_size``); None when its
        snapshot is missing. One an older minirun made is measured now (overlay: its directory
        holds its layer alone) and the figure kept."""
        directory = self.dir / chain.split(":", 1)[1]
        try:
            return int((directory / DIFF_SIZE).read_text())
        except (OSError, ValueError):
            if self.driver != "overlay" or not (directory / "fs").is_dir():
                return None
        size = tree_size(directory / "fs")
        with contextlib.suppress(OSError):
            (directory / DIFF_SIZE).write_text(str(size))
        return size

    def prepare(self, chains: list[str], container_dir: Path) -> list[Mount]:
        """The container's root filesystem as mounts (applied by the runtime)."""
        rootfs = container_dir / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True)
        if self.driver == "overlay":
            upper, work = container_dir / "upper", container_dir / "work"
            upper.mkdir(exist_ok=True)
            work.mkdir(exist_ok=True)
            trace.event("container", "rootfs", f"root filesystem: overlay of {len(chains)} read-only snapshot(s) "
                        f"under a writable upper directory {upper}", driver="overlay", lower=list(reversed(chains)),
                        upper=str(upper))
            return [Mount("overlay", "overlay", str(rootfs),
                          (self._lower(chains), f"upperdir={upper}", f"workdir={work}"), cwd=str(self.dir))]
        if not any(rootfs.iterdir()):
            rootfs.rmdir()
            spread_children(container_dir)  # its copy, as a layer, away from what a removal just freed
            _copy_tree(self.fs(chains[-1]), rootfs)
        trace.event("container", "rootfs", f"root filesystem: a copy of the top snapshot in {rootfs} (vfs)",
                    driver="vfs", lower=[chains[-1]], upper=str(rootfs))
        return [Mount("bind", str(rootfs), str(rootfs), ("rbind",))]

    def container_view(self, chains: list[str], container_dir: Path) -> list[Mount]:
        """A container's root filesystem as its files are (its changes over its image), as a
        mount that writes nothing: an overlay whose lowest layers are the image's and whose
        top one is the container's upper directory, without an upper of its own (it may be
        mounted while the container runs). vfs: the container's own copy."""
        rootfs = container_dir / "rootfs"
        if self.driver != "overlay":
            return [Mount("bind", str(rootfs), str(rootfs), ("rbind",))]
        layers = f"lowerdir={container_dir / 'upper'}:" + self._lower(chains).partition("=")[2]
        return [Mount("overlay", "overlay", str(rootfs), (layers,), cwd=str(self.dir))]

    @contextlib.contextmanager
    def image_view(self, chains: list[str]) -> Iterator[Path]:
        """The image's root filesystem, read-only, for the duration (a volume's copy-up): the
        top snapshot itself where it is whole (vfs, or one layer), else an overlay of the
        snapshots mounted read-only under tmp/ (in the store's private directory)."""
        if self.driver == "vfs" or len(chains) == 1:
            yield self.fs(chains[-1])
            return
        import secrets  # (not at load: the run path of most containers never needs it)
        view = self.tmp / f"view-{os.getpid()}-{secrets.token_hex(4)}"
        view.mkdir()
        try:
            with mounted([Mount("overlay", "overlay", str(view), (self._lower(chains),), cwd=str(self.dir))]):
                yield view
        finally:
            view.rmdir()

    def remove_unused(self, keep: set[str]) -> tuple[list[str], int]:
        """Remove snapshots not in ``keep``, and work directories and locks of unpacks.

        Called with no pull or unpack running (the store's GC lock), so every work directory
        is stale and no lock is held. Returns the ChainIDs removed and the bytes freed.
        """
        for stale in self.tmp.iterdir():
            if stale.is_dir():
                self._discard(stale)
        removed, freed = [], 0
        for chain in sorted(self.chains() - keep):
            hexid = chain.split(":", 1)[1]
            with contextlib.suppress(FileNotFoundError):
                (self.links / hexid[:_SHORT]).unlink()
            freed += tree_size(self.dir / hexid)
            remove_tree(self.dir / hexid)
            removed.append(chain)
        for lock in self.tmp.glob("*.lock"):
            lock.unlink(missing_ok=True)
        return removed, freed


def image_layers(images: ImageStore, record: ImageRecord) -> list[tuple[Descriptor, str, str]]:
    """(layer descriptor, DiffID, ChainID) for each layer of an image, bottom first."""
    manifest = images.manifest_of(record)
    config = parse_config(images.content.read(record.config), record.reference)
    if len(config.diff_ids) != len(manifest.layers):
        raise ManifestError(f"{record.reference}: config lists {len(config.diff_ids)} diff_ids "
                            f"for {len(manifest.layers)} layers")
    return list(zip(manifest.layers, config.diff_ids, chain_ids(config.diff_ids), strict=True))


def unpack_layer(images: ImageStore, snap: Snapshotter, chains: list[str], index: int,
                 layer: Descriptor, diff_id: str) -> bool:
    """Make the snapshot of layer ``index`` (``chains``: the image's ChainIDs) from its blob.
    A blob that is missing, or fails to unpack because it is damaged, is a BrokenImage (a
    damaged one is removed), which a pull repairs; other failures are the layer's own."""
    content = images.content
    if not content.has(layer.digest):
        raise BrokenImage(f"unpacking layer {layer.digest}: its blob is not in the store at "
                          f"{images.root}", layer.digest)
    try:
        made = snap.unpack(chains[index], chains[:index], content.path(layer.digest), layer, diff_id)
        snapshot_event(made, chains[index], layer, diff_id)
        return made
    except LayerError:
        content.check_file(layer.digest)  # raises BrokenImage when the blob is not its digest
        raise


def ensure_image(images: ImageStore, snap: Snapshotter, record: ImageRecord) -> list[str]:
    """Unpack whatever snapshots of the image are missing; returns its ChainIDs."""
    layers = image_layers(images, record)
    chains = [chain for _, _, chain in layers]
    for index, (layer, diff_id, chain) in enumerate(layers):
        if not snap.exists(chain):
            unpack_layer(images, snap, chains, index, layer, diff_id)
        else:
            snapshot_event(False, chain, layer, diff_id)
    return chains


def snapshot_event(made: bool, chain: str, layer: Descriptor, diff_id: str) -> None:
    """--explain: a layer's snapshot, named by its ChainID (the DiffIDs below and its own)."""
    if trace.active():
        how = "unpacked into a new snapshot" if made else "its snapshot exists: reused"
        trace.event("snapshot", "unpacked" if made else "reused",
                    f"layer {layer.short_id}: DiffID {diff_id[:19]}..., ChainID {chain[:19]}...: {how}",
                    layer=layer.digest, diff_id=diff_id, chain_id=chain)


def chains_in_use(images: ImageStore, records: list[ImageRecord]) -> set[str]:
    keep: set[str] = set()
    for rec in records:
        with contextlib.suppress(StoreError, ManifestError):
            keep.update(c for _, _, c in image_layers(images, rec))
    return keep


@contextlib.contextmanager
def mounted(mounts: list[Mount]) -> Iterator[str]:
    """Mount a container root filesystem for the duration (tests, inspection)."""
    done: list[str] = []
    try:
        for m in mounts:
            mount(m)
            done.append(m.target)
        yield mounts[-1].target
    finally:
        for t in reversed(done):
            unmount(t)


def release_container(container_dir: Path) -> None:
    """Remove a container's directory with its root filesystem (overlay upper or vfs copy).

    Its state.json goes last, so a container that could not be removed whole (a read-only
    store, an immutable file) stays listed; the first failure is raised as a StoreError. A
    file that comes or goes meanwhile (its monitor, late, writing its end: a temporary file
    renamed onto state.json) is taken in another pass: CI saw ``rm -f`` take such a vanished
    file for the whole container removed by another rm, and leave it listed."""
    _unmount(container_dir, container_dir / "rootfs")
    failures: list[str] = []
    for _ in range(_PASSES):
        failures.clear()
        if _remove_pass(container_dir, failures):
            return
        if failures:
            break
        time.sleep(0.05)
    raise StoreError(f"removing container {container_dir.name[:12]}: "
                     f"{failures[0] if failures else 'files kept coming into it'}")


_PASSES = 20


def _remove_pass(container_dir: Path, failures: list[str]) -> bool:
    """One pass: True once the directory is gone; False with ``failures``, or without (a file
    came into it meanwhile: the caller tries again)."""
    def failed(path: str, error: OSError) -> None:
        if not isinstance(error, FileNotFoundError):  # gone meanwhile: what was wanted
            failures.append(f"{path}: {error.strerror}")

    try:
        children = list(container_dir.iterdir())
    except FileNotFoundError:
        return True  # removed meanwhile by another rm
    for child in children:
        if child.name == "state.json":
            continue
        try:
            if child.is_dir() and not child.is_symlink():
                remove_tree(child, failed)
            else:
                child.unlink()
        except FileNotFoundError:
            continue
        except OSError as e:
            failures.append(f"{e.filename or child}: {e.strerror}")
    if failures:
        return False
    try:
        (container_dir / "state.json").unlink(missing_ok=True)
        container_dir.rmdir()
    except FileNotFoundError:
        return True
    except OSError as e:
        if e.errno != errno.ENOTEMPTY:
            failures.append(f"{e.filename or container_dir}: {e.strerror}")
        return False
    return True


def _unmount(directory: Path, mountpoint: Path) -> None:
    """Never rmtree through a mount: that would delete what is mounted there (the image)."""
    if mountpoint.exists():
        unmount(str(mountpoint))
        if os.path.ismount(mountpoint):
            raise StoreError(f"removing {directory}: {mountpoint} is still mounted")


def _unmount_and_remove(directory: Path, mountpoint: Path) -> None:
    _unmount(directory, mountpoint)
    remove_tree(directory, ignore_failure)
