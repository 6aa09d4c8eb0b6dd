"""What a detached container's monitor does once the program ended, when it had become the
lean monitor (runtime/keeper.py) meanwhile: the full minirun again, in the same process, does
what a foreground run does after the wait (ops/run.py's ``_run_created``): the container's
cgroup removed, its network given back, its die event, its end recorded (--rm: removed), then
its restart policy, in this same monitor.

What it needs comes in its arguments (the store, the storage driver, the container's
directory, its cgroup, --rm and restart policy as the monitor that made it had them, the wait
status, what its log lost) or from disk (state.json; config.json's settings for the events'
labels, defaults where it was damaged meanwhile).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ..errors import EXIT_RUN_FAILED, MiniRunError
from ..runtime.cgroups import Cgroup, Limits
from ..runtime.process import exit_code
from ..runtime.signals import FORWARDED
from .context import Context


def finish(ctx: Context, directory: Path, cgroup: Cgroup, remove: bool, policy: str, status: int, dropped: int,
           reason: str) -> int:
    """The container in ``directory`` ended with wait ``status``: as after a foreground
    run's wait; the exit code (its restart policy's last). Its cgroup, ``remove`` (--rm) and
    ``policy`` come from the monitor that made it, not from disk."""
    from ..containers import state as container
    from ..spec.settings import Settings
    from .containers import configured
    from .restart import then_policy
    from .run import wind_up
    code = exit_code(status)
    cgroup.remove()  # first, whatever the disk says (process.start's end)
    try:
        state = container.load(directory)
    except MiniRunError:
        return code  # removed meanwhile (rm -f): rm gave back what it held
    if state.address:
        from ..runtime.net import network
        network.release(state.id)
    try:
        settings = configured(ctx, directory)[1]
    except MiniRunError:  # its config.json damaged meanwhile: its end recorded all the same
        settings = Settings(auto_remove=remove, restart=policy)
    wind_up(ctx, remove, settings, state, directory, code, [(dropped, reason or "?")] if dropped else [], _unheard)
    return then_policy(ctx, directory, policy, code, False, _unheard)


def _unheard(_message: str) -> None:
    """Warnings: the monitor has nobody to tell (as before the lean monitor)."""


def main(argv: list[str]) -> None:
    """``ROOT DRIVER DIRECTORY CGROUP PARENT rm|keep POLICY STATUS DROPPED REASON`` (DRIVER "":
    the store's own; CGROUP and PARENT: its cgroup's name and parent, as its plan had them)."""
    # Signals came blocked from the lean monitor: the container is gone, nothing to forward
    # (a restart installs its own forwarding).
    for signum in FORWARDED:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    root, driver, directory, name, parent, remove, policy, status, dropped, reason = argv
    from ..runtime.title import set_title
    set_title(f"minirun-monitor {os.path.basename(directory)[:12]}")
    code = EXIT_RUN_FAILED
    try:
        code = finish(Context(Path(root), driver or None), Path(directory), Cgroup(name, Limits(), None, parent),
                      remove == "rm", policy, int(status), int(dropped), reason)
    finally:
        os._exit(code)
