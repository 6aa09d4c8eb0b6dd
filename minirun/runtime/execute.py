"""exec: a new process inside a running container, as ``docker exec``.

The process that joins is minirun until it execs, so it first makes itself non-dumpable
(no container process can ptrace it, read its memory, its environment or
``/proc/PID/exe``: runc's CVE-2019-5736 came through exactly that door), then joins the
container's cgroup (its device policy) and namespaces with ``setns`` (IPC, UTS, network,
cgroup, PID, mount: the mount namespace last, its root the container's), and forks, as a
PID namespace takes only children. The child gets the container's environment (and ``-e``),
working directory, user rules and capabilities, never minirun's, and execs; its exit
status comes back through the joining process.
"""

import errno
import os
import signal
import socket
from typing import NamedTuple, NoReturn

from ..errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_RUN_FAILED, ContainerStartError
from . import _libc, mounts, relay, terminal
from .cgroups import Cgroup
from .kernel import Kernel
from .process import confine, drop_privileges, enter_working_dir, read_table
from .signals import FORWARDED, Forwarder
from .spec import RunSpec, resolve_user, with_home

_NAMESPACES = (("ipc", _libc.CLONE_NEWIPC), ("uts", _libc.CLONE_NEWUTS), ("net", _libc.CLONE_NEWNET),
               ("cgroup", _libc.CLONE_NEWCGROUP), ("pid", _libc.CLONE_NEWPID), ("mnt", _libc.CLONE_NEWNS))


class ExecSpec(NamedTuple):
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    capabilities: frozenset[int]
    interactive: bool = False
    tty: bool = False
    seccomp: bytes = b""      # the container's filter, its no_new_privs and limits: as run gave them
    no_new_privileges: bool = False
    rlimits: tuple[tuple[int, int, int], ...] = ()


def exec_in(pid: int, cgroup: Cgroup, spec: ExecSpec) -> int:
    """Run ``spec`` in the container whose PID 1 is ``pid`` (on the host); its exit status
    (128+N for a signal N), or ContainerStartError (126, 127 as run; 125 for the rest)."""
    try:
        fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), kind, name)
               for name, kind in _NAMESPACES]
        root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ContainerStartError(f"joining the container: {e.strerror}", EXIT_RUN_FAILED) from None
    pipes = console = None
    if spec.tty:  # the process opens a terminal of the container's devpts and sends us the master
        console = terminal.channel()
    elif os.isatty(1) or os.isatty(2) or (spec.interactive and os.isatty(0)):
        pipes = relay.for_terminals(spec.interactive)
    errr, errw = os.pipe2(os.O_CLOEXEC)
    forwarder = Forwarder()
    try:
        child = os.fork()
        if child == 0:
            signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            forwarder.restore()
            os.close(errr)
            if pipes is not None:
                relay.in_container(pipes)
            if console is not None:
                console[0].close()
            _join(fds, root, cgroup, spec, errw, console[1].fileno() if console else -1)
        forwarder.target(child)
        os.close(errw)
        for fd, _, _ in fds:
            os.close(fd)
        os.close(root)
        report = _follow(errr, pipes, console, spec.interactive)
        _, status = os.waitpid(child, 0)
    finally:
        forwarder.restore()
    if report:
        code, _, message = report.decode(errors="replace").partition("\n")
        raise ContainerStartError(message, int(code))
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _follow(errr: int, pipes: relay.Pipes | None, console: tuple[socket.socket, socket.socket] | None,
            interactive: bool) -> bytes:
    """The caller's side while the process runs: its streams relayed (or its terminal's), and
    the report of a start that failed (empty once it has exec'd)."""
    if pipes is not None:
        relay.close_container_ends(pipes)
        relay.copy(pipes)
    master = None
    if console is not None:
        console[1].close()
        master = terminal.receive_master(console[0])  # None: it failed before
        console[0].close()
    report = b""
    while chunk := os.read(errr, 4096):
        report += chunk
    os.close(errr)
    if master is not None:
        if report:
            os.close(master)
        else:
            terminal.relay(master, interactive)
    return report


def _report(errw: int, code: int, message: str) -> NoReturn:
    os.write(errw, f"{code}\n{message}".encode())
    os._exit(code)


def _join(fds: list[tuple[int, int, str]], root: int, cgroup: Cgroup, spec: ExecSpec, errw: int,
          console: int) -> NoReturn:
    """The joining process: never returns into the caller's code."""
    step = "joining the container"
    try:
        _libc.prctl(_libc.PR_SET_DUMPABLE, 0)
        for d in cgroup.every_dir:
            if d.is_dir():  # v1: each controller the container has; v2: its one directory
                step = f"joining cgroup {d}"
                with open(d / ("cgroup.procs" if cgroup.v2 else "tasks"), "w") as f:
                    f.write("0")
        for fd, kind, name in fds:
            step = f"setns {name}"
            _libc.setns(fd, kind, f"/proc/PID/ns/{name}")
        os.fchdir(root)
        os.chroot(".")
        child = os.fork()  # into the container's PID namespace
        if child == 0:
            _inside(spec, errw, console)
    except BaseException as e:  # noqa: BLE001 - nothing here may return into the caller's code
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        _report(errw, EXIT_RUN_FAILED, f"{step}: {reason}")
    os.close(errw)
    if console >= 0:
        os.close(console)
    forwarder = Forwarder()
    forwarder.target(child)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


def _inside(spec: ExecSpec, errw: int, console: int) -> NoReturn:
    """In the container: its user, capabilities, working directory; then exec. (Nothing may
    be imported here: the host's files are out of reach.)"""
    k = Kernel()
    step = mounts.Step()
    step.name = "joining the container"
    try:
        k.setsid()
        step.name = "setting the user"
        user = resolve_user(spec.user, read_table("/etc/passwd"), read_table("/etc/group"))
        run_spec = RunSpec(argv=spec.argv, env=spec.env, cwd=spec.cwd, user=spec.user, hostname="",
                           capabilities=spec.capabilities, seccomp=spec.seccomp,
                           no_new_privileges=spec.no_new_privileges, rlimits=spec.rlimits)
        step.name = f"working directory {spec.cwd}"
        enter_working_dir(k, spec.cwd)
        slave = -1
        if console >= 0:  # root still: the terminal is made the user's
            step.name = "opening the terminal"
            master, slave = terminal.open_console(user.uid)
            terminal.send_master(console, master)
            os.close(master)
            os.close(console)
        allowed = drop_privileges(k, run_spec, user, step)
        if slave >= 0:
            terminal.take_console(slave)
        elif not spec.interactive:
            k.stdin_from_null()
        k.close_descriptors(errw)
        step.name = "exec"
        k.default_signals()
        env = dict(e.split("=", 1) for e in with_home(spec.env, user.home))
        confine(k, run_spec, allowed, step)
        k.exec(spec.argv[0], list(spec.argv), env, search=True)
    except OSError as e:
        if step.name != "exec":
            _report(errw, EXIT_RUN_FAILED, f"{step.name}: {e.strerror or e}")
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            _report(errw, EXIT_NOT_FOUND, f'exec: "{spec.argv[0]}": executable file not found in $PATH')
        _report(errw, EXIT_CANNOT_EXEC, f'exec: "{spec.argv[0]}": {e.strerror}')
    except BaseException as e:  # noqa: BLE001
        _report(errw, EXIT_RUN_FAILED, f"{step.name}: {e}")
    os._exit(EXIT_RUN_FAILED)  # not reached
