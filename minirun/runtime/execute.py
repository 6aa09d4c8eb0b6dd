"""exec: a new process inside a running container, as ``docker exec``.

A container's processes may have prepared anything they can write for the next exec: a
``chroot`` of PID 1 into a tree of their own (with a fake ``/proc`` and a FIFO for
``/dev/null``), hostile ``/etc/passwd`` and ``/dev/pts/ptmx`` files, a ptrace waiting for
a process to appear. So, as runc and crun do, the joining process never reads, opens or
executes anything the container controls while it holds more privilege than the container:

1. On the host: the kernel's last capability, the capabilities minirun holds, ``/dev/null``,
   the stdio pipes and the namespace descriptors are taken first.
2. The joining process blanks its command line and environment (the caller's, visible
   through /proc to a container with CAP_SYS_PTRACE), makes itself non-dumpable, joins the
   container's cgroup and namespaces with ``setns`` (the mount namespace last: its root is
   the container's pivoted root, never PID 1's ``/proc/PID/root``, which PID 1 can chroot),
   and forks, as a PID namespace takes only children.
3. The child, in the container, before touching any path: its stdio, limits, bounding set,
   no_new_privs and the seccomp filter, and its capabilities lowered to the container's
   (with SETUID, SETGID and CHOWN kept only to become the user). Only then the image's
   ``/etc/passwd`` and ``/etc/group`` (regular files, opened non-blocking), the terminal,
   the user, the last capabilities, the working directory (as the user), exec.

Its exit status comes back through the joining process.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from ..errors import EXIT_CANNOT_EXEC, EXIT_RUN_FAILED, ContainerStartError
from ..records import Record
from . import _libc, channel, relay, terminal
from .caps import mask
from .cgroups import Cgroup
from .channel import Channel, Message
from .kernel import Kernel, close_fds
from .setup import HostCaps, drop_bounding_set, failure, host_caps
from .signals import FORWARDED, Forwarder
from .user import resolve_user, with_home

if TYPE_CHECKING:
    from .syscalls import Syscalls

_NAMESPACES = (("ipc", _libc.CLONE_NEWIPC), ("uts", _libc.CLONE_NEWUTS), ("net", _libc.CLONE_NEWNET),
               ("cgroup", _libc.CLONE_NEWCGROUP), ("pid", _libc.CLONE_NEWPID), ("mnt", _libc.CLONE_NEWNS))

# Held from the filter's loading until the user is set: what becoming the user takes.
_CAP_CHOWN, _CAP_SETGID, _CAP_SETUID = 0, 6, 7
_SETUP_CAPS = (1 << _CAP_CHOWN) | (1 << _CAP_SETGID) | (1 << _CAP_SETUID)


class ExecSpec(Record):
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


class _Joining(Record):
    """What the joining process takes from the host before it joins anything."""
    namespaces: list[tuple[int, int, str]]
    host: HostCaps
    stdio: dict[int, int]     # 0, 1, 2 -> a pipe's end or the host's /dev/null (-t: until the terminal)
    channel: int              # its end of the channel to the CLI (close-on-exec)
    tty: bool                 # -t: a terminal, whose master goes back over the channel


def exec_in(pid: int, cgroup: Cgroup, spec: ExecSpec, still_running: Callable[[], bool] | None = None,
            started: Callable[[], None] | None = None) -> int:
    """Run ``spec`` in the container whose PID 1 is ``pid`` (on the host); its exit status
    (128+N for a signal N), or ContainerStartError (126, 127 as run; 125 for the rest).
    ``still_running`` is asked once the namespaces are open: ``pid`` may have been reused.
    ``started`` is told once the program was exec'd (exec -d's caller goes then)."""
    try:
        fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), kind, name)
               for name, kind in _NAMESPACES]
    except OSError as e:
        raise ContainerStartError(f"joining the container: {e.strerror}", EXIT_RUN_FAILED) from None
    if still_running is not None and not still_running():
        close_fds(*(fd for fd, _, _ in fds))
        raise ContainerStartError("joining the container: it is no longer running", EXIT_RUN_FAILED)
    pipes = None if spec.tty else relay.for_container(spec.interactive)
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)  # the host's: a container's may be a FIFO
    stdio = {0: null, 1: null, 2: null, **({} if pipes is None else pipes.container)}
    ours, theirs = channel.pair()
    joining = _Joining(fds, host_caps(), stdio, theirs.fd, spec.tty)
    forwarder = Forwarder()
    try:
        child = os.fork()
        if child == 0:
            signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            forwarder.restore()
            ours.close()
            _join(Kernel(theirs.fd), joining, cgroup, spec)
        theirs.close()
        close_fds(null, *(fd for fd, _, _ in fds))
        if pipes is not None:
            relay.close_container_ends(pipes)
        failure, master = _setup_report(ours, child, forwarder)
        ours.close()
        if failure is not None:
            close_fds(master, *([] if pipes is None else pipes.ours.values()))
        else:
            forwarder.target(child)
            if started is not None:
                started()
            _follow(child, pipes, master, spec.interactive)
        _, status = os.waitpid(child, 0)
    finally:
        forwarder.restore()
        ours.close()
    if failure is not None:
        code, message = channel.failure(failure.body)
        raise ContainerStartError(message, code)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _setup_report(ours: Channel, child: int, forwarder: Forwarder) -> tuple[Message | None, int]:
    """What the setup said until the program was exec'd: its failure (None: exec'd) and its
    terminal's master (-1: none). A SIGINT or SIGTERM before that ends the joining process
    (and with it its child, by PDEATHSIG) and reports that exec gave up: the channel then
    ends, as every copy of the child's end is gone."""
    gave_up: list[int] = []

    def give_up(signum: int, _frame: object) -> None:
        if not gave_up:
            gave_up.append(signum)
            os.kill(child, signal.SIGKILL)

    previous = {s: signal.signal(s, give_up) for s in (signal.SIGINT, signal.SIGTERM)}
    master, failure = -1, None
    try:
        for signum in forwarder.pending:  # arrived before the fork
            if signum in previous:
                give_up(signum, None)
        while failure is None and (message := ours.receive()) is not None:
            if message.kind == channel.CONSOLE:
                master = message.fd
            elif message.kind == channel.FAILED:
                failure = message
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if gave_up:
        name = signal.Signals(gave_up[0]).name
        return Message(channel.FAILED, channel.failed(EXIT_RUN_FAILED, f"exec: gave up on {name} before the "
                                                                      "program started")), master
    return failure, master


def _follow(child: int, pipes: relay.Pipes | None, master: int, interactive: bool) -> None:
    """The caller's side while the process runs: its streams relayed (or its terminal's),
    until it has exited (a process it left behind keeps no stream of the caller's open)."""
    if pipes is not None:
        relay.copy(pipes, until=os.pidfd_open(child))
    if master >= 0:
        terminal.relay(master, interactive)


def _join(k: Syscalls, j: _Joining, cgroup: Cgroup, spec: ExecSpec) -> NoReturn:
    """The joining process: never returns into the caller's code."""
    step = "joining the container"
    try:
        k.set_title("minirun-exec")  # the caller's command line and environment, blanked
        k.clear_environment()
        k.prctl(_libc.PR_SET_DUMPABLE, 0)
        for fd, end in j.stdio.items():
            k.dup2(end, fd)
        k.keep_only((j.channel, *(fd for fd, _, _ in j.namespaces)))  # none of the caller's
        step = "joining the container's cgroup"
        k.join_cgroup_of(cgroup)
        for fd, kind, name in j.namespaces:
            step = f"setns {name}"
            k.setns(fd, kind, f"/proc/PID/ns/{name}")  # mnt: root and cwd are its root now
            k.close(fd)
        alive_r, alive_w = k.pipe()  # its write end lives as long as this process
        child = k.fork()  # into the container's PID namespace
        if child == 0:
            k.close(alive_w)
            _inside(k, spec, j, alive_r)
    except BaseException as e:  # noqa: BLE001 - nothing here may return into the caller's code
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        k.report(EXIT_RUN_FAILED, f"{step}: {reason}")
    k.keep_only((alive_w,), low=0)  # its copies of the streams: they end with the process
    forwarder = Forwarder()
    forwarder.target(child)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    _, status = os.waitpid(child, 0)
    k.exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))


def _inside(k: Syscalls, spec: ExecSpec, j: _Joining, alive: int) -> NoReturn:
    """In the container (nothing may be imported here: the host's files are out of reach)."""
    step = "joining the container"
    try:
        # The CLI gave up: the joining process is gone, and so is this one, even if that happened
        # before the parent-death signal was set (its pipe then reads as ended at once).
        k.prctl(_libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if k.parent_gone(alive):
            k.exit(EXIT_RUN_FAILED)
        k.close(alive)
        k.setsid()
        step = "confining"
        allowed = _confine(k, spec, j.host)
        step = "setting the user"
        user = resolve_user(spec.user, k.read_table("/etc/passwd"), k.read_table("/etc/group"))
        slave = -1
        if j.tty:  # root still: the terminal is made the user's
            step = "opening the terminal"
            master, slave = k.open_console(user.uid)
            k.tell(channel.CONSOLE, master)
            k.close(master)
        step = "setting the user"
        k.setgroups(list(user.groups))
        k.setgid(user.gid)
        k.setuid(user.uid)
        kept = allowed if user.uid == 0 else 0  # a user other than root keeps none, as in run
        k.capset(kept, kept, 0)
        if slave >= 0:
            k.take_console(slave)
        step = f"working directory {spec.cwd}"
        k.chdir(spec.cwd)  # as the user, as runc does; never made by exec
        if os.path.realpath(".") != os.getcwd():  # runc CVE-2024-21626
            raise OSError(errno.EPERM, "outside the container")
        step = "exec"
        k.default_signals()
        env = dict(e.split("=", 1) for e in with_home(spec.env, user.home))
        k.prctl(_libc.PR_SET_PDEATHSIG, 0)  # the program outlives an ended exec, as Docker's
        k.exec(spec.argv[0], list(spec.argv), env, search=True)
    except BaseException as e:  # noqa: BLE001 - nothing here may return into the caller's code
        k.report(*failure(step, e, spec.argv[0], cwd_code=EXIT_CANNOT_EXEC, missing_code=EXIT_CANNOT_EXEC))
    k.exit(EXIT_RUN_FAILED)  # not reached


def _confine(k: Syscalls, spec: ExecSpec, host: HostCaps) -> int:
    """Down to the container's privilege before any of its paths is touched: limits, bounding
    set (up to the host's last capability, read on the host), no_new_privs, the seccomp
    filter (CAP_SYS_ADMIN is still held to load it), then effective and permitted lowered to
    the container's set and what becoming the user takes. Returns the container's set."""
    for resource, soft, hard in spec.rlimits:
        k.setrlimit(resource, soft, hard)
    drop_bounding_set(k, spec.capabilities, host.last_cap)
    if spec.no_new_privileges:
        k.prctl(_libc.PR_SET_NO_NEW_PRIVS, 1)
    if spec.seccomp:
        k.load_seccomp(spec.seccomp)
    allowed = mask(spec.capabilities) & host.held
    setup = (allowed | _SETUP_CAPS) & host.held
    k.capset(setup, setup, 0)  # lowering inheritable also empties the ambient set
    return allowed

