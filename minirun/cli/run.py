"""``minirun run``: from its command line to the program's exit code, without typer.

Exit codes follow Docker: the program's own, never remapped; 125 when minirun fails
before the program starts, 126 when the command cannot be run, 127 when it is not found
(``cli.main`` applies the rule). Only ``Unable to find image`` and the pull's lines go
to stderr before the program speaks; stdout is the program's alone.
"""

from __future__ import annotations

import contextlib
import os
import sys

from .. import runargs, trace
from ..errors import BrokenImage, OutputError
from ..records import TYPE_CHECKING
from .output import err, line

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ..content.images import ImageRecord
    from ..ops.context import Context
    from ..ops.making import Checked
    from ..pull import PullEvent
    from .progress import Renderer


class _PullLines:
    """The pull's lines on stderr, its renderer made only if there is a pull (loading it
    loads the HTTP client, which a run of a cached image does without)."""

    def __init__(self, explain: str | None = None) -> None:
        self.render: Renderer | None = None
        self.explain = explain

    def __call__(self, event: PullEvent) -> None:
        """Best effort: a stderr that cannot take the lines does not stop the run. Under
        --explain they are events of the trace."""
        if self.explain is not None:
            from .explain import pull_event
            pull_event(event, progress=self.explain == "json")
            return
        if self.render is None:
            from .progress import renderer
            self.render = renderer("auto", sys.stderr)
        with contextlib.suppress(OutputError, OSError):
            self.render(event)

    def close(self) -> None:
        if self.render is not None:
            self.render.close()


def _announce(text: str) -> None:
    if trace.active():
        trace.event("reference", "missing", text)
        return
    with contextlib.suppress(OSError):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _policy(ctx: Context, flags: Checked) -> Callable[[Path, int], int] | None:
    """After a foreground run: its restart policy, handed to a monitor (none: nothing to load)."""
    if flags.settings.restart == "no":
        return None
    from ..ops.restart import then_policy
    return lambda directory, code: then_policy(ctx, directory, flags.settings.restart, code, True, err)


def run(words: list[str], context: Callable[[], Context], create: bool = False) -> int:
    """The words after ``run``: the program's exit status (0 after ``--help``). ``create``:
    the words after ``create``, the container made and left created (its ID printed).
    ``context`` makes the store's context (once the network helper is on its way)."""
    args = runargs.parse(words)
    if args.help:
        sys.stdout.write(runargs.help_text(create))
        return 0
    if create and args.detach:
        err("create: unknown flag: --detach (see 'minirun create --help')")
        return 125
    if args.tty and args.interactive and not os.isatty(0):
        err("the input device is not a TTY")  # Docker's words, and its exit code
        return 1
    if args.explain is not None:
        from .explain import start
        start(args.explain)
    # First, before minirun's own modules load: the helper loads the netlink code on the other
    # core meanwhile (for -d, the monitor asks it; see runtime/net/attacher.py).
    helper = None
    if not create:
        from ..runtime.net.attacher import for_mode
        helper = for_mode(runargs.network_mode(args, os.environ.get("MINIRUN_NETWORK")), args.detach)
    try:
        from ..ops.making import check
        from ..ops.run import image_for, pull_again, run_container
        ctx = context().with_registry(tuple(args.registry_mirror), tuple(args.insecure_registry))
        flags = check(args, ctx.root)  # every flag, before anything is pulled
        lines = _PullLines(args.explain)
        try:
            record = image_for(ctx, args, _announce, lines)
        finally:
            lines.close()  # the pull's display ends before the program speaks

        def repair(broken: BrokenImage) -> ImageRecord:
            again = _PullLines(args.explain)
            try:
                return pull_again(ctx, args, _announce, again, broken)
            finally:
                again.close()

        if create:
            from ..ops.run import create_container
            line(create_container(ctx, args, flags, record, repair))
            return 0
        if args.detach:
            from ..ops.detach import run_detached
            line(run_detached(ctx, args, flags, record, repair, helper))
            return 0
        try:
            return run_container(ctx, args, flags, record, err, repair, helper, after=_policy(ctx, flags))
        except OutputError as e:  # the program ran; its output could not be written: Docker says 1
            err(str(e))
            return 1
    finally:
        if helper is not None:
            helper.close()
