"""A container's output in Docker's ``json-file`` format: one JSON object per line,
``{"log": "text\\n", "stream": "stdout", "time": "2026-11-23T12:00:00.123456789Z"}``, in
``containers/<id>/<id>-json.log``, so that tools made for Docker's logs read minirun's.

The file is bounded (``--log-opt max-size``, default 10m, ``max-file``, default 3, as
Docker's ``local`` driver): when it would pass the size it is rotated to ``.1`` (``.1`` to
``.2``, ...) and the oldest is dropped, so a chatty container cannot fill the disk.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import UsageError
from ..records import TYPE_CHECKING, Record
from ..runtime import logwriter
from ..runtime.logwriter import LogOptions, stamp

if TYPE_CHECKING:
    from typing import BinaryIO

_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


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


def log_path(directory: Path) -> Path:
    return Path(logwriter.log_path(directory))


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
