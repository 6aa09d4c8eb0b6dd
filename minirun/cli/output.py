"""What the CLI prints besides a command's own lines: the one-line errors, Docker's tables
and JSON rows, its human sizes and times. No typer here: ``run`` prints through it too."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping, Sequence

from ..errors import OutputError
from ..records import TYPE_CHECKING


def ensure_stdio() -> None:
    """A closed stdin, stdout or stderr (``>&-``) is /dev/null for minirun and its container:
    otherwise the next descriptor opened (a pipe, the store's lock) would land there, and
    Python would have no sys.stdout to print through."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)  # the container's program gets it too
            if getattr(sys, name) is None:
                setattr(sys, name, open(fd, "r" if fd == 0 else "w", closefd=False))


def write(stream: TextIO, text: str) -> None:
    """Write and flush; a stream that cannot take it (a full disk) is one error naming it
    (a reader that went away, EPIPE, is left to the CLI's guard: exit 141, no message)."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        name = "stdout" if stream is sys.stdout else "stderr" if stream is sys.stderr else "output"
        raise OutputError(f"writing to {name}: {e.strerror}") from None


def err(message: str) -> None:
    """One line on stderr, best effort: with stderr gone there is nowhere to say more."""
    with contextlib.suppress(OSError):
        sys.stderr.write(f"minirun: {message}\n")
        sys.stderr.flush()


def line(text: str) -> None:
    write(sys.stdout, text + "\n")


if TYPE_CHECKING:
    from typing import Any, TextIO

    Row = Mapping[str, Any]


def print_rows(rows: Sequence[Row], quiet: bool, format: str, cols: list[tuple[str, str]],
               quiet_key: str = "ID", headers: Mapping[str, str] | None = None) -> None:
    """IDs (or ``quiet_key``) only (-q), one JSON object per line (--format json), a Go
    template per row, or Docker's table: the default columns (``cols``: header, key), or
    ``table TEMPLATE`` (its header the template over ``headers``, each key's column name).
    Columns are aligned as Docker's tabwriter aligns them (at least 10 wide, 3 apart)."""
    if quiet:
        for row in rows:
            line(str(row[quiet_key]))
    elif format == "json":
        for row in rows:
            line(json.dumps(row))
    elif format.startswith("table") and format[5:].strip():
        from .template import render
        body = format[5:].strip()
        names = {k: (headers or {}).get(k, h) for h, k in cols} | dict(headers or {})
        heading = {k: names.get(k, k.upper()) for k in (rows[0] if rows else names)}
        _tabwrite([render(body, heading)] + [render(body, row) for row in rows])
    elif format != "table":
        from .template import render
        for row in rows:
            line(render(format, row))
    else:
        _tabwrite(["\t".join(h for h, _ in cols)] + ["\t".join(str(r[k]) for _, k in cols) for r in rows])


def _tabwrite(lines: list[str]) -> None:
    """Go's tabwriter as Docker's tables use it (minwidth 10, padding 3): every cell but a
    line's last padded to its column's width."""
    cells = [text.split("\t") for text in lines]
    widths: dict[int, int] = {}
    for row in cells:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, 10), len(cell) + 3)
    for row in cells:
        line(("".join(c.ljust(widths[i]) for i, c in enumerate(row[:-1])) + row[-1]).rstrip())


def human_size(n: float) -> str:
    """Docker's units.HumanSize: decimal units, 3 significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}TB"


def since(created: str | None) -> str:
    """``5 minutes ago``, as Docker words it."""
    from ..containers.state import parse_stamp  # not at load: run prints through this module
    when = parse_stamp(created)
    if when is None:
        return "N/A"
    return human_duration((when.now(when.tzinfo) - when).total_seconds()) + " ago"


def docker_created(created: str) -> str:
    """ps's CreatedAt as Docker prints it (Go's time.String in local time):
    ``2026-12-06 07:10:41 +0000 UTC``."""
    from ..containers.state import parse_stamp
    when = parse_stamp(created)
    return created if when is None else when.astimezone().strftime("%Y-%m-%d %H:%M:%S %z %Z")


def human_duration(secs: float) -> str:
    """Docker's words for a duration (go-units' HumanDuration)."""
    seconds, minutes, hours = int(secs), int(secs / 60), int(secs / 3600 + 0.5)
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    if minutes < 60:
        return "About a minute" if minutes == 1 else f"{minutes} minutes"
    if hours < 48:
        return "About an hour" if hours == 1 else f"{hours} hours"
    for limit, size, unit in ((24 * 7 * 2, 24, "days"), (24 * 30 * 2, 24 * 7, "weeks"),
                              (24 * 365 * 2, 24 * 30, "months")):
        if hours < limit:
            return f"{hours // size} {unit}"
    return f"{int(secs / 3600 / 24 / 365)} years"


def confirmed(force: bool, warning: str) -> bool:
    """Docker's prune question, asked only on a terminal and without -f: go on?"""
    if force or not sys.stdin.isatty():
        return True
    sys.stderr.write(f"WARNING! {warning}\nAre you sure you want to continue? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")
