"""The index of image references (``images.json``): reference -> manifest and config digests,
rewritten whole under ``images.lock``; each image's blobs are in ``blobs``."""


import contextlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..errors import ImageNotKnown, ManifestError, MiniRunError, StoreError
from ..oci import ImageIndex, Manifest, Platform, parse_manifest
from .blobs import ContentStore
from .files import atomic_write, file_lock, owner_gone, store_error, tree_size


class ImageRecord(NamedTuple):
    reference: str   # docker.io/library/hello-world:latest or ...@sha256:..., or the image ID (untagged)
    digest: str      # what the reference resolved to: index or manifest digest
    manifest: str    # the platform's manifest
    config: str      # the image ID is this digest
    platform: str
    pulled: str

    @property
    def untagged(self) -> bool:
        """Kept by its ID alone (loaded from an archive that gave it no name), as Docker's <none>."""
        return is_image_id(self.reference)

    def is_for(self, platform: Platform) -> bool:
        try:
            return Platform.parse(self.platform) == platform
        except MiniRunError:
            return False  # an unreadable record is for no platform: pull again


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def is_image_id(key: str) -> bool:
    return _DIGEST.fullmatch(key) is not None


def _record(key: str, value: object) -> ImageRecord:
    """One entry of images.json, checked; ValueError says what is wrong with it."""
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    try:
        record = ImageRecord(**value)
    except TypeError:
        raise ValueError("missing or unknown fields") from None
    if not all(isinstance(field, str) for field in record):
        raise ValueError("a field that is not text")
    if record.reference != key:
        raise ValueError(f'filed under "{key}" but names "{record.reference}"')
    for name in ("digest", "manifest", "config"):
        if not _DIGEST.fullmatch(getattr(record, name)):
            raise ValueError(f'its {name} "{getattr(record, name)}" is not a sha256 digest')
    return record


class _Index(NamedTuple):
    records: dict[str, ImageRecord]
    damaged: dict[str, tuple[object, str]]   # key -> (the entry as found, what is wrong)


class ImageStore:
    """The image references index, read and rewritten whole under a file lock.

    Each entry is checked when read: a damaged one is left out of ``records()`` (listed by
    ``damaged()``, so that the CLI can name it) and written back as it was, never blocking
    the others; ``system prune`` and ``rmi`` of its reference remove it."""

    def __init__(self, root: Path, content: ContentStore) -> None:
        self.root, self.content = root, content
        self.index_path = root / "images.json"
        self.lock_path = root / "images.lock"
        self.gc_lock_path = root / "gc.lock"
        self._damaged: dict[str, str] = {}

    def _load(self) -> _Index:
        try:
            doc = json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return _Index({}, {})
        except OSError as e:
            raise store_error("reading", self.index_path, e) from None
        except ValueError as e:
            raise StoreError(f"reading {self.index_path}: not valid JSON ({e})") from None
        entries = doc.get("images") if isinstance(doc, dict) else None
        if not isinstance(entries, dict):
            raise StoreError(f"reading {self.index_path}: unexpected structure")
        index = _Index({}, {})
        for key, value in entries.items():
            try:
                index.records[key] = _record(key, value)
            except ValueError as e:
                index.damaged[key] = (value, str(e))
        self._damaged = {k: why for k, (_, why) in index.damaged.items()}
        return index

    def _save(self, index: _Index) -> None:
        entries: dict[str, object] = {k: v._asdict() for k, v in index.records.items()}
        entries.update({k: raw for k, (raw, _) in index.damaged.items()})
        doc = {"version": 1, "images": dict(sorted(entries.items()))}
        atomic_write(self.index_path, json.dumps(doc, indent=1).encode())

    def damaged(self) -> dict[str, str]:
        """The entries the last read found damaged: reference -> what is wrong."""
        return dict(self._damaged)

    def records(self) -> list[ImageRecord]:
        with file_lock(self.lock_path, shared=True):
            return list(self._load().records.values())

    def get(self, reference: str) -> ImageRecord | None:
        return {r.reference: r for r in self.records()}.get(reference)

    def put(self, record: ImageRecord) -> None:
        """File ``record`` under its reference. An image has an ID entry only while no name
        refers to it (as Docker's <none>): a name given to it replaces that entry, and an ID
        entry for an image that has a name is not added."""
        with file_lock(self.lock_path):
            index = self._load()
            named = [r for r in index.records.values() if r.config == record.config and not r.untagged]
            if record.untagged and named:
                return
            index.records.pop(record.config, None)
            index.records[record.reference] = record
            index.damaged.pop(record.reference, None)  # a pull repairs a damaged entry
            self._save(index)

    def pulling(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) for the whole of a pull, so GC never removes blobs it is fetching."""
        return file_lock(self.gc_lock_path, shared=True, what=f"a prune or rmi in {self.root} to finish")

    def blobs_of(self, record: ImageRecord) -> set[str]:
        """The blobs ``record`` uses that are here and sound. Index, manifest and config are
        read, so checked (a damaged one is removed and left out: GC may then delete the layers
        only it named, and a pull fetches them again); layers are named by the manifest."""
        out: set[str] = set()
        for digest in dict.fromkeys((record.digest, record.manifest, record.config)):
            try:
                data = self.content.read(digest)
            except StoreError:
                continue  # not here, or damaged (and so removed)
            out.add(digest)
            if digest == record.manifest:
                with contextlib.suppress(ManifestError):
                    m = parse_manifest(data, None, record.reference)
                    if isinstance(m, Manifest):
                        out.update(layer.digest for layer in m.layers if self.content.has(layer.digest))
        return out

    def complete(self, record: ImageRecord) -> bool:
        """Every blob of the image is here, its index, manifest and config sound."""
        blobs = self.blobs_of(record)
        if not {record.digest, record.manifest, record.config} <= blobs:
            return False
        m = parse_manifest(self.content.read(record.manifest), None, record.reference)
        return isinstance(m, Manifest) and all(layer.digest in blobs for layer in m.layers)

    def manifest_of(self, record: ImageRecord) -> Manifest:
        m = parse_manifest(self.content.read(record.manifest), None, record.reference)
        if isinstance(m, ImageIndex):
            raise StoreError(f"reading {record.reference}: stored manifest is an index")
        return m

    def remove(
        self, references: list[str], collect: Callable[[list[ImageRecord]], tuple[list[str], int]] | None = None,
        drop_damaged: bool = False,
    ) -> tuple[list[str], list[str], int]:
        """Untag references and collect blobs nothing uses any more.

        ``references`` may name damaged entries (removed as they are); ``drop_damaged``
        removes every damaged entry (prune). ``collect`` runs under the same exclusive lock
        (no pull or unpack is running), given the images that remain, to remove other unused
        things (snapshots); what it returns (names, bytes) is added to the result.
        Returns the references removed, the deleted digests and the bytes freed.
        """
        with file_lock(self.gc_lock_path, what=f"the pulls and runs unpacking in {self.root} to finish"), \
                file_lock(self.lock_path):
            index = self._load()
            missing = [r for r in references if r not in index.records and r not in index.damaged]
            if missing:
                raise ImageNotKnown(f"removing image {missing[0]}: no such image")
            for key in references:
                index.records.pop(key, None)
            for key in list(index.damaged) if drop_damaged else references:
                index.damaged.pop(key, None)
            self._save(index)
            keep: set[str] = set()
            for rec in index.records.values():
                keep |= self.blobs_of(rec)
            deleted, freed = [], 0
            for digest in sorted(self.content.digests() - keep):
                freed += self.content.remove(digest)
                deleted.append(digest)
            freed += self._remove_stale_ingests()
            if collect is not None:
                more, more_freed = collect(list(index.records.values()))
                deleted += more
                freed += more_freed
            return list(references), deleted, freed

    def _remove_stale_ingests(self) -> int:
        """Partial downloads and their locks (nobody holds those while we hold the GC lock: every
        pull holds it shared first), and the work files of a load or save that was killed
        (``load-PID-START``, ``save-PID-START-DIGEST``: removed once that process is gone)."""
        freed = 0
        for p in self.content.ingest_dir.iterdir():
            kind, _, rest = p.name.partition("-")
            stale = p.suffix in (".partial", ".lock") or (
                kind in ("load", "save") and owner_gone(rest if kind == "load" else "-".join(rest.split("-")[:2])))
            if stale:
                freed += _remove_tree(p)
        return freed


def _remove_tree(path: Path) -> int:
    """Remove a file or a directory; the bytes freed (what could not be removed is left)."""
    import shutil
    if path.is_dir() and not path.is_symlink():
        size = tree_size(path)
        shutil.rmtree(path, ignore_errors=True)
        return 0 if path.exists() else size
    try:
        size = path.stat().st_size
        path.unlink()
        return size
    except OSError:
        return 0
