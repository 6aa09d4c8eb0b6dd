"""The container's stdio on the parent's side: its terminal (-t) or pipes (see ``relay``),
never the caller's own descriptors; relayed to the caller and logged until it ends, or
logged alone when it is detached (run -d: the monitor holds them)."""

from __future__ import annotations

import os
from collections.abc import Callable

from .. import trace
from ..records import Record
from . import relay
from .plan import Plan


class Output(Record):
    """Where the container's output goes besides the caller's stdout and stderr: ``log`` (its
    log's writer, given the stream's name and the bytes, when it has one); detached (run -d, in
    the monitor): only there, and ``on_exec`` is told once its program has been exec'd (the
    CLI then returns)."""
    log: Callable[[str, bytes], None] | None
    on_exec: Callable[[], None] | None = None
    troubles: list[OSError] | None = None   # where a failure to write our stdout or stderr is noted

    def sink(self) -> relay.Sink | None:
        log = self.log
        if log is None:
            return None
        return lambda fd, data: log("stdout" if fd == 1 else "stderr", data)


UNLOGGED = Output(None)


def _log_terminal(master: int, log: relay.Sink) -> None:
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


def stdio_pipes(spec: Plan) -> relay.Pipes | None:
    """Without -t: pipes for its stdio (see ``relay``), never the caller's own descriptors.
    With -t its terminal's master comes over the channel."""
    if spec.tty:
        # Loaded now, in the parent: the child opens the terminal after pivot_root, where no
        # module of minirun's can be found any more.
        from . import terminal  # noqa: F401
        return None
    return relay.for_container(spec.interactive)


def follow(spec: Plan, master: int, pipes: relay.Pipes | None, output: Output) -> None:
    """Once its program runs, until it ends: its terminal (-t: ``master``) or stdio pipes
    relayed and logged."""
    trace.event("exec", "running", "the program runs; its output is relayed (and logged) until it ends")
    sink = output.sink()
    if output.on_exec is not None:
        output.on_exec()
    if master >= 0:
        if output.on_exec is not None and sink is not None:  # -d -t: the monitor holds the master
            _log_terminal(master, sink)
        else:
            from . import terminal
            terminal.relay(master, spec.interactive, sink)
    if pipes is not None:
        trouble = relay.copy(pipes, sink, echo=output.on_exec is None)
        if trouble is not None and output.troubles is not None:
            output.troubles.append(trouble)
