"""``--explain``: the trace's sink on stderr, and the pull's events turned into trace events.

stderr is duplicated close-on-exec for the sink: the container's setup (a forked child)
writes its events there until its exec, and the program never inherits it.
"""

from __future__ import annotations

import fcntl
from typing import TYPE_CHECKING

from .. import trace

if TYPE_CHECKING:
    from ..pull import PullEvent

def start(mode: str, fd: int = 2) -> None:
    """Trace from now on to a copy of ``fd``: numbered lines (``text``) or JSON lines."""
    out = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    trace.install(trace.JsonSink(out) if mode == "json" else trace.TextSink(out))


def pull_event(event: PullEvent, progress: bool) -> None:
    """A pull's status line as a trace event: stage ``layer`` for one layer's, ``pull`` for the
    whole pull's; byte counts (``progressDetail``) only where ``progress`` is wanted."""
    if event.progress_only and not progress:
        return
    stage, fields = pull_fields(event)
    msg = str(fields.pop("msg"))
    trace.event(stage, "status", msg, **fields)


def pull_fields(event: PullEvent) -> tuple[str, dict[str, object]]:
    """A pull event's stage and fields in the trace's schema; Docker's JSON message fields
    (status, id, progressDetail) are kept as they are."""
    fields: dict[str, object] = {"msg": f"{event.id}: {event.status}" if event.id else event.status,
                                 "status": event.status}
    if event.id:
        fields["id"] = event.id
    if event.current is not None:
        fields["progressDetail"] = {"current": event.current, "total": event.total}
    return "layer" if event.id else "pull", fields


def explain_error(message: str, code: int) -> None:
    """Where the run stopped: the last stage it reached, the error and the exit code."""
    where = trace.last_stage() or "the start"
    trace.event("error", "failed", f"failed during {where}: {message} (exit code {code})",
                stage_reached=where, error=message, exit_code=code)
