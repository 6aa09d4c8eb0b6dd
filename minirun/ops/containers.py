"""Container operations other than run: list, remove (with -f: kill first)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from ..containers import events
from ..containers.logs import log_path
from ..containers.state import (
    exit_code_left,
    find,
    load,
    load_config,
    mark_user_stopped,
    refresh,
    save,
    scan,
    waiting_on,
)
from ..content.files import file_lock
from ..errors import ContainerConflict, ContainerNotFound, StoreError, UsageError
from ..pids import alive
from ..records import TYPE_CHECKING
from ..runtime import caps
from ..runtime.cgroups import DEFAULT_PARENT, Cgroup, Limits
from ..runtime.plan import cgroup_location, plan
from ..runtime.seccomp_bpf import program_for
from ..runtime.signals import parse
from ..snapshots.rootfs import release_container
from ..spec.flags import environment
from ..spec.settings import Settings, from_annotations
from .context import Context

if TYPE_CHECKING:
    from typing import Any

    from ..containers.state import ContainerState, Damaged
    from ..runtime.cgroups import Cgroup
    from ..spec.settings import Settings


def configured(ctx: Context | None, directory: Path) -> tuple[dict[str, Any], Settings]:
    """A container's config.json and the settings in its annotations (StoreError: unreadable).
    One made by an older minirun gets its config.json now (with ``ctx``; see ``upgrade``)."""
    try:
        spec = load_config(directory)
    except StoreError:
        if ctx is None or (directory / "config.json").exists() or not (directory / "run.json").exists():
            raise
        from .upgrade import config_of_old
        spec = config_of_old(ctx, directory)
    return spec, from_annotations(spec.get("annotations") or {}, f"{directory / 'config.json'}")


def settings_or_defaults(directory: Path) -> Settings:
    """Its settings, or the defaults where its config.json cannot be read (a damaged or
    half-made container can still be stopped and removed)."""
    try:
        return configured(None, directory)[1]
    except StoreError:
        return Settings()


def cgroup_of(directory: Path, cid: str) -> Cgroup:
    """The container's cgroup, where its config.json puts it (the default parent if unreadable)."""
    parent = DEFAULT_PARENT
    with contextlib.suppress(StoreError):
        parent = cgroup_location(load_config(directory)["linux"])[0] or DEFAULT_PARENT
    return Cgroup(cid, Limits(), None, parent)


def labels_of(ctx: Context, state: ContainerState) -> dict[str, str]:
    """Its labels (the image's and those given), from its config.json's settings."""
    labels = settings_or_defaults(ctx.root / "containers" / state.id).labels
    return dict(item.partition("=")[::2] for item in labels)


def network_of(ctx: Context, state: ContainerState) -> str:
    """The network it was made on (ps's Networks): its config.json's settings."""
    return settings_or_defaults(ctx.root / "containers" / state.id).network


def list_containers(ctx: Context, every: bool) -> tuple[list[ContainerState], list[Damaged]]:
    """Newest first; only running ones unless ``every``. Apart: those whose state is damaged."""
    sound, damaged = scan(ctx.root)
    return [s for _, s in sound if every or s.status == "running"], damaged


@contextlib.contextmanager
def changing(directory: Path, key: str, force: bool = False) -> Iterator[None]:
    """One command at a time changes a container (rm, stop, start until it runs): an flock on
    its directory, which the kernel drops if the command dies. A container removed while it
    was waited for is not found. ``force`` (rm -f): the wait is bounded; the commands still
    holding the container after FORCE_WAIT (stopped, or waiting without end) are killed."""
    try:
        with file_lock(directory, what=f"another command on container {key}", directory=True,
                       give_up=(FORCE_WAIT, lambda: _take_from_holders(directory, key)) if force else None):
            if not (directory / "state.json").exists():
                raise ContainerNotFound(f"No such container: {key}")
            yield
    except StoreError:
        if not directory.exists():
            raise ContainerNotFound(f"No such container: {key}") from None  # removed meanwhile
        raise


FORCE_WAIT = 2.0  # seconds rm -f waits for another command on the container before killing it


def _take_from_holders(directory: Path, key: str) -> float:
    """Kill the minirun commands that hold the container (never the caller); how much
    longer to wait for the kernel to release their lock."""
    from ..pids import lock_holders
    holders = [pid for pid in lock_holders(str(directory)) if pid != os.getpid()]
    if not holders:
        raise ContainerConflict(f"removing container {key}: another command holds it and could not be found")
    from .. import notices
    for pid in holders:
        notices.say(f"container {key}: killing the command (PID {pid}) that held it for {FORCE_WAIT:.0f} s")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return 2.0


def remove_container(ctx: Context, key: str, force: bool, volumes: bool = False) -> None:
    """rm: a running container only with ``force`` (as Docker's rm -f: killed first, at once,
    whatever another command is doing with it); ``volumes``: its anonymous volumes too. Two
    rm of one container are one after the other: the second finds it gone."""
    directory, state = find(ctx.root, key)
    if force:
        _kill_now(state)
    with changing(directory, key, force):
        with contextlib.suppress(StoreError):
            state = load(directory)  # as it is now (a damaged one stays as found)
        cgroup = cgroup_of(directory, state.id)
        _stop(state, cgroup, force)
        # Its minirun removes the cgroup when the program exits; a minirun that was killed
        # could not, so rm does (empty now: the program died with its minirun).
        cgroup.remove()
        if state.address:  # its lease: its minirun gives it back; a killed one could not
            from ..runtime.net import network
            network.release(state.id)
        anonymous = []
        if volumes:  # rm -v: its anonymous volumes too (named ones stay, as Docker's)
            from .volumes import anonymous_of
            anonymous = anonymous_of(ctx, directory)
        labels = labels_of(ctx, state)
        release(directory, state)
        events.of_container(ctx.root, "destroy", state.id, state.name, state.image, labels)
        if anonymous:
            from .volumes import remove_anonymous
            remove_anonymous(ctx, anonymous)


def _kill_now(state: ContainerState) -> None:
    """SIGKILL a running container's PID 1 before taking the container's lock: a stop that
    holds it sees the end and lets go (only a PID that is still that process is signalled)."""
    state = refresh(state)
    if state.status == "running" and state.pid and alive(state.pid, state.pid_start):
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGKILL)


def _stop(state: ContainerState, cgroup: Cgroup, force: bool) -> None:
    """Kill a running container (``force``): its process, or whatever its cgroup still holds
    when its state cannot tell (damaged). Only a PID that is still that process is killed."""
    state = refresh(state)
    running = state.status == "running"
    leftovers = [] if running else cgroup.processes()
    if not (running or leftovers):
        return
    if not force:
        raise ContainerConflict(f"cannot remove running container {state.id[:12]}: "
                                "stop it first or use minirun rm -f")
    targets = [(state.pid, state.pid_start)] if running else [(pid, None) for pid in leftovers]
    for target, started in targets:  # its minirun records the exit (137): never killed while it may
        if target and (alive(target, started) if running else True):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
    if running:
        _await_monitor(state)


def _await_monitor(state: ContainerState) -> None:
    """Until the container's monitor has recorded its end and gone (at most 10 s); one that
    has not a second after the program is gone (stopped, SIGSTOP; or a foreground run still
    writing out what the program wrote) is not waited for, and never killed: what it finds
    when it goes on is a container that was removed."""
    deadline = time.monotonic() + 10
    while alive(state.monitor, state.monitor_start) and time.monotonic() < deadline:
        if not alive(state.pid, state.pid_start) and time.monotonic() > deadline - 9:
            break
        time.sleep(0.02)


def release(directory: Path, state: ContainerState) -> None:
    """Remove it; a removal that failed part way leaves it listed as dead (best effort: the
    store may be read-only) and raises."""
    try:
        release_container(directory)
    except StoreError:
        with contextlib.suppress(StoreError, OSError):
            save(directory, state.dead())
        raise


def _current(ctx: Context, key: str) -> tuple[Path, ContainerState]:
    """The container as it is now (its state read again, a dead monitor seen)."""
    return find(ctx.root, key)


def is_running(directory: Path) -> bool:
    try:
        return refresh(load(directory)).status == "running"
    except StoreError:
        return False  # removed meanwhile


def kill_container(ctx: Context, key: str, signum: int, by_user: bool = True) -> None:
    """kill: a signal to the container's PID 1 (only while its PID is still that process);
    ``by_user``: its restart policy is over until it is started again (as Docker's)."""
    directory, state = _current(ctx, key)
    if by_user and (state.status == "running" or state.restarting):
        mark_user_stopped(directory, True)
    if state.status != "running" or not alive(state.pid, state.pid_start):
        raise ContainerConflict(f"cannot kill container {key}: it is not running")
    if state.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signum)
        events.of_container(ctx.root, "kill", state.id, state.name, state.image, labels_of(ctx, state),
                            signal=str(signum))


def stop_container(ctx: Context, key: str, timeout: float | None = None, signum: int | None = None) -> None:
    """stop: ``signum`` (None: its stop signal, SIGTERM unless the image or --stop-signal said
    another), then SIGKILL after ``timeout`` seconds (None: its stop timeout, 10 unless said;
    negative: no SIGKILL); returns once its monitor has recorded the exit. A stopped container
    is left as it is (as Docker); an rm -f meanwhile waits for the stop."""
    directory, state = _current(ctx, key)
    mark_user_stopped(directory, True)  # its restart policy is over (a restarting one too)
    if state.status != "running":
        return
    settings = settings_or_defaults(directory)
    if signum is None:
        try:
            signum = parse(settings.stop_signal)
        except UsageError:  # checked when it was run: a damaged config.json
            signum = signal.SIGTERM
    seconds = float(settings.stop_timeout) if timeout is None else timeout
    with changing(directory, key):
        _stop_running(ctx, key, directory, seconds if seconds >= 0 else float("inf"), signum)
    events.of_container(ctx.root, "stop", state.id, state.name, state.image, labels_of(ctx, state))


KILL_WAIT = 10.0  # seconds stop waits after SIGKILL for the monitor to record the end


def _stop_running(ctx: Context, key: str, directory: Path, timeout: float, signum: int) -> None:
    """The stop signal, then SIGKILL; an error when no end was recorded even then (its monitor
    stopped or hung): stop never says a container stopped that it did not see stop."""
    for sig, seconds in ((signum, timeout), (signal.SIGKILL, KILL_WAIT)):
        with contextlib.suppress(ContainerConflict):
            kill_container(ctx, key, sig, by_user=False)
        deadline = time.monotonic() + seconds
        while is_running(directory) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not is_running(directory):
            return
    state = load(directory)
    raise ContainerConflict(f"stopping container {key}: still running {KILL_WAIT:.0f} s after SIGKILL: its "
                            f"monitor (PID {state.monitor}) has not recorded its end")


def wait_container(ctx: Context, key: str, condition: str = "not-running") -> int:
    """wait: until the container is no longer running (``condition`` as Docker's:
    ``not-running``; ``next-exit``: until it next exits, even if it is not running now;
    ``removed``: until it is removed); its exit code."""
    if condition not in ("not-running", "next-exit", "removed"):
        raise UsageError(f'invalid --condition "{condition}": expected not-running, next-exit or removed')
    directory, state = _current(ctx, key)
    waiting_on(directory)
    if condition == "next-exit":
        before = state.finished
        while directory.exists():
            state = _seen(directory, state)
            if state.status in ("exited", "dead") and state.finished != before:
                return state.exit_code if state.exit_code is not None else -1
            time.sleep(0.05)
        code = exit_code_left(directory)  # a --rm one, removed at its end
        return code if code is not None else -1
    if condition == "removed":
        while directory.exists():
            state = _seen(directory, state)
            time.sleep(0.05)
        code = exit_code_left(directory)
        return code if code is not None else state.exit_code if state.exit_code is not None else 0
    while is_running(directory):
        time.sleep(0.05)
    try:
        state = refresh(load(directory), directory)
    except StoreError:
        code = exit_code_left(directory)  # a --rm container: removed once it ended
        if code is None:
            raise ContainerNotFound(f"No such container: {key} (removed while waited for)") from None
        return code
    return state.exit_code if state.exit_code is not None else -1


def _seen(directory: Path, last: ContainerState) -> ContainerState:
    """Its state now (a dead monitor seen), or as last seen when it is gone."""
    try:
        return refresh(load(directory), directory)
    except StoreError:
        return last


def ports_of(ctx: Context, key: str) -> list[tuple[str, str]]:
    """port: (container port/proto, host address:port) of a running container, in order."""
    _, state = _current(ctx, key)
    if refresh(state).status != "running":
        return []
    out = []
    for text in state.ports:  # 0.0.0.0:8080->80/tcp
        host, _, inner = text.partition("->")
        out.append((inner, host))
    return out


def top(ctx: Context, key: str, ps_args: list[str]) -> list[str]:
    """top: the host's ``ps`` (``-ef`` unless given options) limited to the container's
    processes, as Docker's: its header, then their rows."""
    import subprocess
    directory, state = _current(ctx, key)
    if refresh(state).status != "running":
        raise ContainerConflict(f"Container {key} is not running")
    pids = {str(p) for p in cgroup_of(directory, state.id).processes()}
    try:
        r = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, timeout=30,
                           env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ContainerConflict(f"top: running ps: {e}") from None
    lines = r.stdout.splitlines()
    if r.returncode != 0 or not lines:
        raise UsageError(f"top: ps {' '.join(ps_args)}: {r.stderr.strip() or 'failed'}")
    header = lines[0].split()
    if "PID" not in header:
        raise UsageError(f'top: ps {" ".join(ps_args)} shows no PID column ("-o pid" gives it)')
    at = header.index("PID")
    return [lines[0]] + [row for row in lines[1:] if len(row.split()) > at and row.split()[at] in pids]


def export_container(ctx: Context, key: str, out: int) -> None:
    """export: the container's root filesystem (its image and its changes; not its volumes or
    the files bound over /etc) as a tar on the descriptor ``out``, written by a child that sees
    only that filesystem and holds only the container's privilege (``runtime.inside``)."""
    from ..runtime.inside import in_root
    from ..snapshots.tarwrite import write_tree
    directory, state = _current(ctx, key)
    capabilities, program = confinement(ctx, configured(ctx, directory), key)
    snap = ctx.snapshots
    assert snap is not None  # root

    def work() -> None:
        with os.fdopen(out, "wb", closefd=False) as f:
            write_tree(f, "/")

    in_root(snap.container_view(state.chains, directory), capabilities, program, work, f"exporting container {key}")


def confinement(ctx: Context, configuration: tuple[dict[str, Any], Settings], key: str) -> tuple[frozenset[int], bytes]:
    """A container's capabilities and compiled seccomp filter, from its config.json: what a
    helper working in its root (export, cp) may hold."""
    spec, settings = configuration
    made = plan(spec, False, settings.user, f"the configuration of container {key}")
    return made.capabilities, program_for(ctx.root, made.seccomp)


def logs_of(ctx: Context, key: str) -> tuple[Path, ContainerState]:
    """Where the container's log is; one run with --log-driver none says so (as Docker)."""
    directory, state = _current(ctx, key)
    if not log_path(directory).exists():
        if settings_or_defaults(directory).log_driver == "none":
            raise ContainerConflict(f"container {key}: configured logging driver does not support reading "
                                    "(--log-driver none)")
        raise ContainerConflict(f"container {key} has no log")
    return directory, state


def exec_container(ctx: Context, key: str, argv: list[str], env: list[str], user: str | None,
                   workdir: str | None, interactive: bool, privileged: bool, tty: bool = False,
                   detach: bool = False) -> int:
    """exec: ``argv`` in the running container, as its config.json's process (its environment
    and ``env``, working directory, user, capabilities (all with ``privileged``), limits,
    no_new_privs and seccomp filter), on a terminal of its own with ``tty``; its exit status
    (``detach``: 0 once it runs, its output dropped, as docker exec -d)."""
    directory, state = _current(ctx, key)
    if state.status != "running" or not state.pid or not alive(state.pid, state.pid_start):
        raise ContainerConflict(f"container {key} is not running")
    if workdir is not None and not workdir.startswith("/"):
        raise UsageError(f'invalid -w "{workdir}": the working directory must be an absolute path')
    from ..runtime.execute import ExecSpec, exec_in  # (exec only: it loads the terminal's modules)
    spec, settings = configured(ctx, directory)
    made = plan(spec, False, settings.user, f"the configuration of container {key}")
    program = program_for(ctx.root, made.seccomp)
    capabilities = caps.capability_set(True, (), (), caps.last_cap()) if privileged else made.capabilities
    merged = environment({"Env": list(made.env)}, env, os.environ, made.hostname)
    spec_ = ExecSpec(tuple(argv), merged, workdir or made.cwd, user if user is not None else made.user,
                     capabilities, interactive and not detach, tty and not detach, program, made.no_new_privileges,
                     made.rlimits)
    cgroup, pid, pid_start = cgroup_of(directory, state.id), state.pid, state.pid_start

    def running() -> bool:
        return alive(pid, pid_start)

    if detach:
        from .monitor import exec_detached
        return exec_detached(lambda started: exec_in(pid, cgroup, spec_, running, started))
    return exec_in(pid, cgroup, spec_, running)


def writable_size(ctx: Context, cid: str) -> int:
    """The bytes of a container's writable layer (overlay's upper directory): Docker's SizeRw."""
    from ..content.files import tree_size
    upper = ctx.root / "containers" / cid / "upper"
    return tree_size(upper) if upper.is_dir() else 0


def sizes_of(ctx: Context, state: ContainerState) -> tuple[int, int]:
    """ps -s: the bytes of its writable layer, and of its image (0 where the image is gone)."""
    from ..errors import MiniRunError
    from ..oci import parse_config
    from .images import image_size
    own = writable_size(ctx, state.id)
    record = ctx.images.get(state.reference) if state.reference else None
    if record is None:
        return own, 0
    try:
        config = parse_config(ctx.images.content.read(record.config), record.reference)
        return own, image_size(ctx, ctx.images.manifest_of(record), config.diff_ids)
    except MiniRunError:
        return own, 0
