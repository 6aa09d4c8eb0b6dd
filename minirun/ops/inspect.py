"""inspect: containers and images as Docker's JSON shows them, for the fields minirun knows.
Never prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..containers.state import docker_time, find, refresh
from ..errors import ContainerNotFound, ImageNotKnown, ManifestError, StoreError, UsageError
from ..oci import parse_config
from ..remote import reference
from ..runtime.cgroups import DEFAULT_PARENT
from ..runtime.plan import cgroup_location
from ..spec.defaults import INIT_TARGET
from ..spec.flags import Bind, parse_mount, parse_volume
from ..spec.restart import name_and_max
from ..spec.settings import Settings
from .containers import configured
from .context import Context
from .images import image_size

if TYPE_CHECKING:
    from ..containers.state import ContainerState
    from ..content.images import ImageRecord

Doc = dict[str, object]


def inspect(ctx: Context, name: str) -> Doc:
    """A name as a container (name, ID or prefix), else as an image; an unknown one is
    ImageNotKnown naming it, as Docker's "No such object"."""
    from .images import image_targets
    try:
        return container_doc(ctx, find(ctx.root, name)[1])
    except ContainerNotFound:
        pass
    records = ctx.images.records()
    try:
        keys = image_targets(records, [name])
    except ImageNotKnown:
        raise ImageNotKnown(f"No such object: {name}") from None
    record = next(r for r in records if r.reference == keys[0])
    return image_doc(ctx, record, [r for r in records if r.config == record.config])


def _ports(state: ContainerState) -> dict[str, list[dict[str, str]]]:
    """``0.0.0.0:8080->80/tcp`` as Docker's ``{"80/tcp": [{"HostIp": ..., "HostPort": ...}]}``."""
    out: dict[str, list[dict[str, str]]] = {}
    for text in state.ports:
        host, _, inner = text.partition("->")
        ip, _, port = host.rpartition(":")
        out.setdefault(inner, []).append({"HostIp": ip, "HostPort": port})
    return out


def container_doc(ctx: Context, state: ContainerState) -> Doc:
    """Docker's fields, from the container's config.json (what it is) and state (where it is
    in its life)."""
    directory = ctx.root / "containers" / state.id
    state = refresh(state, directory)
    try:
        spec, settings = configured(ctx, directory)
    except StoreError:
        if state.status != "dead":
            raise
        spec, settings = {"process": {}, "linux": {}}, Settings()  # a damaged one: what its state says
    process = spec["process"]
    record = ctx.images.get(state.reference) if state.reference else None
    running = state.status == "running"
    restarting = state.waiting_to_restart()
    args = [str(a) for a in process.get("args") or state.command]
    if settings.init and args[:2] == [INIT_TARGET, "--"]:
        args = args[2:]
    binds = _binds(settings)
    return {
        "Id": state.id, "Created": docker_time(state.created), "Path": args[0] if args else "", "Args": args[1:],
        "State": {"Status": "restarting" if restarting else state.status, "Running": running, "Paused": False,
                  "Restarting": restarting,
                  "OOMKilled": False, "Dead": state.status == "dead", "Pid": state.pid if running else 0,
                  "ExitCode": state.exit_code or 0, "Error": state.error, "StartedAt": docker_time(state.started_at),
                  "LogDropped": state.log_dropped, **_health(ctx, state),
                  "FinishedAt": docker_time(state.finished)},
        "Image": record.config if record else "", "Name": "/" + state.name, "RestartCount": state.restart_count,
        "Config": {"Hostname": spec.get("hostname") or state.id[:12], "Env": process.get("env") or [],
                   "Cmd": state.command, "Image": state.image, "WorkingDir": process.get("cwd") or "/",
                   "User": settings.user, "StopSignal": settings.stop_signal, "StopTimeout": settings.stop_timeout,
                   "Tty": bool(process.get("terminal")), "OpenStdin": settings.interactive,
                   "Labels": dict(item.partition("=")[::2] for item in settings.labels)},
        "HostConfig": _host_config(state, spec, settings, binds),
        "NetworkSettings": {"IPAddress": state.address or "", "Ports": _ports(state) if running else {},
                            "Networks": _networks(ctx, state, settings)},
        "Mounts": [{"Type": "bind", "Source": b.source, "Destination": b.target, "Mode": "ro" if b.readonly else "",
                    "RW": not b.readonly, "Propagation": "rprivate"} for b in binds if not b.volume]
        + _volume_mounts(ctx, spec),
    }


def _health(ctx: Context, state: ContainerState) -> Doc:
    """State.Health: the health check's record, None for a container without one."""
    from .health import read
    health = read(ctx.root / "containers" / state.id)
    # (None: Docker's State.Health is a nil pointer then: a template prints <nil>, its JSON
    # leaves the field out; see as_json)
    return {"Health": health}


def _networks(ctx: Context, state: ContainerState, settings: Settings) -> Doc:
    """Docker's NetworkSettings.Networks: each network it is on, its address there while it runs."""
    import os

    from ..containers.networks import builtin_id
    from ..runtime.net.netconf import is_user_network, mac_of
    from .netrun import find_network
    wanted = [(settings.network, settings.network_alias)] + [(j.name, j.aliases) for j in settings.joined()]
    leases = {}
    if state.status == "running" and os.geteuid() == 0:
        from ..runtime.net import network
        leases = {lease.net.name: lease for lease in network.leases_of(state.id)}
    out: Doc = {}
    for name, aliases in wanted:
        if name != "bridge" and not is_user_network(name):
            continue
        try:
            net = find_network(ctx.root, name)
        except StoreError:
            continue
        lease = leases.get(net.name)
        out[name] = {"Aliases": [*aliases, state.id[:12]] if net.names else None,
                     "NetworkID": builtin_id("bridge") if net.builtin else net.id,
                     "IPAddress": lease.address if lease else "", "IPPrefixLen": net.subnet.prefix if lease else 0,
                     "Gateway": net.subnet.gateway if lease else "",
                     "MacAddress": mac_of(lease.address) if lease else ""}
    return out


def _volume_mounts(ctx: Context, spec: dict[str, Any]) -> list[Doc]:
    """Its volumes as Docker's Mounts list them: the binds of a volume's data in config.json."""
    from ..containers.volumes import Volumes
    volumes, out = Volumes(ctx.root), []
    for m in spec.get("mounts") or []:
        name = volumes.name_of(str(m.get("source"))) if m.get("type") == "bind" else None
        if name is not None:
            rw = "ro" not in (m.get("options") or [])
            out.append({"Type": "volume", "Name": name, "Source": m["source"], "Destination": m.get("destination"),
                        "Driver": "local", "Mode": "" if rw else "ro", "RW": rw, "Propagation": ""})
    return out


def _host_config(state: ContainerState, spec: dict[str, Any], settings: Settings, binds: list[Bind]) -> Doc:
    process, linux = spec["process"], spec["linux"]
    resources = linux.get("resources") or {}
    parent = cgroup_location(linux)[0]
    cpu = resources.get("cpu") or {}
    policy, retries = name_and_max(settings.restart)
    return {"NetworkMode": settings.network, "PortBindings": _ports(state),
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries}, "AutoRemove": settings.auto_remove,
            "CgroupParent": "" if parent in ("", DEFAULT_PARENT) else parent,
            "Binds": [f"{b.source}:{b.target}" + (":ro" if b.readonly else "") for b in binds],
            "SecurityOpt": _security_opts(settings, "seccomp" in linux, bool(process.get("noNewPrivileges"))),
            "Privileged": settings.privileged, "ReadonlyRootfs": bool((spec.get("root") or {}).get("readonly")),
            "Init": settings.init, "Memory": (resources.get("memory") or {}).get("limit") or 0,
            "NanoCpus": int(cpu["quota"] * 1e9 // cpu["period"]) if cpu.get("quota") and cpu.get("period") else 0,
            "PidsLimit": (resources.get("pids") or {}).get("limit"),
            "Ulimits": [{"Name": r["type"][7:].lower(), "Soft": _limit(r["soft"]), "Hard": _limit(r["hard"])}
                        for r in process.get("rlimits") or []]}


def _limit(value: int) -> int:
    return -1 if value >= 1 << 63 else value


def _binds(settings: Settings) -> list[Bind]:
    """The container's -v and --mount binds and volumes, as they were given."""
    try:
        mounts = [parse_mount(m) for m in settings.mount]
        return [parse_volume(v) for v in settings.volume] + [m for m in mounts if isinstance(m, Bind)]
    except UsageError:
        return []


def _security_opts(settings: Settings, filtered: bool, no_new_privileges: bool) -> list[str]:
    """--security-opt as given (a custom profile by its name), as Docker lists them; what was
    not given but holds (--privileged: no filter) said as Docker says it."""
    given = list(settings.security_opt)
    implied = (["seccomp=unconfined"] if not filtered and not any(o.startswith("seccomp") for o in given)
               else []) + (["no-new-privileges"] if no_new_privileges and "no-new-privileges" not in given else [])
    return given + implied


def image_doc(ctx: Context, record: ImageRecord, tags: list[ImageRecord]) -> Doc:
    try:
        config = parse_config(ctx.images.content.read(record.config), record.reference)
        manifest = ctx.images.manifest_of(record)
    except (StoreError, ManifestError) as e:
        raise StoreError(f"inspecting image {record.reference}: {e}") from None
    raw = config.raw
    size = image_size(ctx, manifest, config.diff_ids)
    tags = [r for r in tags if not r.untagged]
    names = [reference.parse(r.reference) for r in tags]
    return {
        "Id": record.config, "RepoTags": [n.familiar() for n in names if n.tag],
        "RepoDigests": sorted({f"{n.familiar_name}@{r.digest}" for n, r in zip(names, tags, strict=True)}),
        "Created": config.created or "", "Architecture": raw.get("architecture", ""), "Os": raw.get("os", ""),
        "Config": raw.get("config") or {}, "RootFS": {"Type": "layers", "Layers": list(config.diff_ids)},
        "Size": size, "VirtualSize": size,
    }


def as_json(doc: Doc) -> Doc:
    """A document as Docker's inspect prints it as JSON: the fields its Go structs omit when
    empty left out (a container's State.Health without a health check)."""
    state = doc.get("State")
    if isinstance(state, dict) and state.get("Health", 0) is None:
        return {**doc, "State": {k: v for k, v in state.items() if k != "Health"}}
    return doc
