"""One channel between a container's parent and the process it starts (run's child, exec's
joining process, run -d's monitor and its CLI): a SOCK_SEQPACKET socket pair, one typed
message per packet, a descriptor riding along where one is sent (the terminal's master).

Both ends are close-on-exec, so the end of the channel says the rest: once the child has
exec'd the program (or died), the parent reads the end. A failure before that is one
FAILED message, "<exit code>\\n<one line>", and the child exits with that code.

``_socket`` rather than ``socket``: the latter costs a start 2 ms to import, and nothing
more than a pair, sendmsg and recvmsg is needed.
"""

from __future__ import annotations

import _socket
import os
import struct

from ..records import Record

GO = b"G"          # parent -> child: its cgroup is made (and joined): set up
ATTACHED = b"A"    # parent -> child: its network is attached: go on
NAMESPACE = b"N"   # child -> parent: its network namespace exists: attach it
CONSOLE = b"T"     # child -> parent: the terminal's master (the descriptor comes with it)
FAILED = b"F"      # child -> parent: it could not start: "<code>\n<message>"
STARTED = b"S"     # monitor -> CLI: the program runs: "<container id>"

_FD = struct.Struct("i")
_ANCILLARY = _socket.CMSG_SPACE(_FD.size)


class Message(Record):
    kind: bytes
    body: bytes = b""
    fd: int = -1      # a descriptor sent along (the receiver's to close), else -1


class Channel:
    """One end. The parent's is made by ``pair``; the child's is ``Channel(fd)`` from the
    descriptor it inherited."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, kind: bytes, body: bytes = b"", fd: int = -1) -> None:
        ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _FD.pack(fd))] if fd >= 0 else []
        s = _socket.socket(fileno=os.dup(self.fd))  # a socket object of its own: the end stays ours
        try:
            s.sendmsg([kind + body], ancillary, _socket.MSG_NOSIGNAL)
        finally:
            s.close()

    def receive(self) -> Message | None:
        """The next message; None once the other end is closed (the child exec'd or died)."""
        s = _socket.socket(fileno=os.dup(self.fd))
        try:
            data, ancillary, _, _ = s.recvmsg(65536, _ANCILLARY)
        finally:
            s.close()
        fd = next((_FD.unpack(d[:_FD.size])[0] for level, kind, d in ancillary
                   if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS), -1)
        if not data:
            return None
        return Message(data[:1], data[1:], fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def pair() -> tuple[Channel, Channel]:
    """(the parent's end, the child's end), both close-on-exec."""
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    return Channel(a.detach()), Channel(b.detach())


def failed(code: int, message: str) -> bytes:
    return f"{code}\n{message}".encode()


def failure(body: bytes) -> tuple[int, str]:
    """A FAILED message's exit code and line."""
    code, _, message = body.decode(errors="replace").partition("\n")
    return int(code) if code.isdigit() else 125, message
