"""Mounts as data (``Mount``, which the snapshotter returns) and the container's mounts, made
from inside its new mount namespace (the child of ``process``).

The order is what keeps an image from steering a write onto the host: host paths (the
container's /etc files, volume sources, the init) are opened as detached mounts
(``open_tree``) while the host's root is still there; then ``pivot_root(".", ".")`` and the
old root is detached at once; only then is any container path resolved, by the kernel,
inside the container's root, where its symlinks can only lead to its own files.
"""

# No postponed annotations in this module: NamedTuple compiles string ones at import, and
# this is run's start path (quoted names below are those imported only for type checking).

import _thread
import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from . import _libc
from .spec import RunSpec

if TYPE_CHECKING:
    from .kernel import Kernel

_cwd_lock = _thread.allocate_lock()  # chdir is process-wide: one relative-path mount at a time


class Mount(NamedTuple):
    type: str
    source: str
    target: str
    options: tuple[str, ...] = ()
    cwd: str | None = None   # relative paths in options are relative to this directory


def mount(m: Mount) -> None:
    flags = _libc.MS_BIND | _libc.MS_REC if "rbind" in m.options else 0
    data = ",".join(o for o in m.options if o != "rbind") or None
    if m.cwd is None:
        _libc.mount(m.source, m.target, None if flags else m.type, flags, None if flags else data)
        return
    with _cwd_lock:
        old = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(m.cwd)
            _libc.mount(m.source, m.target, m.type, flags, data)
        finally:
            os.fchdir(old)
            os.close(old)


def unmount(target: str) -> None:
    with contextlib.suppress(OSError):
        _libc.umount(target, _libc.MNT_DETACH)


INIT_TARGET = "/sbin/docker-init"  # where --init's tini is bound, read-only, as Docker binds its own

# Docker's defaults (moby's oci/defaults.go): hidden and read-only parts of /proc and /sys.
MASKED = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
           ("tty", 5, 0))


class Step:
    """What the child is doing, for the one-line error when it fails."""

    def __init__(self) -> None:
        self.name = "setting up"


def _mount_in(k: "Kernel", path: str, fstype: str, flags: int, data: str | None) -> None:
    """Mount a new ``fstype`` on ``path``, after pivot_root: the path resolves inside the root."""
    k.makedirs(path)
    k.mount(fstype, path, fstype, flags, data)


def _setup_dev(k: "Kernel") -> None:
    nosuid = _libc.MS_NOSUID
    _mount_in(k, "/dev", "tmpfs", nosuid | _libc.MS_NOEXEC, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        k.mknod(f"/dev/{name}", 0o666 | 0o020000, os.makedev(major, minor))
        k.chmod(f"/dev/{name}", 0o666)
    _mount_in(k, "/dev/pts", "devpts", nosuid | _libc.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
    k.symlink("pts/ptmx", "/dev/ptmx")
    _mount_in(k, "/dev/shm", "tmpfs", nosuid | _libc.MS_NOEXEC | _libc.MS_NODEV, "mode=1777,size=65536k")
    _mount_in(k, "/dev/mqueue", "mqueue", nosuid | _libc.MS_NOEXEC | _libc.MS_NODEV, None)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        k.symlink(target, f"/dev/{name}")


class _Detached(NamedTuple):
    """A host file or directory taken as a detached mount before pivot_root, to be attached
    at ``target`` (a container path) once the host's root is gone."""
    fd: int
    target: str
    readonly: bool
    is_dir: bool


def _detach(k: "Kernel", source: str, target: str, readonly: bool) -> _Detached:
    return _Detached(k.open_tree(source), target, readonly, os.path.isdir(source))


def _attach(k: "Kernel", d: _Detached, replace_symlink: bool = False) -> None:
    """Attach ``d`` on its target, made if missing. After pivot_root with the old root
    detached, every symlink on the way resolves inside the container's root."""
    if replace_symlink and os.path.islink(d.target):
        k.unlink(d.target)  # the image's /etc/hosts -> elsewhere: ours replaces it, not its target
    if d.is_dir:
        k.makedirs(d.target)
    elif not os.path.exists(d.target):
        k.makedirs(os.path.dirname(d.target))
        k.create_file(d.target)
    k.move_mount(d.fd, d.target)
    k.close(d.fd)
    if d.readonly:
        k.mount(d.target, d.target, None, _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_RDONLY)


def _mask_and_protect(k: "Kernel") -> None:
    """After pivot_root: Docker's masked and read-only paths (absent ones are skipped)."""
    for path in MASKED:
        if os.path.isdir(path):
            k.mount("tmpfs", path, "tmpfs", _libc.MS_RDONLY, None)
        elif os.path.exists(path):
            k.mount("/dev/null", path, None, _libc.MS_BIND)
    for path in READONLY:
        if os.path.exists(path):
            k.mount(path, path, None, _libc.MS_BIND | _libc.MS_REC)
            k.mount(path, path, None, _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_RDONLY | _libc.MS_REC)


_FLAGS = {"ro": _libc.MS_RDONLY, "nosuid": _libc.MS_NOSUID, "nodev": _libc.MS_NODEV,
          "noexec": _libc.MS_NOEXEC}
_CLEARS = {"rw": _libc.MS_RDONLY, "suid": _libc.MS_NOSUID, "dev": _libc.MS_NODEV, "exec": _libc.MS_NOEXEC}


def _mount_cgroups(k: "Kernel", view: list[tuple[str, str, str | None]], step: Step) -> None:
    """/sys/fs/cgroup: the container's own cgroup, read-only (``cgroups.container_view``)."""
    step.name = "mounting /sys/fs/cgroup"
    sealed = _libc.MS_NOSUID | _libc.MS_NOEXEC | _libc.MS_NODEV
    for target, fstype, data in view:
        _mount_in(k, target, fstype, sealed | (0 if fstype == "tmpfs" else _libc.MS_RDONLY), data)
    if view and view[0][1] == "tmpfs":  # v1: the tmpfs holding the controllers, read-only once made
        k.mount(view[0][0], view[0][0], None, _libc.MS_REMOUNT | _libc.MS_RDONLY | sealed, "mode=755")


def mount_options(options: str) -> tuple[int, str | None]:
    """``noexec,nosuid,size=64m`` -> (mount flags, data the filesystem itself reads)."""
    flags, data = 0, []
    for o in filter(None, options.split(",")):
        if o in _FLAGS:
            flags |= _FLAGS[o]
        elif o in _CLEARS:
            flags &= ~_CLEARS[o]
        else:
            data.append(o)
    return flags, ",".join(data) or None


def enter_root(k: "Kernel", spec: RunSpec, mounts: list[Mount], rootfs: str, etc_files: dict[str, Path],
               step: Step, cgroup_view: list[tuple[str, str, str | None]]) -> None:
    """Mount the root filesystem, pivot into it, detach the host's root, then mount and bind
    everything else. Host paths are opened before the pivot (as detached mounts); every
    container path is resolved after it, when no path leads out of the container's root."""
    step.name = "mounting the root filesystem"
    for m in mounts:
        k.mount_data(m)
    step.name = "opening volumes"
    etc = [_detach(k, str(source), path, spec.read_only) for path, source in etc_files.items()]
    if spec.init:
        etc.append(_detach(k, spec.init, INIT_TARGET, True))
    volumes = []
    for b in spec.binds:
        if not os.path.exists(b.source):
            k.makedirs(b.source)  # as docker run -v does
        volumes.append(_detach(k, b.source, b.target, b.readonly))
    step.name = "pivot_root"
    old_root = k.open_dir("/")
    k.chdir(rootfs)
    k.pivot_root(".", ".")  # the old root is now stacked on the new one, at /
    k.fchdir(old_root)
    k.umount(".", _libc.MNT_DETACH)
    k.close(old_root)
    k.chdir("/")
    step.name = "mounting /proc, /dev and /sys"
    _mount_in(k, "/proc", "proc", _libc.MS_NOSUID | _libc.MS_NOEXEC | _libc.MS_NODEV, None)
    _setup_dev(k)
    _mount_in(k, "/sys", "sysfs", _libc.MS_RDONLY | _libc.MS_NOSUID | _libc.MS_NOEXEC | _libc.MS_NODEV, None)
    _mount_cgroups(k, cgroup_view, step)
    for d in etc:
        step.name = f"mounting {d.target}"
        _attach(k, d, replace_symlink=True)
    for b, d in zip(spec.binds, volumes, strict=True):
        step.name = f"mounting volume {b.source}:{b.target}"
        _attach(k, d)
    if not spec.privileged:
        step.name = "masking paths"
        _mask_and_protect(k)
    for path, options in spec.tmpfs:
        step.name = f"mounting tmpfs on {path}"
        flags, data = mount_options(options)
        _mount_in(k, path, "tmpfs", flags, data)
    if spec.read_only:
        step.name = "making the root filesystem read-only"
        k.mount("/", "/", None, _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_RDONLY, None)
