"""cp: files between a container and the host (or a tar stream), as Docker's ``cp``.

The container's side is always worked by a child in the container's root holding only the
container's privilege (``runtime.inside``): a running container's mount namespace is joined
(its volumes as it sees them); a stopped one's root filesystem is mounted in the child's own
namespace (read-only to copy out; its upper directory to copy in, under the container's lock
so that it does not start meanwhile). The tar in between is spooled in the store's ingest/.
The host's side is the caller's path, written with ``snapshots.extract`` (never through a
symlink the archive made).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, BinaryIO

from ..containers.state import ContainerState
from ..errors import ContainerNotFound, LayerError, UsageError
from ..pids import alive, owner_tag
from ..records import Record
from .containers import _current, changing, configured, confinement
from .context import Context

if TYPE_CHECKING:
    from ..runtime.mount import Mount

Root = tuple["list[Mount] | int", frozenset[int], bytes, list[tuple[str, str, bool]]]


class Copy(Record):
    archive: bool   # -a: the owners as they are (else the destination's root, or the caller)
    follow: bool    # -L: a symlink source is copied as what it points to


def split_end(text: str) -> tuple[str | None, str]:
    """``CONTAINER:PATH`` or a local path (one that starts with / or ., or has no colon)."""
    if text.startswith(("/", ".")) or ":" not in text:
        return None, text
    name, _, path = text.partition(":")
    if not name:
        raise UsageError(f'invalid cp end "{text}": no container name before the colon')
    return name, path or "/"


def _contents_only(path: str) -> bool:
    return path.endswith(("/.", "/./")) or path == "."


def copy_out(ctx: Context, key: str, src: str, dest: str, how: Copy, stream: IO[bytes] | None) -> None:
    """CONTAINER:SRC to the host path ``dest``, or as a tar to ``stream`` (``-``)."""
    from ..snapshots.tarwrite import write_tree
    path = posixpath.normpath("/" + src)
    prefix = "" if _contents_only(src) else (posixpath.basename(path) or ".")

    def work() -> None:
        top = os.path.realpath(path) if how.follow else path
        try:
            os.lstat(top)
        except FileNotFoundError:
            raise ContainerNotFound(f"Could not find the file {src} in container {key}") from None
        with os.fdopen(spool.fileno(), "wb", closefd=False) as out:
            write_tree(out, top, prefix)

    with _spool(ctx) as spool, _container_root(ctx, key, False) as (root, caps, program, binds):
        from ..runtime.inside import in_root
        in_root(root, caps, program, work, f"copying from container {key}", binds)
        spool.seek(0)
        if stream is not None:
            shutil.copyfileobj(spool, stream)
            return
        _extract_here(spool, dest, prefix, how)


def copy_in(ctx: Context, src: str, key: str, dest: str, how: Copy, stream: BinaryIO | None) -> None:
    """The host path ``src`` (or a tar from ``stream``: ``-``) to CONTAINER:DEST."""
    from ..snapshots.extract import Destination, extract
    from ..snapshots.tarwrite import write_tree
    with _spool(ctx) as spool:
        if stream is not None:
            shutil.copyfileobj(stream, spool)
            top_is_dir, prefix = True, ""
        else:
            top = os.path.realpath(src) if how.follow else src
            if not os.path.lexists(top):
                raise UsageError(f"copying {src}: no such file or directory")
            top_is_dir = os.path.isdir(top) and not os.path.islink(top)
            prefix = "" if _contents_only(src) else os.path.basename(os.path.normpath(src))
            write_tree(spool, top, prefix)
        spool.seek(0)
        target = posixpath.normpath("/" + dest) + ("/" if dest.endswith("/") else "")

        def work() -> None:
            place = Destination(target, top_is_dir, not prefix and stream is None)
            owner = (0, 0)  # the container's root, as Docker's (-a: the archive's)
            extract(spool, place.into, place.rename_top if prefix else None, how.archive, owner)

        with _container_root(ctx, key, True) as (root, caps, program, binds):
            from ..runtime.inside import in_root
            in_root(root, caps, program, work, f"copying to container {key}", binds)


def _extract_here(spool: IO[bytes], dest: str, prefix: str, how: Copy) -> None:
    import tarfile

    from ..snapshots.extract import Destination, extract
    with tarfile.open(fileobj=spool, mode="r:") as tf:  # what the source was: its first entry
        first = tf.next()
    spool.seek(0)
    source_is_dir = first is None or first.isdir() or not prefix
    try:
        place = Destination(dest, source_is_dir, not prefix)
        try:
            extract(spool, place.into, place.rename_top if prefix else None, how.archive,
                    (os.getuid(), os.getgid()))
        finally:
            os.close(place.into)
    except OSError as e:
        raise LayerError(f"copying to {dest}: {e.strerror or e}") from None


@contextlib.contextmanager
def _spool(ctx: Context) -> Iterator[IO[bytes]]:
    path = ctx.images.content.ingest_dir / f"cp-{owner_tag()}.tar"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "w+b") as f:
            path.unlink()  # nameless from now: nothing is left if this command dies
            yield f
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _container_root(ctx: Context, key: str, writing: bool) -> Iterator[Root]:
    """The container's root for ``in_root``, its capabilities and seccomp filter: its mount
    namespace when it runs, else its root filesystem (read-only, or under its lock to write)."""
    directory, state = _current(ctx, key)
    spec, settings = configured(ctx, directory)
    capabilities, program = confinement(ctx, (spec, settings), key)
    ns = _namespace_of(state)
    if ns is not None:
        try:
            yield ns, capabilities, program, []
        finally:
            os.close(ns)
        return
    snap = ctx.snapshots
    assert snap is not None  # root
    binds = _binds_of(spec)
    if not writing:
        yield snap.container_view(state.chains, directory), capabilities, program, binds
        return
    with changing(directory, key):
        yield snap.prepare(state.chains, directory), capabilities, program, binds


def _binds_of(spec: dict[str, object]) -> list[tuple[str, str, bool]]:
    """A stopped container's volumes and -v binds (not the /etc files or the init that
    minirun binds), in its config.json's order: cp sees what the container would."""
    from ..spec.defaults import INIT_TARGET
    skip = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", INIT_TARGET}
    mounts = spec.get("mounts")
    return [(str(m["source"]), str(m["destination"]), "ro" in (m.get("options") or []))
            for m in (mounts if isinstance(mounts, list) else [])
            if isinstance(m, dict) and m.get("type") == "bind" and m.get("destination") not in skip]


def _namespace_of(state: ContainerState) -> int | None:
    """A running container's mount namespace, opened (None: it does not run)."""
    if state.status != "running" or not state.pid or not alive(state.pid, state.pid_start):
        return None
    try:
        fd = os.open(f"/proc/{state.pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    if not alive(state.pid, state.pid_start):  # reused meanwhile: not the container's
        os.close(fd)
        return None
    return fd
