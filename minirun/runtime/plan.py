"""What the runtime carries out, read from a container's config.json (pure).

The spec says what a container is (``minirun.spec`` writes it); this reads it into the
runtime's terms: the namespaces to make or join in their order, every mount with its flags
and filesystem data, the device nodes, the cgroup and its rules, the process's identity and
limits. The runtime knows nothing of ``bridge`` or ``host``: a network namespace is made,
joined by path, or not asked for. A config.json that does not hold what is read here is one
StoreError naming it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import StoreError
from ..records import TYPE_CHECKING, Record
from . import linux as _libc
from .caps import NUMBER
from .cgroups import Limits
from .devices import DeviceRule
from .rlimit import RLIMITS

if TYPE_CHECKING:
    from typing import Any

# mount(8)'s option words as flags (set, or cleared), as runc reads a spec's mount options.
_SETS = {"ro": _libc.MS_RDONLY, "nosuid": _libc.MS_NOSUID, "nodev": _libc.MS_NODEV, "noexec": _libc.MS_NOEXEC,
         "sync": 0x10, "remount": _libc.MS_REMOUNT, "mand": 0x40, "dirsync": 0x80, "noatime": 0x400,
         "nodiratime": 0x800, "bind": _libc.MS_BIND, "rbind": _libc.MS_BIND | _libc.MS_REC,
         "relatime": 0x200000, "strictatime": 0x1000000}
_CLEARS = {"rw": _libc.MS_RDONLY, "suid": _libc.MS_NOSUID, "dev": _libc.MS_NODEV, "exec": _libc.MS_NOEXEC,
           "async": 0x10, "nomand": 0x40, "atime": 0x400, "diratime": 0x800, "norelatime": 0x200000,
           "nostrictatime": 0x1000000}
_PROPAGATION = ("private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable")

NAMESPACE_FLAGS = {"pid": _libc.CLONE_NEWPID, "network": _libc.CLONE_NEWNET, "mount": _libc.CLONE_NEWNS,
                   "ipc": _libc.CLONE_NEWIPC, "uts": _libc.CLONE_NEWUTS, "cgroup": _libc.CLONE_NEWCGROUP}


class MountEntry(Record):
    destination: str
    type: str
    source: str
    flags: int            # MS_* (for a bind: MS_RDONLY is applied by a remount after it)
    data: str | None      # what the filesystem itself reads

    @property
    def bind(self) -> bool:
        return bool(self.flags & _libc.MS_BIND)


class Device(Record):
    path: str
    kind: str             # "c" or "b"
    major: int
    minor: int
    mode: int
    uid: int
    gid: int


class Plan(Record):
    argv: tuple[str, ...]
    env: tuple[str, ...]     # without HOME unless set: HOME comes from the image's passwd
    cwd: str
    user: str                # resolved inside the container
    hostname: str
    tty: bool
    interactive: bool
    capabilities: frozenset[int]
    no_new_privileges: bool
    rlimits: tuple[tuple[int, int, int], ...]
    seccomp: Mapping[str, Any] | None      # linux.seccomp (compiled by seccomp_bpf)
    namespaces: tuple[tuple[str, str], ...]  # (type, path to join or "")
    mounts: tuple[MountEntry, ...]
    devices: tuple[Device, ...]
    masked: tuple[str, ...]
    readonly: tuple[str, ...]
    root_readonly: bool
    init: bool               # argv[0] is the bound init; the program is argv[2]
    cgroup_parent: str
    cgroup_name: str
    limits: Limits
    device_rules: tuple[DeviceRule, ...] | None   # None: every device (--privileged)

    def new(self, kind: str) -> bool:
        """Whether a namespace of ``kind`` is made (not joined, not the host's)."""
        return (kind, "") in self.namespaces


def mount_flags(options: list[str] | tuple[str, ...]) -> tuple[int, str | None]:
    """A spec mount's options -> (mount flags, data the filesystem itself reads)."""
    flags, data = 0, []
    for o in options:
        if o in _SETS:
            flags |= _SETS[o]
        elif o in _CLEARS:
            flags &= ~_CLEARS[o]
        elif o not in _PROPAGATION:  # mounts are private in the container's namespace anyway
            data.append(o)
    return flags, ",".join(data) or None


def plan(spec: Mapping[str, Any], interactive: bool, user: str | None, what: str) -> Plan:
    """config.json (``spec``) as the runtime carries it out; ``interactive`` and ``user`` (as
    typed or the image's, resolved in the container; None: process.user's numbers) come from
    its settings. ``what`` names it in errors."""
    try:
        return _plan(spec, interactive, user)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise StoreError(f"reading {what}: not a config.json minirun can run ({type(e).__name__}: {e})") from None


def _plan(spec: Mapping[str, Any], interactive: bool, user: str | None) -> Plan:
    process, linux = spec["process"], spec["linux"]
    numeric = process.get("user") or {}
    caps = process.get("capabilities") or {}
    resources = linux.get("resources") or {}
    parent, name = cgroup_location(linux)
    args = tuple(str(a) for a in process["args"])
    return Plan(
        argv=args, env=tuple(str(e) for e in process.get("env") or ()), cwd=str(process.get("cwd") or "/"),
        user=user if user is not None else f"{int(numeric.get('uid', 0))}:{int(numeric.get('gid', 0))}",
        hostname=str(spec.get("hostname") or ""), tty=bool(process.get("terminal")), interactive=interactive,
        capabilities=frozenset(NUMBER[c[4:]] for c in caps.get("bounding") or () if c[4:] in NUMBER),
        no_new_privileges=bool(process.get("noNewPrivileges")),
        rlimits=tuple((RLIMITS[r["type"]], _rlimit(r["soft"]), _rlimit(r["hard"]))
                      for r in process.get("rlimits") or ()),
        seccomp=linux.get("seccomp"),
        namespaces=tuple((str(n["type"]), str(n.get("path") or "")) for n in linux.get("namespaces") or ()),
        mounts=tuple(_mount(m) for m in spec.get("mounts") or ()),
        devices=tuple(Device(str(d["path"]), str(d["type"]), int(d["major"]), int(d["minor"]),
                             int(d.get("fileMode", 0o666)), int(d.get("uid", 0)), int(d.get("gid", 0)))
                      for d in linux.get("devices") or ()),
        masked=tuple(linux.get("maskedPaths") or ()), readonly=tuple(linux.get("readonlyPaths") or ()),
        root_readonly=bool((spec.get("root") or {}).get("readonly")),
        init=len(args) > 2 and args[1] == "--" and args[0] == "/sbin/docker-init",
        cgroup_parent=parent, cgroup_name=name, limits=_limits(resources),
        device_rules=_device_rules(resources.get("devices") or ()))


def cgroup_location(linux: Mapping[str, Any]) -> tuple[str, str]:
    """(parent, name) of a config.json's ``linux.cgroupsPath`` ("/PARENT/ID")."""
    parent, _, name = str(linux.get("cgroupsPath") or "").strip("/").rpartition("/")
    return parent, name


def _rlimit(value: int) -> int:
    return -1 if int(value) >= (1 << 63) else int(value)  # RLIM_INFINITY


def _mount(m: Mapping[str, Any]) -> MountEntry:
    flags, data = mount_flags(list(m.get("options") or ()))
    return MountEntry(str(m["destination"]), str(m.get("type") or ""), str(m.get("source") or ""), flags, data)


def _limits(resources: Mapping[str, Any]) -> Limits:
    memory = (resources.get("memory") or {}).get("limit")
    cpu = resources.get("cpu") or {}
    quota, period = cpu.get("quota"), cpu.get("period") or 100_000
    pids = (resources.get("pids") or {}).get("limit")
    return Limits(None if memory is None else int(memory), None if quota is None else quota / period,
                  None if pids is None else int(pids))


def _device_rules(rules: list[Mapping[str, Any]] | tuple[Mapping[str, Any], ...]) -> tuple[DeviceRule, ...] | None:
    """The device cgroup's rules after its leading deny-all; None when they allow every
    device (--privileged: no device cgroup, as Docker)."""
    if any(r.get("allow") and r.get("type", "a") == "a" and "major" not in r for r in rules):
        return None
    return tuple(DeviceRule(str(r["type"]), r.get("major"), r.get("minor"), str(r.get("access", "rwm")))
                 for r in rules if r.get("allow"))
