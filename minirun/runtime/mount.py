"""A root filesystem's mounts as data (``Mount``, which the snapshotter returns) and the one
call that makes each: the snapshotter (rootfs, above) hands these to the runtime, whose kernel
seam makes them; a leaf of the runtime, apart from the container's own mounts (``mounts``)."""

from __future__ import annotations

import _thread
import contextlib
import os

from ..records import Record
from . import _libc

_cwd_lock = _thread.allocate_lock()  # chdir is process-wide: one relative-path mount at a time


class Mount(Record):
    type: str
    source: str
    target: str
    options: tuple[str, ...] = ()
    cwd: str | None = None   # relative paths in options are relative to this directory


def mount(m: Mount) -> None:
    flags = _libc.MS_BIND | _libc.MS_REC if "rbind" in m.options else 0
    data = ",".join(o for o in m.options if o != "rbind") or None
    if m.cwd is None:
        _libc.mount(m.source, m.target, None if flags else m.type, flags, None if flags else data)
        return
    with _cwd_lock:
        old = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(m.cwd)
            _libc.mount(m.source, m.target, m.type, flags, data)
        finally:
            os.fchdir(old)
            os.close(old)


def unmount(target: str) -> None:
    with contextlib.suppress(OSError):
        _libc.umount(target, _libc.MNT_DETACH)
