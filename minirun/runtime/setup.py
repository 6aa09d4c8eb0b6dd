"""The container's setup, in its child: the spec's plan carried out through the kernel seam
(``Syscalls``), from its cgroup and namespaces to exec, and the pieces exec's child shares
(the host's capabilities, read on the host; the bounding set; the confinement).

Nothing on the host is resolved through a container path: the host's root is detached (in
``mounts.enter_root``) before the first container path is looked up. Anything that fails
before exec is one line on a close-on-exec pipe, with the exit code docker run gives.
"""

from __future__ import annotations

import errno
import os
import signal

from .. import trace
from ..content.files import text_or_empty
from ..errors import EXIT_CANNOT_EXEC, EXIT_NOT_FOUND, EXIT_RUN_FAILED, UsageError
from ..records import TYPE_CHECKING, Record
from . import _libc, channel, mounts
from .caps import mask
from .cgroups import Cgroup, container_view
from .kernel import Kernel
from .mount import Mount
from .plan import NAMESPACE_FLAGS, Plan
from .user import DEFAULT_PATH, User, resolve_user, with_home

if TYPE_CHECKING:
    from .syscalls import Syscalls


class HostCaps(Record):
    """The kernel's last capability and those minirun holds: read from the host's /proc
    before any container path can stand in for it (a container's PID 1 can chroot into a
    tree with a fake /proc/sys/kernel/cap_last_cap)."""
    last_cap: int
    held: int


def host_caps() -> HostCaps:
    held = 0
    for line in text_or_empty("/proc/self/status").splitlines():
        if line.startswith("CapPrm:"):
            held = int(line.split()[1], 16)
    return HostCaps(int(text_or_empty("/proc/sys/kernel/cap_last_cap") or "40"), held)


def _isolate(k: Syscalls, s: Setup, step: mounts.Step) -> None:
    """Its cgroup, new session, keyring and namespaces (those to join first, by the
    descriptors the parent opened; then those to make): nothing of the caller's reaches it."""
    cgroup = s.cgroup
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
    flags = 0
    for kind, path in s.plan.namespaces:
        if kind == "pid":
            continue  # made by the fork (``_fork_pid1``)
        if path:
            k.setns(s.joins[kind], NAMESPACE_FLAGS[kind], path)
        else:
            flags |= NAMESPACE_FLAGS[kind]
    k.unshare(flags)
    if flags & _libc.CLONE_NEWNET:
        k.disable_ipv6()  # its own namespace, before eth0 is attached (host's /proc still)
    if s.attached:
        k.tell(channel.NAMESPACE)  # our network namespace exists: the parent attaches it
    k.mount("none", "/", None, _libc.MS_REC | _libc.MS_PRIVATE, None)


CAP_SYS_ADMIN = 21


def drop_bounding_set(k: Syscalls, capabilities: frozenset[int], last_cap: int) -> None:
    """Every capability up to the host's last one (read on the host) that the container is
    not to have, out of the bounding set: no exec can gain it again."""
    for cap in range(last_cap + 1):
        if cap not in capabilities:
            k.prctl(_libc.PR_CAPBSET_DROP, cap)


def drop_privileges(k: Syscalls, spec: Plan, filtered: bool, user: User, step: mounts.Step, host: HostCaps) -> int:
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
    hold = 1 << CAP_SYS_ADMIN if filtered and not spec.no_new_privileges else 0
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


def confine(k: Syscalls, program: bytes, no_new_privileges: bool, allowed: int, step: mounts.Step) -> None:
    """The last step before exec, after the user and capabilities are set: the seccomp
    filter, then CAP_SYS_ADMIN let go where it was held to load it (the filter allows capset,
    as Docker's does; were it refused, the program would not start)."""
    if not program:
        return
    step.name = "loading the seccomp filter"
    k.load_seccomp(program)
    if not no_new_privileges:
        step.name = "dropping capabilities after seccomp"
        k.capset(allowed, allowed, 0)
    step.name = "exec"


def enter_working_dir(k: Syscalls, cwd: str) -> None:
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


class Setup(Record):
    """What the child is given: the container to make and its end of the channel."""
    plan: Plan
    program: bytes   # the seccomp filter, compiled (b"": none)
    rootfs_mounts: list[Mount]
    rootfs: str
    joins: dict[str, int]   # namespace type -> the descriptor of the one to join (opened on the host)
    cgroup: Cgroup | None
    channel: int     # its end of the channel to the parent (close-on-exec)
    attached: bool = False  # its network is attached from outside: say when its namespace exists, wait


def setup_and_exec(k: Syscalls, s: Setup, step: mounts.Step) -> None:
    """The container's setup, in its order, ending in exec (which does not return).

    Nothing on the host is resolved through a container path: the host's root is detached
    (in ``enter_root``) before the first container path is looked up."""
    plan = s.plan
    host = host_caps()
    cgroup_view = container_view(s.cgroup, text_or_empty("/proc/self/mountinfo"))  # the host's hierarchies
    _isolate(k, s, step)
    mounts.enter_root(k, plan, s.rootfs_mounts, s.rootfs, step, cgroup_view)
    step.name = "setting the hostname"
    if plan.new("uts"):
        k.sethostname(plan.hostname)
    if plan.new("network"):
        k.loopback_up()
    if s.attached:
        step.name = "waiting for the network"
        if not k.hear(channel.ATTACHED):
            raise OSError(errno.EIO, "the parent could not attach the network")
    step.name = f"working directory {plan.cwd}"
    enter_working_dir(k, plan.cwd)
    step.name = "setting the user"
    user = resolve_user(plan.user, k.read_table("/etc/passwd"), k.read_table("/etc/group"))
    slave = -1
    if plan.tty:
        step.name = "opening the terminal"
        master, slave = k.open_console(user.uid)
        k.tell(channel.CONSOLE, master)
        k.close(master)
    allowed = drop_privileges(k, plan, bool(s.program), user, step, host)
    if plan.tty:
        k.take_console(slave)
    elif not plan.interactive:
        k.stdin_from_null()
    k.close_descriptors(s.channel)
    step.name = "exec"
    k.default_signals()
    env = dict(e.split("=", 1) for e in with_home(plan.env, user.home))
    if plan.init:
        _find_program(plan.argv[2], env)
    confine(k, s.program, plan.no_new_privileges, allowed, step)
    k.exec(plan.argv[0], list(plan.argv), env, search=not plan.init)


def failure(step: str, e: BaseException, argv0: str, cwd_code: int = EXIT_RUN_FAILED,
            missing_code: int = EXIT_NOT_FOUND) -> tuple[int, str]:
    """docker run's (and exec's) exit code and line for a setup that failed at ``step``: 127
    when the program is not found (``missing_code``: docker exec says 126), 126 when it cannot
    be run (or, for exec, its working directory entered: ``cwd_code``), 125 for the rest."""
    if isinstance(e, UsageError):
        return EXIT_RUN_FAILED, str(e)
    if not isinstance(e, OSError):
        return EXIT_RUN_FAILED, f"{step}: {e}"
    if step != "exec":
        return cwd_code if step.startswith("working directory") else EXIT_RUN_FAILED, f"{step}: {e.strerror or e}"
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return missing_code, f'exec: "{argv0}": executable file not found in $PATH'
    return EXIT_CANNOT_EXEC, f'exec: "{argv0}": {e.strerror}'


def child(s: Setup) -> None:
    """The forked child: waits for its cgroup, sets up and execs; a failure is one FAILED
    message on the channel and the exit code docker run would give."""
    step = mounts.Step()
    k: Syscalls = Kernel(s.channel)
    try:
        # Wait until the parent has made our cgroup (v2: and put us in it; v1: we join it
        # ourselves, next): the cgroup namespace made below must have that cgroup as its
        # root, and the device policy must hold before anything is mounted. The channel's
        # end instead: the parent is gone.
        if not k.hear(channel.GO):
            k.exit(EXIT_RUN_FAILED)
        if trace.active():
            from .kernel_trace import TracingKernel
            k = TracingKernel(step, trace.descriptor(), s.channel)
        setup_and_exec(k, s, step)
    except BaseException as e:  # noqa: BLE001 - the child must never return into the caller's code
        k.report(*failure(step.name, e, s.plan.argv[2] if s.plan.init else s.plan.argv[0]))
    k.exit(EXIT_RUN_FAILED)  # not reached: exec does not return
