"""What an operation says on the side while it goes on: a lock it waits for, a Docker config
it cannot read and ignores. The CLI sets ``hear`` to print these on stderr (it is the only
layer that prints); without it they are dropped (library use, unit tests)."""

from __future__ import annotations

from collections.abc import Callable

hear: Callable[[str], None] | None = None


def say(message: str) -> None:
    if hear is not None:
        hear(message)
