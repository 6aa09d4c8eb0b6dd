"""The lean monitor: what a detached container's monitor becomes once its program runs.

The monitor (ops/monitor.py) is a fork of the CLI: it makes and starts the container with all
of minirun loaded, and then, for as long as the container runs, would only copy its output to
the log and wait for it, holding the CLI's whole heap (11 MiB of its own, against 2.4 for
Docker's shim and 0.3 for Podman's conmon). So it execs this module instead, in the same
process (the same PID: still the container's parent, the owner its leases and state name):
``python3 -I -S`` with nothing but ``relay`` and ``logwriter`` (os, select, fcntl, time and the
C half of json) relays and logs, forwards the signals it gets to the container as the monitor
did, waits for it, and then execs the full minirun again for what follows the end (its
cgroup, network, state, --rm, restart policy: ``ops/aftermath.py``), given the wait status.

Signals: the forwarded ones are blocked across the exec (never the default action, which
would end the monitor and so the container) and unblocked once handled here.
"""

from __future__ import annotations

import os
import sys

from . import relay
from .logwriter import LogOptions, LogWriter

# Those of runtime/signals.FORWARDED (without the signal module: its enums cost 0.8 MiB here).
FORWARDED = (2, 15, 1, 3, 10, 12, 28)  # SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH


def command(module: str, lean: bool = False) -> list[str]:
    """The command line that runs ``module``'s ``main(argv)`` (the arguments follow it) in a
    new interpreter, from this same copy of minirun (whatever the caller's sys.path was):
    isolated from the environment's PYTHON* variables, and ``lean`` without site (nothing
    but the standard library and minirun)."""
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = f"import sys; sys.path[0] = sys.argv[1]; from {module} import main; main(sys.argv[2:])"
    return [sys.executable, "-I", *(["-S"] if lean else []), "-c", code, package]


def exec_lean(pid: int, directory: str, log: LogOptions | None, master: int, pipes: relay.Pipes | None,
              after: list[str]) -> None:
    """Become the lean monitor of container process ``pid``; returns only when the exec
    failed (the caller relays, as before). ``master``: its terminal (-t), else ``pipes``;
    ``log`` None: not logged; ``after``: the command to exec once it ended (given the wait
    status, the number of log entries dropped and why)."""
    import signal
    ends = [master] if master >= 0 else [] if pipes is None else list(pipes.ours.values())
    out, err, stdin = ((pipes.ours.get(1, -1), pipes.ours.get(2, -1), pipes.ours.get(0, -1)) if pipes is not None
                       else (-1, -1, -1))
    sizes = [str(log.max_size), str(log.max_file)] if log is not None else ["0", "0"]
    argv = [*command("minirun.runtime.keeper", lean=True), str(pid), directory, *sizes, str(master), str(out),
            str(err), str(stdin), *after]
    for fd in ends:
        os.set_inheritable(fd, True)
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        os.execv(argv[0], argv)
    except OSError:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        for fd in ends:
            os.set_inheritable(fd, False)


def main(argv: list[str]) -> None:
    """In the exec'd interpreter: relay and log until the container ends, then exec ``after``."""
    import _signal  # type: ignore[import-not-found]  # the signal module's C half (no enums)

    from .title import set_title
    pid, directory = int(argv[0]), argv[1]
    set_title(f"minirun-monitor {os.path.basename(directory)[:12]}")  # as the full monitor was
    max_size, max_file, master, out, err, stdin = map(int, argv[2:8])
    after = argv[8:]

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass  # reaped already (a signal after its end goes nowhere)

    for signum in FORWARDED:
        _signal.signal(signum, forward)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, FORWARDED)
    writer = LogWriter(directory, LogOptions(max_size, max_file)) if max_size else None
    sink = None if writer is None else relay.by_stream(writer.write)
    if master >= 0:
        relay.log_terminal(master, sink or (lambda _fd, _data: None))
    else:
        # Its stdin (-i) is held open, never written (as the monitor's own quiet stdin did).
        relay.copy(relay.Pipes({}, {fd: end for fd, end in ((1, out), (2, err)) if end >= 0}), sink, echo=False)
    _, status = os.waitpid(pid, 0)
    _signal.pthread_sigmask(_signal.SIG_BLOCK, FORWARDED)  # nothing to forward to any more
    dropped, reason = 0, ""
    if writer is not None:
        writer.close()
        dropped = writer.dropped
        reason = (writer.failure.strerror or str(writer.failure)) if writer.failure else ""
    if stdin >= 0:
        os.close(stdin)
    os.execv(after[0], [*after, str(status), str(dropped), reason])
