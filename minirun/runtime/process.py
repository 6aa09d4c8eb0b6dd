"""Start a container's process: namespaces, mounts, pivot_root, identity, exec.

The parent unshares only its PID namespace *for children*, so the child it forks is
PID 1 of a new PID namespace and the parent waits for it directly (exact exit codes,
direct signal forwarding). The child makes its other namespaces, mounts the root
filesystem, pivots into it and execs. Anything that fails before exec is written to
a close-on-exec pipe, which the parent reads: an empty read means exec succeeded.
"""

# No postponed annotations in this module: NamedTuple compiles string ones at import, and
# this is run's start path (quoted names below are those imported only for type checking).

import errno
import os
import signal
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, NoReturn

from .. import trace
from ..errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_RUN_FAILED, ContainerStartError, MiniRunError, UsageError
from . import _libc, mounts
from .caps import mask
from .cgroups import Cgroup, container_view
from .kernel import Kernel, close_fds
from .signals import FORWARDED, Forwarder
from .spec import DEFAULT_PATH, RunSpec, User, resolve_user, with_home

if TYPE_CHECKING:
    import socket

    from . import relay
    from .logs import LogWriter


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


class HostCaps(NamedTuple):
    """The kernel's last capability and those minirun holds: read from the host's /proc
    before any container path can stand in for it (a container's PID 1 can chroot into a
    tree with a fake /proc/sys/kernel/cap_last_cap)."""
    last_cap: int
    held: int


def host_caps() -> HostCaps:
    held = 0
    for line in _read("/proc/self/status").splitlines():
        if line.startswith("CapPrm:"):
            held = int(line.split()[1], 16)
    return HostCaps(int(_read("/proc/sys/kernel/cap_last_cap") or "40"), held)


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


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _isolate(k: Kernel, network: "Network", cgroup: Cgroup | None, ready: int, step: mounts.Step) -> None:
    """Its cgroup, new session, keyring and namespaces: nothing of the caller's reaches it."""
    if cgroup is not None and cgroup.joined_by_child:
        step.name = "joining the container's cgroup"
        k.join_cgroup(cgroup)
    step.name = "isolating"
    # If minirun dies (even by SIGKILL), so does the container: nothing runs unwatched.
    k.prctl(_libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    # Until exec, this process is a copy of minirun (its environment, its files) inside the
    # container's PID namespace: not dumpable, so no container process can ptrace it or read
    # its /proc files. exec makes the program dumpable again.
    k.prctl(_libc.PR_SET_DUMPABLE, 0)
    # Its own session: not the caller's process group (kill 0 inside stays inside), and
    # no controlling terminal to inject input into (TIOCSTI).
    k.setsid()
    k.join_session_keyring()
    flags = _libc.CLONE_NEWNS | _libc.CLONE_NEWUTS | _libc.CLONE_NEWIPC | _libc.CLONE_NEWCGROUP
    if network.mode == "container":
        k.join_netns(network.netns_fd, "the network namespace of the container joined")
    elif network.mode != "host":
        flags |= _libc.CLONE_NEWNET
    k.unshare(flags)
    if flags & _libc.CLONE_NEWNET:
        k.disable_ipv6()  # its own namespace, before eth0 is attached (host's /proc still)
    if ready >= 0:
        k.signal_parent(ready, b"n")  # our network namespace exists: the parent attaches eth0
    k.mount("none", "/", None, _libc.MS_REC | _libc.MS_PRIVATE, None)


CAP_SYS_ADMIN = 21


def drop_bounding_set(k: Kernel, capabilities: frozenset[int], last_cap: int) -> None:
    """Every capability up to the host's last one (read on the host) that the container is
    not to have, out of the bounding set: no exec can gain it again."""
    for cap in range(last_cap + 1):
        if cap not in capabilities:
            k.prctl(_libc.PR_CAPBSET_DROP, cap)


def drop_privileges(k: Kernel, spec: RunSpec, user: User, step: mounts.Step, host: HostCaps) -> int:
    """--ulimit's limits (as root still: a hard limit may be raised); Docker's capabilities
    for root, none for other users; inheritable and ambient empty (as runc since
    CVE-2022-24769: an inheritable set lets file capabilities be gained); no_new_privs.
    Returns the capabilities the program keeps. Where a seccomp filter is to be loaded
    without no_new_privs, loading it takes CAP_SYS_ADMIN: that one is held (effective and
    permitted only, never in the bounding set) until ``confine`` has loaded it."""
    step.name = "setting resource limits"
    for resource, soft, hard in spec.rlimits:
        k.setrlimit(resource, soft, hard)
    step.name = "dropping capabilities"
    drop_bounding_set(k, spec.capabilities, host.last_cap)
    hold = 1 << CAP_SYS_ADMIN if spec.seccomp and not spec.no_new_privileges else 0
    if hold and user.uid != 0:
        k.prctl(_libc.PR_SET_KEEPCAPS, 1)  # setuid keeps the permitted set (exec clears the flag)
    step.name = "setting the user"
    k.setgroups(list(user.groups))
    k.setgid(user.gid)
    k.setuid(user.uid)  # for a non-root user the kernel clears effective (and permitted) here
    # Never more than minirun itself holds (a sandbox may run it without some).
    allowed = mask(spec.capabilities) & host.held if user.uid == 0 else 0
    step.name = "dropping capabilities"
    k.capset(allowed | hold, allowed | hold, 0)  # lowering inheritable also empties the ambient set
    if spec.no_new_privileges:
        k.prctl(_libc.PR_SET_NO_NEW_PRIVS, 1)
    return allowed


def confine(k: Kernel, spec: RunSpec, allowed: int, step: mounts.Step) -> None:
    """The last step before exec, after the user and capabilities are set: the seccomp
    filter, then CAP_SYS_ADMIN let go where it was held to load it (the filter allows capset,
    as Docker's does; were it refused, the program would not start)."""
    if not spec.seccomp:
        return
    step.name = "loading the seccomp filter"
    k.load_seccomp(spec.seccomp)
    if not spec.no_new_privileges:
        step.name = "dropping capabilities after seccomp"
        k.capset(allowed, allowed, 0)
    step.name = "exec"


def enter_working_dir(k: Kernel, cwd: str) -> None:
    k.makedirs(cwd)
    k.chdir(cwd)
    # runc CVE-2024-21626: make sure the working directory is inside the new root.
    if not os.getcwd().startswith("/") or os.path.realpath(".") != os.getcwd():
        raise OSError(errno.EPERM, f"working directory {cwd} is outside the container")


def _find_program(argv0: str, env: dict[str, str]) -> None:
    """Fail as exec would (ENOENT, EACCES) before --init's exec, so the error is minirun's
    one line and not the init's."""
    dirs = [""] if "/" in argv0 else env.get("PATH", DEFAULT_PATH).split(":")
    found = [p for p in (os.path.join(d, argv0) for d in dirs) if os.path.isfile(p)]
    if not found:
        raise OSError(errno.ENOENT, argv0)
    if not any(os.access(p, os.X_OK) for p in found):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))


class Network(NamedTuple):
    """The container's network: ``mode`` bridge, none (only lo), host (the host's namespace)
    or container (``netns_fd``: another container's, open). ``attach`` (bridge) is called in
    the parent with the child's PID once the child's namespace exists, while the child goes
    on with its mounts; the child execs only after it returned."""
    mode: str
    netns_fd: int = -1
    attach: Callable[[int], None] | None = None


class Output(NamedTuple):
    """Where the container's output goes besides the caller's stdout and stderr: ``log`` (its
    log, when it has one); detached (run -d, in the monitor): only there, and ``on_exec`` is
    told once its program has been exec'd (the CLI then returns)."""
    log: "LogWriter | None"
    on_exec: Callable[[], None] | None = None

    def sink(self) -> "relay.Sink | None":
        log = self.log
        if log is None:
            return None
        return lambda fd, data: log.write("stdout" if fd == 1 else "stderr", data)


_UNLOGGED = Output(None)


class Setup(NamedTuple):
    """What the child is given: the container to make and how to report back."""
    spec: RunSpec
    rootfs_mounts: list[mounts.Mount]
    rootfs: str
    etc_files: dict[str, Path]
    network: Network
    cgroup: Cgroup | None
    errw: int        # the close-on-exec pipe a failure is reported on
    console: int     # -t: the socket the terminal's master goes back over
    ready: int = -1  # network attach: the pipe to say our namespace exists on
    done: int = -1   # ... and the one the parent says it is attached on


def setup_and_exec(k: Kernel, s: Setup, step: mounts.Step) -> None:
    """The container's setup, in its order, ending in exec (which does not return).

    Nothing on the host is resolved through a container path: the host's root is detached
    (in ``enter_root``) before the first container path is looked up."""
    host = host_caps()
    cgroup_view = container_view(s.cgroup, _read("/proc/self/mountinfo"))  # the host's hierarchies
    _isolate(k, s.network, s.cgroup, s.ready, step)
    mounts.enter_root(k, s.spec, s.rootfs_mounts, s.rootfs, s.etc_files, step, cgroup_view)
    step.name = "setting the hostname"
    k.sethostname(s.spec.hostname)
    if s.network.mode in ("bridge", "none"):
        k.loopback_up()
    if s.done >= 0:
        step.name = "waiting for the network"
        if not k.wait_parent(s.done):
            raise OSError(errno.EIO, "the parent could not attach the network")
    step.name = f"working directory {s.spec.cwd}"
    enter_working_dir(k, s.spec.cwd)
    step.name = "setting the user"
    user = resolve_user(s.spec.user, read_table("/etc/passwd"), read_table("/etc/group"))
    slave = -1
    if s.spec.tty:
        step.name = "opening the terminal"
        from . import terminal
        master, slave = terminal.open_console(user.uid)
        terminal.send_master(s.console, master)
        os.close(master)
    allowed = drop_privileges(k, s.spec, user, step, host)
    if s.spec.tty:
        terminal.take_console(slave)
    elif not s.spec.interactive:
        k.stdin_from_null()
    k.close_descriptors(s.errw)
    step.name = "exec"
    k.default_signals()
    env = dict(e.split("=", 1) for e in with_home(s.spec.env, user.home))
    if s.spec.init:
        _find_program(s.spec.argv[0], env)
    confine(k, s.spec, allowed, step)
    if s.spec.init:
        k.exec(mounts.INIT_TARGET, [mounts.INIT_TARGET, "--", *s.spec.argv], env, search=False)
    k.exec(s.spec.argv[0], list(s.spec.argv), env, search=True)


def _child(s: Setup, syncr: int) -> None:
    """The forked child: waits for its cgroup, sets up and execs; a failure is one line on
    the error pipe and the exit code docker run would give."""
    step = mounts.Step()
    try:
        # Wait until the parent has made our cgroup (v2: and put us in it; v1: we join it
        # ourselves, next): the cgroup namespace made below must have that cgroup as its
        # root, and the device policy must hold before anything is mounted. An empty
        # read: the parent is gone.
        if os.read(syncr, 1) != b"g":
            os._exit(EXIT_RUN_FAILED)
        os.close(syncr)
        k = Kernel()
        if trace.active():
            from .kernel_trace import TracingKernel
            k = TracingKernel(step, trace.descriptor())
        setup_and_exec(k, s, step)
    except UsageError as e:
        _report(s.errw, EXIT_RUN_FAILED, str(e))
    except OSError as e:
        if step.name != "exec":
            _report(s.errw, EXIT_RUN_FAILED, f"{step.name}: {e.strerror or e}")
        argv0 = s.spec.argv[0]
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            _report(s.errw, EXIT_NOT_FOUND, f'exec: "{argv0}": executable file not found in $PATH')
        _report(s.errw, EXIT_CANNOT_EXEC, f'exec: "{argv0}": {e.strerror}')
    except BaseException as e:  # noqa: BLE001 - the child must never return into the caller's code
        _report(s.errw, EXIT_RUN_FAILED, f"{step.name}: {e}")
    os._exit(EXIT_RUN_FAILED)  # not reached: exec does not return


def _report(errw: int, code: int, message: str) -> NoReturn:
    os.write(errw, f"{code}\n{message}".encode())
    os._exit(code)


def start(spec: RunSpec, rootfs_mounts: list[mounts.Mount], rootfs: str, etc_files: dict[str, Path], network: Network,
          cgroup: Cgroup | None, on_started: Callable[[int], None] | None = None,
          output: Output = _UNLOGGED) -> int:
    """Run the container's process to its end; returns Docker's exit code for it.

    ``cgroup`` (its device policy and limits) is created here before the process starts
    and removed after it ended.
    """
    # First of all: from here on a signal to minirun (Ctrl-C) is held for the container, and
    # whatever happens the handlers are restored and the cgroup removed.
    forwarder = Forwarder()
    try:
        if cgroup is not None:
            _create(cgroup)
            trace.event("container", "cgroup", f"cgroup made: {', '.join(map(str, cgroup.dirs.values()))}",
                        dirs=[str(d) for d in cgroup.dirs.values()])
        report, code = _fork_and_follow(spec, rootfs_mounts, rootfs, etc_files, network, cgroup,
                                        on_started, forwarder, output)
    finally:
        forwarder.restore()
        if cgroup is not None:
            cgroup.remove()
            trace.event("cleanup", "cgroup", "the container's cgroup removed")
    if report:
        failed, _, message = report.decode(errors="replace").partition("\n")
        raise ContainerStartError(message, int(failed))
    return code


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


def _fork_and_follow(spec: RunSpec, rootfs_mounts: list[mounts.Mount], rootfs: str, etc_files: dict[str, Path],
                     network: Network, cgroup: Cgroup | None, on_started: Callable[[int], None] | None,
                     forwarder: Forwarder, output: Output) -> tuple[bytes, int]:
    """Fork the container's process, let it go once it is in its cgroup, relay its stdio until
    it ends: what its setup reported (empty: it exec'ed) and its exit code."""
    errr, errw = os.pipe2(os.O_CLOEXEC)
    syncr, syncw = os.pipe2(os.O_CLOEXEC)
    console, pipes = _stdio_channels(spec)
    ready_r, ready_w, done_r, done_w = (*os.pipe2(os.O_CLOEXEC), *os.pipe2(os.O_CLOEXEC)) \
        if network.attach is not None else (-1, -1, -1, -1)
    trace.event("container", "fork", "fork the container's process as PID 1 of a new pid namespace")
    pid = _fork_pid1()
    if pid == 0:
        # Signals for the container (a Ctrl-C reaches the whole process group) wait, blocked,
        # until the setup is done: unblocked just before exec, they act on the container's
        # process as they would on its program (130 for SIGINT), never on half a setup.
        signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
        forwarder.restore()
        os.close(errr)
        os.close(syncw)
        if console is not None:
            console[0].close()
        if pipes is not None:
            from . import relay
            relay.in_container(pipes)
        close_fds(ready_r, done_w)
        _child(Setup(spec, rootfs_mounts, rootfs, etc_files, network, cgroup, errw,
                     console[1].fileno() if console else -1, ready_w, done_r), syncr)
        os._exit(EXIT_RUN_FAILED)  # not reached
    close_fds(errw, syncr, ready_w, done_r)
    if console is not None:
        console[1].close()
    if pipes is not None:
        from . import relay
        relay.close_container_ends(pipes)
    forwarder.target(pid)
    if cgroup is not None and not cgroup.joined_by_child:
        try:
            cgroup.add(pid)
        except OSError as e:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise ContainerStartError(f"joining cgroup: {e.strerror or e}", EXIT_RUN_FAILED) from None
    os.write(syncw, b"g")
    os.close(syncw)
    if network.attach is not None:
        _attach(network.attach, pid, ready_r, done_w)
    if on_started is not None:
        on_started(pid)
    report = _follow(spec, errr, console, pipes, output)
    _, status = os.waitpid(pid, 0)
    if report:
        trace.event("exit", "failed", f"the setup failed before exec: {report.decode(errors='replace')!r}")
        return report, EXIT_RUN_FAILED
    return report, exit_code(status)


def _log_terminal(master: int, log: "relay.Sink") -> None:
    """What the container writes to its terminal, as its stdout (as Docker logs a -t one),
    until it has ended (EIO once the last slave is closed)."""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        log(1, data)
    os.close(master)


def _fork_pid1() -> int:
    """fork, the child as PID 1 of a new PID namespace. The parent's later children (nft, when
    the container's ports go) are in its own namespace again: a child forked into the
    container's once its PID 1 is gone fails with ENOMEM."""
    own_pids = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    _libc.unshare(_libc.CLONE_NEWPID)  # for our children only: the next fork is PID 1
    pid = os.fork()
    if pid:
        _libc.setns(own_pids, _libc.CLONE_NEWPID, "/proc/self/ns/pid")
    os.close(own_pids)
    return pid


def _attach(attach: Callable[[int], None], pid: int, ready: int, done: int) -> None:
    """Once the child says its network namespace exists, attach it (the child meanwhile makes
    its root filesystem), then let it exec. A child that failed first closes its end: its
    own report says why."""
    try:
        if os.read(ready, 1) == b"n":
            try:
                attach(pid)
            except (OSError, MiniRunError) as e:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                raise ContainerStartError(f"setting up the network: {reason}", EXIT_RUN_FAILED) from None
            os.write(done, b"y")
    finally:
        os.close(ready)
        os.close(done)


def _create(cgroup: Cgroup) -> None:
    try:
        cgroup.create()
    except OSError as e:
        cgroup.remove()
        raise ContainerStartError(f"creating cgroup: {e.strerror or e}", EXIT_RUN_FAILED) from None


def _stdio_channels(spec: RunSpec) -> "tuple[tuple[socket.socket, socket.socket] | None, relay.Pipes | None]":
    """With -t: the socket pair the terminal's master comes over (our end, the child's end).
    Without: pipes for its stdio (see ``relay``), never the caller's own descriptors. Each
    module is loaded only when needed (the socket module costs a start 2 ms)."""
    if spec.tty:
        from . import terminal
        return terminal.channel(), None
    from . import relay
    return None, relay.for_container(spec.interactive)


def _follow(spec: RunSpec, errr: int, console: "tuple[socket.socket, socket.socket] | None",
            pipes: "relay.Pipes | None", output: Output) -> bytes:
    """Until the program ends: its start's report (empty once it has exec'd), then its
    terminal (-t) or stdio pipes relayed and logged. Returns the report."""
    master = None
    if console is not None:
        from . import terminal
        master = terminal.receive_master(console[0])
        console[0].close()
    report = b""
    while chunk := os.read(errr, 4096):
        report += chunk
    os.close(errr)
    if report:
        for end in ([] if master is None else [master]) + ([] if pipes is None else list(pipes.ours.values())):
            os.close(end)
        return report
    trace.event("exec", "running", "the program runs; its output is relayed (and logged) until it ends")
    sink = output.sink()
    if output.on_exec is not None:
        output.on_exec()
    if master is not None:
        if output.on_exec is not None and sink is not None:  # -d -t: the monitor holds the master
            _log_terminal(master, sink)
        else:
            terminal.relay(master, spec.interactive, sink)
    if pipes is not None:
        from . import relay
        relay.copy(pipes, sink, echo=output.on_exec is None)
    return report
