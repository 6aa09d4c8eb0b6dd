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
from typing import TYPE_CHECKING, NamedTuple

from ..errors import EXIT_RUN_FAILED, ContainerStartError, ImageNotKnown, StoreError, UsageError
from .context import Context, wanted_platform

if TYPE_CHECKING:
    from ..pull import Emit
    from ..runargs import RunArgs
    from ..runtime.cgroups import Limits
    from ..runtime.spec import Bind
    from ..store import ImageRecord


class Checked(NamedTuple):
    """run's flags, parsed and checked before any image is touched."""
    env_lines: list[str]
    binds: tuple[Bind, ...]
    tmpfs: tuple[tuple[str, str], ...]
    capabilities: frozenset[int]
    limits: Limits
    init: str


def check(a: RunArgs) -> Checked:
    from ..runtime import caps, cgroups, process, spec
    if os.geteuid() != 0:
        raise UsageError("run needs root (namespaces, mounts): use sudo minirun run ...")
    if a.network not in ("none", "host"):
        raise UsageError(f'invalid --network "{a.network}": expected none or host (bridge comes later)')
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
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    return Checked(env_lines, tuple(spec.parse_volume(v) for v in a.volume),
                   tuple(spec.parse_tmpfs(t) for t in a.tmpfs),
                   caps.capability_set(a.privileged, a.cap_add, a.cap_drop, last_cap),
                   cgroups.parse_limits(a.memory, a.cpus, a.pids_limit),
                   process.find_init(os.environ) if a.init else "")


def image_for(ctx: Context, a: RunArgs, announce: Callable[[str], None], emit: Emit) -> ImageRecord:
    """The image to run, pulled as --pull says (missing, always, never)."""
    from .. import reference
    ref = reference.parse(a.image)
    record = ctx.images.get(str(ref))
    here = record is not None and record.is_for(wanted_platform(a.platform))
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
    return record


def run_container(ctx: Context, a: RunArgs, flags: Checked, record: ImageRecord,
                  warn: Callable[[str], None]) -> int:
    """Run ``a`` (its flags ``check``ed, its image from ``image_for``) to its end: the
    program's exit status (128+N when a signal N ended it). ``warn`` hears of what failed
    after the program ran (the --rm removal), which must not change its status."""
    from ..oci import parse_config
    from ..rootfs import ensure_image
    from ..runtime import cgroups, container, devices, process, spec
    from .containers import release
    snap = ctx.snapshots
    assert snap is not None  # run needs root, and root has snapshots
    config = parse_config(ctx.images.content.read(record.config), record.reference).raw.get("config") or {}
    argv = spec.command(config, list(a.command), a.entrypoint)
    # Unpacking and garbage collection exclude each other, as for pull: the GC lock is held
    # (shared) until the container records the snapshots it stacks; from then on they are its.
    with ctx.images.pulling():
        chains = ensure_image(ctx.images, snap, record)
        state, directory, files = container.create(ctx.root, a.image, list(argv), a.name, a.hostname,
                                                   record.reference, chains)
    host = container.hostname_of(directory)
    run_spec = spec.RunSpec(
        argv=argv, env=spec.environment(config, [*flags.env_lines, *a.env], os.environ, host),
        cwd=spec.working_dir(config, a.workdir),
        user=a.user if a.user is not None else config.get("User") or "",
        hostname=host, interactive=a.interactive, binds=flags.binds, tmpfs=flags.tmpfs,
        read_only=a.read_only, privileged=a.privileged, capabilities=flags.capabilities, init=flags.init,
        tty=a.tty)
    mounts = snap.prepare(chains, directory)
    # Every container has a cgroup for its device policy (--privileged: all devices, as
    # Docker), and for its limits when there are any.
    cgroup = cgroups.Cgroup(state.id, flags.limits, None if a.privileged else devices.DOCKER_DEFAULT)
    code: int | None = None
    try:
        code = process.start(run_spec, mounts, mounts[-1].target, files, a.network,
                             cgroup if cgroup.needed else None,
                             lambda pid: container.save(directory, state.started(pid, os.getpid())))
        return code
    except ContainerStartError as e:
        code = e.code
        raise
    finally:
        if a.rm:
            try:
                release(directory, state)
            except StoreError as e:  # the program's code still wins; the container stays listed
                warn(str(e))
        else:
            container.save(directory, state.ended(EXIT_RUN_FAILED if code is None else code, os.getpid()))
