"""The container's stdio: pipes that minirun copies, in every mode without ``-t`` (``run``,
``run -i``, ``exec``, ``start -a``, ``-d``, ``--log-driver none``), as Docker's daemon hands
a container pipes and never the caller's own descriptors.

A descriptor of the caller's in the container would be the caller's file: reopened through
``/proc/self/fd/N`` it is read-write on that file (``echo X 1<>/proc/self/fd/1`` rewrites
the file the caller's stdout was appended to), and a process left behind would keep it. A
terminal would let it push input into the caller's shell (``TIOCSTI``). A pipe gives it
neither: reopened, it is the same pipe.

Copying costs little: the pipes are 1 MiB, and where nothing is logged, the bytes move with
``splice`` (the kernel copies from pipe to file or pipe; no read into Python).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select

from ..records import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from collections.abc import Callable

PIPE_SIZE = 1 << 20
CHUNK = 1 << 20


class Pipes(Record):
    container: dict[int, int]   # stdio fd -> the pipe end the container gets there
    ours: dict[int, int]        # stdio fd -> minirun's end


def _grow(fd: int) -> None:
    """The pipe at ``fd`` made PIPE_SIZE (fewer wake-ups); left as it is where that cannot be
    (not a pipe, or over /proc/sys/fs/pipe-max-size for an unprivileged caller)."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass


def for_container(interactive: bool) -> Pipes:
    """Pipes for the container's stdout and stderr, and its stdin with ``interactive``
    (without, it reads /dev/null)."""
    container, ours = {}, {}
    for fd in (0, 1, 2) if interactive else (1, 2):
        r, w = os.pipe2(os.O_CLOEXEC)
        _grow(r)
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


if TYPE_CHECKING:
    Sink = Callable[[int, bytes], None]  # (stdio fd, bytes): the container's log


class _Input:
    """Our stdin into the container's: spliced where the kernel can (a pipe or a file),
    else read and written through a buffer; the container's end is non-blocking, so a
    container that does not read never stops its output from being copied."""

    def __init__(self, end: int) -> None:
        self.end: int | None = end
        self.pending = b""
        self.splice = True
        self.room = True  # the container's pipe was not full at the last write
        os.set_blocking(end, False)

    def readers(self) -> list[int]:
        return [0] if self.end is not None and self.room and not self.pending else []

    def writers(self) -> list[int]:
        return [self.end] if self.end is not None and (self.pending or not self.room) else []

    def step(self, readable: bool, writable: bool) -> None:
        if self.end is None:
            return
        try:
            if writable:
                self.room = True
                if self.pending:
                    self.pending = self.pending[os.write(self.end, self.pending):]
            if readable:
                self._read()
        except BlockingIOError:
            self.room = False
        except OSError:  # EPIPE: the container closed its stdin
            self.close()

    def _read(self) -> None:
        assert self.end is not None
        if self.splice:
            try:
                if os.splice(0, self.end, CHUNK, flags=os.SPLICE_F_NONBLOCK) == 0:
                    self.close()
                return
            except OSError as e:
                if e.errno != errno.EINVAL:  # a terminal, or a file open for append: no splice
                    raise
                self.splice = False
        self.pending = os.read(0, 65536)
        if not self.pending:  # end of our input: the container's ends too
            self.close()

    def close(self) -> None:
        if self.end is not None:
            os.close(self.end)
            self.end, self.pending = None, b""


def by_stream(write: Callable[[str, bytes], None]) -> Sink:
    """A log writer (given a stream's name) as a Sink (given the stdio fd)."""
    return lambda fd, data: write("stdout" if fd == 1 else "stderr", data)


def log_terminal(master: int, log: Sink) -> None:
    """What the container writes to its terminal, as its stdout (as Docker logs a -t one),
    until it has ended (EIO once the last slave is closed)."""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        log(1, data)
    os.close(master)


def copy(pipes: Pipes, log: Sink | None = None, echo: bool = True, until: int = -1) -> OSError | None:
    """Copy until the container has closed its stdout and stderr (it has ended, or closed them),
    or, with ``until`` (a pidfd), once that process has exited and what it wrote is read: to our
    own stdout and stderr (``echo``) and to ``log``.

    Where our stdout or stderr is a closed pipe (``| head -1``), the container's pipe is closed
    too: its next write fails with EPIPE, as it would writing to that pipe itself. Where it
    fails otherwise (a full disk, ``>/dev/full``), the container runs on and is logged, and the
    first such failure is returned: the caller says it and exits 1, as Docker does."""
    outputs = {end: fd for fd, end in pipes.ours.items() if fd != 0}
    spliced = set(outputs) if log is None and echo else set()
    # Where nothing is logged, the caller's pipes as large as ours: fewer wake-ups (2x the
    # throughput here); where it is, a larger stdin measured slower (scripts/bench-pipe).
    for fd in list(pipes.ours) if spliced else []:
        _grow(fd)
    stdin = _Input(pipes.ours[0]) if 0 in pipes.ours else None
    failures: list[OSError] = []
    while outputs:
        waits = [until] if until >= 0 else []
        readers = list(outputs) + waits + (stdin.readers() if stdin else [])
        ready, writable, _ = select.select(readers, stdin.writers() if stdin else [], [])
        if stdin is not None:
            stdin.step(0 in ready, bool(writable))
        for end in [e for e in ready if e in outputs]:
            if not _move(end, outputs[end], spliced, log, echo, failures):
                os.close(end)
                del outputs[end]
                spliced.discard(end)
        if until >= 0 and until in ready:
            _drain(outputs, log, echo, failures)
            break
    if stdin is not None:
        stdin.close()
    if until >= 0:
        os.close(until)
    return failures[0] if failures else None


def _move(end: int, fd: int, spliced: set[int], log: Sink | None, echo: bool, failures: list[OSError]) -> bool:
    """One read's worth from the container's ``end`` to our ``fd`` (and the log); False once
    that stream is over (ended, or nobody reads ours any more). ``end`` in ``spliced``: by
    splice, until our ``fd`` turns out not to take it (a terminal, a file open for append)."""
    if end in spliced:
        try:
            return os.splice(end, fd, CHUNK) > 0
        except BrokenPipeError:
            return False
        except OSError:
            spliced.discard(end)  # read and written from now on, whatever the cause
    data = os.read(end, CHUNK)
    if data and log is not None:
        log(fd, data)
    return bool(data) and (not echo or _echo(fd, data, failures))


def _drain(outputs: dict[int, int], log: Sink | None, echo: bool, failures: list[OSError]) -> None:
    """The process has exited: what is left in its pipes, without waiting for what a process
    it left behind may still write."""
    for end, fd in outputs.items():
        os.set_blocking(end, False)
        try:
            while _move(end, fd, set(), log, echo, failures):
                pass
        except BlockingIOError:
            pass
        os.close(end)
    outputs.clear()


def _echo(fd: int, data: bytes, failures: list[OSError]) -> bool:
    """``data`` to our ``fd``; False when that is a pipe nobody reads any more. Other failures
    (a full disk, our terminal gone) are noted and passed over: the container runs on, and is
    logged; the caller says the first."""
    try:
        write_all(fd, data)
    except BrokenPipeError:
        return False
    except OSError as e:
        failures.append(OSError(e.errno, f"writing the container's output to {_NAMES.get(fd, fd)}: "
                                         f"{e.strerror}"))
    return True


_NAMES = {1: "stdout", 2: "stderr"}
