"""From the image's config and ``run``'s checked flags to one OCI runtime spec (config.json),
built once when a container is made (pure).

As containerd's ``oci.SpecOpts``: the document starts empty and each option below fills one
part of it from the ``Request``; ``build`` applies them in order. A new flag is one field of
the Request and one option (``--device``: a ``with_devices`` line and a field). ``start``,
``exec`` and ``inspect`` read the saved document; none of them reads a flag again.
"""

from __future__ import annotations

from collections.abc import Callable

from ..oci import RunConfig
from ..records import TYPE_CHECKING, Record
from ..runtime.caps import NAMES
from ..runtime.cgroups import Limits
from . import defaults
from .flags import Bind, command, environment, working_dir
from .settings import Settings, to_annotations

if TYPE_CHECKING:
    from typing import Any

    Spec = dict[str, Any]


class Request(Record):
    """``run``'s flags, checked, with everything taken from the host already taken (the
    caller's variables, env files, the seccomp profile's file, the init's path)."""
    image: RunConfig
    command: tuple[str, ...]             # after the image's name
    entrypoint: str | None
    env: tuple[str, ...]                 # -e and env files: K=V, or K alone to leave K out
    workdir: str | None
    hostname: str
    tty: bool
    read_only: bool
    capabilities: frozenset[int]
    binds: tuple[Bind, ...]
    tmpfs: tuple[tuple[str, str], ...]   # (container path, mount options)
    etc: dict[str, str]                  # container path -> the host file bound over it
    init: str                            # the host's static init ("": no --init)
    seccomp: dict[str, Any] | None       # linux.seccomp (None: unconfined)
    no_new_privileges: bool
    rlimits: tuple[tuple[str, int, int], ...]   # (RLIMIT_*, soft, hard)
    limits: Limits
    cgroups_path: str                    # PARENT/<id>
    network_path: str | None             # "": a new network namespace; None: the host's; a path: join it
    settings: Settings
    shm_size: int | None = None          # bytes of /dev/shm (None: Docker's 64m)


if TYPE_CHECKING:
    Option = Callable[[Spec, Request], None]


def with_process(spec: Spec, r: Request) -> None:
    argv = command(r.image, list(r.command), r.entrypoint)
    if r.init:  # as Docker: its init first, the program after "--"
        argv = (defaults.INIT_TARGET, "--", *argv)
    spec["process"] = {
        "terminal": r.tty, "user": _numeric_user(r.settings.user), "args": list(argv),
        "env": list(environment(r.image, list(r.env), {}, r.hostname)),
        "cwd": working_dir(r.image, r.workdir), "noNewPrivileges": r.no_new_privileges,
    }


def _numeric_user(user: str) -> dict[str, int]:
    """``uid[:gid]`` as numbers; a name is resolved in the container at each start (its
    /etc/passwd may change), so the spec says 0 and the name is in the settings."""
    uid, _, gid = user.partition(":")
    return {"uid": int(uid) if uid.isdigit() else 0, "gid": int(gid) if gid.isdigit() else 0}


def with_capabilities(spec: Spec, r: Request) -> None:
    """The same set bounding, effective and permitted (exec as a non-root user clears the last
    two); inheritable and ambient empty, as runc since CVE-2022-24769."""
    names = [f"CAP_{NAMES[c]}" for c in sorted(r.capabilities) if c < len(NAMES)]
    spec["process"]["capabilities"] = {"bounding": names, "effective": names, "permitted": names,
                                       "inheritable": [], "ambient": []}


def with_rlimits(spec: Spec, r: Request) -> None:
    if r.rlimits:
        spec["process"]["rlimits"] = [{"type": t, "soft": _limit(s), "hard": _limit(h)} for t, s, h in r.rlimits]


def _limit(value: int) -> int:
    return (1 << 64) - 1 if value == -1 else value  # RLIM_INFINITY, as the spec's uint64 says it


def with_root(spec: Spec, r: Request) -> None:
    spec["root"] = {"path": "rootfs", "readonly": r.read_only}
    spec["hostname"] = r.hostname


def with_mounts(spec: Spec, r: Request) -> None:
    """Docker's order: the container's own filesystems, the /etc files, the init, volumes,
    tmpfs. Binds are rbind and rprivate, read-only where asked (the /etc files with the root)."""
    mounts = [{**m, "options": list(m["options"])} for m in defaults.MOUNTS]  # copies: the defaults stay
    if r.shm_size is not None:
        shm = next(m for m in mounts if m["destination"] == "/dev/shm")
        shm["options"] = [o for o in shm["options"] if not o.startswith("size=")] + [f"size={r.shm_size}"]
    for target, source in sorted(r.etc.items()):
        mounts.append(_bind(source, target, r.read_only))
    if r.init:
        mounts.append(_bind(r.init, defaults.INIT_TARGET, True))
    mounts += [_bind(b.source, b.target, b.readonly) for b in r.binds]
    mounts += [{"destination": path, "type": "tmpfs", "source": "tmpfs", "options": options.split(",")}
               for path, options in r.tmpfs]
    spec["mounts"] = mounts


def _bind(source: str, target: str, readonly: bool) -> dict[str, Any]:
    return {"destination": target, "type": "bind", "source": source,
            "options": ["rbind", "rprivate", "ro" if readonly else "rw"]}


def with_namespaces(spec: Spec, r: Request) -> None:
    namespaces: list[dict[str, str]] = [{"type": t} for t in defaults.NAMESPACES]
    if r.network_path is not None:
        namespaces.append({"type": "network", **({"path": r.network_path} if r.network_path else {})})
    spec["linux"]["namespaces"] = namespaces


def with_devices(spec: Spec, r: Request) -> None:
    """The default device nodes; the device cgroup allows them alone (all: --privileged)."""
    spec["linux"]["devices"] = [{"path": f"/dev/{name}", "type": "c", "major": major, "minor": minor,
                                 "fileMode": 0o666, "uid": 0, "gid": 0}
                                for name, major, minor in defaults.DEVICES]
    rules = defaults.ALL_DEVICES if r.settings.privileged else defaults.DEVICE_RULES
    spec["linux"]["resources"]["devices"] = [dict(rule) for rule in rules]


def with_resources(spec: Spec, r: Request) -> None:
    """--memory, --cpus (as a quota per 100 ms period, as Docker), --pids-limit."""
    resources = spec["linux"]["resources"]
    if r.limits.memory is not None:
        resources["memory"] = {"limit": r.limits.memory}
    if r.limits.cpus is not None:
        resources["cpu"] = {"quota": int(r.limits.cpus * 100_000), "period": 100_000}
    if r.limits.pids is not None:
        resources["pids"] = {"limit": r.limits.pids}
    spec["linux"]["cgroupsPath"] = "/" + r.cgroups_path.strip("/")


def with_confinement(spec: Spec, r: Request) -> None:
    """Docker's masked and read-only paths (none with --privileged), its seccomp filter."""
    if not r.settings.privileged:
        spec["linux"]["maskedPaths"] = list(defaults.MASKED_PATHS)
        spec["linux"]["readonlyPaths"] = list(defaults.READONLY_PATHS)
    if r.seccomp is not None:
        spec["linux"]["seccomp"] = r.seccomp


def with_annotations(spec: Spec, r: Request) -> None:
    spec["annotations"] = to_annotations(r.settings._replace(init=bool(r.init)))


OPTIONS: tuple[Option, ...] = (with_process, with_capabilities, with_rlimits, with_root, with_mounts,
                               with_namespaces, with_devices, with_resources, with_confinement, with_annotations)


def build(r: Request, options: tuple[Option, ...] = OPTIONS) -> Spec:
    spec: Spec = {"ociVersion": defaults.OCI_VERSION, "linux": {"resources": {}}}
    for option in options:
        option(spec, r)
    return spec
