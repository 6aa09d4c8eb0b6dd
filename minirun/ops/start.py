"""start: a stopped container run again (apart from ``containers``: it needs ``run`` and
``detach``, which need ``containers``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ..containers.state import find, load, mark_user_stopped, refresh
from ..errors import ContainerConflict
from .containers import changing, configured
from .context import Context


def start_container(ctx: Context, key: str, attach: bool, warn: Callable[[str], None],
                    interactive: bool = False) -> int | None:
    """start: a stopped container run again as its config.json says, on its own root
    filesystem (its changes kept): in a monitor (as run -d; returns None once the program
    runs), or attached (``attach``: returns its exit status; ``interactive``: with our stdin,
    if it was made with -i). Other commands on it (a second start, stop, rm) wait until its
    state says running."""
    from .monitor import in_monitor
    from .restart import then_policy
    from .run import restart_container
    directory, state = find(ctx.root, key)
    spec, settings = configured(ctx, directory)
    with contextlib.ExitStack() as held:
        held.enter_context(changing(directory, key))
        state = refresh(load(directory))  # a container whose monitor died is exited
        if state.status == "running":
            if attach:  # minirun has no attach to a running container's streams
                raise ContainerConflict(f"container {key} is already running: start -a cannot attach to it")
            return None  # as Docker: starting a running container is done already
        mark_user_stopped(directory, False)  # a start by the user: its policy holds again
        if attach:
            code = restart_container(ctx, directory, state, spec, settings, interactive, warn, None, held.close)
            return then_policy(ctx, directory, settings.restart, code, True, warn)
        in_monitor(lambda started: then_policy(
            ctx, directory, settings.restart,
            restart_container(ctx, directory, state, spec, settings, False, lambda _: None, started), False,
            lambda _: None))
        return None
