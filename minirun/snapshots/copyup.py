"""Docker's copy-up: a new volume is given what the image has at the path it is mounted on.

The path is resolved inside the image's root filesystem (a read-only view of its snapshots,
on which no container runs) with the unpacker's in-root resolution, so a symlink in the image
(``/data -> /etc``, ``../../..``) leads only to the image's own files, never the host's.
What is copied keeps its owner, mode and times; symlinks are copied as they are, never
followed; devices and FIFOs are made again.
"""

import os
import shutil
import stat
from pathlib import Path

from .inroot import Root, split_name


def copy_up(view: Path, target: str, into: Path) -> bool:
    """Copy the image's directory at ``target`` into the empty volume ``into`` (its owner and
    mode too); False when the image has no directory there (nothing to copy)."""
    root = Root(os.open(view, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    try:
        real = root.resolve(split_name(target), follow_last=True)
        try:
            root.dir_fd(real, create=False)  # a directory, reached without leaving the view
        except (FileNotFoundError, NotADirectoryError):
            return False
    finally:
        root.close()
    source = os.path.join(view, *real)  # symlink-free inside a view nothing changes
    _copy_children(source, str(into))
    _same_metadata(os.lstat(source), str(into))
    return True


def _copy_children(source: str, dest: str) -> None:
    with os.scandir(source) as entries:
        for entry in entries:
            here, there = entry.path, os.path.join(dest, entry.name)
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(there, 0o700)
                _copy_children(here, there)
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(here, there, follow_symlinks=False)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(here), there)
            else:  # a device or a FIFO (a socket is not copied, as cp -a does not)
                if stat.S_ISSOCK(st.st_mode):
                    continue
                os.mknod(there, st.st_mode, st.st_rdev)
            _same_metadata(st, there)


def _same_metadata(st: os.stat_result, path: str) -> None:
    os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))  # after chown, which clears setuid bits
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
