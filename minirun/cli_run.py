"""``minirun run``: from its command line to the program's exit code, without typer.

Exit codes follow Docker: the program's own (raised as ``ProgramExited``, never
remapped), 125 when minirun fails before the program starts, 126/127 when the
command cannot be run (see ``cli``). Only ``Unable to find image`` and the pull's
lines go to stderr before the program speaks; stdout is the program's alone.
"""

from __future__ import annotations

import os
import sys

from . import runargs
from .cli import ProgramExited, _err, _snapshotter, _store, do_pull, wanted_platform
from .errors import ImageNotKnown, UsageError


def run(words: list[str]) -> int:
    """The words after ``run``. Returns 0 after ``--help``; else raises ProgramExited."""
    args = runargs.parse(words)
    if args.help:
        sys.stdout.write(runargs.help_text())
        return 0
    raise ProgramExited(_start(args))


def _start(a: runargs.RunArgs) -> int:
    from . import reference
    from .oci import parse_config
    from .rootfs import ensure_image, release_container
    from .runtime import caps, cgroups, container, devices, process, spec
    from .store import now_iso

    if os.geteuid() != 0:
        raise UsageError("run needs root (namespaces, mounts): use sudo minirun run ...")
    if a.network not in ("none", "host"):
        raise UsageError(f'invalid --network "{a.network}": expected none or host (bridge comes later)')
    if a.pull not in ("missing", "always", "never"):
        raise UsageError(f'invalid --pull "{a.pull}": expected missing, always or never')
    # Every flag is checked before anything is pulled or unpacked, as Docker does.
    env_lines: list[str] = []
    for path in a.env_file:
        try:
            text = open(path).read()
        except OSError as e:
            raise UsageError(f"reading env file {path}: {e.strerror}") from None
        env_lines += spec.parse_env_file(text, path, os.environ)
    binds = tuple(spec.parse_volume(v) for v in a.volume)
    tmpfs_mounts = tuple(spec.parse_tmpfs(t) for t in a.tmpfs)
    last_cap = int(open("/proc/sys/kernel/cap_last_cap").read())
    capabilities = caps.capability_set(a.privileged, a.cap_add, a.cap_drop, last_cap)
    limits = cgroups.parse_limits(a.memory, a.cpus, a.pids_limit)
    init = process.find_init(os.environ) if a.init else ""
    ref = reference.parse(a.image)
    images = _store()
    record = images.get(str(ref))
    here = record is not None and record.is_for(wanted_platform(a.platform))
    if a.pull == "always" or (a.pull == "missing" and not here):
        if not here:
            sys.stderr.write(f"Unable to find image '{ref.familiar()}' locally\n")
            sys.stderr.flush()
        do_pull(a.image, a.platform, "auto", a.registry_mirror, a.insecure_registry, sys.stderr)
        record = images.get(str(ref))
    elif not here:
        raise ImageNotKnown(f"No such image: {ref.familiar()} (and --pull never)")
    assert record is not None
    snap = _snapshotter(images)
    chains = ensure_image(images, snap, record)
    config = parse_config(images.content.read(record.config), record.reference).raw.get("config") or {}

    argv = spec.command(config, list(a.command), a.entrypoint)
    state, directory, files = container.create(images.root, a.image, list(argv), a.name, a.hostname,
                                               record.reference, chains)
    host = container.hostname_of(directory)
    run_spec = spec.RunSpec(
        argv=argv, env=spec.environment(config, [*env_lines, *a.env], os.environ, host),
        cwd=spec.working_dir(config, a.workdir),
        user=a.user if a.user is not None else config.get("User") or "",
        hostname=host, interactive=a.interactive, binds=binds, tmpfs=tmpfs_mounts,
        read_only=a.read_only, privileged=a.privileged, capabilities=capabilities, init=init, tty=a.tty)
    mounts = snap.prepare(chains, directory)
    code = 125

    def started(pid: int) -> None:
        container.save(directory, state._replace(status="running", pid=pid, monitor=os.getpid()))

    try:
        # Every container has a cgroup for its device policy (--privileged: all devices, as
        # Docker), and for its limits when there are any.
        cgroup = cgroups.Cgroup(state.id, limits, None if a.privileged else devices.DOCKER_DEFAULT)
        code = process.start(run_spec, mounts, mounts[-1].target, files, a.network,
                             cgroup if cgroup.needed else None, started)
    except process.ContainerStartError as e:
        code = e.code
        _err(str(e))
    finally:
        if a.rm:
            release_container(directory)
        else:
            container.save(directory, state._replace(status="exited", exit_code=code, monitor=os.getpid(),
                                                     finished=now_iso()))
    return code
