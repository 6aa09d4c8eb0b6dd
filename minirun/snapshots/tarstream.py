"""A lean reader of the tar forms image layers use (ustar, pax, GNU long names), pure.

Layers are read once, front to back, with nothing seeked; ``tarfile`` spent more time on
each header (its number and string helpers, its member objects, pax handling in Python)
than the unpacker spent writing the file. This reader parses a header with a few slices,
hands file content over as views of the decompressed chunks (no copies), and keeps
``tarfile``'s rules where they decide what an entry is: the checksum (unsigned or signed),
octal or base-256 numbers, the ustar prefix, a V7 directory's trailing slash, pax and GNU
long names and links, global pax headers, content skipped only for regular and unknown types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..errors import LayerError

BLOCK = 512
REGULAR = (b"0", b"\0", b"7")  # CONTTYPE (7) is a regular file, as tarfile has it
DIR, SYMLINK, HARDLINK, CHAR, BLOCKDEV, FIFO = b"5", b"2", b"1", b"3", b"4", b"6"
_KNOWN = (*REGULAR, DIR, SYMLINK, HARDLINK, CHAR, BLOCKDEV, FIFO)
_PAX_NUMBERS = {"size": int, "uid": int, "gid": int}


class Entry:
    """One member, with ``tarfile.TarInfo``'s names for what the unpacker reads."""

    __slots__ = ("devmajor", "devminor", "gid", "linkname", "mode", "mtime", "name", "pax_headers", "size",
                 "type", "uid")

    def __init__(self, name: str, type_: bytes, mode: int, uid: int, gid: int, size: int, mtime: float,
                 linkname: str, devmajor: int, devminor: int, pax: dict[str, str]) -> None:
        self.name, self.type, self.mode, self.uid, self.gid = name, type_, mode, uid, gid
        self.size, self.mtime, self.linkname = size, mtime, linkname
        self.devmajor, self.devminor, self.pax_headers = devmajor, devminor, pax

    def isreg(self) -> bool:
        return self.type in REGULAR

    def isdir(self) -> bool:
        return self.type == DIR

    def issym(self) -> bool:
        return self.type == SYMLINK

    def islnk(self) -> bool:
        return self.type == HARDLINK

    def ischr(self) -> bool:
        return self.type == CHAR

    def isblk(self) -> bool:
        return self.type == BLOCKDEV

    def isfifo(self) -> bool:
        return self.type == FIFO


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _nts(field: bytes) -> str:
    end = field.find(b"\0")
    return _text(field if end < 0 else field[:end])


def _number(field: bytes) -> int:
    """An octal field, or GNU's base-256 (first byte 0x80, or 0xff for a negative number)."""
    if field[0] in (0x80, 0xFF):
        n = int.from_bytes(field[1:], "big")
        return n - (1 << (8 * (len(field) - 1))) if field[0] == 0xFF else n
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text or b"0", 8)
    except ValueError:
        raise LayerError(f"not a valid tar stream: invalid number {text!r} in a header") from None


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156])
    unsigned = sum(block) - sum(block[148:156]) + 256  # the field itself counts as eight spaces
    if stored == unsigned:
        return True
    high = sum(1 for b in block[:148] if b > 127) + sum(1 for b in block[156:] if b > 127)
    return stored == unsigned - 256 * high  # some old tars summed signed chars


def pax_records(data: bytes) -> dict[str, str]:
    """``"%d %s=%s\\n"`` records; a malformed one is an error, as tarfile makes it."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise LayerError("not a valid tar stream: invalid pax header") from None
        record = data[space + 1:pos + length]
        if length <= 0 or space < 0 or not record.endswith(b"\n") or b"=" not in record:
            raise LayerError("not a valid tar stream: invalid pax header")
        key, _, value = record[:-1].partition(b"=")
        out[_text(key)] = _text(value)
        pos += length
    return out


class TarStream:
    """The members of a tar stream read from ``source`` (each call: the next chunk of bytes,
    empty at the end). Iterate for entries; ``content`` gives a regular file's bytes."""

    def __init__(self, source: Callable[[], bytes]) -> None:
        self.source = source
        self.buf = b""
        self.pos = 0
        self.pending = 0          # content of the last entry not yet read (plus its padding)
        self.globals: dict[str, str] = {}
        self.started = False

    def _fill(self) -> bool:
        chunk = self.source()
        if not chunk:
            return False
        self.buf = self.buf[self.pos:] + chunk if self.pos < len(self.buf) else chunk
        self.pos = 0
        return True

    def _take(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            if not self._fill():
                raise LayerError("not a valid tar stream: unexpected end of data")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def _skip(self, n: int) -> None:
        while n:
            if self.pos >= len(self.buf) and not self._fill():
                raise LayerError("not a valid tar stream: unexpected end of data")
            step = min(n, len(self.buf) - self.pos)
            self.pos += step
            n -= step

    def content(self, entry: Entry) -> Iterator[memoryview]:
        """The file's bytes in pieces (views into the stream's chunks, valid until the next)."""
        left = entry.size
        while left:
            if self.pos >= len(self.buf) and not self._fill():
                raise LayerError("not a valid tar stream: unexpected end of data")
            step = min(left, len(self.buf) - self.pos)
            yield memoryview(self.buf)[self.pos:self.pos + step]
            self.pos += step
            left -= step
            self.pending -= step
        self._skip(self.pending)
        self.pending = 0

    def __iter__(self) -> Iterator[Entry]:
        while True:
            self._skip(self.pending)
            self.pending = 0
            entry = self._next()
            if entry is None:
                return
            if entry.isreg() or entry.type not in _KNOWN:
                self.pending = -(-entry.size // BLOCK) * BLOCK
            yield entry

    def _next(self) -> Entry | None:
        """The next member, its pax and GNU long-name headers applied; None at the end."""
        pax: dict[str, str] = {}
        long_name = long_link = None
        while True:
            if len(self.buf) - self.pos < BLOCK and not self._more(BLOCK):
                if not self.started:
                    raise LayerError("not a valid tar stream: empty file")
                return None  # the end without end-of-archive blocks: tarfile takes it too
            self.started = True
            block = self._take(BLOCK)
            if block.count(0) == BLOCK:
                return None
            if not _checksum_ok(block):
                raise LayerError("not a valid tar stream: bad checksum in a header")
            kind = block[156:157]
            if kind in (b"x", b"g", b"L", b"K"):
                size = _number(block[124:136])
                data = self._take(size)
                self._skip(-size % BLOCK)
                if kind == b"x":
                    pax.update(pax_records(data))
                elif kind == b"g":
                    self.globals.update(pax_records(data))
                elif kind == b"L":
                    long_name = _nts(data)
                else:
                    long_link = _nts(data)
                continue
            if kind == b"S" or any(k.startswith("GNU.sparse.") for k in pax):
                raise LayerError("not a valid tar stream: sparse files are not supported in image layers")
            return self._entry(block, kind, {**self.globals, **pax}, long_name, long_link)

    def _more(self, n: int) -> bool:
        while len(self.buf) - self.pos < n:
            if not self._fill():
                if len(self.buf) - self.pos:
                    raise LayerError("not a valid tar stream: unexpected end of data")
                return False
        return True

    @staticmethod
    def _entry(block: bytes, kind: bytes, pax: dict[str, str], long_name: str | None,
               long_link: str | None) -> Entry:
        name = long_name if long_name is not None else _nts(block[0:100])
        if long_name is None:
            prefix = _nts(block[345:500])
            if prefix:
                name = prefix + "/" + name
        if kind == b"\0" and name.endswith("/"):
            kind = DIR  # old V7 tars mark a directory with a trailing slash only
        size = _number(block[124:136])
        mtime: float = _number(block[136:148])
        uid, gid = _number(block[108:116]), _number(block[116:124])
        linkname = long_link if long_link is not None else _nts(block[157:257])
        if pax:
            name = pax.get("path", name)
            linkname = pax.get("linkpath", linkname)
            try:
                size, uid, gid = (int(pax.get(k, v)) for k, v in (("size", size), ("uid", uid), ("gid", gid)))
                mtime = float(pax.get("mtime", mtime))
            except ValueError:
                raise LayerError("not a valid tar stream: a pax number is not a number") from None
        if kind == DIR:
            name = name.rstrip("/")
        devmajor = devminor = 0
        if kind in (CHAR, BLOCKDEV):
            devmajor, devminor = _number(block[329:337]), _number(block[337:345])
        return Entry(name, kind, _number(block[100:108]), uid, gid, size, mtime, linkname, devmajor, devminor,
                     pax)
