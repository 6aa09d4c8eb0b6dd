"""``run``: from parsed flags to the program's exit status, without printing.

Every flag is checked before anything is pulled or unpacked, as Docker does. The program's
own exit code is returned as it is; a program that could not be started raises
``ContainerStartError`` (125, 126 or 127) once the container's end is recorded. This is the
path whose start time counts: modules are imported where they are needed, and a cached
image loads no HTTP client.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .. import trace
from ..containers import events
from ..containers import state as container
from ..errors import (
    EXIT_RUN_FAILED,
    BrokenImage,
    ContainerStartError,
    ImageNotKnown,
    OutputError,
    PlatformNotFound,
    StoreError,
    UsageError,
)
from ..records import TYPE_CHECKING, Record
from ..remote import reference
from ..runtime import cgroups, process
from ..runtime.logwriter import LogWriter
from ..runtime.net import netconf
from ..runtime.plan import plan
from ..runtime.seccomp_bpf import program_for
from ..runtime.signals import Forwarder
from ..runtime.stdio import Output
from ..snapshots.rootfs import ensure_image
from ..spec.build import build
from ..spec.flags import command
from .containers import release
from .context import Context, platform_mismatch, wanted_platform
from .images import by_id, by_name, explain_reference
from .making import Checked, health_of, image_config, log_options, merged_labels, request_for, stop_signal_of
from .netrun import unwire, wire

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from ..containers.state import ContainerState
    from ..content.images import ImageRecord
    from ..oci import RunConfig
    from ..pull import Emit
    from ..runargs import RunArgs
    from ..runtime.logwriter import LogOptions
    from ..runtime.net.attacher import Attacher
    from ..runtime.plan import Plan
    from ..runtime.relay import Pipes
    from ..spec.settings import Settings
    from .health import Checker
    from .netrun import Wired


def image_for(ctx: Context, a: RunArgs, announce: Callable[[str], None], emit: Emit) -> ImageRecord:
    """The image to run, pulled as --pull says (missing, always, never); an image ID (or a
    prefix of one) that no name matches runs that image, never pulled."""
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
        trace.event("reference", "local", f"in the local store ({ctx.images.path_of(str(ref))}): image ID "
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


def _unpacked(ctx: Context, a: RunArgs, record: ImageRecord) -> tuple[RunConfig, tuple[str, ...], list[str]]:
    """The image's config, the argv to run and its snapshots' ChainIDs (unpacking what is
    missing): a BrokenImage when a blob it needs is missing or damaged."""
    snap = ctx.snapshots
    assert snap is not None  # run needs root, and root has snapshots
    config = image_config(ctx, record)
    argv = command(config, list(a.command), a.entrypoint)  # its errors before any unpacking
    return config, argv, ensure_image(ctx.images, snap, record)


def run_container(ctx: Context, a: RunArgs, flags: Checked, record: ImageRecord,
                  warn: Callable[[str], None], repair: Callable[[BrokenImage], ImageRecord],
                  helper: Attacher | None = None, started: Callable[[str], None] | None = None,
                  after: Callable[[Path, int], int] | None = None) -> int:
    """Run ``a`` (its flags ``check``ed, its image from ``image_for``) to its end: the
    program's exit status (128+N when a signal N ended it). ``warn`` hears of what failed
    after the program ran (the --rm removal), which must not change its status; ``repair``
    gives the image again when it was found broken (``pull_again``); ``helper`` attaches it
    to the bridge (``attacher.for_mode``). ``started`` (run -d, in the monitor) is told the
    container's ID once its program runs; its output then goes to its log. ``after`` is given
    the container's directory and exit code and returns the code (its restart policy)."""
    made, state, directory, wired = _make(ctx, a, flags, record, repair, helper)
    code = _run_created(ctx, a.rm, made, state, directory, wired, warn, started)
    return code if after is None else after(directory, code)


def create_container(ctx: Context, a: RunArgs, flags: Checked, record: ImageRecord,
                     repair: Callable[[BrokenImage], ImageRecord]) -> str:
    """create: the container made as run makes it, left created (its network given back:
    start wires it again); its ID."""
    made, state, directory, wired = _make(ctx, a, flags, record, repair, None)
    made.signals.restore()
    unwire(state.id, wired)
    container.save(directory, state._replace(address=None, ports=[]))
    return state.id


def _make(ctx: Context, a: RunArgs, flags: Checked, record: ImageRecord,
          repair: Callable[[BrokenImage], ImageRecord],
          helper: Attacher | None) -> tuple[Made, ContainerState, Path, Wired]:
    """The container made: its image unpacked, its volumes, its network wired, its config.json
    built here, once (start, exec and inspect read it), its directory and state written."""
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
        # On a user network the others find it by its name, given to its lease before it is made.
        name = a.name or (container.generated_name() if netconf.is_user_network(flags.network.mode) else "")
        image_labels = [f"{k}={v}" for k, v in (config.get("Labels") or {}).items()]
        settings = flags.settings._replace(stop_signal=stop_signal_of(a, config),
                                           user=a.user if a.user is not None else config.get("User", ""),
                                           labels=merged_labels(image_labels, flags.settings.labels),
                                           health=health_of(a, config.get("Healthcheck")))
        wired, holder = None, None
        made: list[dict[str, Any]] = []
        if any(b.volume for b in flags.binds) or config.get("Volumes"):
            from .volumes import mounted_volumes  # only then: most runs have none
            flags = flags._replace(binds=mounted_volumes(ctx, flags.binds, config, chains))
        try:
            wired = wire(ctx.root, flags.network, cid, hostname, config, helper, name)

            def spec_for(files: dict[str, Path]) -> dict[str, Any]:
                made.append(build(request_for(a, flags, config, hostname, files, settings,
                                              f"{flags.cgroup_parent}/{cid}", wired.network_path)))
                return made[0]

            new = container.ContainerState(cid, name, a.image, list(argv), "", record.reference, chains,
                                           address=wired.address, ports=wired.ports)
            # From the container's making on, a Ctrl-C or SIGTERM is the container's (held until
            # its process exists, then forwarded), never the end of this command with a
            # container left behind.
            holder = Forwarder()
            state, directory = container.create(ctx.root, new, wired.etc, spec_for)
            if flags.cidfile:
                write_cidfile(flags.cidfile, cid)
        except BaseException:
            if holder is not None:
                holder.restore()
            unwire(cid, wired)
            raise
    trace.event("container", "create", f"container {cid} created in {directory}, its config.json (an OCI "
                "runtime spec) written"
                + (f", named {a.name}" if a.name else "") + f"; hostname {hostname}", container=cid,
                directory=str(directory))
    _event(ctx, "create", state, settings)
    return Made(made[0], settings, flags.program, flags.log, a.interactive, holder), state, directory, wired


def _event(ctx: Context, action: str, state: ContainerState, settings: Settings | None, **more: str) -> None:
    """A container's event in the journal (containers/events.py), as Docker's daemon sends it."""
    labels = dict(item.partition("=")[::2] for item in settings.labels) if settings else {}
    events.of_container(ctx.root, action, state.id, state.name, state.image, labels, **more)


def write_cidfile(path: str, cid: str) -> None:
    """--cidfile: the ID, in a file that must not exist (as Docker's)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise UsageError(f"Container ID file found, make sure the other container isn't running or delete {path}") \
            from None
    except OSError as e:
        raise UsageError(f"writing --cidfile {path}: {e.strerror}") from None
    with open(fd, "w") as f:
        f.write(cid)


class Made(Record):
    """A container as made: its config.json, its settings (from its annotations), its seccomp
    filter compiled, its log's bounds, and whether this start gives it our stdin."""
    spec: dict[str, Any]
    settings: Settings
    program: bytes
    log: LogOptions | None
    interactive: bool
    signals: Forwarder      # installed when it was made (or made ready to start): restored at its end


def _run_created(ctx: Context, remove: bool, made: Made, state: ContainerState, directory: Path, wired: Wired,
                 warn: Callable[[str], None], started: Callable[[str], None] | None,
                 running: Callable[[], None] | None = None) -> int:
    code: int | None = None
    troubles: list[OSError] = []
    lost: list[tuple[int, str]] = []  # its log's dropped entries and why
    try:
        code = _start(ctx, made, state, directory, wired, started, running, troubles, lost)
    except ContainerStartError as e:
        code = e.code
        raise
    finally:
        try:
            unwire(state.id, wired)
            wind_up(ctx, remove, made.settings, state, directory, code, lost, warn)
        finally:
            made.signals.restore()
    if troubles:  # its output could not be written (a full disk): said, and exit 1, as Docker
        raise OutputError(troubles[0].strerror or str(troubles[0]))
    return code


def wind_up(ctx: Context, remove: bool, settings: Settings, state: ContainerState, directory: Path,
            code: int | None, lost: list[tuple[int, str]], warn: Callable[[str], None]) -> None:
    """After the container's end (``code`` None: it never started), its network given back:
    its die event, what its log lost, its end recorded (--rm: removed)."""
    if code is not None:
        _event(ctx, "die", state, settings, exitCode=str(code))
    if lost:  # said once, and kept for inspect; the program went on regardless
        warn(f"container {state.id[:12]}: {lost[0][0]} log entries could not be written "
             f"({lost[0][1]}); its output was still passed on")
        state = state._replace(log_dropped=lost[0][0])
    _record_end(ctx, remove, directory, state, code, warn)


def restart_container(ctx: Context, directory: Path, state: ContainerState, spec: dict[str, Any],
                      settings: Settings, interactive: bool, warn: Callable[[str], None],
                      started: Callable[[str], None] | None, running: Callable[[], None] | None = None) -> int:
    """start: the stopped container in ``directory`` run again as its config.json (``spec``,
    its annotations read as ``settings``) says, on the root filesystem it has (its changes
    kept); as run_container. Nothing of the caller's (flags, environment, env files) is read
    again: its network is re-made from its settings (a joined container's namespace found
    again). ``running`` is told once its state
    says so (start then lets other commands at it)."""
    choice = netconf.choose(settings.network, settings.publish, settings.publish_all, settings.dns,
                            settings.dns_search, settings.dns_option, settings.add_host, settings.network_alias,
                            settings.ip)
    record = ctx.images.get(state.reference)
    if record is None:
        raise ImageNotKnown(f"starting container {state.name}: its image {state.image} is no longer in the store")
    program = program_for(ctx.root, spec["linux"].get("seccomp"))
    log = log_options(settings.log_driver, settings.log_opt)
    with ctx.images.pulling():
        wired = None
        made = Made(spec, settings, program, log, interactive and settings.interactive, Forwarder())
        try:
            wired = wire(ctx.root, choice, state.id, str(spec.get("hostname") or state.id[:12]),
                         image_config(ctx, record), name=state.name, connected=settings.joined())
            container.write_etc(directory, wired.etc)
            state = state.restarted(wired.address, wired.ports)
            container.save(directory, state)
        except BaseException:
            made.signals.restore()
            unwire(state.id, wired)
            raise
    return _run_created(ctx, settings.auto_remove, made, state, directory, wired, warn, started, running)


def _start(ctx: Context, made: Made, state: ContainerState, directory: Path, wired: Wired,
           started: Callable[[str], None] | None, running: Callable[[], None] | None,
           troubles: list[OSError], lost: list[tuple[int, str]]) -> int:
    """The container's process, from its config.json and root filesystem to its exit status
    (its state saved as running once it has started)."""
    snap = ctx.snapshots
    assert snap is not None
    to_run = plan(made.spec, made.interactive, made.settings.user, f"the configuration of container {state.id[:12]}")
    try:
        mounts = snap.prepare(state.chains, directory)
    except OSError as e:
        raise container.creation_error(ctx.root, e) from None
    # Every container has a cgroup for its device policy (--privileged: all devices, as
    # Docker), and for its limits when there are any.
    cgroup = cgroups.Cgroup(to_run.cgroup_name, to_run.limits, to_run.device_rules, to_run.cgroup_parent)

    checkers: list[Checker] = []

    def on_started(pid: int) -> None:
        container.save(directory, state.started(pid, os.getpid()))
        _event(ctx, "start", state, made.settings)
        checker = _checker(ctx, directory, state, made.settings) if made.settings.health else None
        if checker is not None:
            checkers.append(checker)
        if running is not None:
            running()

    log = None
    if made.log is not None:
        log = LogWriter(directory, made.log)
    lean = _lean(ctx, directory, made, to_run) if started is not None else None
    try:
        launch = process.Launch(to_run, made.program, mounts, mounts[-1].target, cgroup if cgroup.needed else None,
                                wired.attach, wired.joined)
        return process.start(launch, on_started,
                             Output(None if log is None else log.write, _on_exec(state.id, started, lean), troubles,
                                    lean),
                             made.signals)
    finally:
        for checker in checkers:
            checker.stop()
        if log is not None:
            log.close()
            if log.dropped:
                lost.append((log.dropped, log.failure.strerror or str(log.failure) if log.failure else "?"))


def _on_exec(cid: str, started: Callable[[str], None] | None,
             lean: Callable[[int, int, Pipes | None], None] | None) -> Callable[[], None] | None:
    """What a detached container's monitor does once its program runs: the CLI told, then its
    heap shed where it stays the full monitor (no lean one to exec: a health check)."""
    if started is None:
        return None
    if lean is not None:
        return lambda: started(cid)
    from .monitor import staying
    return staying(started, cid)


def _lean(ctx: Context, directory: Path, made: Made,
          to_run: Plan) -> Callable[[int, int, Pipes | None], None] | None:
    """A detached container's monitor becomes the lean one once its program runs (see
    runtime/keeper.py), and ops/aftermath.py after its end; not with a health check, whose
    prober is a thread of this monitor's, nor when the program has ended by then (hello-world:
    the lean monitor and the aftermath would be ~45 ms of two interpreters' starts for it).
    What the end's work must not read back from disk (config.json may be gone or damaged by
    then) goes in its arguments: the cgroup, --rm, the restart policy."""
    if made.settings.health:
        return None

    def hand_off(pid: int, master: int, pipes: Pipes | None) -> None:
        if process.ended_already(pid):
            return  # a program that is done already: this monitor ends it, not two interpreters more
        from ..runtime.keeper import command, exec_lean
        after = [*command("minirun.ops.aftermath"), str(ctx.root), ctx.driver or "", str(directory),
                 to_run.cgroup_name, to_run.cgroup_parent, "rm" if made.settings.auto_remove else "keep",
                 made.settings.restart]
        exec_lean(pid, str(directory), made.log, master, pipes, after)
        from .monitor import shed
        shed()  # the exec failed: this monitor relays after all
    return hand_off


def _checker(ctx: Context, directory: Path, state: ContainerState, settings: Settings) -> Checker | None:
    """Its health check's prober, started (ops/health.py)."""
    from ..spec.health import check_of
    from .health import Checker
    check = check_of(settings.health)
    if check is None:
        return None
    checker = Checker(ctx.root, directory, state, check, dict(i.partition("=")[::2] for i in settings.labels))
    checker.start()
    return checker


def _current_state(directory: Path, made: ContainerState) -> ContainerState:
    """Its state on disk when that is this run's (it started), else ``made``."""
    try:
        current = container.load(directory)
    except StoreError:
        return made
    if current.status == "running" and current.monitor == os.getpid():
        return current._replace(log_dropped=made.log_dropped)
    return made


def _record_end(ctx: Context, remove: bool, directory: Path, state: ContainerState, code: int | None,
                warn: Callable[[str], None]) -> None:
    """--rm: remove the container; else record how it ended (``code`` None: it never
    started). What fails here is warned of: the program's code still wins."""
    try:
        if remove:
            container.leave_exit_code(directory, EXIT_RUN_FAILED if code is None else code)  # for a wait on it
            anonymous = _anonymous_volumes(ctx, directory)
            release(directory, state)  # one that fails part way stays listed, as dead
            if anonymous:  # --rm takes its anonymous volumes with it, as Docker's
                from .volumes import remove_anonymous
                remove_anonymous(ctx, anonymous)
            _event(ctx, "destroy", state, None)
            trace.event("cleanup", "removed", f"--rm: container {state.id[:12]} removed ({directory}); its "
                        "root filesystem mount ended with its mount namespace", container=state.id)
        else:
            # As it is now (started: its PID and start time kept), else as it was made.
            current = _current_state(directory, state)
            container.save(directory, current.ended(EXIT_RUN_FAILED if code is None else code, os.getpid()))
            trace.event("cleanup", "kept", f"container {state.id[:12]} kept as exited ({code}): "
                        f"minirun rm {state.id[:12]} removes it", container=state.id)
    except StoreError as e:
        if directory.exists():  # else rm -f removed it meanwhile: nothing left to record
            warn(str(e))


def _anonymous_volumes(ctx: Context, directory: Path) -> list[str]:
    if not (ctx.root / "volumes").is_dir():
        return []  # (no volume was ever made: nothing to read)
    from .volumes import anonymous_of
    return anonymous_of(ctx, directory)
