"""Entering a container's network namespace for a moment, from the host's."""

import contextlib
import os
from collections.abc import Iterator

from .. import _libc


@contextlib.contextmanager
def in_netns(pid: int) -> Iterator[None]:
    """This thread in the network namespace of ``pid`` (sockets made meanwhile stay there), and
    back. setns moves only the calling thread."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    theirs = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _libc.setns(theirs, _libc.CLONE_NEWNET, f"/proc/{pid}/ns/net")
        try:
            yield
        finally:
            _libc.setns(own, _libc.CLONE_NEWNET, "/proc/thread-self/ns/net")
    finally:
        os.close(own)
        os.close(theirs)
