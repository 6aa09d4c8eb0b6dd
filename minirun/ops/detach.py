"""run -d: the container outlives the command, without a daemon.

The CLI forks its monitor, the way Podman has conmon: a process of its own session, with
no terminal and none of the caller's streams (``$(minirun run -d ...)`` returns at once),
which runs the container as a foreground ``run`` would (it is the container's parent, so
the container dies with it, and it records the exit), copying its output to the log. The
CLI waits only until the program has been exec'd, or has failed to start, and says which.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import notices, trace
from ..errors import EXIT_RUN_FAILED, ContainerStartError, MiniRunError
from ..runtime import _libc, channel
from ..runtime.channel import FAILED, STARTED, failed
from ..runtime.kernel import leave_caller

if TYPE_CHECKING:
    from ..content.images import ImageRecord
    from ..errors import BrokenImage
    from ..runargs import RunArgs
    from ..runtime.channel import Channel
    from .context import Context
    from .making import Checked


def run_detached(ctx: Context, a: RunArgs, flags: Checked, record: ImageRecord,
                 repair: Callable[[BrokenImage], ImageRecord]) -> str:
    """The container's ID once its program runs; ContainerStartError (125, 126, 127) when it
    could not start, as a foreground run would say."""
    from .restart import then_policy
    from .run import run_container
    return in_monitor(lambda started: run_container(
        ctx, a, flags, record, lambda _: None, repair, None, started=started,
        after=lambda directory, code: then_policy(ctx, directory, flags.settings.restart, code, False,
                                                  lambda _: None)))


def in_monitor(work: Callable[[Callable[[str], None]], int]) -> str:
    """Fork the monitor and run ``work`` there (given what to call with the container's ID
    once its program runs); here, that ID, or the error that kept it from starting. The two
    speak over one channel (``runtime.channel``): STARTED with the ID, or FAILED."""
    ours, theirs = channel.pair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        os._exit(_monitor(work, theirs))
    theirs.close()
    # The container may exist already: a signal to the CLI now (Ctrl-C, the terminal closed)
    # must not end the CLI before it can say what became of it. The monitor, in a session of
    # its own, never sees these.
    held = {s: signal.signal(s, _ignore) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)}
    try:
        answer = ours.receive()
    finally:
        ours.close()
        for s, handler in held.items():
            signal.signal(s, handler)
    if answer is not None and answer.kind == channel.STARTED:
        return answer.body.decode()
    if answer is not None and answer.kind == channel.FAILED:
        code, message = channel.failure(answer.body)
        raise ContainerStartError(message, code)
    os.waitpid(pid, 0)
    raise ContainerStartError("the container's monitor ended before the program started", EXIT_RUN_FAILED)


def _shed() -> None:
    """The monitor from here on only relays and waits: what the making of the container left
    on the heap is freed, and the C heap's free pages given back to the kernel."""
    import ctypes
    import gc
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _ignore(_signum: int, _frame: object) -> None:
    """Held, not acted on (the wait for the monitor's answer goes on)."""


def _monitor(work: Callable[[Callable[[str], None]], int], report: Channel) -> int:
    """The monitor: the container's exit status is its own; the CLI hears of the start."""
    # Its command line is the CLI's (``-e DB_PASSWORD=...``) until rewritten: /proc/PID/cmdline
    # is readable by every local user, for as long as the container runs.
    _libc.set_title("minirun-monitor")
    # None of the CLI's descriptors: not a lock it holds (start's, on the container), which
    # would be held as long as the container runs. --explain's goes on until the start is told.
    leave_caller((report.fd, trace.descriptor()), stdin=False)
    # Stdin: a pipe that stays open and never carries a byte, so that run -d -i keeps a shell
    # waiting for input (as Docker's detached -i does) instead of ending it at once.
    quiet, _ = os.pipe()  # the write end is held (never closed) until the monitor exits
    os.dup2(quiet, 0)
    os.close(quiet)
    notices.hear = None  # nobody to tell
    told = False

    def tell(kind: bytes, body: bytes) -> None:
        nonlocal told
        if not told:
            told = True
            if trace.active():  # the CLI returns now: its stderr hears no more
                os.close(trace.descriptor())
                trace.install(None)
            with contextlib.suppress(OSError):  # the CLI is gone (killed): nobody to tell, the container goes on
                report.send(kind, body)
            report.close()

    def started(cid: str) -> None:
        _libc.set_title(f"minirun-monitor {cid[:12]}")
        tell(STARTED, cid.encode())
        _shed()

    try:
        return work(started)
    except ContainerStartError as e:
        tell(FAILED, failed(e.code, str(e)))
        return e.code
    except MiniRunError as e:
        tell(FAILED, failed(EXIT_RUN_FAILED, str(e)))
        return EXIT_RUN_FAILED
    except BaseException as e:  # noqa: BLE001 - the monitor must never return into the CLI's code
        tell(FAILED, failed(EXIT_RUN_FAILED, f"internal error: {type(e).__name__}: {e}"))
        return EXIT_RUN_FAILED
