"""A container's output in Docker's ``json-file`` format: one JSON object per line,
``{"log": "text\\n", "stream": "stdout", "time": "2026-11-23T12:00:00.123456789Z"}``, in
``containers/<id>/<id>-json.log``, so that tools made for Docker's logs read minirun's.

The file is bounded (``--log-opt max-size``, default 10m, ``max-file``, default 3, as
Docker's ``local`` driver): when it would pass the size it is rotated to ``.1`` (``.1`` to
``.2``, ...) and the oldest is dropped, so a chatty container cannot fill the disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from json.encoder import encode_basestring  # C: what json.dumps uses for a str
from pathlib import Path

from ..errors import UsageError
from ..records import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from typing import BinaryIO

_PARTIAL_MAX = 16 * 1024  # as Docker: a line longer than this is logged in pieces
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


class LogOptions(Record):
    max_size: int = 10 * 1000**2
    max_file: int = 3


def parse_options(opts: tuple[str, ...]) -> LogOptions:
    """``--log-opt max-size=10m``, ``--log-opt max-file=3`` (Docker's units)."""
    out = LogOptions()
    for opt in opts:
        key, _, value = opt.partition("=")
        try:
            if key == "max-size":
                number = value.rstrip("bkmgBKMG")
                out = out._replace(max_size=int(float(number) * _UNITS[value[len(number):].lower()]))
            elif key == "max-file":
                out = out._replace(max_file=int(value))
            else:
                raise UsageError(f'invalid --log-opt "{opt}": expected max-size=SIZE or max-file=N')
        except (ValueError, KeyError, OverflowError):
            raise UsageError(f'invalid --log-opt "{opt}": {value!r} is not a size or a number') from None
    if out.max_size < 1000 or out.max_file < 1:
        raise UsageError("invalid --log-opt: max-size must be at least 1k and max-file at least 1")
    return out


def log_path(directory: Path) -> Path:
    return directory / f"{directory.name}-json.log"


def now_nano() -> str:
    return stamp(time.time_ns())


def stamp(ns: int) -> str:
    """An entry's time: RFC 3339 in UTC with nanoseconds, so that stamps sort as strings."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_time(text: str, now_ns: int, flag: str = "--since") -> str:
    """``logs --since/--until`` as Docker takes them, as a stamp to compare entries with: a
    duration before now (``10m``, ``1h30m``), Unix seconds (``1700000000.5``), or an RFC 3339
    date or time (without a zone: local time)."""
    try:
        return _parse_time(text, now_ns, flag)
    except (OverflowError, OSError, ValueError):  # beyond what a time can be here (year 10000, ...)
        raise UsageError(f'invalid {flag} "{text}": out of range') from None


def _parse_time(text: str, now_ns: int, flag: str) -> str:
    from datetime import datetime
    if text and "".join(m.group(0) for m in _DURATION.finditer(text)) == text:
        ago = sum(float(m.group(1)) * _NS[m.group(2)] for m in _DURATION.finditer(text))
        return stamp(now_ns - int(ago))
    if re.fullmatch(r"\d+(\.\d{1,9})?", text):
        whole, _, fraction = text.partition(".")
        return stamp(int(whole) * 10**9 + int(fraction.ljust(9, "0") or 0))
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f'invalid {flag} "{text}": expected a time (2026-01-02T15:04:05Z), Unix seconds or a '
                         "duration such as 10m") from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as Docker reads a time without a zone
    return stamp(int(when.timestamp()) * 10**9 + when.microsecond * 1000)


class LogWriter:
    """Appends the container's output, a line per entry; partial lines wait for their end
    (or 16 KiB), per stream. Each chunk read is written at once, its lines stamped with one
    time (they arrived together): a million short lines take about half a second here, where
    a ``json.dumps`` per line took eight."""

    def __init__(self, directory: Path, options: LogOptions) -> None:
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
            with contextlib.suppress(OSError):
                os.ftruncate(self.file.fileno(), self.size)
            self._lost(entries, e)

    def _reopen(self) -> None:
        """After a rotation that failed part way: the current log again, to append to."""
        if self.file.closed:
            with contextlib.suppress(OSError):
                self.file = open(self.path, "ab", buffering=0)
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
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                if n == keep:
                    older.unlink()
                else:
                    older.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if keep:
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        self.file = open(self.path, "wb", buffering=0)
        self.size = 0

    def close(self) -> None:
        for stream, rest in self.pending.items():
            if rest and not self.file.closed:
                self._append(stream, [rest.decode(errors="replace")])
        self.file.close()


class Entry(Record):
    stream: str
    text: str
    time: str


def _parse(line: bytes) -> Entry | None:
    try:
        doc = json.loads(line)
        return Entry(str(doc["stream"]), str(doc["log"]), str(doc["time"]))
    except (ValueError, KeyError, TypeError):
        return None  # a line cut by a kill while it was written


def entries(directory: Path) -> list[Entry]:
    """Every entry still kept, oldest first (rotated files included)."""
    path = log_path(directory)
    files = sorted(path.parent.glob(f"{path.name}.*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit()
                   else 0)
    out: list[Entry] = []
    for f in [*files, path]:
        try:
            data = f.read_bytes()
        except FileNotFoundError:
            continue
        out += [e for e in map(_parse, data.splitlines()) if e is not None]
    return out


def size(directory: Path) -> int:
    try:
        return log_path(directory).stat().st_size
    except FileNotFoundError:
        return 0


def follow(directory: Path, offset: int, running: Callable[[], bool], pause: float = 0.1) -> Iterator[Entry]:
    """The entries written after ``offset`` in the current file, as they come, until the
    container has ended (``running`` says no) and all it wrote has been read. Followed by its
    inode: when the log is rotated, the rest of the file read so far is read to its end (it
    is ``.1`` now), then the new one from its start; a file cut back in place (max-file 1)
    is read again from its start."""
    path = log_path(directory)
    pending = b""
    f: BinaryIO | None = None
    try:
        while True:
            still = running()  # asked before reading: what it wrote before it ended is read below
            if f is None:
                f = _open_at(path, offset)
            data, f, rotated = _read_on(path, f)
            lines = (pending + data).split(b"\n")
            pending = lines.pop()
            for line in lines:
                entry = _parse(line)
                if entry is not None:
                    yield entry
            if rotated:
                continue  # the new file at once, whether or not it still runs
            if not still:
                return
            if not data:
                time.sleep(pause)
    finally:
        if f is not None:
            f.close()


def _open_at(path: Path, offset: int) -> BinaryIO | None:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    f.seek(offset)
    return f


def _read_on(path: Path, f: BinaryIO | None) -> tuple[bytes, BinaryIO | None, bool]:
    """What is new in ``f``; and, where ``path`` names another file now (rotated), the rest of
    ``f`` and the new file, open at its start. Returns the bytes, the file to go on with and
    whether it was rotated."""
    if f is None:
        return b"", None, False
    data = f.read()
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return data, f, False
    here = os.fstat(f.fileno())
    if (now.st_ino, now.st_dev) != (here.st_ino, here.st_dev):
        data += f.read()  # written between the read and the rotation
        f.close()
        return data, _open_at(path, 0), True
    if here.st_size < f.tell():  # cut back in place (max-file 1): from its start again
        f.seek(0)
        return data, f, True
    return data, f, False
