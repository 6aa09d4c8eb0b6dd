"""Volumes for containers (the ``volume`` verbs, a run's -v NAME: and the image's Volumes,
``rm -v``). Never prints."""

from __future__ import annotations

import contextlib
import posixpath
from typing import TYPE_CHECKING

from ..containers.state import load_config, scan
from ..containers.volumes import Volume, Volumes, volume_sources
from ..content.files import file_lock
from ..errors import ContainerConflict, NoSuchVolume, StoreError
from ..records import Record
from ..spec.flags import Bind
from .context import Context

if TYPE_CHECKING:
    from pathlib import Path

    from ..oci import RunConfig


def mounted_volumes(ctx: Context, binds: tuple[Bind, ...], config: RunConfig, chains: list[str]) -> tuple[Bind, ...]:
    """A new container's binds with its volumes made real: each named one made on first use,
    an anonymous one for each ``-v /path`` and each of the image's ``Volumes`` that no mount
    covers (as Docker); a volume that is empty is given what the image has at its path
    (Docker's copy-up) unless ``nocopy``. Each becomes a bind of the volume's data."""
    covered = {b.target for b in binds}
    wanted = list(binds) + [Bind("", posixpath.normpath(p), volume=True) for p in sorted(config.get("Volumes") or {})
                            if p.startswith("/") and posixpath.normpath(p) not in covered]
    volumes, out = Volumes(ctx.root), []
    for b in wanted:
        if not b.volume:
            out.append(b)
            continue
        volume, _ = volumes.create(b.source)
        if not b.nocopy:
            _copy_up(ctx, volume, b.target, chains)
        out.append(Bind(str(volume.data), b.target, b.readonly))
    return tuple(out)


def _copy_up(ctx: Context, volume: Volume, target: str, chains: list[str]) -> None:
    """Under the volume's lock, so that two containers made at once copy it once."""
    from ..snapshots.copyup import copy_up
    snap = ctx.snapshots
    assert snap is not None
    with file_lock(volume.data.parent, what=f"another container filling volume {volume.name}", directory=True):
        try:
            if any(volume.data.iterdir()):
                return  # not empty: the image's content is never copied over what is there
            with snap.image_view(chains) as view:
                copy_up(view, target, volume.data)
        except OSError as e:
            raise StoreError(f"copying the image's {target} into volume {volume.name}: {e.strerror or e}",
                             e.errno) from None


def users(ctx: Context) -> dict[str, list[str]]:
    """Volume name -> the IDs of the containers that mount it (any state)."""
    volumes, out = Volumes(ctx.root), dict[str, list[str]]()
    for directory, state in scan(ctx.root)[0]:
        with contextlib.suppress(StoreError):
            for source in volume_sources(load_config(directory)):
                if (name := volumes.name_of(source)) is not None:
                    out.setdefault(name, []).append(state.id)
    return out


class VolumeRow(Record):
    volume: Volume
    users: list[str]


def list_volumes(ctx: Context) -> list[VolumeRow]:
    used = users(ctx)
    return [VolumeRow(v, used.get(v.name, [])) for v in Volumes(ctx.root).all()]


def get_volume(ctx: Context, name: str) -> Volume:
    return Volumes(ctx.root).get(name)


def create_volume(ctx: Context, name: str, labels: dict[str, str]) -> Volume:
    volume, made = Volumes(ctx.root).create(name, labels)
    if made:
        from ..containers import events
        events.record(ctx.root, "volume", "create", volume.name, {"driver": "local"})
    return volume


def remove_volume(ctx: Context, name: str, force: bool) -> int:
    """volume rm: refused while a container uses it (even with ``force``, as Docker); with
    ``force`` a missing volume is no error. Bytes freed."""
    try:
        freed = Volumes(ctx.root).remove(name, users(ctx).get(name, []))
    except NoSuchVolume:
        if force:
            return 0
        raise
    from ..containers import events
    events.record(ctx.root, "volume", "destroy", name, {"driver": "local"})
    return freed


def prune_volumes(ctx: Context) -> tuple[list[str], int]:
    """Every volume no container uses (Docker 20.10's volume prune); names removed, bytes."""
    removed, freed, volumes = [], 0, Volumes(ctx.root)
    for row in list_volumes(ctx):  # (one scan of the containers for all the volumes)
        if not row.users:
            with contextlib.suppress(ContainerConflict, NoSuchVolume):  # gone meanwhile
                freed += volumes.remove(row.volume.name, row.users)
                removed.append(row.volume.name)
    return removed, freed


def anonymous_of(ctx: Context, directory: Path) -> list[str]:
    """The anonymous volumes a container mounts (read before it is removed: rm -v, --rm)."""
    volumes = Volumes(ctx.root)
    try:
        sources = list(volume_sources(load_config(directory)))
    except StoreError:
        return []
    names = [n for n in (volumes.name_of(s) for s in sources) if n is not None]
    out = []
    for name in names:
        with contextlib.suppress(StoreError):
            if volumes.get(name).anonymous:
                out.append(name)
    return out


def remove_anonymous(ctx: Context, names: list[str]) -> None:
    """After their container went: the anonymous volumes no other container uses."""
    used = users(ctx)
    for name in names:
        with contextlib.suppress(StoreError, ContainerConflict):
            Volumes(ctx.root).remove(name, used.get(name, []))
