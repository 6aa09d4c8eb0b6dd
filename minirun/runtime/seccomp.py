"""seccomp profiles as JSON (Docker's format, and the OCI runtime spec's ``linux.seccomp``,
its narrowed subset): their shape checked, and the spec's form read into what libseccomp is
given (pure). ``minirun.spec.seccomp`` narrows a Docker profile to one container;
``seccomp_bpf`` compiles the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..errors import UsageError
from ..records import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from typing import Any

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



class Arg(Record):
    number: int      # the argument's position, 0 to 5 (the profile's "index")
    op: int
    value: int
    value_two: int


class Rule(Record):
    names: tuple[str, ...]
    action: int
    args: tuple[Arg, ...] = ()


class Filter(Record):
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


def to_filter(section: Mapping[str, Any]) -> Filter:
    """A config.json's ``linux.seccomp`` (already narrowed to the container, as the spec
    builder writes it) as libseccomp is given it; rules with the default action are left out
    (they change nothing, and libseccomp refuses them)."""
    default = _action(section.get("defaultAction"), section.get("defaultErrnoRet"), "", "")
    arches = [ARCHES[a] for a in section.get("architectures") or [] if a in ARCHES]
    rules = []
    for call in section.get("syscalls") or []:
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
