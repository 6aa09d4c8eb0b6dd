"""Mounts as data (``Mount``, which the snapshotter returns) and the container's mounts, made
from inside its new mount namespace (the child of ``process``).

The order is what keeps an image from steering a write onto the host: host paths (the
container's /etc files, volume sources, the init) are opened as detached mounts
(``open_tree``) while the host's root is still there; then ``pivot_root(".", ".")`` and the
old root is detached at once; only then is any container path resolved, by the kernel,
inside the container's root, where its symlinks can only lead to its own files.
"""

from __future__ import annotations

import os

from ..records import TYPE_CHECKING, Record
from . import _libc
from .mount import Mount
from .plan import MountEntry, Plan

if TYPE_CHECKING:
    from .syscalls import Syscalls

class Step:
    """What the child is doing, for the one-line error when it fails."""

    def __init__(self) -> None:
        self.name = "setting up"


def _mount_in(k: Syscalls, m: MountEntry) -> None:
    """Mount a new filesystem on its destination, after pivot_root: the path resolves inside
    the root."""
    k.makedirs(m.destination)
    k.mount(m.source, m.destination, m.type, m.flags, m.data)


def _make_devices(k: Syscalls, plan: Plan) -> None:
    """linux.devices, made in the container's /dev (its device cgroup decides which open),
    and the links every /dev has."""
    for d in plan.devices:
        k.mknod(d.path, d.mode | (0o020000 if d.kind == "c" else 0o060000), os.makedev(d.major, d.minor))
        k.chmod(d.path, d.mode)
    if not any(m.destination == "/dev" for m in plan.mounts):
        return  # the image's own /dev: nothing of ours to add to it
    if any(m.destination == "/dev/pts" for m in plan.mounts):
        k.symlink("pts/ptmx", "/dev/ptmx")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        k.symlink(target, f"/dev/{name}")


class _Detached(Record):
    """A host file or directory taken as a detached mount before pivot_root, to be attached
    at ``target`` (a container path) once the host's root is gone."""
    fd: int
    target: str
    readonly: bool
    is_dir: bool


def _detach(k: Syscalls, m: MountEntry) -> _Detached:
    if not os.path.exists(m.source):
        k.makedirs(m.source)  # as docker run -v does
    return _Detached(k.open_tree(m.source), m.destination, bool(m.flags & _libc.MS_RDONLY),
                     os.path.isdir(m.source))


def _attach(k: Syscalls, d: _Detached) -> None:
    """Attach ``d`` on its target, made if missing. After pivot_root with the old root
    detached, every symlink on the way resolves inside the container's root. A file bound
    over a symlink (an image's /etc/hosts -> elsewhere) replaces the link, not its target."""
    if not d.is_dir and os.path.islink(d.target):
        k.unlink(d.target)
    if d.is_dir:
        k.makedirs(d.target)
    elif not os.path.exists(d.target):
        k.makedirs(os.path.dirname(d.target))
        k.create_file(d.target)
    k.move_mount(d.fd, d.target)
    k.close(d.fd)
    if d.readonly:
        _remount_readonly(k, d.target)


def _remount_readonly(k: Syscalls, path: str, recursive: bool = False) -> None:
    """``path`` (a mount) read-only, keeping its nosuid, nodev, noexec and atime flags: a bind
    remount sets all of them anew, and one left out is cleared (runc keeps them too)."""
    flags = _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_RDONLY | (_libc.MS_REC if recursive else 0)
    k.mount(path, path, None, flags | k.mount_flags(path))


def _mask_and_protect(k: Syscalls, plan: Plan) -> None:
    """After every mount: the masked paths (absent ones are skipped) and read-only ones."""
    for path in plan.masked:
        if os.path.isdir(path):
            k.mount("tmpfs", path, "tmpfs", _libc.MS_RDONLY, None)
        elif os.path.exists(path):
            k.mount("/dev/null", path, None, _libc.MS_BIND)
    for path in plan.readonly:
        if os.path.exists(path):
            k.mount(path, path, None, _libc.MS_BIND | _libc.MS_REC)
            _remount_readonly(k, path, recursive=True)


def _mount_cgroups(k: Syscalls, m: MountEntry, view: list[tuple[str, str, str | None]]) -> None:
    """A ``cgroup`` mount: the container's own cgroup, read-only (``cgroups.container_view``)."""
    sealed = m.flags & ~_libc.MS_RDONLY
    for target, fstype, data in view:
        flags = sealed | (0 if fstype == "tmpfs" else m.flags & _libc.MS_RDONLY)
        _mount_in(k, MountEntry(target, fstype, fstype, flags, data))
    if view and view[0][1] == "tmpfs" and m.flags & _libc.MS_RDONLY:  # v1: read-only once its mounts are made
        k.mount(view[0][0], view[0][0], None, _libc.MS_REMOUNT | _libc.MS_RDONLY | sealed, "mode=755")


def enter_root(k: Syscalls, plan: Plan, rootfs_mounts: list[Mount], rootfs: str, step: Step,
               cgroup_view: list[tuple[str, str, str | None]]) -> None:
    """Mount the root filesystem, pivot into it, detach the host's root, then make the spec's
    mounts in their order. Host paths (binds) are opened before the pivot, as detached
    mounts; every container path is resolved after it, when no path leads out of the root."""
    step.name = "mounting the root filesystem"
    for layer in rootfs_mounts:
        k.mount_data(layer)
    step.name = "opening volumes"
    detached = {i: _detach(k, m) for i, m in enumerate(plan.mounts) if m.bind}
    step.name = "pivot_root"
    old_root = k.open_dir("/")
    k.chdir(rootfs)
    k.pivot_root(".", ".")  # the old root is now stacked on the new one, at /
    k.fchdir(old_root)
    k.umount(".", _libc.MNT_DETACH)
    k.close(old_root)
    k.chdir("/")
    for i, m in enumerate(plan.mounts):
        step.name = f"mounting {m.source}:{m.destination}" if m.bind else f"mounting {m.type} on {m.destination}"
        if m.bind:
            _attach(k, detached[i])
        elif m.type == "cgroup":
            _mount_cgroups(k, m, cgroup_view)
        else:
            _mount_in(k, m)
    step.name = "making devices"
    _make_devices(k, plan)
    step.name = "masking paths"
    _mask_and_protect(k, plan)
    if plan.root_readonly:
        step.name = "making the root filesystem read-only"
        _remount_readonly(k, "/")
