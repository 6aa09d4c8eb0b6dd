"""events: Docker's event stream, read from the store's journal (containers/events.py)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from ..containers import events
from ..containers.logs import parse_time
from ..runtime.logwriter import stamp
from .options import context_of, filters
from .output import line
from .template import render


def _filters(given: list[str]) -> dict[str, list[str]]:
    return filters(given, events.FILTERS, f'{"=, ".join(events.FILTERS)}=')


def events_cmd(
    tctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", help="From a time (RFC 3339, Unix seconds) or so long "
                                                               "ago (10m); default: from now on.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Until a time, then stop (default: never).")] = None,
    filter: Annotated[list[str], typer.Option("--filter", "-f", help="container=, event=, image=, label=, type=, "
                                                                     "network=, volume= (repeatable).")]
    = [],  # noqa: B006 - typer reads the default, never mutates it
    format: Annotated[str | None, typer.Option("--format", help="A template: {{json .}}, {{.Action}}")] = None,
) -> None:
    """Events as they happen (containers, images, networks, volumes), as Docker's stream."""
    ctx = context_of(tctx)
    now = time.time_ns()
    first = parse_time(since, now) if since else stamp(now)
    end = parse_time(until, now, "--until") if until else None
    wanted = _filters(filter)
    if end is not None and end <= stamp(now):
        source = iter(events.past(ctx.root))
    else:
        source = events.follow(ctx.root, None if end is None else _ns(end))
    for doc in source:
        when = stamp(int(str(doc.get("timeNano") or 0)))
        if when < first or (end is not None and when > end) or not events.matches(doc, wanted):
            continue
        if format is None:
            line(events.text(doc, when))
        elif format.strip() == "{{json .}}":
            line(json.dumps(doc, separators=(",", ":")))
        else:
            line(render(format, events.go_fields(doc)))


def _ns(text: str) -> int:
    """A stamp (``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``) as nanoseconds."""
    import calendar
    whole, _, fraction = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) * 10**9 + int(fraction or 0)
