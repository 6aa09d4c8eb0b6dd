"""Every call a container's setup makes, behind one small interface (as youki's syscall seam).

``Kernel`` makes them for real. Each failure is an ``OSError`` whose text names the call,
the path and errno, as crun's do (``mknod /dev/null: File exists``), so the one line a
user sees says what failed where. The setup code (``process``, ``mounts``) calls nothing
else that changes the system, so a unit test can drive it with a stand-in that records
the calls, and check their order without root (tests/unit/test_setup_order.py).
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import signal
import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from . import _libc

if TYPE_CHECKING:
    from .cgroups import Cgroup
    from .mounts import Mount

T = TypeVar("T")


def _named(call: str, path: str, fn: Callable[..., T], *args: object) -> T:
    try:
        return fn(*args)
    except OSError as e:
        raise OSError(e.errno, f"{call} {path}: {e.strerror}") from None


def close_fds(*fds: int) -> None:
    """Close each descriptor given, passing over -1 (one not made)."""
    for fd in fds:
        if fd >= 0:
            os.close(fd)


def close_all_but(keep: Iterable[int], low: int = 3) -> None:
    """Close every descriptor from ``low`` up but those in ``keep``."""
    start = low
    for fd in sorted({k for k in keep if k >= low}):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 1 << 20)


class Kernel:
    # -- the process: its cgroup, session, keyring, namespaces, identity ----------------
    def join_cgroup(self, cgroup: Cgroup) -> None:
        cgroup.join_self()  # its errors name the file and the value written

    def prctl(self, option: int, arg: int = 0) -> None:
        _libc.prctl(option, arg)

    def setsid(self) -> None:
        _named("setsid", "", os.setsid)

    def join_session_keyring(self) -> None:
        _libc.join_new_session_keyring()

    def unshare(self, flags: int) -> None:
        _libc.unshare(flags)

    def join_netns(self, fd: int, what: str) -> None:
        """--network container:X: the network namespace open at ``fd`` (X's)."""
        _libc.setns(fd, _libc.CLONE_NEWNET, what)

    def signal_parent(self, fd: int, byte: bytes) -> None:
        _named("write", "the parent's pipe", os.write, fd, byte)

    def wait_parent(self, fd: int) -> bool:
        """A byte from the parent on ``fd``: False when it closed the pipe instead (it failed,
        and reports why itself)."""
        return _named("read", "the parent's pipe", os.read, fd, 1) == b"y"

    def sethostname(self, name: str) -> None:
        _libc.sethostname(name)

    def loopback_up(self) -> None:
        """ifconfig lo up, with one ioctl: no need to import pyroute2 on this path."""
        siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
        s = _libc.socket(_libc.AF_INET, _libc.SOCK_DGRAM)
        try:
            req = struct.pack("16sH14x", b"lo", 0)
            got = _named("ioctl SIOCGIFFLAGS", "lo", lambda: fcntl.ioctl(s, siocgifflags, req))
            flags = struct.unpack("16sH14x", got)[1]
            _named("ioctl SIOCSIFFLAGS", "lo", fcntl.ioctl, s, siocsifflags,
                   struct.pack("16sH14x", b"lo", flags | iff_up))
        finally:
            os.close(s)

    def disable_ipv6(self) -> None:
        """IPv6 off in this process's (new) network namespace, as Docker without --ipv6: a
        container then ignores router advertisements from another (its own addresses and
        routes stay IPv4). /proc/sys/net is the writer's namespace's, even through the host's
        /proc. A kernel without IPv6 has no such file: nothing to turn off."""
        for scope in ("all", "default"):
            path = f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return
            try:
                _named("write", path, os.write, fd, b"1")
            finally:
                os.close(fd)

    def setgroups(self, groups: list[int]) -> None:
        _named("setgroups", str(groups), os.setgroups, groups)

    def setgid(self, gid: int) -> None:
        _named("setgid", str(gid), os.setgid, gid)

    def setuid(self, uid: int) -> None:
        _named("setuid", str(uid), os.setuid, uid)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        _libc.capset(effective, permitted, inheritable)

    def setrlimit(self, which: int, soft: int, hard: int) -> None:
        from .spec import ULIMITS
        name = next((n for n, r in ULIMITS.items() if r == which), str(which))
        try:
            resource.setrlimit(which, (soft, hard))  # -1 is RLIM_INFINITY
        except ValueError:  # Python's word for EPERM here
            raise OSError(errno.EPERM, f"setrlimit {name} {soft}:{hard}: raising a hard limit takes "
                                       "CAP_SYS_RESOURCE, which minirun does not hold") from None
        except OSError as e:
            raise OSError(e.errno, f"setrlimit {name} {soft}:{hard}: {e.strerror}") from None

    def load_seccomp(self, program: bytes) -> None:
        _libc.load_seccomp(program)

    # -- mounts -------------------------------------------------------------------------
    def mount(self, source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
        _libc.mount(source, target, fstype, flags, data)

    def mount_data(self, m: Mount) -> None:
        from .mounts import mount
        mount(m)

    def umount(self, target: str, flags: int = 0) -> None:
        _libc.umount(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        _libc.pivot_root(new_root, put_old)

    def open_tree(self, path: str) -> int:
        return _libc.open_tree(path)

    def move_mount(self, fd: int, target: str) -> None:
        _libc.move_mount(fd, target)

    # -- files ----------------------------------------------------------------------------
    def makedirs(self, path: str) -> None:
        """mkdir -p through symlinks: after pivot_root, an image's /etc -> /elsewhere (even
        when /elsewhere is missing) makes /elsewhere inside the container's root, as runc does."""
        real = os.path.realpath(path)
        _named("mkdir", real, os.makedirs, real, 0o755, True)

    def mknod(self, path: str, mode: int, device: int) -> None:
        _named("mknod", path, os.mknod, path, mode, device)

    def chmod(self, path: str, mode: int) -> None:
        _named("chmod", path, os.chmod, path, mode)

    def symlink(self, target: str, path: str) -> None:
        _named("symlink", path, os.symlink, target, path)

    def unlink(self, path: str) -> None:
        _named("unlink", path, os.unlink, path)

    def create_file(self, path: str) -> None:
        os.close(_named("open", path, os.open, path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))

    def open_dir(self, path: str) -> int:
        return _named("open", path, os.open, path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def chdir(self, path: str) -> None:
        _named("chdir", path, os.chdir, path)

    def fchdir(self, fd: int) -> None:
        _named("fchdir", str(fd), os.fchdir, fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    # -- the last steps before exec -------------------------------------------------------
    def stdin_from_null(self) -> None:
        null = _named("open", "/dev/null", os.open, "/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)

    def close_descriptors(self, *keep: int) -> None:
        """Every inherited descriptor above 2 but ``keep`` (the error pipe closes on exec)."""
        close_all_but(keep)

    def default_signals(self) -> None:
        """Every signal at its default and none blocked: ignored signals survive exec, and
        Python ignores SIGPIPE and SIGXFSZ (the caller may have ignored others)."""
        for s in signal.valid_signals():
            if s not in (signal.SIGKILL, signal.SIGSTOP):
                try:
                    signal.signal(s, signal.SIG_DFL)
                except (OSError, ValueError):
                    continue  # signals the C library reserves for itself
        signal.pthread_sigmask(signal.SIG_SETMASK, [])

    def exec(self, path: str, argv: list[str], env: dict[str, str], search: bool) -> None:
        """execve, or with ``search`` execvpe (PATH); its errors are left as they are: the
        caller turns ENOENT/EACCES into docker run's 127/126 messages."""
        if search:
            os.execvpe(path, argv, env)
        os.execve(path, argv, env)
