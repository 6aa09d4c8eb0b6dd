"""A seccomp profile in Docker's format narrowed to one container, as the OCI runtime spec's
``linux.seccomp`` (pure), and ``--security-opt`` parsed.

Docker narrows its profile before it hands it to runc, and so does this: the rules whose
``includes`` (architectures, capabilities, kernel version) hold and whose ``excludes`` do not,
for this machine's architecture and the container's capabilities; the architectures are the
native one with its ``archMap`` sub-architectures (x86_64 with x86 and x32), so a call
through another ABI meets the same rules by name, never a rule meant for another number.
The result is written into config.json whole: a container keeps its filter even when the
profile's file changes or goes, and ``inspect`` still names the file as it was given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..errors import UsageError
from ..records import TYPE_CHECKING, Record
from ..runtime.caps import NUMBER

if TYPE_CHECKING:
    from typing import Any

DEFAULT_PROFILE = os.path.join(os.path.dirname(__file__), "seccomp-default.json")

_SECCOMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "386": "SCMP_ARCH_X86", "arm64": "SCMP_ARCH_AARCH64",
                 "arm": "SCMP_ARCH_ARM", "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
                 "riscv64": "SCMP_ARCH_RISCV64", "mips64": "SCMP_ARCH_MIPS64"}
_ARG_KEYS = ("index", "value", "valueTwo", "op")


def oci_section(doc: Mapping[str, Any], go_arch: str, capabilities: frozenset[int],
                kernel: tuple[int, int]) -> dict[str, Any]:
    """``linux.seccomp`` for a container with ``capabilities`` on this machine, from a
    ``load``ed profile: only what applies, in the spec's words."""
    native = _SECCOMP_ARCH.get(go_arch)
    arches = list(doc.get("architectures") or [])
    for entry in doc.get("archMap") or []:
        if entry.get("architecture") == native:
            arches += [entry["architecture"], *(entry.get("subArchitectures") or [])]
    cap_names = {"CAP_" + name for name, number in NUMBER.items() if number in capabilities}
    out: dict[str, Any] = {"defaultAction": doc["defaultAction"]}
    if doc.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = doc["defaultErrnoRet"]
    out["architectures"] = list(dict.fromkeys(arches))
    calls = []
    for call in doc.get("syscalls") or []:
        if not call.get("names") or not _applies(call, go_arch, cap_names, kernel):
            continue
        rule: dict[str, Any] = {"names": list(call["names"]), "action": call["action"]}
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = call["errnoRet"]
        if call.get("args"):
            rule["args"] = [{k: a[k] for k in _ARG_KEYS if k in a} for a in call["args"]]
        calls.append(rule)
    out["syscalls"] = calls
    return out


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


class Options(Record):
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
