"""A container's cgroup, v2 (most users) and v1 (hybrid hosts, like ours): its device
policy and its resource limits.

Every container has one, ``minirun/<id>``, created before the program starts and
removed after it exits (``minirun rm`` removes it when its minirun was killed): the
device policy (see ``devices``) is what keeps a container from opening host disks.
On v1 that is the ``devices`` controller, plus ``memory``, ``pids`` and ``cpu`` only
when a limit asks for them (the container's process joins them itself: see
``joined_by_child``); on v2 one directory, with a BPF device program attached. ``--privileged`` has no device
policy (as Docker). The limits, as Docker sets them:

    --memory    v2 memory.max (+ memory.swap.max 0)   v1 memory.limit_in_bytes (+ memsw)
    --cpus      v2 cpu.max "quota period"             v1 cpu.cfs_quota_us / cpu.cfs_period_us
    --pids-limit v2/v1 pids.max
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path

from ..errors import UsageError
from ..records import Record
from . import _libc
from .devices import DeviceRule, program, v1_lines

ROOT = Path("/sys/fs/cgroup")
DEFAULT_PARENT = "minirun"  # containers' cgroups are PARENT/<id> (MINIRUN_CGROUP_PARENT sets another)
PERIOD = 100_000
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class Limits(Record):
    memory: int | None = None      # bytes
    cpus: float | None = None
    pids: int | None = None

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.memory, self.cpus, self.pids))


def parse_memory(text: str) -> int:
    """Docker's sizes: ``512m``, ``1g``, ``1048576`` (at least 6 MiB, as Docker requires)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", text.strip().lower())
    if not m:
        raise UsageError(f'invalid --memory "{text}": expected a size such as 512m or 1g')
    value = int(float(m.group(1)) * _UNITS[m.group(2)])
    if value < 6 << 20:
        raise UsageError(f'invalid --memory "{text}": the minimum is 6m')
    return value


def parse_limits(memory: str | None, cpus: str | None, pids: int | None) -> Limits:
    cpu_value = None
    if cpus is not None:
        try:
            cpu_value = float(cpus)
        except ValueError:
            raise UsageError(f'invalid --cpus "{cpus}": expected a number such as 0.5') from None
        if cpu_value <= 0 or cpu_value > os.cpu_count() * 1.0:  # type: ignore[operator]
            raise UsageError(f'invalid --cpus "{cpus}": must be above 0 and at most {os.cpu_count()}')
    if pids is not None and pids <= 0:
        raise UsageError(f'invalid --pids-limit "{pids}": must be a positive number')
    return Limits(parse_memory(memory) if memory is not None else None, cpu_value, pids)


def parent_from(environ: Mapping[str, str]) -> str:
    """The cgroup parent new containers go under: MINIRUN_CGROUP_PARENT (one or more plain
    names, as Docker's --cgroup-parent under cgroupfs: ``ci/job-42``), else ``minirun``. A
    second user's (or a test suite's) containers can then be told apart from the others."""
    text = environ.get("MINIRUN_CGROUP_PARENT", "").strip().strip("/") or DEFAULT_PARENT
    if not all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", part) for part in text.split("/")):
        raise UsageError(f'invalid MINIRUN_CGROUP_PARENT "{text}": expected names of letters, digits, '
                         "'.', '_' and '-', separated by '/'")
    return text


def container_view(cgroup: Cgroup | None, mountinfo: str) -> list[tuple[str, str, str | None]]:
    """The mounts (target, filesystem, data) that show a container its own cgroup at
    /sys/fs/cgroup, read-only, as Docker does (JVMs, Go and Node read their memory and CPU
    limits there). Made inside its cgroup namespace, whose root is its cgroup: v2, cgroup2
    itself; v1, a tmpfs holding one mount for each controller the container has a directory
    in, with the options of the host's hierarchy for it (``mountinfo``: the host's, read before
    pivot_root; a hierarchy such as ``cpu,cpuacct`` mounts only with all its options)."""
    if cgroup is None:
        return []
    if cgroup.v2:
        return [("/sys/fs/cgroup", "cgroup2", None)]
    hierarchies: dict[str, tuple[str, str]] = {}
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, where = right.split(), left.split()
        if len(fields) >= 3 and fields[0] == "cgroup" and len(where) >= 5:
            options = ",".join(o for o in fields[2].split(",") if o not in ("rw", "ro"))
            for controller in options.split(","):
                hierarchies.setdefault(controller, (os.path.basename(where[4]), options))
    wanted = dict(hierarchies[c] for c in cgroup.dirs if c in hierarchies)
    view: list[tuple[str, str, str | None]] = [("/sys/fs/cgroup", "tmpfs", "mode=755")]
    return view + [(f"/sys/fs/cgroup/{name}", "cgroup", data) for name, data in wanted.items()]


def version() -> int:
    return 2 if (ROOT / "cgroup.controllers").exists() else 1


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as e:
        raise OSError(e.errno, f"writing {value!r} to {path}: {e.strerror}") from None


_V1_CONTROLLERS = ("devices", "memory", "pids", "cpu")


class Cgroup:
    """The container's cgroup directories (one on v2; one per controller on v1).

    ``devices`` is the device policy (None: every device, as ``--privileged``)."""

    def __init__(self, container_id: str, limits: Limits, devices: tuple[DeviceRule, ...] | None,
                 parent: str = DEFAULT_PARENT) -> None:
        self.limits = limits
        self.devices = devices
        self.v2 = version() == 2
        name = Path(parent) / container_id
        if self.v2:
            self.dirs = {"all": ROOT / name}
        else:
            wanted = (("devices",) if devices is not None else ()) + \
                (("memory", "pids", "cpu") if limits.any else ())
            self.dirs = {c: ROOT / c / name for c in wanted}
        # What rm removes after a killed minirun: every directory this container may have.
        self.every_dir = [ROOT / name] if self.v2 else [ROOT / c / name for c in _V1_CONTROLLERS]

    @property
    def needed(self) -> bool:
        return self.devices is not None or self.limits.any

    def create(self) -> None:
        if self.v2 and self.limits.any:
            parent = self.dirs["all"].parent
            parent.mkdir(parents=True, exist_ok=True)
            wanted = [c for c in ("memory", "pids", "cpu")
                      if c in (ROOT / "cgroup.controllers").read_text().split()]
            between = [ROOT / p for p in reversed(parent.relative_to(ROOT).parents[:-1])]
            for level in (ROOT, *between, parent):  # each level hands the controllers down
                _write(level / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        for d in self.dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        if self.devices is not None:
            self._restrict_devices(self.devices)
        self._apply()

    def _restrict_devices(self, rules: tuple[DeviceRule, ...]) -> None:
        if not self.v2:
            d = self.dirs["devices"]
            _write(d / "devices.deny", "a")
            for line in v1_lines(rules):
                _write(d / "devices.allow", line)
            return
        d = self.dirs["all"]
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _libc.bpf_attach_device_program(fd, program(rules), str(d))
        finally:
            os.close(fd)

    def _apply(self) -> None:
        lim = self.limits
        if self.v2:
            d = self.dirs["all"]
            if lim.memory is not None:
                _write(d / "memory.max", str(lim.memory))
                if (d / "memory.swap.max").exists():
                    _write(d / "memory.swap.max", "0")
            if lim.cpus is not None:
                _write(d / "cpu.max", f"{int(lim.cpus * PERIOD)} {PERIOD}")
            if lim.pids is not None:
                _write(d / "pids.max", str(lim.pids))
            return
        if lim.memory is not None:
            _write(self.dirs["memory"] / "memory.limit_in_bytes", str(lim.memory))
            memsw = self.dirs["memory"] / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                _write(memsw, str(lim.memory))  # no swap beyond the limit: the OOM killer acts
        if lim.cpus is not None:
            _write(self.dirs["cpu"] / "cpu.cfs_period_us", str(PERIOD))
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(int(lim.cpus * PERIOD)))
        if lim.pids is not None:
            _write(self.dirs["pids"] / "pids.max", str(lim.pids))

    @property
    def joined_by_child(self) -> bool:
        """v1: the container's process moves itself ("0" into each ``tasks``). A thread that
        moves itself skips the kernel's global threadgroup lock, whose RCU grace period makes
        a write of a PID to ``cgroup.procs`` cost 10 to 15 ms here (0.4 ms this way). v2 has
        no such path (``cgroup.threads`` is for threaded cgroups): the parent uses ``add``."""
        return not self.v2

    def join_self(self) -> None:
        """In the (single-threaded) child, when ``joined_by_child``."""
        for d in self.dirs.values():
            _write(d / "tasks", "0")

    def join_existing(self) -> None:
        """exec's joining process: into every directory the container has (each controller it
        has on v1, its one directory on v2), as it is now."""
        for d in self.every_dir:
            if d.is_dir():
                _write(d / ("cgroup.procs" if self.v2 else "tasks"), "0")

    def add(self, pid: int) -> None:
        for d in self.dirs.values():
            _write(d / "cgroup.procs", str(pid))

    def processes(self) -> list[int]:
        """The PIDs left in any of the container's cgroup directories (v1: each controller)."""
        pids: set[int] = set()
        for d in self.every_dir:
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return sorted(pids)

    def remove(self) -> None:
        """After the process exited; a cgroup is removable once its last task is gone."""
        for d in self.every_dir:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        if self.v2:
            with contextlib.suppress(OSError):
                self.every_dir[0].parent.rmdir()
