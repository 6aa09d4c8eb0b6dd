"""A monitor: a forked process of its own session that outlives the command (run -d, start,
exec -d), the way Podman has conmon. The CLI waits only until the monitor's work has started
its program, or has failed to, and says which (see ``detach`` for run -d's use)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

from .. import notices, trace
from ..errors import EXIT_RUN_FAILED, ContainerStartError, MiniRunError
from ..records import TYPE_CHECKING
from ..runtime import _libc, channel
from ..runtime.channel import FAILED, STARTED, failed
from ..runtime.kernel import leave_caller

if TYPE_CHECKING:
    from ..runtime.channel import Channel


def exec_detached(work: Callable[[Callable[[], None]], int]) -> int:
    """exec -d: ``work`` (an exec, told what to call once its program runs) in a monitor of
    its own, as run -d's; 0 once the program runs, or its ContainerStartError."""
    in_monitor(lambda started: work(staying(started, "exec")))
    return 0


def in_monitor(work: Callable[[Callable[[str], None]], int], keep: tuple[int, ...] = ()) -> str:
    """Fork the monitor and run ``work`` there (given what to call with the container's ID
    once its program runs); here, that ID, or the error that kept it from starting. The two
    speak over one channel (``runtime.channel``): STARTED with the ID, or FAILED. ``keep``:
    descriptors of the CLI's the monitor keeps (the network helper's pipes)."""
    ours, theirs = channel.pair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        os._exit(_monitor(work, theirs, keep))
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


def staying(started: Callable[[str], None], cid: str) -> Callable[[], None]:
    """What a monitor that stays the full one (no lean monitor execs in its place) calls once
    the program runs: the CLI told (``started``, with ``cid``), then its heap shed."""
    def told_and_shed() -> None:
        started(cid)
        shed()
    return told_and_shed


def shed() -> None:
    """The monitor from here on only relays and waits (it stays this interpreter: no lean
    monitor replaces it): what the making of the container left on the heap is freed, and the
    C heap's free pages given back to the kernel. Not before an exec, which frees it all."""
    import ctypes
    import gc
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _ignore(_signum: int, _frame: object) -> None:
    """Held, not acted on (the wait for the monitor's answer goes on)."""


def _monitor(work: Callable[[Callable[[str], None]], int], report: Channel, keep: tuple[int, ...] = ()) -> int:
    """The monitor: the container's exit status is its own; the CLI hears of the start."""
    # Its command line is the CLI's (``-e DB_PASSWORD=...``) until rewritten: /proc/PID/cmdline
    # is readable by every local user, for as long as the container runs.
    _libc.set_title("minirun-monitor")
    # None of the CLI's descriptors: not a lock it holds (start's, on the container), which
    # would be held as long as the container runs. --explain's goes on until the start is told.
    leave_caller((report.fd, trace.descriptor(), *keep), stdin=False)
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
