"""Start a container's process: namespaces, mounts, pivot_root, identity, exec.

The parent unshares only its PID namespace *for children*, so the child it forks is
PID 1 of a new PID namespace and the parent waits for it directly (exact exit codes,
direct signal forwarding). The child makes its other namespaces, mounts the root
filesystem, pivots into it and execs. Anything that fails before exec is written to
a close-on-exec pipe, which the parent reads: an empty read means exec succeeded.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import struct
from collections.abc import Callable
from pathlib import Path

from ..errors import UsageError
from ..rootfs import Mount, mount
from . import _libc
from .caps import mask
from .cgroups import Cgroup
from .spec import RunSpec, resolve_user, with_home

OLD_ROOT = ".minirun-oldroot"  # where pivot_root parks the host's root until it is detached
EXIT_RUNTIME = 125
EXIT_CANNOT_EXEC = 126
EXIT_NOT_FOUND = 127

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)

# Docker's defaults (moby's oci/defaults.go): hidden and read-only parts of /proc and /sys.
MASKED = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
          "/sys/firmware", "/sys/devices/virtual/powercap")
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9),
           ("tty", 5, 0))


class ContainerStartError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _mount_in(root: str, path: str, fstype: str, flags: int, data: str | None, source: str | None = None) -> None:
    target = root + path
    os.makedirs(target, exist_ok=True)
    _libc.mount(source or fstype, target, fstype, flags, data)


def _setup_dev(root: str) -> None:
    nosuid = _libc.MS_NOSUID
    _mount_in(root, "/dev", "tmpfs", nosuid | _libc.MS_NOEXEC, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        os.mknod(f"{root}/dev/{name}", 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(f"{root}/dev/{name}", 0o666)
    _mount_in(root, "/dev/pts", "devpts", nosuid | _libc.MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.symlink("pts/ptmx", f"{root}/dev/ptmx")
    _mount_in(root, "/dev/shm", "tmpfs", nosuid | _libc.MS_NOEXEC | _libc.MS_NODEV, "mode=1777,size=65536k")
    _mount_in(root, "/dev/mqueue", "mqueue", nosuid | _libc.MS_NOEXEC | _libc.MS_NODEV, None)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")


def _bind_file(source: Path, root: str, path: str) -> None:
    target = root + path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(target):
        os.unlink(target)  # a symlink here would make the bind land wherever it points
    if not os.path.exists(target):
        open(target, "a").close()
    _libc.mount(str(source), target, None, _libc.MS_BIND)


def _mask_and_protect() -> None:
    """After pivot_root: Docker's masked and read-only paths (absent ones are skipped)."""
    for path in MASKED:
        if os.path.isdir(path):
            _libc.mount("tmpfs", path, "tmpfs", _libc.MS_RDONLY, None)
        elif os.path.exists(path):
            _libc.mount("/dev/null", path, None, _libc.MS_BIND)
    for path in READONLY:
        if os.path.exists(path):
            _libc.mount(path, path, None, _libc.MS_BIND | _libc.MS_REC)
            _libc.mount(path, path, None, _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_RDONLY | _libc.MS_REC)


_FLAGS = {"ro": _libc.MS_RDONLY, "nosuid": _libc.MS_NOSUID, "nodev": _libc.MS_NODEV,
          "noexec": _libc.MS_NOEXEC}
_CLEARS = {"rw": _libc.MS_RDONLY, "suid": _libc.MS_NOSUID, "dev": _libc.MS_NODEV, "exec": _libc.MS_NOEXEC}


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


def _bind_volume(fd: int, target: str, readonly: bool) -> None:
    source = f"/proc/self/fd/{fd}"
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _libc.mount(source, target, None, _libc.MS_BIND | _libc.MS_REC)
    if readonly:
        _libc.mount(source, target, None, _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_RDONLY)


def _loopback_up() -> None:
    """ifconfig lo up, with one ioctl: no need to import pyroute2 on this path."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    s = _libc.socket(_libc.AF_INET, _libc.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, siocgifflags, req))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
    finally:
        os.close(s)


def _default_signals() -> None:
    """Every signal at its default and none blocked: ignored signals survive exec, and
    Python ignores SIGPIPE and SIGXFSZ (the caller may have ignored others)."""
    for s in signal.valid_signals():
        if s not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(s, signal.SIG_DFL)
            except (OSError, ValueError):
                continue  # signals the C library reserves for itself
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _held_capabilities() -> int:
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapPrm:"):
            return int(line.split()[1], 16)
    return 0


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _child(spec: RunSpec, mounts: list[Mount], rootfs: str, etc_files: dict[str, Path],
           network: str, errw: int, syncr: int, console: int) -> None:
    step = "setting up"
    try:
        # Wait until the parent has put us in our cgroup: the cgroup namespace made
        # below must have that cgroup as its root. An empty read: the parent is gone.
        if os.read(syncr, 1) != b"g":
            os._exit(EXIT_RUNTIME)
        os.close(syncr)
        # If minirun dies (even by SIGKILL), so does the container: nothing runs unwatched.
        _libc.prctl(_libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        step = "unshare"
        flags = _libc.CLONE_NEWNS | _libc.CLONE_NEWUTS | _libc.CLONE_NEWIPC | _libc.CLONE_NEWCGROUP
        if network != "host":
            flags |= _libc.CLONE_NEWNET
        _libc.unshare(flags)
        _libc.mount("none", "/", None, _libc.MS_REC | _libc.MS_PRIVATE, None)
        step = "mounting the root filesystem"
        for m in mounts:
            mount(m)
        _mount_in(rootfs, "/proc", "proc", _libc.MS_NOSUID | _libc.MS_NOEXEC | _libc.MS_NODEV, None)
        _setup_dev(rootfs)
        _mount_in(rootfs, "/sys", "sysfs",
                  _libc.MS_RDONLY | _libc.MS_NOSUID | _libc.MS_NOEXEC | _libc.MS_NODEV, None)
        for path, source in etc_files.items():
            _bind_file(source, rootfs, path)
        step = "opening volumes"
        # Host side opened now, container side resolved after pivot_root, by the kernel,
        # inside the new root: an image's symlinks cannot send a bind mount elsewhere.
        sources = []
        for b in spec.binds:
            if not os.path.exists(b.source):
                os.makedirs(b.source, exist_ok=True)  # as docker run -v does
            sources.append(os.open(b.source, os.O_PATH | os.O_CLOEXEC))
        step = "pivot_root"
        os.chdir(rootfs)
        os.makedirs(OLD_ROOT, exist_ok=True)
        _libc.pivot_root(".", OLD_ROOT)
        os.chdir("/")
        # The volumes' sources are still reachable (their fds point into the old root,
        # still mounted); their targets now resolve inside the new root only.
        for b, fd in zip(spec.binds, sources, strict=True):
            step = f"mounting volume {b.source}:{b.target}"
            _bind_volume(fd, b.target, b.readonly)
            os.close(fd)
        step = "detaching the old root"
        _libc.umount("/" + OLD_ROOT, _libc.MNT_DETACH)
        os.rmdir("/" + OLD_ROOT)
        if not spec.privileged:
            step = "masking paths"
            _mask_and_protect()
        for path, options in spec.tmpfs:
            step = f"mounting tmpfs on {path}"
            os.makedirs(path, exist_ok=True)
            flags, data = mount_options(options)
            _libc.mount("tmpfs", path, "tmpfs", flags, data)
        if spec.read_only:
            step = "making the root filesystem read-only"
            _libc.mount("/", "/", None, _libc.MS_BIND | _libc.MS_REMOUNT | _libc.MS_RDONLY, None)
        _libc.sethostname(spec.hostname)
        if network != "host":
            _loopback_up()
        step = f"working directory {spec.cwd}"
        os.makedirs(spec.cwd, exist_ok=True)
        os.chdir(spec.cwd)
        # runc CVE-2024-21626: make sure the working directory is inside the new root.
        if not os.getcwd().startswith("/") or os.path.realpath(".") != os.getcwd():
            raise OSError(errno.EPERM, f"working directory {spec.cwd} is outside the container")
        step = "setting the user"
        user = resolve_user(spec.user, _read("/etc/passwd"), _read("/etc/group"))
        slave = -1
        if spec.tty:
            step = "opening the terminal"
            from . import terminal
            master, slave = terminal.open_console(user.uid)
            terminal.send_master(console, master)
            os.close(master)
        step = "dropping capabilities"
        last_cap = int(_read("/proc/sys/kernel/cap_last_cap") or "40")
        for cap in range(last_cap + 1):
            if cap not in spec.capabilities:
                _libc.prctl(_libc.PR_CAPBSET_DROP, cap)
        step = "setting the user"
        os.setgroups(list(user.groups))
        os.setgid(user.gid)
        os.setuid(user.uid)  # for a non-root user the kernel clears the capabilities here, as in Docker
        if user.uid == 0:
            # Never more than minirun itself holds (a sandbox may run it without some).
            allowed = mask(spec.capabilities) & _held_capabilities()
            _libc.capset(allowed, allowed, allowed)
        if spec.tty:
            terminal.take_console(slave)
        elif not spec.interactive:
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        # Every inherited descriptor above 2 is closed (the error pipe closes on exec).
        os.closerange(3, errw)
        os.closerange(errw + 1, 65536)
        step = "exec"
        _default_signals()
        env = dict(e.split("=", 1) for e in with_home(spec.env, user.home))
        if spec.init:
            _init(spec, env, errw)
        os.execvpe(spec.argv[0], list(spec.argv), env)
    except UsageError as e:
        os.write(errw, f"{EXIT_RUNTIME}\n{e}".encode())
        os._exit(EXIT_RUNTIME)
    except OSError as e:
        if step == "exec":
            if e.errno in (errno.ENOENT, errno.ENOTDIR):
                code, msg = EXIT_NOT_FOUND, f'exec: "{spec.argv[0]}": executable file not found in $PATH'
            else:
                code, msg = EXIT_CANNOT_EXEC, f'exec: "{spec.argv[0]}": {e.strerror}'
        else:
            code, msg = EXIT_RUNTIME, f"{step}: {e.strerror or e}"
        os.write(errw, f"{code}\n{msg}".encode())
        os._exit(code)
    except BaseException as e:  # noqa: BLE001 - the child must never return into the caller's code
        os.write(errw, f"{EXIT_RUNTIME}\n{step}: {e}".encode())
        os._exit(EXIT_RUNTIME)


def _init(spec: RunSpec, env: dict[str, str], errw: int) -> None:
    """``--init``: stay PID 1, run the program as a child, reap every orphan, forward signals.

    Exits with the program's status (128+N if a signal ended it), like tini.
    """
    # Handlers first: PID 1 ignores any signal it has no handler for, so one sent
    # while the program starts would otherwise be lost.
    forwarder = _Forwarder()
    program = os.fork()
    if program == 0:
        _default_signals()
        os.execvpe(spec.argv[0], list(spec.argv), env)  # an error reaches _child's handlers
    os.close(errw)  # the program's exec closes its copy; ours must not keep the pipe open
    forwarder.target(program)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(EXIT_RUNTIME)
        except InterruptedError:
            continue
        if pid == program:
            os._exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


def start(spec: RunSpec, mounts: list[Mount], rootfs: str, etc_files: dict[str, Path], network: str,
          cgroup: Cgroup | None, on_started: Callable[[int], None] | None = None) -> int:
    """Run the container's process to its end; returns Docker's exit code for it.

    ``cgroup`` (there are limits to set) is created here before the process starts and
    removed after it ended.
    """
    errr, errw = os.pipe2(os.O_CLOEXEC)
    syncr, syncw = os.pipe2(os.O_CLOEXEC)
    if cgroup is not None:
        try:
            cgroup.create()
        except OSError as e:
            raise ContainerStartError(f"creating cgroup: {e.strerror or e}", EXIT_RUNTIME) from None
    console = None  # with -t: (our end, the child's end) of the pair the terminal's master comes over
    if spec.tty:  # only -t loads the terminal code (and the socket module)
        from . import terminal
        console = terminal.channel()
    _libc.unshare(_libc.CLONE_NEWPID)  # for our children only: the next fork is PID 1
    forwarder = _Forwarder()  # before fork: a signal to minirun is never lost or fatal
    pid = os.fork()
    if pid == 0:
        forwarder.restore()
        os.close(errr)
        os.close(syncw)
        if console is not None:
            console[0].close()
        _child(spec, mounts, rootfs, etc_files, network, errw, syncr, console[1].fileno() if console else -1)
        os._exit(EXIT_RUNTIME)  # not reached
    os.close(errw)
    os.close(syncr)
    if console is not None:
        console[1].close()
    forwarder.target(pid)
    try:  # from here on, whatever happens, the signal handlers are restored and the cgroup removed
        if cgroup is not None:
            try:
                cgroup.add(pid)
            except OSError as e:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise ContainerStartError(f"joining cgroup: {e.strerror or e}", EXIT_RUNTIME) from None
        os.write(syncw, b"g")
        os.close(syncw)
        if on_started is not None:
            on_started(pid)
        master = None
        if console is not None:
            master = terminal.receive_master(console[0])
            console[0].close()
        report = b""
        while chunk := os.read(errr, 4096):
            report += chunk
        os.close(errr)
        if master is not None:
            if report:
                os.close(master)
            else:
                terminal.relay(master, spec.interactive)
        _, status = os.waitpid(pid, 0)
    finally:
        forwarder.restore()
        if cgroup is not None:
            cgroup.remove()
    if report:
        code, _, message = report.decode(errors="replace").partition("\n")
        raise ContainerStartError(message, int(code))
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class _Forwarder:
    """Forwards FORWARDED signals to a process; those arriving before it exists wait."""

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []
        self.previous = {s: signal.signal(s, self._handle) for s in FORWARDED}

    def _handle(self, signum: int, _frame: object) -> None:
        if self.pid:
            _forward(self.pid, signum)
        else:
            self.pending.append(signum)

    def target(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            _forward(pid, signum)
        self.pending.clear()

    def restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
