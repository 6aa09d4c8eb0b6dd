"""Apply one image layer to a directory tree, safely.

The tree is the *merged view* the layer applies to: an overlay mount whose upper
directory becomes the layer's snapshot, or (vfs driver) a copy of the parent. So a
whiteout is a real deletion (overlayfs records it as a 0:0 device or an opaque
directory), a hardlink to a lower layer's file works (overlayfs copies it up), and
a directory that a lower layer made a symlink is followed as Docker follows it.

Why not ``tarfile.extractall``: it drops setuid bits, refuses the absolute symlinks
real images carry, and judges links with the host's paths. Instead every path is
resolved by ``inroot``, component by component from a directory fd with ``O_NOFOLLOW``;
symlinks met on the way are followed *inside the root* (``..`` stops at the root,
an absolute target starts from it), like ``openat2(RESOLVE_IN_ROOT)``. Nothing is
ever opened, created or deleted through a path the kernel resolves on its own. The
layer's bytes come through ``layerstream`` (decompressed, DiffID-checked, bounded).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import LayerError
from .inroot import Root, lstat_at, remove_tree, split_name
from .layerstream import Chunks, decompressed
from .tarstream import Entry, TarStream

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20


# -- applying entries ---------------------------------------------------------

def _xattrs(info: Entry) -> Iterator[tuple[str, bytes]]:
    for key, value in info.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            name = key[len("SCHILY.xattr."):]
            if name.startswith("trusted.overlay."):
                continue  # a layer must not forge overlayfs's own bookkeeping
            yield name, value.encode("utf-8", "surrogateescape")


def _umask() -> int:
    """This process's umask, read without changing it (threads may be creating files)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o777  # unknown: every mode is set explicitly


class Applier:
    """Applies the entries of one layer to the tree at ``root_path``."""

    def __init__(self, root_path: str) -> None:
        self.root = Root(os.open(root_path, os.O_RDONLY | os.O_DIRECTORY))
        self.root_path = root_path
        self.created: set[tuple[str, ...]] = set()     # paths this layer has made
        self.dir_times: list[tuple[tuple[str, ...], int]] = []
        self.umask = _umask()
        self.stream: TarStream | None = None
        # Docker's size of a layer (its overlay2 DiffSize): the bytes of its files and symlinks,
        # a hardlink's inode once; directories and whiteouts count nothing.
        self.content_size = 0

    def close(self) -> None:
        self.root.close()

    def apply(self, stream: TarStream) -> None:
        self.stream = stream
        for info in stream:
            self.content_size += info.size if info.isreg() else len(info.linkname.encode()) if info.issym() else 0
            if len(self.root._cache) > 256:
                self.root.trim()  # bound open fds; only here, where no fd is in use
            try:
                self._entry(info)
            except LayerError as e:
                raise LayerError(f"entry {info.name!r}: {e}") from None
            except OSError as e:
                raise LayerError(f"entry {info.name!r}: {e.strerror or e}") from None
        # Directory times last: adding children changed them. Deepest first.
        for parts, mtime in sorted(self.dir_times, key=lambda x: -len(x[0])):
            if not parts:
                os.utime(self.root.fd, ns=(mtime, mtime))  # the root's own "./" entry
                continue
            try:
                os.utime(parts[-1], ns=(mtime, mtime), dir_fd=self.root.dir_fd(parts[:-1], False),
                         follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                continue  # a later entry of this layer removed or replaced it

    def _place(self, name: str) -> tuple[tuple[str, ...], int, str]:
        """Resolve the parent of ``name`` in the root: (full path, parent fd, base name)."""
        parts = split_name(name)
        if not parts:
            return (), -1, ""
        parent = self.root.resolve_dir(tuple(parts[:-1]))
        return (*parent, parts[-1]), self.root.dir_fd(parent), parts[-1]

    def _entry(self, info: Entry) -> None:
        path, pfd, base = self._place(info.name)
        if not path:
            if info.isdir():  # "./": the root directory's own metadata
                self._meta_dir((), info, fresh=False)
            return
        if base.startswith(WHITEOUT):
            self._whiteout(path, pfd, base)
            return
        if info.isdir():
            self._directory(path, pfd, base, info)
            return
        self.created.add(path)
        try:  # most entries are new: try first, look at what is there only when something is
            self._create(info, pfd, base)
        except FileExistsError:
            if info.islnk() and self._same_inode_as_target(info, os.stat(base, dir_fd=pfd, follow_symlinks=False)):
                return
            if stat.S_ISDIR(os.stat(base, dir_fd=pfd, follow_symlinks=False).st_mode):
                remove_tree(pfd, base)
                self.root.forget()
                pfd = self.root.dir_fd(path[:-1])
            else:
                os.unlink(base, dir_fd=pfd)
            self._create(info, pfd, base)

    def _directory(self, path: tuple[str, ...], pfd: int, base: str, info: Entry) -> None:
        fresh = True
        try:
            os.mkdir(base, 0o700, dir_fd=pfd)
        except FileExistsError:
            fresh = False
            if not stat.S_ISDIR(os.stat(base, dir_fd=pfd, follow_symlinks=False).st_mode):
                os.unlink(base, dir_fd=pfd)
                os.mkdir(base, 0o700, dir_fd=pfd)
                fresh = True
        self.created.add(path)
        self._meta_dir(path, info, fresh)

    def _create(self, info: Entry, pfd: int, base: str) -> None:
        if info.isreg():
            self._file(info, pfd, base)
        elif info.issym():
            os.symlink(info.linkname, base, dir_fd=pfd)
            self.root.forget_paths()  # a resolved path may now lead through it
            self._meta(pfd, base, info, symlink=True)
        elif info.islnk():
            self._hardlink(info, pfd, base)
        elif info.ischr() or info.isblk() or info.isfifo():
            kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK if info.isblk() else stat.S_IFIFO
            os.mknod(base, kind | 0o600, os.makedev(info.devmajor, info.devminor), dir_fd=pfd)
            self._meta(pfd, base, info)
        else:
            raise LayerError(f"unsupported tar entry type {info.type!r}")

    def _file(self, info: Entry, pfd: int, base: str) -> None:
        """A new file: created with its mode where the umask keeps it whole (no chmod), owned
        by root as created (no chown) unless the entry says otherwise."""
        assert self.stream is not None
        mode = stat.S_IMODE(info.mode)
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o777,
                     dir_fd=pfd)
        try:
            for piece in self.stream.content(info):
                while piece:
                    piece = piece[os.write(fd, piece):]
            if info.uid or info.gid:
                os.fchown(fd, info.uid, info.gid)
            if mode & (0o7000 | self.umask):
                os.fchmod(fd, mode)  # after chown, which clears setuid
            for k, v in _xattrs(info):
                os.setxattr(fd, k, v)
            mtime = int(info.mtime * 1e9)
            os.utime(fd, ns=(mtime, mtime))
        finally:
            os.close(fd)

    def _meta(self, pfd: int, base: str, info: Entry, symlink: bool = False) -> None:
        os.chown(base, info.uid, info.gid, dir_fd=pfd, follow_symlinks=False)
        if not symlink:
            # Safe to follow: we created this entry ourselves and it is not a symlink.
            os.chmod(base, stat.S_IMODE(info.mode), dir_fd=pfd)
        proc = f"/proc/self/fd/{pfd}/{base}"
        for k, v in _xattrs(info):
            try:
                os.setxattr(proc, k, v, follow_symlinks=False)
            except OSError as e:
                if not (symlink and e.errno in (errno.EPERM, errno.ENOTSUP)):
                    raise
        mtime = int(info.mtime * 1e9)
        os.utime(base, ns=(mtime, mtime), dir_fd=pfd, follow_symlinks=False)

    def _meta_dir(self, path: tuple[str, ...], info: Entry, fresh: bool) -> None:
        fd = self.root.dir_fd(path)
        if info.uid or info.gid or not fresh:  # one just made by root is root's already
            os.fchown(fd, info.uid, info.gid)
        os.fchmod(fd, stat.S_IMODE(info.mode))
        if path:
            for k, v in _xattrs(info):
                os.setxattr(fd, k, v)
        self.dir_times.append((path, int(info.mtime * 1e9)))

    def _link_target(self, info: Entry) -> tuple[int, str]:
        parts = split_name(info.linkname)
        if not parts:
            raise LayerError(f"hardlink to {info.linkname!r}: not a file")
        parent = self.root.resolve(parts[:-1], follow_last=True)
        try:
            tfd = self.root.dir_fd(parent, create=False)
        except (FileNotFoundError, NotADirectoryError):
            raise LayerError(f"hardlink target {info.linkname!r} does not exist") from None
        st = lstat_at(tfd, parts[-1])
        if st is None:
            raise LayerError(f"hardlink target {info.linkname!r} does not exist")
        if stat.S_ISDIR(st.st_mode):
            raise LayerError(f"hardlink target {info.linkname!r} is a directory")
        return tfd, parts[-1]

    def _same_inode_as_target(self, info: Entry, existing: os.stat_result) -> bool:
        tfd, tbase = self._link_target(info)
        st = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
        return (st.st_dev, st.st_ino) == (existing.st_dev, existing.st_ino)

    def _hardlink(self, info: Entry, pfd: int, base: str) -> None:
        tfd, tbase = self._link_target(info)
        before = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
        os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        after = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
        if (before.st_dev, before.st_ino) != (after.st_dev, after.st_ino) and before.st_nlink > 1:
            self._rejoin(before, tfd, tbase)

    def _rejoin(self, old: os.stat_result, tfd: int, tbase: str) -> None:
        """overlayfs copied a lower file up to link it, which split it from its other names
        (without index=on). Link those names to the copy too, as one inode, as the layers say.
        Rare (a link to a lower file that already had several names), so a walk is affordable.
        """
        for dirpath, _, filenames in os.walk(self.root_path):  # never follows symlinks
            for name in filenames:
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) != (old.st_dev, old.st_ino):
                    continue
                rel = tuple(os.path.relpath(os.path.join(dirpath, name), self.root_path).split("/"))
                dfd = self.root.dir_fd(rel[:-1], create=False)
                os.unlink(rel[-1], dir_fd=dfd)
                os.link(tbase, rel[-1], src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)

    def _prune(self, fd: int, parts: tuple[str, ...]) -> None:
        """Remove from directory ``parts`` (open at ``fd``) all that this layer did not make,
        keeping the directories that lead to what it made."""
        for c in os.listdir(fd):
            path = (*parts, c)
            st = os.stat(c, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode) and (path in self.created or _made_below(self.created, path)):
                sub = os.open(c, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    self._prune(sub, path)
                finally:
                    os.close(sub)
            elif path not in self.created:
                remove_tree(fd, c)

    def _deleted(self, parent: tuple[str, ...], base: str) -> str | None:
        """The name a whiteout ``base`` in ``parent`` deletes; None when there is nothing to
        do (this layer's own file of that name survives; other AUFS metadata)."""
        if base.startswith(WHITEOUT + WHITEOUT):
            return None  # .wh..wh.plnk and the like
        name = base[len(WHITEOUT):]
        if name in ("", ".", ".."):
            raise LayerError(f"whiteout {base!r} names no file")
        return None if (*parent, name) in self.created else name

    def _whiteout(self, path: tuple[str, ...], pfd: int, base: str) -> None:
        """Whiteouts hide what *lower* layers have; what this layer made survives."""
        parent = path[:-1]
        if base == OPAQUE:
            # The directory's lower content is hidden: everything in it this layer did not make
            # goes, also inside the directories it made, which held lower content too.
            self._prune(pfd, parent)
            self.root.forget()
            if parent:
                self.created.add(parent)
            return
        self._delete(parent, pfd, base)

    def _delete(self, parent: tuple[str, ...], pfd: int, base: str) -> str | None:
        """What whiteout ``base`` deletes, removed from ``parent`` (open at ``pfd``); its name,
        or None when there was nothing to do."""
        name = self._deleted(parent, base)
        if name is not None:
            remove_tree(pfd, name)
            self.root.forget()
        return name


def _made_below(created: set[tuple[str, ...]], path: tuple[str, ...]) -> bool:
    return any(len(q) > len(path) and q[:len(path)] == path for q in created)


def apply_layer(applier: Applier, raw: BinaryIO, media_type: str, diff_id: str, limit: int,
                free_in: str | None = None) -> None:
    """Apply the layer in ``raw`` with ``applier`` (an ``Applier`` of the tree, or an
    ``unpack_upper.UpperApplier``), which it closes (its ``content_size`` is the layer's size
    then). ``limit`` bounds the uncompressed size: the space free in the store ``free_in``,
    else a bomb's bound.

    Raises LayerError (the caller discards the tree) when its DiffID does not match.
    """
    try:
        chunks = Chunks(decompressed(raw, media_type), limit, free_in)
    except BaseException:
        applier.close()
        raise
    try:
        try:
            applier.apply(TarStream(chunks))
            chunks.drain()
        except Exception as e:
            if type(e).__module__.startswith("zstandard"):
                raise LayerError(f"zstd data is corrupt: {e}") from None
            raise
    finally:
        chunks.close()
        applier.close()
    if chunks.digest != diff_id:
        raise LayerError(f"uncompressed content has digest {chunks.digest}, config says DiffID {diff_id}")
