"""The event journal: what happened to containers, images, networks and volumes, as Docker's
``events`` stream says it, kept in the store because there is no daemon to stream it.

Every command and monitor appends one JSON line per event to ``<root>/events.jsonl`` with a
single ``O_APPEND`` write (whole lines, never interleaved); when the file passes ``LIMIT``
bytes the writer that notices renames it to ``events.1.jsonl`` (the one before that goes), so
the journal stays bounded and ``events --since`` still finds the recent past. Readers take
both files in order and follow the current one as it grows (or is replaced).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

JOURNAL = "events.jsonl"
OLDER = "events.1.jsonl"
LIMIT = 4 << 20   # bytes before rotation


def event(kind: str, action: str, actor: str, attributes: dict[str, str],
          now_ns: int | None = None) -> dict[str, object]:
    """One event as Docker's API gives it (``{{json .}}``)."""
    ns = time.time_ns() if now_ns is None else now_ns
    doc: dict[str, object] = {}
    if kind == "container":  # Docker's older fields, still sent for containers
        doc = {"status": action, "id": actor, "from": attributes.get("image", "")}
    doc.update({"Type": kind, "Action": action, "Actor": {"ID": actor, "Attributes": dict(sorted(attributes.items()))},
                "scope": "local", "time": ns // 1_000_000_000, "timeNano": ns})
    return doc


def record(root: Path, kind: str, action: str, actor: str, attributes: dict[str, str]) -> None:
    """Append one event; a journal that cannot be written loses the event, never the command."""
    line = (json.dumps(event(kind, action, actor, attributes), separators=(",", ":")) + "\n").encode()
    path = root / JOURNAL
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return
    try:
        os.write(fd, line)
        if os.fstat(fd).st_size > LIMIT:
            try:
                os.rename(path, root / OLDER)  # one writer wins; the others' lines land in either
            except OSError:
                pass
    except OSError:
        pass
    finally:
        os.close(fd)


def of_container(root: Path, action: str, cid: str, name: str, image: str, labels: dict[str, str] | None = None,
                 **more: str) -> None:
    """A container's event, with Docker's attributes: its image, its name, its labels."""
    record(root, "container", action, cid, {**(labels or {}), "image": image, "name": name, **more})


def _lines(path: Path, offset: int = 0) -> tuple[list[dict[str, object]], int]:
    """The whole lines from ``offset``, and where the next read starts."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1
    out = []
    for raw in data[:end].splitlines():
        try:
            doc = json.loads(raw)
        except ValueError:
            continue  # a torn line (a full disk): passed over
        if isinstance(doc, dict):
            out.append(doc)
    return out, offset + end


def past(root: Path) -> list[dict[str, object]]:
    """Every event kept, oldest first."""
    return _lines(root / OLDER)[0] + _lines(root / JOURNAL)[0]


def follow(root: Path, until_ns: int | None = None, poll: float = 0.1) -> Iterator[dict[str, object]]:
    """The events kept, then each new one as it is written, until the caller stops (or the
    clock passes ``until_ns``)."""
    path = root / JOURNAL
    yield from _lines(root / OLDER)[0]
    offset, inode = 0, None
    while until_ns is None or time.time_ns() <= until_ns:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_ino != inode:  # made, or rotated: the new one from its start
            if inode is not None:
                events, _ = _lines(root / OLDER, offset)  # what was added to the old one before it moved
                yield from events
            inode, offset = st.st_ino, 0
        if st is not None:
            events, offset = _lines(path, offset)
            yield from events
        time.sleep(poll)


FILTERS = ("container", "event", "image", "label", "type", "network", "volume")


def matches(doc: dict[str, object], wanted: dict[str, list[str]]) -> bool:
    """Docker's event filters: every kind given must match one of its values (pure)."""
    from ..spec.flags import label_matches  # (here: appending to the journal needs none of it)
    actor = doc.get("Actor") if isinstance(doc.get("Actor"), dict) else {}
    assert isinstance(actor, dict)
    attrs = actor.get("Attributes") if isinstance(actor.get("Attributes"), dict) else {}
    assert isinstance(attrs, dict)
    kind, action, actor_id = str(doc.get("Type")), str(doc.get("Action")), str(actor.get("ID"))
    for key, values in wanted.items():
        if key == "event":
            ok = any(v in (action, action.split(":")[0]) for v in values)
        elif key == "type":
            ok = kind in values
        elif key == "label":
            ok = any(label_matches(attrs, v) for v in values)
        elif key == "image":
            ok = any(v in (attrs.get("image"), actor_id if kind == "image" else None) for v in values)
        else:  # container, network, volume: by ID (or its prefix) or name
            ok = kind == key and any(actor_id.startswith(v) or attrs.get("name") == v for v in values)
        if not ok:
            return False
    return True


def text(doc: dict[str, object], stamp: str) -> str:
    """Docker's line: TIME TYPE ACTION ID (k=v, ...)."""
    actor = doc.get("Actor") if isinstance(doc.get("Actor"), dict) else {}
    assert isinstance(actor, dict)
    attrs = actor.get("Attributes") if isinstance(actor.get("Attributes"), dict) else {}
    assert isinstance(attrs, dict)
    out = f"{stamp} {doc.get('Type')} {doc.get('Action')} {actor.get('ID')}"
    if attrs:
        out += " (" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")"
    return out


def go_fields(doc: dict[str, object]) -> dict[str, object]:
    """For a --format template: the Go names of Docker's event fields."""
    return {"Status": doc.get("status", ""), "ID": doc.get("id", ""), "From": doc.get("from", ""),
            "Type": doc.get("Type"), "Action": doc.get("Action"), "Actor": doc.get("Actor"), "Scope": doc.get("scope"),
            "Time": doc.get("time"), "TimeNano": doc.get("timeNano")}
