"""libc calls Python's os module lacks, through cffi (ABI mode: no compiler needed).

Every failure raises OSError with errno, naming the call and the path, as crun does:
``mount overlay on /var/lib/minirun/...: Invalid argument``.
"""

from __future__ import annotations

import os
import struct

from ..records import TYPE_CHECKING

# cffi's out-of-line ABI mode: the declarations in _libc_build.py were parsed once into
# _libc_ffi.py, so starting minirun does not load pycparser (about 25 ms).
from ._libc_ffi import ffi as _ffi
from .linux import *  # noqa: F403 - the calls' flags, used as _libc.NAME

if TYPE_CHECKING:
    from typing import Any

_lib: Any = _ffi.dlopen(None)

# Calls without a libc wrapper go through syscall(); their numbers depend on the architecture
# (open_tree and move_mount came after the tables were unified: the same everywhere).
_GENERIC = {"pivot_root": 41, "keyctl": 219, "bpf": 280, "open_tree": 428, "move_mount": 429}
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "keyctl": 250, "bpf": 321, "open_tree": 428, "move_mount": 429},
    "aarch64": _GENERIC, "riscv64": _GENERIC,
}.get(os.uname().machine, {})


def _syscall(name: str, *args: object) -> int:
    """syscall(2) by name; -1 with errno ENOSYS where this architecture's number is unknown."""
    number = _SYSCALLS.get(name)
    if number is None:
        _ffi.errno = 38  # ENOSYS
        return -1
    return int(_lib.syscall(number, *args))


def _long(value: int) -> object:
    return _ffi.cast("long", value)  # cffi needs a C type for each variadic argument


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
    if _syscall("pivot_root", _ffi.new("char[]", new_root.encode()), _ffi.new("char[]", put_old.encode())) != 0:
        raise _fail("pivot_root", new_root)


AT_FDCWD = -100
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_SYMLINKS = 0x10


def open_tree(path: str) -> int:
    """A detached copy of the mount tree at ``path`` (a recursive bind mount not yet
    attached anywhere), as a descriptor: it can be attached after the host's root is gone."""
    fd = _syscall("open_tree", _long(AT_FDCWD), _ffi.new("char[]", path.encode()),
                  _long(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE))
    if fd < 0:
        raise _fail("open_tree", path)
    return fd


def move_mount(fd: int, target: str) -> None:
    """Attach the detached mount ``fd`` on ``target`` (symlinks in it followed, as for mount)."""
    rc = _syscall("move_mount", _long(fd), _ffi.new("char[]", b""), _long(AT_FDCWD),
                  _ffi.new("char[]", target.encode()), _long(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS))
    if rc != 0:
        raise _fail("move_mount on", target)


KEYCTL_JOIN_SESSION_KEYRING = 1


def join_new_session_keyring() -> None:
    """A new anonymous session keyring, as runc gives each container: none of the caller's keys.
    A kernel without keyrings (ENOSYS) has nothing to leak."""
    if _syscall("keyctl", _long(KEYCTL_JOIN_SESSION_KEYRING), _ffi.NULL) < 0 and _ffi.errno != 38:
        raise _fail("keyctl", "join session keyring")


BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6


def bpf_attach_device_program(cgroup_fd: int, insns: bytes, what: str) -> None:
    """Load ``insns`` as a cgroup device program and attach it to the cgroup open at
    ``cgroup_fd`` (cgroup v2's device controller). The attachment keeps the program alive."""
    code = _ffi.new("char[]", insns)
    license_ = _ffi.new("char[]", b"Apache-2.0")
    log = _ffi.new("char[]", 4096)
    addr = int(_ffi.cast("uintptr_t", code)), int(_ffi.cast("uintptr_t", license_)), \
        int(_ffi.cast("uintptr_t", log))
    attr = _ffi.new("char[]", struct.pack("=IIQQIIQ", BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // 8,
                                          addr[0], addr[1], 1, 4096, addr[2]).ljust(128, b"\0"))
    prog = _syscall("bpf", _long(BPF_PROG_LOAD), attr, _long(128))
    if prog < 0:
        err = _fail("bpf load device program for", what)
        verifier = bytes(_ffi.buffer(log)).split(b"\0")[0].decode(errors="replace").strip().replace("\n", "; ")
        raise OSError(err.errno, f"{err.strerror}{': ' + verifier if verifier else ''}")
    try:
        attach = _ffi.new("char[]", struct.pack("=IIII", cgroup_fd, prog, BPF_CGROUP_DEVICE, 0).ljust(32, b"\0"))
        if _syscall("bpf", _long(BPF_PROG_ATTACH), attach, _long(32)) != 0:
            raise _fail("bpf attach device program to", what)
    finally:
        os.close(prog)


PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2


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


def load_seccomp(program: bytes) -> None:
    """Install ``program`` (``struct sock_filter`` entries, 8 bytes each) as this thread's
    seccomp filter: prctl(PR_SET_SECCOMP) with a ``struct sock_fprog`` pointing at it. The
    caller has CAP_SYS_ADMIN or no_new_privs, as the kernel requires."""
    code = _ffi.new("char[]", program)
    fprog = _ffi.new("char[]", struct.pack("=H6xQ", len(program) // 8, int(_ffi.cast("uintptr_t", code))))
    if _lib.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, _ffi.cast("unsigned long", fprog), 0, 0) != 0:
        raise _fail("prctl", "PR_SET_SECCOMP")


def set_title(title: str) -> None:
    """What ``ps`` shows of this process: ``title`` alone (see title.py)."""
    from .title import set_title as titled
    titled(title)
