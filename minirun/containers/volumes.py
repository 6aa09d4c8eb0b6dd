"""Volumes: directories in the store that outlive containers (Docker's local driver).

``<root>/volumes/NAME/_data`` is what a container mounts; ``volume.json`` beside it says when
it was made, its labels and whether it is anonymous (made for an image's ``Volumes`` or a
``-v /path``: 64 hex digits, removed with ``rm -v`` or a --rm container). Which containers use
a volume is read from their config.json (a bind whose source is the volume's ``_data``), so
no second record can disagree with them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..content.files import atomic_write, file_lock, store_error, tree_size
from ..errors import ContainerConflict, NoSuchVolume, StoreError
from ..records import Record
from ..spec.flags import check_volume_name
from .state import now_rfc3339


class Volume(Record):
    name: str
    created: str
    labels: dict[str, str]
    anonymous: bool
    data: Path           # what a container mounts


class Volumes:
    def __init__(self, root: Path) -> None:
        self.dir = root / "volumes"
        self.lock = root / "volumes.lock"

    def data(self, name: str) -> Path:
        return self.dir / name / "_data"

    def get(self, name: str) -> Volume:
        check_volume_name(name, "volume")
        try:
            doc = json.loads((self.dir / name / "volume.json").read_bytes())
            labels = {str(k): str(v) for k, v in (doc.get("labels") or {}).items()}
            return Volume(name, str(doc.get("created") or ""), labels, bool(doc.get("anonymous")), self.data(name))
        except FileNotFoundError:
            if self.data(name).is_dir():  # made, its record lost (a kill between the two): still a volume
                return Volume(name, "", {}, False, self.data(name))
            raise NoSuchVolume(f"get {name}: no such volume") from None
        except (OSError, ValueError, AttributeError) as e:
            raise StoreError(f"reading volume {name}: {e}") from None

    def create(self, name: str = "", labels: dict[str, str] | None = None) -> tuple[Volume, bool]:
        """The volume ``name`` (made now if there is none; "": a new anonymous one); whether
        it was made here. A name already in use is that volume (as Docker's create)."""
        anonymous = not name
        name = name or secrets.token_hex(32)
        check_volume_name(name, "creating volume")
        try:
            self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise store_error("creating", self.dir, e) from None
        with file_lock(self.lock):
            with contextlib.suppress(NoSuchVolume):
                return self.get(name), False
            try:
                work = self.dir / f".{name}.{os.getpid()}"
                shutil.rmtree(work, ignore_errors=True)
                (work / "_data").mkdir(parents=True)
                doc = {"created": now_rfc3339(), "labels": labels or {}, "anonymous": anonymous}
                atomic_write(work / "volume.json", json.dumps(doc).encode())
                os.rename(work, self.dir / name)
            except OSError as e:
                raise store_error("creating volume", self.dir / name, e) from None
            return self.get(name), True

    def all(self) -> list[Volume]:
        if not self.dir.is_dir():
            return []
        out = []
        for d in sorted(self.dir.iterdir()):
            if not d.name.startswith("."):
                with contextlib.suppress(StoreError):
                    out.append(self.get(d.name))
        return out

    def name_of(self, source: str) -> str | None:
        """The volume whose data ``source`` (a bind's source in a config.json) is."""
        path = Path(source)
        return path.parent.name if path.name == "_data" and path.parent.parent == self.dir else None

    def remove(self, name: str, users: Iterable[str]) -> int:
        """Remove a volume no container uses (``users``: the IDs of those that do); bytes freed."""
        volume = self.get(name)
        with file_lock(self.lock):
            using = sorted(users)
            if using:
                raise ContainerConflict(f"remove {name}: volume is in use - [{', '.join(using)}]")
            size = tree_size(self.dir / volume.name)
            gone = self.dir / f".{name}.removing"
            try:
                os.rename(self.dir / name, gone)  # gone at once; what follows may take a while
            except OSError as e:
                raise store_error("removing volume", self.dir / name, e) from None
            shutil.rmtree(gone, ignore_errors=True)
            return size


def volume_sources(spec: dict[str, object]) -> Iterator[str]:
    """The sources of a config.json's bind mounts."""
    mounts = spec.get("mounts")
    for m in mounts if isinstance(mounts, list) else []:
        if isinstance(m, dict) and m.get("type") == "bind" and isinstance(m.get("source"), str):
            yield m["source"]
