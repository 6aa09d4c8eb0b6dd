"""seccomp profiles in Docker's JSON format, read and narrowed to one container (pure).

A profile (``defaultAction``, ``syscalls[].names/action/args/includes/excludes``,
``archMap`` or ``architectures``) is read as Docker reads it, then narrowed as Docker narrows
it before handing it to runc: the rules whose ``includes`` (architectures, capabilities,
kernel version) hold and whose ``excludes`` do not, for this machine's architecture and the
container's capabilities; the architectures are the native one with its ``archMap``
sub-architectures (x86_64 with x86 and x32), so a call through another ABI meets the same
rules by name, never a rule meant for another number. ``seccomp_bpf`` compiles the result.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import UsageError
from .caps import NUMBER

# libseccomp's action values (seccomp.h); ERRNO and TRACE carry their number in the low bits.
ACTIONS = {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
           "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
           "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000}
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
             "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
EPERM = 1

# Docker's SCMP_ARCH_* names, as libseccomp names them; and this machine, as Go names it
# (the names ``includes.arches`` uses).
ARCHES = {"SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "x86_64", "SCMP_ARCH_X32": "x32",
          "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "aarch64", "SCMP_ARCH_MIPS": "mips",
          "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32", "SCMP_ARCH_MIPSEL": "mipsel",
          "SCMP_ARCH_MIPSEL64": "mipsel64", "SCMP_ARCH_MIPSEL64N32": "mipsel64n32", "SCMP_ARCH_PPC": "ppc",
          "SCMP_ARCH_PPC64": "ppc64", "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_S390": "s390",
          "SCMP_ARCH_S390X": "s390x", "SCMP_ARCH_RISCV64": "riscv64"}
GO_ARCH = {"x86_64": "amd64", "i686": "386", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64", "mips64": "mips64"}
_SECCOMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "386": "SCMP_ARCH_X86", "arm64": "SCMP_ARCH_AARCH64",
                 "arm": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
                 "riscv64": "SCMP_ARCH_RISCV64", "mips64": "SCMP_ARCH_MIPS64"}

DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "seccomp-default.json")


class Arg(NamedTuple):
    number: int      # the argument's position, 0 to 5 (the profile's "index")
    op: int
    value: int
    value_two: int


class Rule(NamedTuple):
    names: tuple[str, ...]
    action: int
    args: tuple[Arg, ...] = ()


class Filter(NamedTuple):
    """What libseccomp is given: the default action, the architectures, the rules."""
    default_action: int
    arches: tuple[str, ...]
    rules: tuple[Rule, ...]


def load(text: str, source: str) -> dict[str, Any]:
    """A profile's JSON, its shape checked: every problem is one UsageError naming ``source``."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise UsageError(f"seccomp profile {source}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"seccomp profile {source}: expected a JSON object")
    if doc.get("architectures") and doc.get("archMap"):
        raise UsageError(f"seccomp profile {source}: has both architectures and archMap")
    _action(doc.get("defaultAction"), doc.get("defaultErrnoRet"), source, "defaultAction")
    for arch in [*(doc.get("architectures") or []),
                 *(a.get("architecture") for a in _list(doc.get("archMap"), source, "archMap"))]:
        if arch not in ARCHES:
            raise UsageError(f"seccomp profile {source}: unknown architecture {arch!r}")
    for i, call in enumerate(_list(doc.get("syscalls"), source, "syscalls")):
        where = f"syscalls[{i}]"
        if "name" in call and "names" not in call:
            call["names"] = [call["name"]]  # Docker's format before 1.12
        names = call.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UsageError(f"seccomp profile {source}: {where}: names must be a list of system call names")
        _action(call.get("action"), call.get("errnoRet"), source, f"{where}.action")
        for j, arg in enumerate(_list(call.get("args"), source, f"{where}.args")):
            _arg(arg, source, f"{where}.args[{j}]")
    return doc


def _list(value: object, source: str, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise UsageError(f"seccomp profile {source}: {where} must be a list of objects")
    return value


def _action(name: object, errno_ret: object, source: str, where: str) -> int:
    if name not in ACTIONS:
        raise UsageError(f"seccomp profile {source}: {where}: unknown action {name!r} "
                         f"(expected one of {', '.join(sorted(ACTIONS))})")
    assert isinstance(name, str)
    if errno_ret is not None and (not isinstance(errno_ret, int) or not 0 <= errno_ret <= 0xFFFF):
        raise UsageError(f"seccomp profile {source}: {where}: errnoRet must be a number from 0 to 65535")
    base = ACTIONS[name]
    if name == "SCMP_ACT_ERRNO":
        return base | (EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return base | (errno_ret or EPERM)
    return base


def _arg(arg: Mapping[str, Any], source: str, where: str) -> Arg:
    index, value, two, op = arg.get("index"), arg.get("value", 0), arg.get("valueTwo", 0), arg.get("op")
    if not isinstance(index, int) or not 0 <= index <= 5:
        raise UsageError(f"seccomp profile {source}: {where}: index must be an argument number from 0 to 5")
    for v in (value, two):
        if not isinstance(v, int) or not 0 <= v < 1 << 64:
            raise UsageError(f"seccomp profile {source}: {where}: value and valueTwo must be 64-bit unsigned numbers")
    if op not in OPERATORS:
        raise UsageError(f"seccomp profile {source}: {where}: unknown op {op!r}")
    return Arg(index, OPERATORS[op], value, two)


def narrow(doc: Mapping[str, Any], go_arch: str, capabilities: frozenset[int],
           kernel: tuple[int, int]) -> Filter:
    """The rules of a ``load``ed profile that apply to a container with ``capabilities`` on
    this machine, as Docker selects them; rules with the default action are left out (they
    change nothing, and libseccomp refuses them)."""
    default = _action(doc.get("defaultAction"), doc.get("defaultErrnoRet"), "", "")
    native = _SECCOMP_ARCH.get(go_arch)
    arches = [ARCHES[a] for a in doc.get("architectures") or []]
    for entry in doc.get("archMap") or []:
        if entry.get("architecture") == native:
            arches += [ARCHES[a] for a in [entry["architecture"], *(entry.get("subArchitectures") or [])]
                       if a in ARCHES]
    cap_names = {"CAP_" + name for name, number in NUMBER.items() if number in capabilities}
    rules = []
    for call in doc.get("syscalls") or []:
        if not _applies(call, go_arch, cap_names, kernel):
            continue
        action = _action(call.get("action"), call.get("errnoRet"), "", "")
        if action == default:
            continue
        args = tuple(_arg(a, "", "") for a in call.get("args") or [])
        indexes = [a.number for a in args]
        if len(set(indexes)) < len(indexes):  # one argument compared twice: either may hold (as runc)
            rules += [Rule(tuple(call["names"]), action, (a,)) for a in args]
        else:
            rules.append(Rule(tuple(call["names"]), action, args))
    return Filter(default, tuple(dict.fromkeys(arches)), tuple(rules))


def _applies(call: Mapping[str, Any], go_arch: str, caps: set[str], kernel: tuple[int, int]) -> bool:
    includes, excludes = call.get("includes") or {}, call.get("excludes") or {}
    if includes.get("arches") and go_arch not in includes["arches"]:
        return False
    if go_arch in (excludes.get("arches") or ()):
        return False
    if not all(c in caps for c in includes.get("caps") or ()):
        return False
    if any(c in caps for c in excludes.get("caps") or ()):
        return False
    return not (includes.get("minKernel") and kernel < _version(includes["minKernel"]))


def _version(text: object) -> tuple[int, int]:
    parts = str(text).split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (0, 0)


def kernel_version(release: str) -> tuple[int, int]:
    """``6.1.0-18-amd64`` -> (6, 1)."""
    return _version(release.split("-")[0])


class Options(NamedTuple):
    """--security-opt, parsed: the profile (a path; "" for Docker's default; None: no
    filter) and no-new-privileges."""
    seccomp: str | None = ""
    no_new_privileges: bool = False


def parse_security_opts(opts: Sequence[str]) -> Options:
    """Docker's ``--security-opt`` forms: ``seccomp=PROFILE.json|unconfined``,
    ``no-new-privileges[=true|false]`` (the old ``seccomp:...`` spelling too). AppArmor and
    SELinux labels are refused: minirun applies neither, and saying nothing would be a lie."""
    out = Options()
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep and ":" in opt:
            key, sep, value = opt.partition(":")
        if key == "seccomp" and value:
            out = out._replace(seccomp=None if value == "unconfined" else value)
        elif key == "no-new-privileges" and value in ("", "true", "false"):
            out = out._replace(no_new_privileges=value != "false")
        elif key in ("apparmor", "label"):
            raise UsageError(f'--security-opt "{opt}": minirun has no AppArmor or SELinux support; '
                             "its confinement is namespaces, capabilities, seccomp and cgroups")
        else:
            raise UsageError(f'invalid --security-opt "{opt}": expected seccomp=PROFILE.json, seccomp=unconfined '
                             "or no-new-privileges[=true|false]")
    return out
