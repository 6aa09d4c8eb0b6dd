"""A directory tree as a tar stream (export; cp out next), written by the confined child of
``runtime.inside`` from inside the container's root.

Nothing here looks a name up (no pwd or grp: libc would read the container's nsswitch.conf
and load its NSS modules), follows a symlink, or imports a module once it runs (the child is
chrooted): the entries carry numeric owners, links as they are, hard links once, devices and
FIFOs as nodes. A file that changes while it is read is cut or padded to the size its header
gave (tar cannot take it back), as GNU tar does with a warning.
"""

import io
import os
import stat
import tarfile
from typing import IO

_KINDS = {stat.S_IFDIR: tarfile.DIRTYPE, stat.S_IFLNK: tarfile.SYMTYPE, stat.S_IFCHR: tarfile.CHRTYPE,
          stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFIFO: tarfile.FIFOTYPE}


class _Exactly(io.RawIOBase):
    """``size`` bytes of a file: what it has, then zeros."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.left = fd, size

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        want = min(len(b), self.left)
        if want == 0:
            return 0
        data = os.read(self.fd, want) or bytes(want)
        b[:len(data)] = data
        self.left -= len(data)
        return len(data)


def write_tree(out: IO[bytes], top: str, prefix: str = "") -> None:
    """Every entry under ``top`` (``top`` itself as ``prefix`` when one is given), named
    relative to it, into a PAX tar on ``out``."""
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        if not prefix or _add(tf, top, prefix, links):  # (a file is its one entry)
            _walk(tf, top, prefix, links)


def _walk(tf: tarfile.TarFile, directory: str, name: str, links: dict[tuple[int, int], str]) -> None:
    with os.scandir(directory) as entries:
        children = sorted(entries, key=lambda e: e.name)
    for entry in children:
        path, inner = entry.path, f"{name}/{entry.name}" if name else entry.name
        if _add(tf, path, inner, links):
            _walk(tf, path, inner, links)


def _add(tf: tarfile.TarFile, path: str, name: str, links: dict[tuple[int, int], str]) -> bool:
    """One entry; whether it is a directory to go into."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False  # removed meanwhile (a running container)
    info = tarfile.TarInfo(name)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime)
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFREG and st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
        info.type, info.linkname = tarfile.LNKTYPE, links[(st.st_dev, st.st_ino)]
        tf.addfile(info)
        return False
    if kind == stat.S_IFREG:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except (FileNotFoundError, OSError):
            return False  # replaced meanwhile by something that is not a file
        try:
            info.size = st.st_size
            tf.addfile(info, _Exactly(fd, st.st_size))
        finally:
            os.close(fd)
        if st.st_nlink > 1:
            links[(st.st_dev, st.st_ino)] = name
        return False
    if kind == stat.S_IFSOCK or kind not in _KINDS:
        return False  # sockets are not archived (as tar's)
    info.type = _KINDS[kind]
    if kind == stat.S_IFLNK:
        info.linkname = os.readlink(path)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    tf.addfile(info)
    return kind == stat.S_IFDIR
