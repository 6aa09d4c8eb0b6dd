"""Docker's way with several names (rm, stop, kill, wait, restart, inspect, volume rm):
every name is tried, each failure is one line on stderr, and the exit is 1 at the end if
one failed. (typer's: ``run`` never comes here.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import typer

from ..errors import Interrupted, MiniRunError
from .output import err, line


def each(keys: list[str], act: Callable[[str], object], said: Callable[[str, object], str] = lambda k, _: k,
         harmless: tuple[type[MiniRunError], ...] = ()) -> None:
    """Docker's way with several containers: each one's name once done (or what ``said``
    makes of the key and what ``act`` returned), an error line for each that failed, exit 1
    if any did (an error of a ``harmless`` kind is said, and is no failure)."""
    failed = False
    for key in keys:
        try:
            line(said(key, act(key)))
        except Interrupted:
            raise
        except MiniRunError as e:
            err(str(e))
            failed = failed or not isinstance(e, harmless)
    if failed:
        raise typer.Exit(1)


def print_docs(names: list[str], get: Callable[[str], dict[str, object]], format: str | None,
               as_json: Callable[[dict[str, object]], dict[str, object]] = lambda doc: doc) -> None:
    """inspect's way (containers, images, volumes): every name, as one JSON array or a
    template per object, the unknown ones said after, then exit 1 if there were any."""
    docs: list[dict[str, object]] = []
    failed: list[str] = []
    for name in names:
        try:
            docs.append(get(name))
        except Interrupted:
            raise
        except MiniRunError as e:
            failed.append(str(e))
    if format is None or format == "json":
        line(json.dumps([as_json(doc) for doc in docs], indent=4))
    else:
        from .template import render
        for doc in docs:
            line(render(format, doc))
    for message in failed:
        err(message)
    if failed:
        raise typer.Exit(1)
