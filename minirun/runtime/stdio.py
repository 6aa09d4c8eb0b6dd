"""The container's stdio on the parent's side: its terminal (-t) or pipes (see ``relay``),
never the caller's own descriptors; relayed to the caller and logged until it ends, or
logged alone when it is detached (run -d: the monitor holds them)."""

from __future__ import annotations

from collections.abc import Callable

from .. import trace
from ..records import Record
from . import relay
from .plan import Plan


class Output(Record):
    """Where the container's output goes besides the caller's stdout and stderr: ``log`` (its
    log's writer, given the stream's name and the bytes, when it has one); detached (run -d, in
    the monitor): only there, and ``on_exec`` is told once its program has been exec'd (the
    CLI then returns), and with ``hand_off`` the monitor becomes the lean one there, given the
    container's PID, its terminal's master and its pipes (runtime/keeper.py; it returns only
    when that could not be, and the relaying is done here after all)."""
    log: Callable[[str, bytes], None] | None
    on_exec: Callable[[], None] | None = None
    troubles: list[OSError] | None = None   # where a failure to write our stdout or stderr is noted
    hand_off: Callable[[int, int, relay.Pipes | None], None] | None = None

    def sink(self) -> relay.Sink | None:
        return None if self.log is None else relay.by_stream(self.log)


UNLOGGED = Output(None)


def stdio_pipes(spec: Plan) -> relay.Pipes | None:
    """Without -t: pipes for its stdio (see ``relay``), never the caller's own descriptors.
    With -t its terminal's master comes over the channel."""
    if spec.tty:
        # Loaded now, in the parent: the child opens the terminal after pivot_root, where no
        # module of minirun's can be found any more.
        from . import terminal  # noqa: F401
        return None
    return relay.for_container(spec.interactive)


def follow(spec: Plan, master: int, pipes: relay.Pipes | None, output: Output, pid: int = 0) -> None:
    """Once its program runs (as process ``pid``), until it ends: its terminal (-t:
    ``master``) or stdio pipes relayed and logged."""
    trace.event("exec", "running", "the program runs; its output is relayed (and logged) until it ends")
    sink = output.sink()
    if output.on_exec is not None:
        output.on_exec()
        if output.hand_off is not None and pid:
            output.hand_off(pid, master, pipes)
    if master >= 0:
        if output.on_exec is not None and sink is not None:  # -d -t: the monitor holds the master
            relay.log_terminal(master, sink)
        else:
            from . import terminal
            terminal.relay(master, spec.interactive, sink)
    if pipes is not None:
        trouble = relay.copy(pipes, sink, echo=output.on_exec is None)
        if trouble is not None and output.troubles is not None:
            output.troubles.append(trouble)
