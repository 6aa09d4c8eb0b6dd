"""Restart policies without a daemon: the container's monitor starts it again when it exits,
as Docker's daemon does (``spec/restart.py`` says when), with Docker's backoff (100 ms,
doubling, back to 100 ms after a run of 10 s or more), in the same container (its root
filesystem, volumes and networks as it has them). A foreground ``run`` hands the policy to a
monitor of its own once the program ended, and returns its exit code, as Docker's CLI does.
``stop`` and ``kill`` end the policy (``user-stopped`` in its directory) until ``start``."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable

from ..containers.state import load, refresh, save, user_stopped
from ..errors import MiniRunError, StoreError
from ..pids import start_time
from ..records import TYPE_CHECKING
from ..spec import restart
from .containers import changing, configured

if TYPE_CHECKING:
    from pathlib import Path

    from .context import Context


def wanted(policy: str, code: int | None) -> bool:
    """Whether a policy can restart after this first end (the count and the user's stop are
    read again by the monitor)."""
    return code is not None and restart.restarts(policy, code, 0, False)


def then_policy(ctx: Context, directory: Path, policy: str, code: int, foreground: bool,
                warn: Callable[[str], None]) -> int:
    """The container ended with ``code``: its restart policy (ops/restart.py) in this monitor,
    or, after a foreground run, in a monitor of its own while this command returns the code."""
    if not wanted(policy, code):
        return code
    if foreground:
        hand_over(lambda: keep_restarting(ctx, directory, code, lambda _: None))
        return code
    return keep_restarting(ctx, directory, code, warn)


def hand_over(work: Callable[[], object]) -> None:
    """Run ``work`` in a monitor of its own, in the background (a foreground run's restart
    policy, once the program ended): the caller goes on at once."""
    if os.fork() != 0:
        return
    try:
        from .. import notices, trace
        from ..runtime import _libc
        from ..runtime.kernel import leave_caller
        _libc.set_title("minirun-monitor")
        leave_caller((), stdin=True)
        notices.hear = None
        trace.install(None)
        work()
    finally:
        os._exit(0)


def keep_restarting(ctx: Context, directory: Path, code: int, warn: Callable[[str], None]) -> int:
    """Start the container in ``directory`` again each time it ends, while its policy says
    so; the last exit code. Ends when the policy does, when the user stops, kills or removes
    it, or when another command started it."""
    from .run import restart_container
    delay, ran_for = restart.FIRST_DELAY, 0.0
    while True:
        try:
            spec, settings = configured(ctx, directory)
            state = load(directory)
        except StoreError:
            return code  # removed
        if state.status != "exited" or not restart.restarts(settings.restart, code, state.restart_count,
                                                            user_stopped(directory)):
            return code
        delay = restart.next_delay(delay, ran_for) if state.restart_count else restart.FIRST_DELAY
        if not _mark(directory, state.id, True) or not _wait(delay, directory):
            _mark(directory, state.id, False)
            return code
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(changing(directory, state.id))
                state = refresh(load(directory))
            except MiniRunError:
                return code
            if state.status != "exited" or user_stopped(directory):
                save(directory, state._replace(restarting=False))
                return code
            state = state._replace(restart_count=state.restart_count + 1, restarting=False)
            save(directory, state)
            began = time.monotonic()
            try:
                code = restart_container(ctx, directory, state, spec, settings, False, warn, None, held.close)
            except MiniRunError as e:  # it cannot start again (its image removed, ...): said, and over
                warn(f"restarting container {state.id[:12]}: {e}")
                return code
            ran_for = time.monotonic() - began


def _mark(directory: Path, cid: str, restarting: bool) -> bool:
    """Its state says it waits for a restart (ps: Restarting), this process its monitor."""
    try:
        with changing(directory, cid):
            state = load(directory)
            if state.status != "exited":
                return False
            me = os.getpid()
            save(directory, state._replace(restarting=restarting, monitor=me, monitor_start=start_time(me)))
            return True
    except MiniRunError:
        return False


def _wait(seconds: float, directory: Path) -> bool:
    """The backoff; False when the user stopped or removed it meanwhile."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if user_stopped(directory) or not directory.exists():
            return False
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return not user_stopped(directory) and directory.exists()
