"""Render pull events: Docker's plain lines, live bars on a terminal, or JSON lines.

In a pipe Docker prints each status change once and no byte counts; on a terminal
it redraws one line per layer with a bar. ``rich`` is imported only for the latter.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, TextIO

from ..pull import PullEvent
from .output import write


class PlainRenderer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()

    def __call__(self, event: PullEvent) -> None:
        if event.progress_only:
            return
        line = f"{event.id}: {event.status}" if event.id else event.status
        with self._lock:
            write(self.out, line + "\n")

    def close(self) -> None:
        pass


class JsonRenderer:
    """One JSON object per line in the schema of ``--explain=json`` (``t``, ``n``, ``stage``,
    ``event``, ``msg``), with Docker's JSON message fields (status, id, progressDetail)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._n = 0

    def __call__(self, event: PullEvent) -> None:
        from .. import trace
        from .explain import pull_fields
        stage, fields = pull_fields(event)
        with self._lock:
            self._n += 1
            doc = trace.record(time.monotonic() - self._t0, self._n, stage, "status", fields)
            write(self.out, json.dumps(doc) + "\n")

    def close(self) -> None:
        pass


class QuietRenderer:
    def __call__(self, event: PullEvent) -> None:
        pass

    def close(self) -> None:
        pass


class TtyRenderer:
    """Live per-layer lines: ``<id>: Downloading [=====>   ] 1.2MB/2.5MB``."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

        self.console = Console(file=out)
        self.progress = Progress(
            TextColumn("{task.fields[layer]}: {task.description}"),
            BarColumn(bar_width=40), DownloadColumn(),
            console=self.console, transient=False, auto_refresh=True)
        self.tasks: dict[str, Any] = {}
        self.totals: dict[str, int] = {}
        self._lock = threading.Lock()
        self.progress.start()

    def __call__(self, event: PullEvent) -> None:
        with self._lock:
            if not event.id:
                self.progress.console.print(event.status, highlight=False, markup=False)
                return
            task = self.tasks.get(event.id)
            if task is None:
                task = self.progress.add_task(event.status, layer=event.id, total=None)
                self.tasks[event.id] = task
            fields: dict[str, Any] = {"description": event.status}
            if event.total is not None:
                fields["total"] = self.totals[event.id] = event.total
            if event.current is not None:
                fields["completed"] = event.current
            if event.status in ("Download complete", "Pull complete", "Pushed") and event.id in self.totals:
                fields["completed"] = self.totals[event.id]
            self.progress.update(task, **fields)

    def close(self) -> None:
        self.progress.stop()


Renderer = PlainRenderer | JsonRenderer | QuietRenderer | TtyRenderer


def renderer(mode: str, out: TextIO) -> Renderer:
    """``mode``: auto (bars on a terminal, else plain), plain, tty, json or quiet."""
    if mode == "auto":
        mode = "tty" if out.isatty() else "plain"
    if mode == "tty":
        return TtyRenderer(out)
    if mode == "json":
        return JsonRenderer(out)
    if mode == "quiet":
        return QuietRenderer()
    return PlainRenderer(out)
