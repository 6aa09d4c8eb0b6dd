"""What every container gets unless a flag says otherwise, as Docker gives it (moby's
``oci/defaults.go`` and ``daemon/oci_linux.go``), in the OCI runtime spec's words (pure)."""

from __future__ import annotations

from ..records import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.0.2"

# The container's own filesystems, in the order they are mounted. minirun's /dev is noexec as
# well (Docker's is not: nothing in /dev needs to be run).
MOUNTS: tuple[dict[str, Any], ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
     "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
)

MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# The device nodes made in every container's /dev: (name, major, minor), all 0666 and root's.
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
           ("tty", 5, 0))

# The device cgroup's rules (linux.resources.devices): all denied, then mknod of any node
# and the use of the default devices, /dev/console, /dev/ptmx and the pseudo-terminals.
DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2))),
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
)
ALL_DEVICES: tuple[dict[str, Any], ...] = ({"allow": True, "access": "rwm"},)  # --privileged

INIT_TARGET = "/sbin/docker-init"  # where --init's tini is bound, read-only, as Docker binds its own

NAMESPACES = ("pid", "ipc", "uts", "mount", "cgroup")  # and network, unless the host's is shared
