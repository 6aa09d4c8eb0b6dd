"""libc calls Python's os module lacks, through cffi (ABI mode: no compiler needed).

Every failure raises OSError with errno, naming the call and the path, as crun does:
``mount overlay on /var/lib/minirun/...: Invalid argument``.
"""

from __future__ import annotations

import os
from typing import Any

# cffi's out-of-line ABI mode: the declarations in _libc_build.py were parsed once into
# _libc_ffi.py, so starting minirun does not load pycparser (about 25 ms).
from ._libc_ffi import ffi as _ffi

_lib: Any = _ffi.dlopen(None)

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 2

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# pivot_root has no libc wrapper; its number depends on the architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217,
                   "armv7l": 218, "i686": 217}.get(os.uname().machine, -1)


def _fail(call: str, path: str) -> OSError:
    err = _ffi.errno
    return OSError(err, f"{call} {path}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    rc = _lib.mount(source.encode(), target.encode(), fstype.encode() if fstype else _ffi.NULL,
                    flags, data.encode() if data is not None else _ffi.NULL)
    if rc != 0:
        raise _fail(f"mount {fstype or source} on", target)


def umount(target: str, flags: int = 0) -> None:
    if _lib.umount2(target.encode(), flags) != 0:
        raise _fail("umount", target)


def unshare(flags: int) -> None:
    if _lib.unshare(flags) != 0:
        raise _fail("unshare", hex(flags))


def setns(fd: int, nstype: int, what: str) -> None:
    """Join the namespace open at ``fd`` (``what`` names it in errors: its /proc path)."""
    if _lib.setns(fd, nstype) != 0:
        raise _fail("setns", what)


def sethostname(name: str) -> None:
    raw = name.encode()
    if _lib.sethostname(raw, len(raw)) != 0:
        raise _fail("sethostname", name)


AF_INET = 2
SOCK_DGRAM = 2
SOCK_CLOEXEC = 0o2000000


def socket(domain: int, kind: int) -> int:
    """A socket's bare file descriptor, for ioctls: the socket module costs a start 2 ms."""
    fd = int(_lib.socket(domain, kind | SOCK_CLOEXEC, 0))
    if fd < 0:
        raise _fail("socket", f"domain {domain}")
    return fd


def pivot_root(new_root: str, put_old: str) -> None:
    if _SYS_PIVOT_ROOT < 0:
        raise OSError(38, f"pivot_root {new_root}: not supported on {os.uname().machine}")
    rc = _lib.syscall(_SYS_PIVOT_ROOT, _ffi.new("char[]", new_root.encode()), _ffi.new("char[]", put_old.encode()))
    if rc != 0:
        raise _fail("pivot_root", new_root)


PR_SET_PDEATHSIG = 1


def prctl(option: int, arg2: int = 0) -> None:
    if _lib.prctl(option, arg2, 0, 0, 0) != 0:
        raise _fail("prctl", str(option))


PR_CAPBSET_DROP = 24
_CAP_V3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capabilities (64-bit masks, as version 3 takes them in two halves)."""
    header = _ffi.new("cap_header *", {"version": _CAP_V3, "pid": 0})
    data = _ffi.new("cap_data[2]")
    for i in (0, 1):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    if _lib.capset(header, data) != 0:
        raise _fail("capset", hex(permitted))
