"""A container's log as it is written: Docker's json-file lines, rotated at its bounds.

Apart from ``logs`` (which reads, filters and follows) because the detached container's lean
monitor (keeper.py) writes it: this module imports nothing but ``os``, ``time`` and the
C half of ``json``, so that the monitor stays small.
"""

from __future__ import annotations

import os
import time

from ..records import Record

try:
    from _json import encode_basestring  # C: what json.dumps uses for a str
except ImportError:  # pragma: no cover - an interpreter without the accelerator
    from json.encoder import encode_basestring

_PARTIAL_MAX = 16 * 1024  # as Docker: a line longer than this is logged in pieces


class LogOptions(Record):
    max_size: int = 10 * 1000**2
    max_file: int = 3


def log_path(directory: str | os.PathLike[str]) -> str:
    """The log of the container whose directory this is (named by its ID, as Docker's)."""
    directory = os.fspath(directory)
    return os.path.join(directory, f"{os.path.basename(directory.rstrip('/'))}-json.log")


def now_nano() -> str:
    return stamp(time.time_ns())


def stamp(ns: int) -> str:
    """An entry's time: RFC 3339 in UTC with nanoseconds, so that stamps sort as strings."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


class LogWriter:
    """Appends the container's output, a line per entry; partial lines wait for their end
    (or 16 KiB), per stream. Each chunk read is written at once, its lines stamped with one
    time (they arrived together): a million short lines take about half a second here, where
    a ``json.dumps`` per line took eight."""

    def __init__(self, directory: str | os.PathLike[str], options: LogOptions) -> None:
        self.path = log_path(directory)
        self.options = options
        self.file = open(self.path, "ab", buffering=0)
        self.size = self.file.tell()
        self.pending = {"stdout": b"", "stderr": b""}
        # What could not be written (a full disk): dropped and counted, never the program's
        # end (as Docker drops what it cannot log); the first failure says why.
        self.dropped = 0
        self.failure: OSError | None = None

    def write(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        end = buf.rfind(b"\n") + 1
        texts = buf[:end].decode(errors="replace").split("\n")[:-1]
        if texts and max(map(len, texts)) >= _PARTIAL_MAX:
            self._slow(stream, buf[:end])
        elif texts:
            self._append(stream, [text + "\n" for text in texts])
        whole = end + (len(buf) - end) // _PARTIAL_MAX * _PARTIAL_MAX  # 16 KiB pieces of a longer line
        if whole > end:
            self._append(stream, [buf[i:i + _PARTIAL_MAX].decode(errors="replace")
                                  for i in range(end, whole, _PARTIAL_MAX)])
        self.pending[stream] = buf[whole:]

    def _slow(self, stream: str, complete: bytes) -> None:
        """Lines of 16 KiB or more, in pieces (as Docker: the last one ends the line)."""
        for line in complete.split(b"\n")[:-1]:
            line += b"\n"
            self._append(stream, [line[i:i + _PARTIAL_MAX].decode(errors="replace")
                                  for i in range(0, len(line), _PARTIAL_MAX)])

    def _append(self, stream: str, texts: list[str]) -> None:
        tail = f',"stream":"{stream}","time":"{now_nano()}"}}\n'
        lines = ['{"log":' + encode_basestring(text) + tail for text in texts]
        batch = "".join(lines).encode()
        if self.size + len(batch) > self.options.max_size:
            for line in lines:  # near the bound: rotate between entries
                data = line.encode()
                if self.size + len(data) > self.options.max_size and self.size:
                    try:
                        self._rotate()
                    except OSError as e:
                        self._reopen()
                        self._lost(1, e)
                        continue
                self._write(data, 1)
        else:
            self._write(batch, len(lines))

    def _write(self, data: bytes, entries: int) -> None:
        """``data`` whole at the end of the log, or none of it (a part written is cut off again,
        so that every line stays a whole JSON entry)."""
        if self.file.closed:
            self._lost(entries, OSError(5, "the log could not be opened again"))
            return
        try:
            view = memoryview(data)
            while view:
                view = view[self.file.write(view) or 0:]
            self.size += len(data)
        except OSError as e:
            try:
                os.ftruncate(self.file.fileno(), self.size)
            except OSError:
                pass
            self._lost(entries, e)

    def _reopen(self) -> None:
        """After a rotation that failed part way: the current log again, to append to."""
        if self.file.closed:
            try:
                self.file = open(self.path, "ab", buffering=0)
            except OSError:
                pass
        if not self.file.closed:
            self.size = self.file.tell()

    def _lost(self, entries: int, e: OSError) -> None:
        self.dropped += entries
        if self.failure is None:
            self.failure = e

    def _rotate(self) -> None:
        self.file.close()
        keep = self.options.max_file - 1
        for n in range(keep, 0, -1):
            older = f"{self.path}.{n}"
            if os.path.exists(older):
                if n == keep:
                    os.unlink(older)
                else:
                    os.rename(older, f"{self.path}.{n + 1}")
        if keep:
            os.rename(self.path, f"{self.path}.1")
        self.file = open(self.path, "wb", buffering=0)
        self.size = 0

    def close(self) -> None:
        for stream, rest in self.pending.items():
            if rest and not self.file.closed:
                self._append(stream, [rest.decode(errors="replace")])
        self.file.close()
