"""start: a stopped container run again (apart from ``containers``: it needs ``run`` and
``detach``, which need ``containers``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ..errors import ContainerConflict
from .context import Context


def start_container(ctx: Context, key: str, attach: bool, warn: Callable[[str], None],
                    interactive: bool = False) -> int | None:
    """start: a stopped container run again with the flags it was made with, on its own root
    filesystem (its changes kept): in a monitor (as run -d; returns None once the program
    runs), or attached (``attach``: returns its exit status; ``interactive``: with our stdin,
    if it was made with -i). Other commands on it (a second start, stop, rm) wait until its
    state says running."""
    from ..errors import ImageNotKnown
    from ..runargs import RunArgs
    from ..runtime.container import find, load, load_run_args, refresh
    from .containers import changing
    from .detach import in_monitor
    from .run import check, restart_container
    directory, state = find(ctx.root, key)
    doc = load_run_args(directory)
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()
                              if k in RunArgs._fields}  # JSON as run saved it
    a = RunArgs(**values)
    a = a._replace(interactive=a.interactive and interactive)
    flags = check(a, ctx.root)
    record = ctx.images.get(state.reference)
    if record is None:
        raise ImageNotKnown(f"starting container {key}: its image {state.image} is no longer in the store")
    with contextlib.ExitStack() as held:
        held.enter_context(changing(directory, key))
        state = refresh(load(directory))  # a container whose monitor died is exited
        if state.status == "running":
            raise ContainerConflict(f"container {key} is already running")
        if attach:
            return restart_container(ctx, a, flags, record, directory, state, warn, None, held.close)
        in_monitor(lambda started: restart_container(ctx, a, flags, record, directory, state, lambda _: None,
                                                     started))
        return None
