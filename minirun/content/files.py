"""The store's files on disk: where the store is, its private directories, and the helpers
every package borrows to keep what it writes whole (``atomic_write``, ``replacing``) and one
writer at a time (``file_lock``, an flock the kernel drops when its holder dies)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import notices
from ..errors import StoreError
from ..records import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import BinaryIO


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
    is_store = (root / "images").is_dir() or (root / "images.json").exists() or (root / "blobs").is_dir()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path in (root, *(root / d for d in PRIVATE_DIRS)):
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            path.mkdir(mode=0o700, exist_ok=True)  # umask can only take bits away
            continue
        if mode & 0o077 and (path != root or is_store):
            os.chmod(path, 0o700)


def store_error(action: str, path: Path | str, e: OSError) -> StoreError:
    return StoreError(f"{action} {path}: {e.strerror or e}", e.errno)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# FS_IOC_GETFLAGS / FS_IOC_SETFLAGS (the kernel reads and writes an int, whatever the
# number's size says) and FS_TOPDIR_FL, chattr's +T.
_GETFLAGS, _SETFLAGS, _TOPDIR = 0x80086601, 0x40086602, 0x00020000


def spread_children(path: Path) -> bool:
    """Mark ``path`` the top of directory hierarchies for ext4's inode allocator (chattr +T):
    each directory made in it is placed in a block group of its own choosing (Orlov's spread),
    and the files under it near it, rather than in ``path``'s group. A layer unpacked there
    then does not land where the last one deleted from the store just freed thousands of
    inodes: without a journal ext4 skips an inode freed in the last minutes, scanning past
    each such one at every create (a Debian layer unpacked 5 s after another was removed
    took 2.7 s instead of 1.3). False where the filesystem has no such flag (it has no such
    cost either); nothing is changed but the flag."""
    import struct
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = struct.unpack("i", fcntl.ioctl(fd, _GETFLAGS, b"\0\0\0\0"))[0]
        if not flags & _TOPDIR:
            fcntl.ioctl(fd, _SETFLAGS, struct.pack("i", flags | _TOPDIR))
        return True
    except OSError:
        return False
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
        fsync_dir(path.parent)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise store_error("writing", path, e) from None


@contextlib.contextmanager
def replacing(path: str) -> Iterator[BinaryIO]:
    """A file written whole or not at all at ``path``, which may lie outside the store, in a
    directory another user owns (``save -o /tmp/x.tar``), mode 0600 as Docker's.

    The file is made with O_TMPFILE: it has no name until it is whole, so a save killed part
    way leaves nothing behind (the kernel frees it). It is then linked under a name nobody can
    predict and renamed over ``path`` (a symlink there is replaced, not followed). Where the
    filesystem has no O_TMPFILE (NFS, FUSE) it is created under that name at once, with O_EXCL
    and O_NOFOLLOW (a symlink planted there is never followed)."""
    import errno
    import secrets
    head, tail = os.path.split(path)
    partial = os.path.join(head, f".{tail}.{secrets.token_hex(8)}.partial")
    try:
        fd, named = os.open(head or ".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600), False
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise
        fd, named = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600), True
    try:
        with open(fd, "wb") as f:
            yield f
            f.flush()
            if not named:
                _link_tmpfile(fd, partial)
                named = True
        os.replace(partial, path)
    except BaseException:
        if named:
            with contextlib.suppress(OSError):
                os.unlink(partial)
        raise


def _link_tmpfile(fd: int, name: str) -> None:
    """Give an O_TMPFILE file a name: linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N (Python
    calls plain link(2), which would link the magic symlink itself, unless given a dir fd)."""
    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(f"self/fd/{fd}", name, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


# A wait on a lock is said after this long (a prune waiting for pulls, a pull waiting for a
# prune, a second pull of the same layer), rather than being silent.
NOTICE_AFTER = 1.0


def _within(fd: int, mode: int, seconds: float) -> bool:
    """Whether the lock was had within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def wait_for_lock(fd: int, shared: bool, what: str,
                  give_up: tuple[float, Callable[[], float]] | None = None) -> None:
    """The lock, said to be waited for after NOTICE_AFTER. ``give_up`` (seconds, action): a
    bounded wait; after that long the action frees the lock (rm -f kills its holders) and
    says how much longer to wait before the wait fails."""
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    if give_up is None:
        if not _within(fd, mode, NOTICE_AFTER):
            notices.say(f"waiting for {what}")
            fcntl.flock(fd, mode)
        return
    seconds, action = give_up
    if not _within(fd, mode, seconds) and not _within(fd, mode, action()):
        raise StoreError(f"waiting for {what}: it did not let go")


@contextlib.contextmanager
def file_lock(path: Path, shared: bool = False, what: str = "", directory: bool = False,
              give_up: tuple[float, Callable[[], float]] | None = None) -> Iterator[None]:
    """An flock on ``path`` (a lock file, made if missing, or a ``directory``); the kernel
    drops it when the process dies, even by SIGKILL. ``what`` is what a wait is said to be
    for; ``give_up``: see ``wait_for_lock``."""
    try:
        if directory:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise store_error("opening lock", path, e) from None
    try:
        wait_for_lock(fd, shared, what or f"the lock {path}", give_up)
        yield
    finally:
        os.close(fd)


_TREE_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(top: Path | str, failed: Callable[[str, OSError], None] | None = None) -> None:
    """Remove a directory and everything in it, as ``shutil.rmtree``'s descriptor-based variant
    does: each name is opened relative to its directory's descriptor with O_NOFOLLOW, so a
    symbolic link planted in a container's files (swapped in while this runs, too) is removed,
    never followed. Each failure goes to ``failed`` (its path, the error); without it, the
    first is raised. Here and not shutil: shutil imports bz2 and lzma, 1.5 ms of every
    ``run --rm``'s start."""
    def report(path: str, e: OSError) -> None:
        if failed is None:
            raise e
        failed(path, e)

    try:
        fd = os.open(top, _TREE_FLAGS)
    except OSError as e:
        report(str(top), e)
        return
    try:
        _remove_children(fd, str(top), report)
    finally:
        os.close(fd)
    try:
        os.rmdir(top)
    except OSError as e:
        report(str(top), e)


def ignore_failure(_path: str, _error: OSError) -> None:
    """``remove_tree``'s ``failed`` for a best-effort removal (what is left is swept later)."""


def _remove_children(fd: int, where: str, report: Callable[[str, OSError], None]) -> None:
    with os.scandir(fd) as entries:
        children = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_dir in children:
        try:
            if is_dir:
                child = os.open(name, _TREE_FLAGS, dir_fd=fd)
                try:
                    _remove_children(child, f"{where}/{name}", report)
                finally:
                    os.close(child)
                os.rmdir(name, dir_fd=fd)
            else:
                os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            continue  # removed meanwhile
        except OSError as e:
            report(f"{where}/{name}", e)


def tree_size(top: Path) -> int:
    """Bytes of the regular files under ``top``, each inode once (layers hold hardlinks)."""
    seen: set[int] = set()
    total = 0
    for directory, _, files in os.walk(top):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(directory, name))
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_size
    return total


def text_or_empty(path: str) -> str:
    """A host file's text, or "" when it cannot be read (a missing /etc/hosts, an old kernel's
    /proc file): for what has a sensible default."""
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())  # as datetime's isoformat in UTC
