"""``run``: from parsed flags to the program's exit status, without printing.

Every flag is checked before anything is pulled or unpacked, as Docker does. The program's
own exit code is returned as it is; a program that could not be started raises
``ContainerStartError`` (125, 126 or 127) once the container's end is recorded. This is the
path whose start time counts: modules are imported where they are needed, and a cached
image loads no HTTP client.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import trace
from ..errors import (
    EXIT_RUN_FAILED,
    BrokenImage,
    ContainerStartError,
    ImageNotKnown,
    PlatformNotFound,
    StoreError,
    UsageError,
)
from .context import Context, platform_mismatch, wanted_platform

if TYPE_CHECKING:
    from pathlib import Path

    from ..pull import Emit
    from ..runargs import RunArgs
    from ..runtime.attacher import Attacher
    from ..runtime.cgroups import Limits
    from ..runtime.container import ContainerState
    from ..runtime.logs import LogOptions
    from ..runtime.netconf import Choice
    from ..runtime.process import Network
    from ..runtime.spec import Bind, RunSpec
    from ..store import ImageRecord
    from .netrun import Wired


class Checked(NamedTuple):
    """run's flags, parsed and checked before any image is touched."""
    env_lines: list[str]
    binds: tuple[Bind, ...]
    tmpfs: tuple[tuple[str, str], ...]
    capabilities: frozenset[int]
    limits: Limits
    init: str
    network: Choice
    seccomp: bytes             # the filter's BPF program (b"": none)
    no_new_privileges: bool
    rlimits: tuple[tuple[int, int, int], ...]
    stop_timeout: int
    log: LogOptions | None     # the log's bounds; None: --log-driver none


def check(a: RunArgs, root: Path) -> Checked:
    """``root``: the store, where compiled seccomp filters are kept."""
    from ..runtime import caps, cgroups, netconf, process, seccomp, spec
    if os.geteuid() != 0:
        raise UsageError("run needs root (namespaces, mounts): use sudo minirun run ...")
    network = netconf.choose(network_mode(a), a.publish, a.publish_all, a.dns, a.dns_search, a.dns_option,
                             a.add_host)
    if a.pull not in ("missing", "always", "never"):
        raise UsageError(f'invalid --pull "{a.pull}": expected missing, always or never')
    env_lines: list[str] = []
    for path in a.env_file:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise UsageError(f"reading env file {path}: {e.strerror}") from None
        env_lines += spec.parse_env_file(text, path, os.environ)
    capabilities = caps.capability_set(a.privileged, a.cap_add, a.cap_drop, caps.last_cap())
    security = seccomp.parse_security_opts(a.security_opt)
    rlimits = tuple(spec.parse_ulimit(u) for u in a.ulimit)
    program = b""
    if security.seccomp is not None and not a.privileged:  # --privileged: no filter, as Docker
        from ..runtime.seccomp_bpf import program_for
        program = program_for(root, security.seccomp, capabilities)
    return Checked(env_lines, tuple(spec.parse_volume(v) for v in a.volume),
                   tuple(spec.parse_tmpfs(t) for t in a.tmpfs), capabilities,
                   cgroups.parse_limits(a.memory, a.cpus, a.pids_limit),
                   process.find_init(os.environ) if a.init else "", network, program, security.no_new_privileges,
                   rlimits, _stop_timeout(a), _log_options(a))


def _as_created(a: RunArgs) -> RunArgs:
    """The flags as start must see them again: what came from the caller's environment, env
    files and MINIRUN_* variables taken once, now (the container's environment is kept in its
    state; start uses that), so that a container comes back as it was made."""
    return a._replace(network=network_mode(a), env=(), env_file=(),
                      log_opt=a.log_opt or (() if a.log_driver == "none" else _log_opt_defaults()))


def _log_opt_defaults() -> tuple[str, ...]:
    """The configuration's defaults for --log-opt (MINIRUN_LOG_OPTS: max-size=10m,max-file=3)."""
    return tuple(o for o in os.environ.get("MINIRUN_LOG_OPTS", "").split(",") if o)


def _stop_timeout(a: RunArgs) -> int:
    from ..runtime.signals import parse
    if a.stop_signal is not None:
        parse(a.stop_signal)  # a bad one is said now, not at stop
    if a.stop_timeout is not None and a.stop_timeout < -1:
        raise UsageError(f"invalid --stop-timeout {a.stop_timeout}: expected seconds (-1: wait for ever)")
    return 10 if a.stop_timeout is None else a.stop_timeout


def _log_options(a: RunArgs) -> LogOptions | None:
    from ..runtime import logs
    if a.log_driver == "none":  # run -d: its output goes nowhere, as Docker's
        if a.log_opt:
            raise UsageError("--log-opt needs --log-driver json-file")
        return None
    if a.log_driver != "json-file":
        raise UsageError(f'invalid --log-driver "{a.log_driver}": expected json-file or none')
    return logs.parse_options(a.log_opt or _log_opt_defaults())


def image_for(ctx: Context, a: RunArgs, announce: Callable[[str], None], emit: Emit) -> ImageRecord:
    """The image to run, pulled as --pull says (missing, always, never); an image ID (or a
    prefix of one) that no name matches runs that image, never pulled."""
    from .. import reference
    from .images import by_id, by_name, explain_reference
    records = ctx.images.records()
    named = by_name(records, a.image)
    if not named and (ids := by_id(records, a.image)):
        trace.event("reference", "local", f"{a.image} is the ID of an image in the store: {ids[0].config}",
                    image_id=ids[0].config)
        return ids[0]
    ref = reference.parse(a.image)
    explain_reference(a.image, ref)
    record = named[0] if named else None
    here = record is not None and record.is_for(wanted_platform(a.platform))
    if here and record is not None:
        trace.event("reference", "local", f"in the local store ({ctx.images.index_path}): image ID "
                    f"{record.config}", image_id=record.config, pulled=record.pulled)
    if a.pull == "always" or (a.pull == "missing" and not here):
        if not here:
            announce(f"Unable to find image '{ref.familiar()}' locally")
        from .images import pull_image  # only now: a cached image needs no registry code
        pull_image(ctx, a.image, a.platform, emit)
        record = ctx.images.get(str(ref))
    elif not here:
        raise ImageNotKnown(f"No such image: {ref.familiar()} (and --pull never)")
    if record is None:
        raise ImageNotKnown(f"No such image: {ref.familiar()}")
    mismatch = platform_mismatch(str(ref), record, a.platform)
    if mismatch is not None:
        raise PlatformNotFound(mismatch)
    return record


def pull_again(ctx: Context, a: RunArgs, announce: Callable[[str], None], emit: Emit,
               broken: BrokenImage) -> ImageRecord:
    """The image was found broken (a blob missing, or damaged and removed) when run came to
    use it: pulled again, which fetches what is missing (not with --pull never)."""
    if a.pull == "never":
        raise broken
    announce(f"{broken}")
    from .images import pull_image
    _, result = pull_image(ctx, a.image, a.platform, emit)
    return result.record


def _unpacked(ctx: Context, a: RunArgs, record: ImageRecord) -> tuple[Mapping[str, Any], tuple[str, ...], list[str]]:
    """The image's config, the argv to run and its snapshots' ChainIDs (unpacking what is
    missing): a BrokenImage when a blob it needs is missing or damaged."""
    from ..oci import parse_config
    from ..rootfs import ensure_image
    from ..runtime import spec
    snap = ctx.snapshots
    assert snap is not None  # run needs root, and root has snapshots
    config = parse_config(ctx.images.content.read(record.config), record.reference).raw.get("config") or {}
    argv = spec.command(config, list(a.command), a.entrypoint)  # its errors before any unpacking
    return config, argv, ensure_image(ctx.images, snap, record)


def network_mode(a: RunArgs) -> str:
    return a.network or os.environ.get("MINIRUN_NETWORK") or "bridge"  # as Docker: bridge by default


def run_container(ctx: Context, a: RunArgs, flags: Checked, record: ImageRecord,
                  warn: Callable[[str], None], repair: Callable[[BrokenImage], ImageRecord],
                  helper: Attacher | None = None, started: Callable[[str], None] | None = None) -> int:
    """Run ``a`` (its flags ``check``ed, its image from ``image_for``) to its end: the
    program's exit status (128+N when a signal N ended it). ``warn`` hears of what failed
    after the program ran (the --rm removal), which must not change its status; ``repair``
    gives the image again when it was found broken (``pull_again``); ``helper`` attaches it
    to the bridge (``netrun.helper_for``). ``started`` (run -d, in the monitor) is told the
    container's ID once its program runs; its output then goes to its log."""
    from ..runtime import cgroups, container
    from .netrun import unwire, wire
    # Unpacking and garbage collection exclude each other, as for pull: the GC lock is held
    # (shared) until the container records the snapshots it stacks; from then on they are its.
    with ctx.images.pulling():
        try:
            config, argv, chains = _unpacked(ctx, a, record)
        except BrokenImage as broken:
            record = repair(broken)
            config, argv, chains = _unpacked(ctx, a, record)
        cid = container.new_id()
        hostname = a.hostname or cid[:12]
        wired = None
        try:
            wired = wire(ctx.root, flags.network, cid, hostname, config, helper)
            run_spec = _run_spec(a, flags, config, argv, hostname)
            new = container.ContainerState(cid, a.name or "", a.image, list(argv), "", record.reference, chains,
                                           network=flags.network.mode, address=wired.address, ports=wired.ports,
                                           env=list(run_spec.env), workdir=run_spec.cwd, user=run_spec.user,
                                           capabilities=sorted(flags.capabilities),
                                           stop_signal=_stop_signal(a, config), stop_timeout=flags.stop_timeout,
                                           seccomp=bool(flags.seccomp), no_new_privileges=flags.no_new_privileges,
                                           rlimits=[list(r) for r in flags.rlimits],
                                           cgroup_parent=cgroups.parent_from(os.environ))
            state, directory, files = container.create(ctx.root, new, wired.etc)
        except BaseException:
            unwire(cid, wired)
            raise
    trace.event("container", "create", f"container {cid} created in {directory}"
                + (f", named {a.name}" if a.name else "") + f"; hostname {hostname}", container=cid,
                directory=str(directory))
    container.save_run_args(directory, _as_created(a)._asdict())  # for start
    if flags.seccomp:
        container.save_filter(directory, flags.seccomp)  # for exec
    return _run_created(ctx, a, flags, run_spec, state, directory, files, wired, warn, started)


def _run_created(ctx: Context, a: RunArgs, flags: Checked, run_spec: RunSpec, state: ContainerState,
                 directory: Path, files: dict[str, Path], wired: Wired, warn: Callable[[str], None],
                 started: Callable[[str], None] | None, running: Callable[[], None] | None = None) -> int:
    from .netrun import unwire
    code: int | None = None
    try:
        code = _start(ctx, a, flags, run_spec, state, directory, files, wired.network, started, running)
        return code
    except ContainerStartError as e:
        code = e.code
        raise
    finally:
        unwire(state.id, wired)
        _record_end(a.rm, directory, state, code, warn)


def restart_container(ctx: Context, a: RunArgs, flags: Checked, record: ImageRecord, directory: Path,
                      state: ContainerState, warn: Callable[[str], None],
                      started: Callable[[str], None] | None, running: Callable[[], None] | None = None) -> int:
    """start: the stopped container in ``directory`` run again with the flags it was made with
    (``a``), on the root filesystem it has (its changes kept); as run_container. ``running`` is
    told once its state says so (start then lets other commands at it)."""
    from ..runtime import container
    from .netrun import unwire, wire
    hostname = state.hostname
    with ctx.images.pulling():
        config, _, _ = _unpacked(ctx, a, record)
        wired = None
        try:
            wired = wire(ctx.root, flags.network, state.id, hostname, config)
            # its environment as it was made (the caller's, its env files: read at run, not now)
            run_spec = _run_spec(a, flags, config, tuple(state.command), hostname)._replace(env=tuple(state.env))
            files = container.write_etc(directory, wired.etc)
            if flags.seccomp:
                container.save_filter(directory, flags.seccomp)  # as compiled now, for exec
            state = state.restarted(wired.address, wired.ports)
            container.save(directory, state)
        except BaseException:
            unwire(state.id, wired)
            raise
    return _run_created(ctx, a, flags, run_spec, state, directory, files, wired, warn, started, running)


def _stop_signal(a: RunArgs, config: Mapping[str, Any]) -> str:
    """--stop-signal (checked), else the image's StopSignal where it names one, else SIGTERM."""
    from ..runtime.signals import parse
    if a.stop_signal is not None:
        return a.stop_signal
    image = config.get("StopSignal")
    try:
        return image if isinstance(image, str) and parse(image) else "SIGTERM"
    except UsageError:
        return "SIGTERM"  # an image's odd StopSignal is not the user's error


def _run_spec(a: RunArgs, flags: Checked, config: Mapping[str, Any], argv: tuple[str, ...],
              host: str) -> RunSpec:
    from ..runtime import spec
    return spec.RunSpec(
        argv=argv, env=spec.environment(config, [*flags.env_lines, *a.env], os.environ, host),
        cwd=spec.working_dir(config, a.workdir),
        user=a.user if a.user is not None else config.get("User") or "",
        hostname=host, interactive=a.interactive, binds=flags.binds, tmpfs=flags.tmpfs,
        read_only=a.read_only, privileged=a.privileged, capabilities=flags.capabilities, init=flags.init,
        tty=a.tty, seccomp=flags.seccomp, no_new_privileges=flags.no_new_privileges, rlimits=flags.rlimits)


def _start(ctx: Context, a: RunArgs, flags: Checked, run_spec: RunSpec, state: ContainerState, directory: Path,
           files: dict[str, Path], network: Network, started: Callable[[str], None] | None,
           running: Callable[[], None] | None) -> int:
    """The container's process, from its spec and root filesystem to its exit status (its
    state saved as running once it has started)."""
    from ..runtime import cgroups, container, devices, process
    snap = ctx.snapshots
    assert snap is not None
    try:
        mounts = snap.prepare(state.chains, directory)
    except OSError as e:
        raise container.creation_error(ctx.root, e) from None
    # Every container has a cgroup for its device policy (--privileged: all devices, as
    # Docker), and for its limits when there are any.
    cgroup = cgroups.Cgroup(state.id, flags.limits, None if a.privileged else devices.DOCKER_DEFAULT,
                            state.cgroup_parent)
    def on_started(pid: int) -> None:
        container.save(directory, state.started(pid, os.getpid()))
        if running is not None:
            running()

    log = None
    if flags.log is not None:
        from ..runtime.logs import LogWriter
        log = LogWriter(directory, flags.log)
    try:
        return process.start(run_spec, mounts, mounts[-1].target, files, network,
                             cgroup if cgroup.needed else None,
                             on_started, process.Output(log, None if started is None else lambda: started(state.id)))
    finally:
        if log is not None:
            log.close()


def _record_end(remove: bool, directory: Path, state: ContainerState, code: int | None,
                warn: Callable[[str], None]) -> None:
    """--rm: remove the container; else record how it ended (``code`` None: it never
    started). What fails here is warned of: the program's code still wins."""
    from ..runtime import container
    from .containers import release
    try:
        if remove:
            release(directory, state)  # one that fails part way stays listed, as dead
            trace.event("cleanup", "removed", f"--rm: container {state.id[:12]} removed ({directory}); its "
                        "root filesystem mount ended with its mount namespace", container=state.id)
        else:
            container.save(directory, state.ended(EXIT_RUN_FAILED if code is None else code, os.getpid()))
            trace.event("cleanup", "kept", f"container {state.id[:12]} kept as exited ({code}): "
                        f"minirun rm {state.id[:12]} removes it", container=state.id)
    except StoreError as e:
        if directory.exists():  # else rm -f removed it meanwhile: nothing left to record
            warn(str(e))
