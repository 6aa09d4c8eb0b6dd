"""The container's stdio through pipes that minirun copies: always for its stdout and stderr
when it is logged (every run but ``--log-driver none``: its monitor or the foreground minirun
writes them to the caller and to its log, as Docker's daemon does), and, without ``-t``, for
any of the caller's stdin (with ``-i``), stdout or stderr that is a terminal.

A terminal in the container's hands would let it push input into the caller's shell
(``TIOCSTI``) or change the terminal's settings. Streams that are neither logged nor
terminals (``--log-driver none`` in a script) are passed as they are.
"""

from __future__ import annotations

import errno
import os
import select
from collections.abc import Callable
from typing import NamedTuple


class Pipes(NamedTuple):
    container: dict[int, int]   # stdio fd -> the pipe end the container gets there
    ours: dict[int, int]        # stdio fd -> minirun's end


def for_logging(interactive: bool) -> Pipes:
    """Pipes for the container's stdout and stderr, always (its output is logged), and for its
    stdin where that is our terminal and it is ``interactive`` (other stdin is passed as it is)."""
    return _pipes((0, 1, 2) if interactive and os.isatty(0) else (1, 2))


def for_terminals(interactive: bool) -> Pipes | None:
    """A pipe for each of our stdio descriptors that is a terminal; None when there is none."""
    fds = tuple(fd for fd in ((0, 1, 2) if interactive else (1, 2)) if os.isatty(fd))
    return _pipes(fds) if fds else None


def _pipes(fds: tuple[int, ...]) -> Pipes:
    container, ours = {}, {}
    for fd in fds:
        r, w = os.pipe2(os.O_CLOEXEC)
        container[fd], ours[fd] = (r, w) if fd == 0 else (w, r)
    return Pipes(container, ours)


def in_container(pipes: Pipes) -> None:
    """In the child, before anything else: the pipes become its stdio."""
    for fd, end in pipes.container.items():
        os.dup2(end, fd)  # the copy at 0, 1 or 2 is inherited across exec
    for end in (*pipes.container.values(), *pipes.ours.values()):
        os.close(end)


def close_container_ends(pipes: Pipes) -> None:
    for end in pipes.container.values():
        os.close(end)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


Sink = Callable[[int, bytes], None]  # (stdio fd, bytes): the container's log


def copy(pipes: Pipes, log: Sink | None = None, echo: bool = True) -> None:
    """Copy until the container has closed its stdout and stderr (it has ended, or closed them):
    to our own stdout and stderr (``echo``) and to ``log``.

    Where our stdout or stderr is a closed pipe (``| head -1``), the container's pipe is closed
    too: its next write fails with EPIPE, as it would writing to that pipe itself. Input goes
    through a non-blocking pipe with a buffer, so a container that does not read its stdin
    never stops its output from being copied."""
    outputs = {end: fd for fd, end in pipes.ours.items() if fd != 0}
    stdin = pipes.ours.get(0)
    pending = b""
    if stdin is not None:
        os.set_blocking(stdin, False)
    while outputs:
        readers = list(outputs) + ([0] if stdin is not None and not pending else [])
        writers = [stdin] if stdin is not None and pending else []
        ready, writable, _ = select.select(readers, writers, [])
        for end in ready:
            if end == 0:
                pending = os.read(0, 65536)
                if not pending and stdin is not None:  # end of our input: the container's ends too
                    os.close(stdin)
                    stdin = None
                continue
            data = os.read(end, 65536)
            if data and log is not None:
                log(outputs[end], data)
            if not data or (echo and not _echo(outputs[end], data)):
                os.close(end)
                del outputs[end]
        if writable and stdin is not None:
            try:
                pending = pending[os.write(stdin, pending):]
            except OSError as e:
                if e.errno != errno.EAGAIN:  # EPIPE: the container closed its stdin
                    os.close(stdin)
                    stdin, pending = None, b""
    if stdin is not None:
        os.close(stdin)


def _echo(fd: int, data: bytes) -> bool:
    """``data`` to our ``fd``; False when that is a pipe nobody reads any more. Other failures
    (our terminal gone) are passed over: the container runs on, and is logged."""
    try:
        write_all(fd, data)
    except BrokenPipeError:
        return False
    except OSError:
        pass
    return True
