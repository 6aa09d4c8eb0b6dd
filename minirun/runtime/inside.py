"""Work on a container's files from a child that sees only them (export; cp next).

The security rule, as runc and crun keep it: nothing a container controls is read while
holding more privilege than the container has. The child takes what it needs from the host
first (the mounts of the container's root filesystem, made in a mount namespace of its own,
and every module it will use: an import after the chroot would read the container's files),
then chroots into that root, then drops to the container's capabilities, no_new_privs and
its seccomp filter; only then does ``work`` run. Symlinks and ``..`` then resolve inside the
container's root by the kernel's own rule, whatever the container has made of its files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from ..errors import ContainerError
from . import _libc
from .caps import mask
from .kernel import Kernel
from .linux import CLONE_NEWNS, MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT
from .mount import Mount, mount
from .setup import drop_bounding_set, host_caps


def in_root(root: list[Mount] | int, capabilities: frozenset[int], program: bytes,
            work: Callable[[], None], what: str, binds: Sequence[tuple[str, str, bool]] = ()) -> None:
    """Run ``work`` in a child whose root is the container's, confined as the container is:
    ``root`` the mounts of its root filesystem (made in the child's own mount namespace, the
    last one its root), or a running container's mount namespace (a descriptor of
    /proc/PID/ns/mnt, opened by the caller: joined, its root and volumes as the container
    sees them). ContainerError with the child's reason when it fails. ``work`` writes only to
    descriptors the caller opened. ``binds`` (host source, container path, read-only): a
    stopped container's volumes and binds, attached in its root as it would have them (each
    source opened before the chroot, its path resolved inside the root after it)."""
    host = host_caps()
    errors_r, errors_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's end is its exit status
        os.close(errors_r)
        try:
            _enter(root, binds)
            _confine(capabilities, program, host.last_cap, host.held)
            work()
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - never back into the caller's code
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            os.write(errors_w, reason.encode(errors="replace")[:4000])
            os._exit(1)
    os.close(errors_w)
    with os.fdopen(errors_r, "rb") as r:
        reason = r.read().decode(errors="replace")
    _, status = os.waitpid(child, 0)
    if status != 0:
        raise ContainerError(f"{what}: {reason or f'its helper ended with status {status}'}")


def _enter(root: list[Mount] | int, binds: Sequence[tuple[str, str, bool]]) -> None:
    if isinstance(root, int):
        _libc.setns(root, CLONE_NEWNS, "the container's mount namespace")  # root and cwd: its root
        os.chdir("/")
        return
    _libc.unshare(CLONE_NEWNS)
    _libc.mount("none", "/", None, MS_REC | MS_PRIVATE)
    for m in root:
        mount(m)
    detached = [(_libc.open_tree(source), target, readonly) for source, target, readonly in binds]
    os.chroot(root[-1].target)
    os.chdir("/")
    for fd, target, readonly in detached:
        if not os.path.exists(target):
            continue  # never made (the container did not get that far): nothing of it to copy
        _libc.move_mount(fd, target)  # the path resolved inside the root
        if readonly:
            _libc.mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        os.close(fd)


def _confine(capabilities: frozenset[int], program: bytes, last_cap: int, held: int) -> None:
    """Down to the container's privilege: its bounding set, no_new_privs, its seccomp filter
    (loaded while CAP_SYS_ADMIN is still held), then only its capabilities."""
    drop_bounding_set(Kernel(), capabilities, last_cap)
    _libc.prctl(_libc.PR_SET_NO_NEW_PRIVS, 1)
    if program:
        _libc.load_seccomp(program)
    kept = mask(capabilities) & held
    _libc.capset(kept, kept, 0)
