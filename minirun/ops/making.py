"""A container's making, apart from running it: ``run``'s flags checked and resolved once
(what they take from the host taken now), and what the spec builder is given. ``run``
builds config.json from these; ``upgrade`` does for a container of an older minirun."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..containers import logs
from ..content.images import ImageRecord
from ..errors import UsageError
from ..oci import RunConfig, parse_config
from ..records import TYPE_CHECKING, Record
from ..runargs import RunArgs, network_mode
from ..runtime import caps, cgroups, process
from ..runtime.cgroups import Limits
from ..runtime.logwriter import LogOptions
from ..runtime.net import netconf
from ..runtime.net.netconf import Choice
from ..runtime.seccomp import load
from ..runtime.seccomp_bpf import go_arch, program_for
from ..runtime.setup import host_caps
from ..runtime.signals import parse
from ..spec import flags as spec
from ..spec.build import Request
from ..spec.flags import Bind, parse_env_file
from ..spec.seccomp import DEFAULT_PROFILE, kernel_version, oci_section, parse_security_opts
from ..spec.settings import Settings
from .context import Context

if TYPE_CHECKING:
    from typing import Any


class Checked(Record):
    """run's flags, parsed and checked before any image is touched, with what they take from
    the host taken now (the caller's variables, env files, the seccomp profile's file)."""
    env: tuple[str, ...]       # -e and env files: K=V, or K alone (not in the caller's environment)
    binds: tuple[Bind, ...]
    tmpfs: tuple[tuple[str, str], ...]
    capabilities: frozenset[int]
    limits: Limits
    init: str
    network: Choice
    seccomp: dict[str, Any] | None   # linux.seccomp (None: unconfined)
    program: bytes                   # ... compiled (b"": none)
    no_new_privileges: bool
    rlimits: tuple[tuple[str, int, int], ...]
    log: LogOptions | None     # the log's bounds; None: --log-driver none
    cgroup_parent: str
    settings: Settings         # for config.json's annotations (the image's part filled in later)
    shm_size: int | None = None   # bytes of /dev/shm (None: Docker's 64m)
    cidfile: str | None = None    # --cidfile, absolute


def check(a: RunArgs, root: Path) -> Checked:
    """``root``: the store, where compiled seccomp filters are kept."""
    if os.geteuid() != 0:
        raise UsageError("run needs root (namespaces, mounts): use sudo minirun run ...")
    mode = network_mode(a, os.environ.get("MINIRUN_NETWORK"))
    network = netconf.choose(mode, a.publish, a.publish_all, a.dns, a.dns_search, a.dns_option,
                             a.add_host, a.network_alias, a.ip or "")
    if netconf.is_user_network(mode):  # there now (by name or ID), and kept by its name
        from ..containers.networks import Networks
        mode = Networks(root).find(mode).name
        network = network._replace(mode=mode)
    if a.hostname is not None:
        _check_hostname(a.hostname)
    from ..spec import restart
    policy = restart.parse(a.restart)
    if a.rm and policy != "no":
        raise UsageError("Conflicting options: --restart and --rm")
    health_of(a, None)  # the --health-* flags checked now, before any pull
    if a.pull not in ("missing", "always", "never"):
        raise UsageError(f'invalid --pull "{a.pull}": expected missing, always or never')
    # Never more than minirun holds (a sandbox may run it without some): config.json says what
    # the container gets, and runc given it would refuse to start with more.
    host = host_caps()
    capabilities = frozenset(c for c in caps.capability_set(a.privileged, a.cap_add, a.cap_drop, host.last_cap)
                             if host.held >> c & 1)
    security = parse_security_opts(a.security_opt)
    section = None
    if security.seccomp is not None and not a.privileged:  # --privileged: no filter, as Docker
        section = _seccomp_section(security.seccomp, capabilities)
    program = program_for(root, section)
    log_opt = _log_opts_as_made(a)  # the configuration's defaults read once, now
    log = _log_options(a, log_opt)
    settings = Settings(network=mode, network_alias=a.network_alias, ip=a.ip or "", publish=a.publish,
                        publish_all=a.publish_all, dns=a.dns,
                        dns_search=a.dns_search, dns_option=a.dns_option, add_host=a.add_host,
                        log_driver=a.log_driver, log_opt=log_opt, stop_timeout=_stop_timeout(a),
                        interactive=a.interactive, init=a.init, privileged=a.privileged,
                        security_opt=a.security_opt, volume=a.volume, mount=a.mount, auto_remove=a.rm,
                        restart=policy,
                        labels=spec.parse_labels(list(a.label), _read_files(a.label_file, "label file")))
    binds, tmpfs = _mounts(a)
    return Checked(_environment(a), binds, tmpfs, capabilities,
                   cgroups.parse_limits(a.memory, a.cpus, a.pids_limit),
                   process.find_init(os.environ) if a.init else "", network, section, program,
                   security.no_new_privileges, tuple(spec.parse_ulimit(u) for u in a.ulimit), log,
                   cgroups.parent_from(os.environ), settings,
                   spec.parse_size(a.shm_size, "--shm-size") if a.shm_size is not None else None,
                   _cidfile(a.cidfile))


def _cidfile(path: str | None) -> str | None:
    """Refused before anything is made when it exists (Docker's check, and its words)."""
    if path is None:
        return None
    if os.path.lexists(path):
        raise UsageError(f"Container ID file found, make sure the other container isn't running or delete {path}")
    return os.path.abspath(path)


def _mounts(a: RunArgs) -> tuple[tuple[Bind, ...], tuple[tuple[str, str], ...]]:
    """-v, --tmpfs and --mount: the binds and volumes, the tmpfs mounts. A --mount bind's
    source must exist (as Docker's; -v makes a missing one)."""
    binds = [spec.parse_volume(v) for v in a.volume]
    tmpfs = [spec.parse_tmpfs(t) for t in a.tmpfs]
    for text in a.mount:
        parsed = spec.parse_mount(text)
        if isinstance(parsed, Bind):
            if not parsed.volume and not os.path.exists(parsed.source):
                raise UsageError(f'invalid mount config for type "bind": bind source path does not exist: '
                                 f"{parsed.source}")
            binds.append(parsed)
        else:
            tmpfs.append(parsed)
    targets = [b.target for b in binds] + [t for t, _ in tmpfs]
    if len(set(targets)) != len(targets):
        twice = next(t for t in targets if targets.count(t) > 1)
        raise UsageError(f"Duplicate mount point: {twice}")
    return tuple(binds), tuple(tmpfs)


def merged_labels(image: list[str], given: tuple[str, ...]) -> tuple[str, ...]:
    """The container's labels: the image's, then those given (which win), as Docker's."""
    out = dict(item.partition("=")[::2] for item in [*image, *given])
    return tuple(f"{k}={v}" for k, v in out.items())


def _read_files(paths: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for path in paths:
        try:
            with open(path) as f:
                out[path] = f.read()
        except OSError as e:
            raise UsageError(f"reading {what} {path}: {e.strerror}") from None
    return out


def _check_hostname(name: str) -> None:
    """A host name the kernel and /etc/hostname can take: printable ASCII without spaces, at
    most 64 bytes (sethostname's bound), as a DNS name is."""
    if not name or len(name) > 64 or not name.isascii() or not name.isprintable() or " " in name:
        raise UsageError(f"invalid hostname {name!r}: expected at most 64 printable ASCII characters, no spaces")


def read_env_files(paths: Sequence[str]) -> list[str]:
    """--env-file (run, create, exec): each file's variables, in order (see parse_env_file)."""
    lines: list[str] = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise UsageError(f"reading env file {path}: {e.strerror}") from None
        lines += parse_env_file(data, path, os.environ)
    return lines


def _environment(a: RunArgs) -> tuple[str, ...]:
    """-e and env files, each ``K`` alone given the caller's value now (or left as ``K``, which
    leaves K out): the container keeps them as they are now."""
    lines = read_env_files(a.env_file)
    return tuple(item if "=" in item or item not in os.environ else f"{item}={os.environ[item]}"
                 for item in [*lines, *a.env])


def _seccomp_section(profile: str, capabilities: frozenset[int]) -> dict[str, Any]:
    """linux.seccomp from a profile's file ("": Docker's default), read now, once."""
    path = profile or DEFAULT_PROFILE
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise UsageError(f"reading seccomp profile {path}: {e.strerror}") from None
    return oci_section(load(text, path), go_arch(), capabilities, kernel_version(os.uname().release))


def _log_opts_as_made(a: RunArgs) -> tuple[str, ...]:
    """--log-opt, or the configuration's defaults as they are now (start uses these again)."""
    return a.log_opt or (() if a.log_driver == "none" else _log_opt_defaults())


def _log_opt_defaults() -> tuple[str, ...]:
    """The configuration's defaults for --log-opt (MINIRUN_LOG_OPTS: max-size=10m,max-file=3)."""
    return tuple(o for o in os.environ.get("MINIRUN_LOG_OPTS", "").split(",") if o)


def _stop_timeout(a: RunArgs) -> int:
    if a.stop_signal is not None:
        parse(a.stop_signal)  # a bad one is said now, not at stop
    if a.stop_timeout is not None and a.stop_timeout < -1:
        raise UsageError(f"invalid --stop-timeout {a.stop_timeout}: expected seconds (-1: wait for ever)")
    return 10 if a.stop_timeout is None else a.stop_timeout


def _log_options(a: RunArgs, opts: tuple[str, ...]) -> LogOptions | None:
    """The log's bounds from ``opts`` (``_log_opts_as_made``); None: --log-driver none."""
    if a.log_driver == "none":  # run -d: its output goes nowhere, as Docker's
        if a.log_opt:
            raise UsageError("--log-opt needs --log-driver json-file")
        return None
    if a.log_driver != "json-file":
        raise UsageError(f'invalid --log-driver "{a.log_driver}": expected json-file or none')
    return log_options(a.log_driver, opts)


def log_options(driver: str, opts: tuple[str, ...]) -> LogOptions | None:
    return None if driver == "none" else logs.parse_options(opts)


def health_of(a: RunArgs, image: object) -> str:
    """The container's health check: the image's Healthcheck with the --health-* flags over it."""
    from ..spec.health import merged
    return merged(image if isinstance(image, dict) else None, a.health_cmd, a.health_interval, a.health_timeout,
                  a.health_retries, a.health_start_period, a.no_healthcheck)


def image_config(ctx: Context, record: ImageRecord) -> RunConfig:
    return parse_config(ctx.images.content.read(record.config), record.reference).run_config


def request_for(a: RunArgs, flags: Checked, config: RunConfig, hostname: str, files: dict[str, Path],
                settings: Settings, cgroups_path: str, network_path: str | None) -> Request:
    """What the spec builder is given: the flags as checked, the image's config, where the
    /etc files are, the cgroup's path and the network namespace (``wire``'s)."""
    return Request(image=config, command=a.command, entrypoint=a.entrypoint, env=flags.env, workdir=a.workdir,
                   hostname=hostname, tty=a.tty, read_only=a.read_only, capabilities=flags.capabilities,
                   binds=flags.binds, tmpfs=flags.tmpfs, etc={k: str(v) for k, v in files.items()},
                   init=flags.init, seccomp=flags.seccomp, no_new_privileges=flags.no_new_privileges,
                   rlimits=flags.rlimits, limits=flags.limits, cgroups_path=cgroups_path,
                   network_path=network_path, settings=settings, shm_size=flags.shm_size)


def stop_signal_of(a: RunArgs, config: RunConfig) -> str:
    """--stop-signal (checked), else the image's StopSignal where it names one, else SIGTERM."""
    if a.stop_signal is not None:
        return a.stop_signal
    image = config.get("StopSignal")
    try:
        return image if isinstance(image, str) and parse(image) else "SIGTERM"
    except UsageError:
        return "SIGTERM"  # an image's odd StopSignal is not the user's error
