"""Start a container's process and follow it to its end (the parent's side; the child's is
``setup``, its stdio ``stdio``).

The parent unshares only its PID namespace *for children*, so the child it forks is
PID 1 of a new PID namespace and the parent waits for it directly (exact exit codes,
direct signal forwarding). The child makes its other namespaces, mounts the root
filesystem, pivots into it and execs. Anything that fails before exec is written to
a close-on-exec pipe, which the parent reads: an empty read means exec succeeded.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Mapping

from .. import trace
from ..errors import EXIT_RUN_FAILED, ContainerStartError, MiniRunError, UsageError
from ..records import Record
from . import channel, relay
from .cgroups import Cgroup
from .channel import Channel, Message
from .kernel import Kernel, close_fds
from .mount import Mount
from .plan import Plan
from .setup import Setup, child
from .signals import FORWARDED, Forwarder
from .stdio import UNLOGGED, Output, follow, stdio_pipes

# --init: a static tini (Debian's tini package), bound read-only where Docker binds its own.
INIT_CANDIDATES = ("/usr/bin/tini-static", "/usr/local/bin/tini-static", "/usr/bin/docker-init",
                   "/usr/libexec/docker/docker-init")


def find_init(environ: Mapping[str, str]) -> str:
    """The host's static init for --init: MINIRUN_INIT, else the first of INIT_CANDIDATES.

    It runs inside the container's root, so it must not need the host's libraries."""
    wanted = environ.get("MINIRUN_INIT")
    for path in (wanted,) if wanted else INIT_CANDIDATES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    if wanted:
        raise UsageError(f"--init: MINIRUN_INIT={wanted} is not an executable file")
    raise UsageError("--init needs a static tini: install Debian's tini package (apt-get install tini)")


class Launch(Record):
    """A container to start: its plan (from config.json), its compiled seccomp filter, its
    root filesystem's mounts, its cgroup (None: it needs none), and ``attach`` (a network
    set up from outside, given the child's PID once its network namespace exists; the child
    execs only after it returned)."""
    plan: Plan
    program: bytes
    rootfs_mounts: list[Mount]
    rootfs: str
    cgroup: Cgroup | None = None
    attach: Callable[[int], None] | None = None
    joined: Mapping[str, int] | None = None  # namespaces the caller opened already (type -> fd; its to close)


def start(launch: Launch, on_started: Callable[[int], None] | None = None, output: Output = UNLOGGED,
          forwarder: Forwarder | None = None) -> int:
    """Run the container's process to its end; returns Docker's exit code for it.

    Its cgroup (device policy and limits) is created here before the process starts and
    removed after it ended; the namespaces it joins are opened here, on the host, first.
    ``forwarder``: the caller's, installed when the container was made (it restores it);
    else one of its own, from here on.
    """
    # First of all: from here on a signal to minirun (Ctrl-C) is held for the container, and
    # whatever happens the handlers are restored and the cgroup removed.
    own = forwarder is None
    forwarder = forwarder or Forwarder()
    cgroup = launch.cgroup
    joins: dict[str, int] = {}
    try:
        joins.update(_open_namespaces(launch.plan, launch.joined or {}))
        if cgroup is not None:
            _create(cgroup)
            trace.event("container", "cgroup", f"cgroup made: {', '.join(map(str, cgroup.dirs.values()))}",
                        dirs=[str(d) for d in cgroup.dirs.values()])
        report, code = _fork_and_follow(launch, {**joins, **(launch.joined or {})}, on_started, forwarder, output)
    finally:
        forwarder.end()
        if own:
            forwarder.restore()
        close_fds(*joins.values())
        if cgroup is not None:
            cgroup.remove()
            trace.event("cleanup", "cgroup", "the container's cgroup removed")
    if report is not None:
        code, message = channel.failure(report.body)
        raise ContainerStartError(message, code)
    return code


def _open_namespaces(plan: Plan, joined: Mapping[str, int]) -> dict[str, int]:
    """The namespaces to join that the caller has not opened, open (before anything of the
    container runs)."""
    joins: dict[str, int] = {}
    for kind, path in plan.namespaces:
        if not path or kind in joined:
            continue
        if kind == "pid":
            close_fds(*joins.values())
            raise ContainerStartError("joining a pid namespace: minirun makes each container its own",
                                      EXIT_RUN_FAILED)
        try:
            joins[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            close_fds(*joins.values())
            raise ContainerStartError(f"opening the {kind} namespace {path}: {e.strerror}", EXIT_RUN_FAILED) from None
    return joins


def ended_already(pid: int) -> bool:
    """Whether child ``pid`` has exited, without reaping it (its wait is still to come)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False


def exit_code(status: int) -> int:
    """Docker's exit code for a wait status: the program's, or 128+N for a signal N."""
    if os.WIFSIGNALED(status):
        trace.event("exit", "signal", f"waitpid: PID 1 was killed by signal {os.WTERMSIG(status)}: exit code 128 + "
                    f"{os.WTERMSIG(status)} = {128 + os.WTERMSIG(status)}", signal=os.WTERMSIG(status),
                    code=128 + os.WTERMSIG(status))
        return 128 + os.WTERMSIG(status)
    trace.event("exit", "exited", f"waitpid: PID 1 exited with status {os.WEXITSTATUS(status)}: the exit code",
                code=os.WEXITSTATUS(status))
    return os.WEXITSTATUS(status)


def _fork_and_follow(launch: Launch, joins: dict[str, int], on_started: Callable[[int], None] | None,
                     forwarder: Forwarder, output: Output) -> tuple[Message | None, int]:
    """Fork the container's process, let it go once it is in its cgroup, relay its stdio until
    it ends: its setup's failure (None: it exec'ed) and its exit code."""
    plan, cgroup = launch.plan, launch.cgroup
    ours, theirs = channel.pair()
    pipes = stdio_pipes(plan)
    trace.event("container", "fork", "fork the container's process as PID 1 of a new pid namespace")
    k = Kernel()  # the parent's calls go through the seam too (its setup is the child's)
    pid = k.fork_pid1()
    if pid == 0:
        # Signals for the container (a Ctrl-C reaches the whole process group) wait, blocked,
        # until the setup is done: unblocked just before exec, they act on the container's
        # process as they would on its program (130 for SIGINT), never on half a setup.
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        forwarder.restore()
        ours.close()
        if pipes is not None:
            relay.in_container(pipes)
        child(Setup(plan, launch.program, launch.rootfs_mounts, launch.rootfs, joins, cgroup, theirs.fd,
                    attached=launch.attach is not None))
        os._exit(EXIT_RUN_FAILED)  # not reached
    theirs.close()
    try:
        if pipes is not None:
            relay.close_container_ends(pipes)
        forwarder.target(pid)
        if cgroup is not None and not cgroup.joined_by_child:
            try:
                k.add_to_cgroup(cgroup, pid)
            except OSError as e:
                _kill(pid)
                raise ContainerStartError(f"joining cgroup: {e.strerror or e}", EXIT_RUN_FAILED) from None
        with contextlib.suppress(OSError):  # a child gone: the channel's end says so next
            ours.send(channel.GO)
        if launch.attach is None and on_started is not None:
            on_started(pid)
        failure, master = _until_exec(ours, pid, launch.attach, on_started)
    finally:
        ours.close()
    if failure is not None:
        close_fds(master, *([] if pipes is None else pipes.ours.values()))
        os.waitpid(pid, 0)
        trace.event("exit", "failed", f"the setup failed before exec: {failure.body.decode(errors='replace')!r}")
        return failure, EXIT_RUN_FAILED
    follow(plan, master, pipes, output, pid)
    _, status = os.waitpid(pid, 0)
    return None, exit_code(status)


def _until_exec(ours: Channel, pid: int, attach: Callable[[int], None] | None,
                on_started: Callable[[int], None] | None) -> tuple[Message | None, int]:
    """The child's messages until it has exec'd (the channel's end): it asks for its network
    (attached here, while it makes its root filesystem), sends its terminal's master, or says
    it failed. Returns the failure (None: exec'd) and the master (-1: none)."""
    master = -1
    while (message := ours.receive()) is not None:
        if message.kind == channel.NAMESPACE and attach is not None:
            try:
                attach(pid)
            except (OSError, MiniRunError) as e:
                _kill(pid)
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                raise ContainerStartError(f"setting up the network: {reason}", EXIT_RUN_FAILED) from None
            ours.send(channel.ATTACHED)
            if on_started is not None:
                on_started(pid)
        elif message.kind == channel.CONSOLE:
            master = message.fd
        elif message.kind == channel.FAILED:
            return message, master
    return None, master


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def _create(cgroup: Cgroup) -> None:
    try:
        cgroup.create()
    except OSError as e:
        cgroup.remove()
        raise ContainerStartError(f"creating cgroup: {e.strerror or e}", EXIT_RUN_FAILED) from None
