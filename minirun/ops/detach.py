"""run -d: the container outlives the command, without a daemon.

The CLI forks its monitor, the way Podman has conmon: a process of its own session, with
no terminal and none of the caller's streams (``$(minirun run -d ...)`` returns at once),
which runs the container as a foreground ``run`` would (it is the container's parent, so
the container dies with it, and it records the exit), copying its output to the log. The
CLI waits only until the program has been exec'd, or has failed to start, and says which.
"""

from __future__ import annotations

from collections.abc import Callable

from ..records import TYPE_CHECKING
from .monitor import in_monitor

if TYPE_CHECKING:
    from ..content.images import ImageRecord
    from ..errors import BrokenImage
    from ..runargs import RunArgs
    from ..runtime.net.attacher import Attacher
    from .context import Context
    from .making import Checked


def run_detached(ctx: Context, a: RunArgs, flags: Checked, record: ImageRecord,
                 repair: Callable[[BrokenImage], ImageRecord], helper: Attacher | None = None) -> str:
    """The container's ID once its program runs; ContainerStartError (125, 126, 127) when it
    could not start, as a foreground run would say. ``helper``: the CLI's network helper,
    which the monitor asks to attach the container (its netlink code loaded meanwhile)."""
    from .restart import then_policy
    from .run import run_container
    return in_monitor(lambda started: run_container(
        ctx, a, flags, record, lambda _: None, repair, helper, started=started,
        after=lambda directory, code: then_policy(ctx, directory, flags.settings.restart, code, False,
                                                  lambda _: None)),
        keep=helper.descriptors() if helper is not None else ())


