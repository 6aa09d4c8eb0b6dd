"""inspect: containers and images as Docker's JSON shows them, for the fields minirun knows.
Never prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ContainerNotFound, ImageNotKnown, ManifestError, StoreError, UsageError
from ..runtime.cgroups import DEFAULT_PARENT
from ..runtime.spec import ULIMITS, Bind, parse_volume
from .context import Context

if TYPE_CHECKING:
    from ..runtime.container import ContainerState
    from ..store import ImageRecord

Doc = dict[str, object]


def inspect(ctx: Context, names: list[str]) -> list[Doc]:
    """Each name as a container (name, ID or prefix), else as an image; an unknown one is
    ImageNotKnown naming it, as Docker's "No such object"."""
    from ..runtime.container import find
    from .images import image_targets
    out: list[Doc] = []
    for name in names:
        try:
            out.append(container_doc(ctx, find(ctx.root, name)[1]))
            continue
        except ContainerNotFound:
            pass
        records = ctx.images.records()
        try:
            keys = image_targets(records, [name])
        except ImageNotKnown:
            raise ImageNotKnown(f"No such object: {name}") from None
        record = next(r for r in records if r.reference == keys[0])
        out.append(image_doc(ctx, record, [r for r in records if r.config == record.config]))
    return out


def _ports(state: ContainerState) -> dict[str, list[dict[str, str]]]:
    """``0.0.0.0:8080->80/tcp`` as Docker's ``{"80/tcp": [{"HostIp": ..., "HostPort": ...}]}``."""
    out: dict[str, list[dict[str, str]]] = {}
    for text in state.ports:
        host, _, inner = text.partition("->")
        ip, _, port = host.rpartition(":")
        out.setdefault(inner, []).append({"HostIp": ip, "HostPort": port})
    return out


_ULIMIT_NAMES = {number: name for name, number in ULIMITS.items()}


def container_doc(ctx: Context, state: ContainerState) -> Doc:
    from ..runtime.container import refresh
    state = refresh(state)
    record = ctx.images.get(state.reference) if state.reference else None
    running = state.status == "running"
    hostname = state.hostname
    binds = _binds(ctx, state)
    return {
        "Id": state.id, "Created": state.created, "Path": state.command[0] if state.command else "",
        "Args": state.command[1:],
        "State": {"Status": state.status, "Running": running, "Paused": False, "Restarting": False,
                  "OOMKilled": False, "Dead": state.status == "dead", "Pid": state.pid if running else 0,
                  "ExitCode": state.exit_code or 0, "Error": state.error, "StartedAt": state.started_at or "",
                  "FinishedAt": state.finished or ""},
        "Image": record.config if record else "", "Name": "/" + state.name,
        "Config": {"Hostname": hostname, "Env": state.env, "Cmd": state.command, "Image": state.image,
                   "WorkingDir": state.workdir, "User": state.user, "StopSignal": state.stop_signal,
                   "StopTimeout": state.stop_timeout},
        "HostConfig": {"NetworkMode": state.network, "PortBindings": _ports(state),
                       "CgroupParent": "" if state.cgroup_parent == DEFAULT_PARENT else state.cgroup_parent,
                       "Binds": [f"{b.source}:{b.target}" + (":ro" if b.readonly else "") for b in binds],
                       "SecurityOpt": _security_opts(ctx, state),
                       "Ulimits": [{"Name": _ULIMIT_NAMES.get(r, str(r)), "Soft": soft, "Hard": hard}
                                   for r, soft, hard in state.rlimits]},
        "NetworkSettings": {"IPAddress": state.address or "", "Ports": _ports(state)},
        "Mounts": [{"Type": "bind", "Source": b.source, "Destination": b.target, "Mode": "ro" if b.readonly else "",
                    "RW": not b.readonly, "Propagation": "rprivate"} for b in binds],
    }


def _run_flag(ctx: Context, state: ContainerState, name: str) -> list[str]:
    """One flag's values as the container was run with them (none if they cannot be read)."""
    from ..runtime.container import load_run_args
    try:
        values = load_run_args(ctx.root / "containers" / state.id).get(name) or []
    except StoreError:
        return []
    return [str(v) for v in values] if isinstance(values, list) else []


def _binds(ctx: Context, state: ContainerState) -> list[Bind]:
    """The container's -v binds, from the flags it was run with."""
    try:
        return [parse_volume(v) for v in _run_flag(ctx, state, "volume")]
    except UsageError:
        return []


def _security_opts(ctx: Context, state: ContainerState) -> list[str]:
    """--security-opt as given (a custom profile by its name), as Docker lists them; what was
    not given but holds (--privileged: no filter) said as Docker says it."""
    given = _run_flag(ctx, state, "security_opt")
    implied = (["seccomp=unconfined"] if not state.seccomp and not any(o.startswith("seccomp") for o in given)
               else []) + (["no-new-privileges"] if state.no_new_privileges and "no-new-privileges" not in given
                           else [])
    return given + implied


def image_doc(ctx: Context, record: ImageRecord, tags: list[ImageRecord]) -> Doc:
    from .. import reference
    from ..oci import parse_config
    try:
        config = parse_config(ctx.images.content.read(record.config), record.reference)
        manifest = ctx.images.manifest_of(record)
    except (StoreError, ManifestError) as e:
        raise StoreError(f"inspecting image {record.reference}: {e}") from None
    raw = config.raw
    tags = [r for r in tags if not r.untagged]
    names = [reference.parse(r.reference) for r in tags]
    return {
        "Id": record.config, "RepoTags": [n.familiar() for n in names if n.tag],
        "RepoDigests": sorted({f"{n.familiar_name}@{r.digest}" for n, r in zip(names, tags, strict=True)}),
        "Created": config.created or "", "Architecture": raw.get("architecture", ""), "Os": raw.get("os", ""),
        "Config": raw.get("config") or {}, "RootFS": {"Type": "layers", "Layers": list(config.diff_ids)},
        "Size": sum(layer.size for layer in manifest.layers),
    }
