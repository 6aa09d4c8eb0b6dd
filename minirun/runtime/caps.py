"""Linux capabilities as Docker grants them (pure): the default set, --cap-add, --cap-drop."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import UsageError

NAMES = ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
         "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
         "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
         "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
         "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
         "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE")
NUMBER = {name: i for i, name in enumerate(NAMES)}

# moby's oci/caps/defaults.go
DEFAULT = frozenset(NUMBER[n] for n in (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"))


def _number(name: str) -> int:
    key = name.upper().removeprefix("CAP_")
    if key not in NUMBER:
        raise UsageError(f'unknown capability: "{name}"')
    return NUMBER[key]


def capability_set(privileged: bool, add: Sequence[str], drop: Sequence[str], last_cap: int) -> frozenset[int]:
    """Docker's rules: ALL in --cap-add grants all, ALL in --cap-drop starts from none."""
    every = frozenset(range(last_cap + 1))
    for name in [*add, *drop]:
        if name.upper() != "ALL":
            _number(name)  # the error quotes the name as the user wrote it
    if privileged:
        return every
    adds = {a.upper().removeprefix("CAP_") for a in add}
    drops = {d.upper().removeprefix("CAP_") for d in drop}
    add_set = every if "ALL" in adds else frozenset(_number(a) for a in adds)
    drop_set = every if "ALL" in drops else frozenset(_number(d) for d in drops)
    if "ALL" in adds:
        return every - drop_set
    if "ALL" in drops:
        return add_set & every
    return ((DEFAULT | add_set) - drop_set) & every


def last_cap() -> int:
    """The highest capability this kernel knows (run and exec grant up to it with ALL)."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def mask(caps: frozenset[int]) -> int:
    return sum(1 << c for c in caps)
