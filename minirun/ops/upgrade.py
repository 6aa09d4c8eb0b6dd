"""Containers made by a minirun before config.json (0.x: run.json beside a state.json that
kept the environment, user, capabilities and stop settings): their config.json made once,
from what they kept, the first time a command needs it. Nothing is read from the caller's
environment that run had not already resolved (run.json kept the network and log options as
resolved; the environment is the one state.json recorded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .context import Context


def config_of_old(ctx: Context, directory: Path) -> dict[str, Any]:
    """Its config.json, built from run.json and the old state.json, and saved; a StoreError
    naming what is missing when it cannot be."""
    from ..containers.state import hostname_of, load, save_config
    from ..errors import MiniRunError
    from ..runargs import RunArgs
    from ..spec.build import build
    from .making import Checked, check, image_config, request_for
    key = directory.name[:12]
    try:
        run = json.loads((directory / "run.json").read_text())
        old = json.loads((directory / "state.json").read_text())
    except (OSError, ValueError):
        raise StoreError(f"reading the configuration of container {key}: it has no config.json, and no "
                         "run.json to make one from") from None
    state = load(directory)
    record = ctx.images.get(state.reference)
    if not isinstance(run, dict) or not isinstance(old, dict) or record is None:
        raise StoreError(f"container {key} was made by an older minirun and cannot be brought up to date: "
                         "its run.json or its image is gone")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in run.items() if k in RunArgs._fields}
    a = RunArgs(**values)
    a = a._replace(entrypoint="", command=tuple(state.command), env=tuple(old.get("env") or ()))
    try:
        flags: Checked = check(a, ctx.root)
    except MiniRunError as e:
        raise StoreError(f"container {key} was made by an older minirun and cannot be brought up to date: {e}") \
            from None
    settings = flags.settings._replace(stop_signal=str(old.get("stop_signal") or "SIGTERM"),
                                       user=str(old.get("user") or ""))
    files = {f"/etc/{name}": directory / name for name in ("hostname", "hosts", "resolv.conf")
             if (directory / name).exists()}
    network_path = None if settings.network == "host" else \
        "/proc/self/ns/net" if settings.network.startswith("container:") else ""  # joined anew at each start
    config = image_config(ctx, record)
    hostname = hostname_of(directory) if "/etc/hostname" in files else state.id[:12]
    spec = build(request_for(a, flags, config, hostname, files, settings,
                             f"{old.get('cgroup_parent') or flags.cgroup_parent}/{state.id}", network_path))
    save_config(directory, spec)
    return spec
