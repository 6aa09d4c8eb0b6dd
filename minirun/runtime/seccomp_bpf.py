"""A container's seccomp filter (config.json's ``linux.seccomp``) compiled to a BPF program by
libseccomp (through cffi, out of line: no C parsing at run time), once per filter, kernel and
architecture: the program is kept in the store, keyed by all three, and a warm run only reads
it (libseccomp is loaded on a miss only).

libseccomp is the library runc, crun and Podman compile their filters with (Debian's
``libseccomp2``). The program checks the architecture first; a call unknown to the library
(a profile written for a newer kernel) is left out, as runc leaves it out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from .. import sha256
from ..errors import StoreError, UsageError
from ..records import TYPE_CHECKING
from .seccomp import ACTIONS, GO_ARCH, Filter, to_filter

if TYPE_CHECKING:
    from typing import Any

_FORMAT = 2  # changes when what is compiled from a profile changes: old programs are not reused
_EEXIST = 17
_UNKNOWN = -1  # __NR_SCMP_ERROR


def go_arch() -> str:
    machine = os.uname().machine
    return GO_ARCH.get(machine, machine)


def program_for(store: Path, section: Mapping[str, Any] | None) -> bytes:
    """The BPF program (``struct sock_filter`` entries) for a config.json's ``linux.seccomp``:
    from the store's cache, or compiled and cached (none, b"", for no section). A section that
    cannot be compiled is one UsageError."""
    if section is None:
        return b""
    text = json.dumps(section, sort_keys=True, separators=(",", ":")).encode()
    key = sha256.hexdigest(json.dumps([_FORMAT, go_arch(), os.uname().release]).encode() + b"\0" + text)
    cached = store / "seccomp" / f"{key}.bpf"
    try:
        return cached.read_bytes()
    except OSError:
        pass
    code = compile_filter(to_filter(section), "of the container")
    _keep(cached, code)
    return code


def prune_cache(store: Path) -> int:
    """system prune: the compiled programs cached for later runs (one per profile, kernel and
    capability set; a stale kernel's or profile's are never read again); the next run compiles
    what it needs again. Returns the bytes freed. A container's own copy (for exec) stays."""
    freed = 0
    for entry in (store / "seccomp").glob("*"):
        try:
            size = entry.stat().st_size
            entry.unlink()
            freed += size
        except OSError:
            continue  # another prune, or a run replacing it: nothing to say
    return freed


def _keep(cached: Path, code: bytes) -> None:
    """Into the cache, whole or not at all (a failure only costs the next run a compile)."""
    import tempfile  # (3 ms to import: a miss only)
    try:
        cached.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(code)
        os.replace(tmp, cached)
    except OSError:
        pass


_LOADED: list[Any] = []  # the library, opened once and kept: cffi closes it with its last reference


def library() -> tuple[Any, Any]:
    """(ffi, lib) of libseccomp, through the out-of-line module (no C parsing at run time); a
    UsageError when it is missing. The library stays open for the process: an out-of-line
    module's lib dlcloses it when dropped, and a pointer into it (seccomp_version's) would
    dangle."""
    from ._seccomp_ffi import ffi
    if not _LOADED:
        try:
            _LOADED.append(ffi.dlopen("libseccomp.so.2"))
        except OSError:
            raise UsageError("seccomp needs libseccomp (Debian: apt-get install libseccomp2), "
                             "or run with --security-opt seccomp=unconfined") from None
    return ffi, _LOADED[0]


def compile_filter(f: Filter, source: str) -> bytes:
    """``f`` as a BPF program, by libseccomp."""
    ffi, lib = library()
    ctx = lib.seccomp_init(f.default_action)
    if ctx == ffi.NULL:
        raise UsageError(f"seccomp profile {source}: libseccomp refused its default action")
    try:
        for arch in f.arches:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            rc = lib.seccomp_arch_add(ctx, token) if token else -_EEXIST
            if rc < 0 and rc != -_EEXIST:  # the native one is there from the start
                raise UsageError(f"seccomp profile {source}: architecture {arch}: {os.strerror(-rc)}")
        for rule in f.rules:
            conditions = ffi.new("struct scmp_arg_cmp[]", [(a.number, a.op, a.value, a.value_two) for a in rule.args]
                                 or 1)
            for name in rule.names:
                number = lib.seccomp_syscall_resolve_name(name.encode())
                if number == _UNKNOWN:  # (a call of another ABI only, socketcall, is below -10000)
                    continue  # unknown to this libseccomp: skipped, as runc skips it
                rc = lib.seccomp_rule_add_array(ctx, rule.action, number, len(rule.args), conditions)
                if rc < 0:
                    raise UsageError(f"seccomp profile {source}: the rule for {name}: {os.strerror(-rc)}")
        code = _export(lib, ctx, source)
    finally:
        lib.seccomp_release(ctx)
    if f.default_action == ACTIONS["SCMP_ACT_ALLOW"]:
        return code
    return enosys_stub(_newest_calls(ffi, lib, f)) + code


def _newest_calls(ffi: Any, lib: Any, f: Filter) -> dict[int, int]:
    """For each architecture of ``f`` (its libseccomp token), the highest system call number the
    profile names there."""
    newest: dict[int, int] = {}
    names = {name for rule in f.rules for name in rule.names}
    for arch in f.arches:
        token = lib.seccomp_arch_resolve_name(arch.encode())
        numbers = [lib.seccomp_syscall_resolve_name_arch(token, name.encode()) for name in names] if token else []
        if numbers and max(numbers) >= 0:
            newest[int(token)] = max(numbers)
    return newest


def _export(lib: Any, ctx: Any, source: str) -> bytes:
    """The program libseccomp writes, through a memory file (tempfile's imports alone cost a
    cold run 6 ms)."""
    fd = os.memfd_create("minirun-seccomp", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise UsageError(f"seccomp profile {source}: compiling: {os.strerror(-rc)}")
        os.lseek(fd, 0, os.SEEK_SET)
        code = b""
        while chunk := os.read(fd, 1 << 16):
            code += chunk
    finally:
        os.close(fd)
    if not code or len(code) % 8:
        raise StoreError(f"seccomp profile {source}: libseccomp gave a program of {len(code)} bytes")
    return code


# The kernel's audit architecture values (libseccomp's tokens are the same, but for x32,
# whose calls come as x86-64's with this bit set in the number).
_AUDIT_X86_64, _TOKEN_X32, _X32_BIT = 0xC000003E, 0x4000003E, 0x40000000
_LD_ABS, _JEQ, _JGT, _JSET, _JA, _RET = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
_ERRNO_ENOSYS = 0x00050000 | 38


def enosys_stub(newest: dict[int, int]) -> bytes:
    """What runc puts before a profile's program: a call numbered above the newest one the
    profile names (for its architecture) gets ENOSYS, not the profile's default EPERM, so
    that a C library falls back from a call the profile predates (fchmodat2, statmount,
    futex_wait, ...) to an older one, as it does on an older kernel. ``newest``: the highest
    number per libseccomp architecture token. The profile's program follows, unchanged."""
    newest = dict(newest)
    x32 = newest.pop(_TOKEN_X32, None)
    prog: list[str | tuple[int, str, str, int]] = [(_LD_ABS, "", "", 4)]  # seccomp_data.arch
    prog += [(_JEQ, f"arch{token}", "", token) for token in newest]
    prog.append((_JA, "main", "", 0))  # another architecture: the profile's program decides
    for token, number in newest.items():
        prog += [f"arch{token}", (_LD_ABS, "", "", 0)]  # seccomp_data.nr
        if token == _AUDIT_X86_64:  # an x32 call: its own numbers (or the profile's answer)
            prog.append((_JSET, "x32" if x32 is not None else "main", "", _X32_BIT))
        prog.append((_JGT, "enosys", "main", number))
    if x32 is not None and _AUDIT_X86_64 in newest:
        prog += ["x32", (_JGT, "enosys", "main", x32)]
    prog += ["enosys", (_RET, "", "", _ERRNO_ENOSYS)]
    return _assemble(prog)


def _assemble(prog: list[str | tuple[int, str, str, int]]) -> bytes:
    """Classic BPF from labels (strings, naming the next instruction) and (code, jt, jf, k)
    instructions whose jumps name labels; "main" is the instruction after the last (the
    profile's program). Jumps go forward only, as BPF's do."""
    import struct
    labels: dict[str, int] = {}
    rows: list[tuple[int, str, str, int]] = []
    for item in prog:
        if isinstance(item, str):
            labels[item] = len(rows)
        else:
            rows.append(item)
    labels["main"] = len(rows)
    out = b""
    for i, (code, jt, jf, k) in enumerate(rows):
        to = [labels[label] - i - 1 if label else 0 for label in (jt, jf)]
        out += struct.pack("=HBBI", code, 0, 0, to[0]) if code == _JA else struct.pack("=HBBI", code, *to, k)
    return out
