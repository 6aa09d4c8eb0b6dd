"""A tar stream (``cp``'s) into a directory, never leaving it.

Every entry is made from a directory descriptor opened component by component with
``O_NOFOLLOW`` (``inroot.Root``): a symlink an earlier entry made, or one already there, is
never followed to reach a later entry, so nothing is written outside the destination, as the
unpacker keeps a layer inside its snapshot. Unlike a layer, a ``.wh.`` name is an ordinary
file here, and device nodes are not made (a container's block device must not appear on the
host; ``cp`` into a container has no need of them). Owners are numeric (no name lookup: libc
would read the destination's nsswitch.conf): the archive's with ``keep_owner``, else
``owner``.
"""

import os
import stat
import tarfile
from typing import IO

from ..errors import LayerError
from .inroot import Root, lstat_at, remove_tree, split_name


def extract(stream: IO[bytes], into: int, rename_top: str | None, keep_owner: bool,
            owner: tuple[int, int]) -> int:
    """The entries of the tar on ``stream`` under the directory ``into`` (a descriptor); the
    first component of every name replaced by ``rename_top`` when given (cp to a new name).
    Returns how many entries were made."""
    root = Root(into)
    made = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tf:
            for info in tf:
                parts = split_name(info.name)
                if not parts:
                    continue
                if rename_top is not None:
                    parts[0] = rename_top
                _entry(root, tf, info, parts, keep_owner, owner)
                made += 1
    except (tarfile.TarError, EOFError) as e:
        raise LayerError(f"reading the copy's archive: {e}") from None
    finally:
        root.trim()
    return made


def _entry(root: Root, tf: tarfile.TarFile, info: tarfile.TarInfo, parts: list[str], keep_owner: bool,
           owner: tuple[int, int]) -> None:
    parent = root.dir_fd(tuple(parts[:-1]))  # made where missing; never through a symlink
    name = parts[-1]
    old = lstat_at(parent, name)
    if old is not None and not (info.isdir() and stat.S_ISDIR(old.st_mode)):
        remove_tree(parent, name)  # replaced, as cp replaces (a link is removed, never followed)
        root.forget()
        parent = root.dir_fd(tuple(parts[:-1]))
    if info.isdir():
        if old is None or not stat.S_ISDIR(old.st_mode):
            os.mkdir(name, 0o700, dir_fd=parent)
    elif info.isreg():
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        with os.fdopen(fd, "wb") as out:
            data = tf.extractfile(info)
            while data is not None and (chunk := data.read(1 << 20)):
                out.write(chunk)
    elif info.issym():
        os.symlink(info.linkname, name, dir_fd=parent)
    elif info.islnk():
        target = split_name(info.linkname)
        os.link(target[-1], name, src_dir_fd=root.dir_fd(tuple(target[:-1]), create=False), dst_dir_fd=parent,
                follow_symlinks=False)
        return  # its inode has its owner and mode already
    elif info.isfifo():
        os.mkfifo(name, 0o600, dir_fd=parent)
    else:
        return  # a device node (or an unknown kind): not made
    uid, gid = (info.uid, info.gid) if keep_owner else owner
    os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
    if not info.issym():
        os.chmod(name, info.mode & 0o7777, dir_fd=parent)  # after chown, which clears setuid
        os.utime(name, (info.mtime, info.mtime), dir_fd=parent, follow_symlinks=False)


class Destination:
    """Where ``cp`` puts what it copies, by Docker's rules: into DEST when it is a directory
    (under the source's own name, or its contents for ``SRC/.``); as DEST when it does not
    exist (its parent must) or is a file and the source is one too. ``into`` is a directory
    descriptor (the caller closes it), ``rename_top`` the name the source's top entry takes."""

    def __init__(self, dest: str, source_is_dir: bool, contents_only: bool) -> None:
        self.rename_top: str | None = None
        try:
            st = os.stat(dest)
        except FileNotFoundError:
            st = None
        except NotADirectoryError:
            raise LayerError(f"{dest}: a component of the path is not a directory") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            self.into = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            return
        if st is not None and source_is_dir:
            raise LayerError(f"cannot copy a directory to a file: {dest}")
        if dest.endswith("/"):
            raise LayerError(f"{dest}: no such directory")
        parent = os.path.dirname(dest) or "."
        try:
            self.into = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise LayerError(f"{parent}: no such directory") from None
        if contents_only:  # SRC/. to a new DEST: DEST made, the contents in it
            name = os.path.basename(dest)
            os.mkdir(name, 0o755, dir_fd=self.into)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.into)
            os.close(self.into)
            self.into = sub
            return
        self.rename_top = os.path.basename(dest)
