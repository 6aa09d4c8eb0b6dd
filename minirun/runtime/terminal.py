"""``run -t``: a pseudo-terminal from the container's own devpts, relayed by minirun.

The container opens ``/dev/pts/ptmx`` of its devpts instance (so ``tty`` inside says
``/dev/pts/0``), makes the slave its controlling terminal and stdio, and sends the
master to minirun over its channel (SCM_RIGHTS), as runc's console socket does.
minirun copies bytes both ways, puts its own terminal in raw mode only when it is one
(restored on every way out), and passes window size changes on.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import struct
import termios
import tty
from types import FrameType

from ..records import TYPE_CHECKING
from .relay import write_all

if TYPE_CHECKING:
    from .relay import Sink

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430
TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
TTY_GID = 5  # the "tty" group, as devpts is mounted with gid=5


def open_console(uid: int) -> tuple[int, int]:
    """In the container: (master, slave) of a new pty, the slave owned by ``uid``."""
    master = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
    os.fchown(slave, uid, TTY_GID)
    os.fchmod(slave, 0o620)
    return master, slave


def take_console(slave: int) -> None:
    """In the container (already leading a session of its own): ``slave`` becomes its
    controlling terminal and stdio."""
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


DEFAULT_SIZE = struct.pack("HHHH", 24, 80, 0, 0)  # rows, columns: when minirun has no terminal


def _copy_size(source: int | None, master: int) -> None:
    try:
        size = fcntl.ioctl(source, TIOCGWINSZ, b"\0" * 8) if source is not None else DEFAULT_SIZE
        fcntl.ioctl(master, TIOCSWINSZ, size)
    except OSError:
        pass


def relay(master: int, interactive: bool, log: Sink | None = None) -> None:
    """Copy until the container's side of the terminal is closed (what it writes to ``log``
    too, as its stdout); restore ours."""
    size_source = next((fd for fd in (0, 1) if os.isatty(fd)), None)
    _copy_size(size_source, master)

    def resized(_signum: int, _frame: FrameType | None) -> None:
        _copy_size(size_source, master)  # the kernel then signals the container's foreground

    previous = signal.signal(signal.SIGWINCH, resized)
    saved = termios.tcgetattr(0) if interactive and os.isatty(0) else None
    try:
        if saved is not None:
            tty.setraw(0)
        inputs = [master, 0] if interactive else [master]
        while True:
            ready, _, _ = select.select(inputs, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError as e:
                    if e.errno == errno.EIO:  # every holder of the slave has closed it
                        break
                    raise
                if not data:
                    break
                if log is not None:
                    log(1, data)
                write_all(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    write_all(master, data)
                else:
                    inputs.remove(0)
                    write_all(master, b"\x04")  # end of our input: ^D to the terminal
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
        os.close(master)
