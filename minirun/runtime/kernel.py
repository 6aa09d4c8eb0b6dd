"""Every call a container's setup makes, behind one small interface (as youki's syscall seam).

``Kernel`` makes them for real. Each failure is an ``OSError`` whose text names the call,
the path and errno, as crun's do (``mknod /dev/null: File exists``), so the one line a
user sees says what failed where. The setup code (``process``, ``mounts``) calls nothing
else that changes the system, so a unit test can drive it with a stand-in that records
the calls, and check their order without root (tests/unit/test_setup_order.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import resource
import select
import signal
import stat
import struct
from collections.abc import Callable, Iterable

from ..errors import UsageError
from ..records import TYPE_CHECKING
from . import _libc
from .channel import FAILED, Channel, failed
from .mount import Mount, mount
from .rlimit import short_name

if TYPE_CHECKING:
    from .cgroups import Cgroup

if TYPE_CHECKING:
    from typing import NoReturn, TypeVar

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


def leave_caller(keep: Iterable[int], stdin: bool) -> None:
    """A monitor's start: a session of its own, none of the caller's descriptors but ``keep``
    (not a lock it holds, not its terminal), stdout and stderr on /dev/null (and stdin, with
    ``stdin``)."""
    os.setsid()
    close_all_but(keep)
    null = os.open(os.devnull, os.O_RDWR)  # (3 or above: close_all_but leaves 0-2 open)
    for fd in (0, 1, 2) if stdin else (1, 2):
        os.dup2(null, fd)
    os.close(null)


PASSWD_MAX = 4 << 20  # bytes of the image's /etc/passwd or /etc/group read at most


def read_table(path: str) -> str:
    """The image's /etc/passwd or /etc/group ("" when absent), inside the container's root.

    Only a regular file of at most PASSWD_MAX bytes: a link to /dev/zero or a FIFO there
    would otherwise grow or block minirun (O_NONBLOCK: opening a FIFO does not wait)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"reading {path} of the image: not a regular file")
        if info.st_size > PASSWD_MAX:
            raise UsageError(f"reading {path} of the image: larger than {PASSWD_MAX >> 20} MiB")
        return os.read(fd, PASSWD_MAX + 1)[:PASSWD_MAX].decode(errors="replace")
    finally:
        os.close(fd)


class Kernel:
    """The calls made for real. ``channel``: the process's end of the channel to its parent
    (``tell``, ``hear`` and ``report`` use it)."""

    def __init__(self, channel: int = -1) -> None:
        self.channel = Channel(channel)

    # -- the process: its cgroup, session, keyring, namespaces, identity ----------------
    def join_cgroup(self, cgroup: Cgroup) -> None:
        cgroup.join_self()  # its errors name the file and the value written

    def join_cgroup_of(self, cgroup: Cgroup) -> None:
        """exec: the running container's cgroup, every directory it has."""
        cgroup.join_existing()

    def prctl(self, option: int, arg: int = 0) -> None:
        _libc.prctl(option, arg)

    def setsid(self) -> None:
        _named("setsid", "", os.setsid)

    def join_session_keyring(self) -> None:
        _libc.join_new_session_keyring()

    def unshare(self, flags: int) -> None:
        _libc.unshare(flags)

    def setns(self, fd: int, kind: int, what: str) -> None:
        """Join the namespace open at ``fd`` (of type ``kind``, CLONE_NEW*), named ``what``."""
        _libc.setns(fd, kind, what)

    def tell(self, kind: bytes, fd: int = -1) -> None:
        """A message to the parent (``fd``: a descriptor sent with it)."""
        _named("sendmsg", "the channel to the parent", self.channel.send, kind, b"", fd)

    def hear(self, kind: bytes) -> bool:
        """Whether the parent's next message is ``kind``: False when it closed the channel
        instead (it failed, and reports why itself)."""
        got = _named("recvmsg", "the channel to the parent", self.channel.receive)
        return got is not None and got.kind == kind

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
        name = short_name(which)
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
        mount(m)

    def mount_flags(self, path: str) -> int:
        """The per-mount flags of the mount at ``path`` that a remount must repeat (MS_NOSUID,
        MS_NODEV, MS_NOEXEC, MS_NOATIME, MS_NODIRATIME: statvfs gives them the same values)."""
        return _named("statvfs", path, os.statvfs, path).f_flag & (_libc.MS_NOSUID | _libc.MS_NODEV |
                                                                     _libc.MS_NOEXEC | 0x400 | 0x800)

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

    # -- exec's joining process and the terminal ---------------------------------------------
    def set_title(self, title: str) -> None:
        _libc.set_title(title)

    def clear_environment(self) -> None:
        os.environ.clear()

    def dup2(self, fd: int, to: int) -> None:
        os.dup2(fd, to)

    def keep_only(self, keep: Iterable[int], low: int = 3) -> None:
        close_all_but(keep, low)

    def pipe(self) -> tuple[int, int]:
        return os.pipe2(os.O_CLOEXEC)

    def fork(self) -> int:
        return os.fork()

    def fork_pid1(self) -> int:
        """fork, the child as PID 1 of a new PID namespace. The parent's later children (nft,
        when the container's ports go) are in its own namespace again: a child forked into the
        container's once its PID 1 is gone fails with ENOMEM."""
        own_pids = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        _libc.unshare(_libc.CLONE_NEWPID)  # for our children only: the next fork is PID 1
        pid = os.fork()
        if pid:
            _libc.setns(own_pids, _libc.CLONE_NEWPID, "/proc/self/ns/pid")
        os.close(own_pids)
        return pid

    def add_to_cgroup(self, cgroup: Cgroup, pid: int) -> None:
        """The parent puts the child in its cgroup (v2: a process cannot move itself cheaply)."""
        cgroup.add(pid)

    def parent_gone(self, fd: int) -> bool:
        """Whether the pipe whose write end the parent holds reads as ended."""
        return bool(select.select([fd], [], [], 0)[0])

    def read_table(self, path: str) -> str:
        return read_table(path)

    def open_console(self, uid: int) -> tuple[int, int]:
        from . import terminal
        return terminal.open_console(uid)

    def take_console(self, slave: int) -> None:
        from . import terminal
        terminal.take_console(slave)

    def report(self, code: int, message: str) -> NoReturn:
        """The setup failed: one line for the parent, and the exit code run gives."""
        with contextlib.suppress(OSError):  # a parent gone hears nothing: the code still says it
            self.channel.send(FAILED, failed(code, message))
        os._exit(code)

    def exit(self, code: int) -> NoReturn:
        os._exit(code)

    def exec(self, path: str, argv: list[str], env: dict[str, str], search: bool) -> None:
        """execve, or with ``search`` execvpe (PATH); its errors are left as they are: the
        caller turns ENOENT/EACCES into docker run's 127/126 messages."""
        if search:
            os.execvpe(path, argv, env)
        os.execve(path, argv, env)
