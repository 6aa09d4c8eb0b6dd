"""The container's stdio on the parent's side: its terminal (-t) or pipes (see ``relay``),
never the caller's own descriptors; relayed to the caller and logged until it ends, or
logged alone when it is detached (run -d: the monitor holds them)."""

# No postponed annotations in this module: NamedTuple compiles string ones at import, and
# this is run's start path (quoted names below are those imported only for type checking).

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from .. import trace
from .plan import Plan

if TYPE_CHECKING:
    import socket

    from . import relay
    from .logs import LogWriter


class Output(NamedTuple):
    """Where the container's output goes besides the caller's stdout and stderr: ``log`` (its
    log, when it has one); detached (run -d, in the monitor): only there, and ``on_exec`` is
    told once its program has been exec'd (the CLI then returns)."""
    log: "LogWriter | None"
    on_exec: Callable[[], None] | None = None

    def sink(self) -> "relay.Sink | None":
        log = self.log
        if log is None:
            return None
        return lambda fd, data: log.write("stdout" if fd == 1 else "stderr", data)


UNLOGGED = Output(None)


def _log_terminal(master: int, log: "relay.Sink") -> None:
    """What the container writes to its terminal, as its stdout (as Docker logs a -t one),
    until it has ended (EIO once the last slave is closed)."""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        log(1, data)
    os.close(master)


def stdio_channels(spec: Plan) -> "tuple[tuple[socket.socket, socket.socket] | None, relay.Pipes | None]":
    """With -t: the socket pair the terminal's master comes over (our end, the child's end).
    Without: pipes for its stdio (see ``relay``), never the caller's own descriptors. Each
    module is loaded only when needed (the socket module costs a start 2 ms)."""
    if spec.tty:
        from . import terminal
        return terminal.channel(), None
    from . import relay
    return None, relay.for_container(spec.interactive)


def follow(spec: Plan, errr: int, console: "tuple[socket.socket, socket.socket] | None",
            pipes: "relay.Pipes | None", output: Output) -> bytes:
    """Until the program ends: its start's report (empty once it has exec'd), then its
    terminal (-t) or stdio pipes relayed and logged. Returns the report."""
    master = None
    if console is not None:
        from . import terminal
        master = terminal.receive_master(console[0])
        console[0].close()
    report = b""
    while chunk := os.read(errr, 4096):
        report += chunk
    os.close(errr)
    if report:
        for end in ([] if master is None else [master]) + ([] if pipes is None else list(pipes.ours.values())):
            os.close(end)
        return report
    trace.event("exec", "running", "the program runs; its output is relayed (and logged) until it ends")
    sink = output.sink()
    if output.on_exec is not None:
        output.on_exec()
    if master is not None:
        if output.on_exec is not None and sink is not None:  # -d -t: the monitor holds the master
            _log_terminal(master, sink)
        else:
            terminal.relay(master, spec.interactive, sink)
    if pipes is not None:
        from . import relay
        relay.copy(pipes, sink, echo=output.on_exec is None)
    return report
