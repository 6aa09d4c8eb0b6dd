"""The image references: one file per reference under ``images/`` (named by the sha256 of
the reference), each reference -> manifest and config digests, written whole; each image's
blobs are in ``blobs``. One file per record, as Docker keeps each image's metadata on its
own: a damaged record stops nobody but its own reference (``images.json``, the whole index
in one file of older minirun, is split up on first use)."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from .. import notices, sha256
from ..errors import ImageNotKnown, ManifestError, MiniRunError, StoreError
from ..oci import ImageIndex, Manifest, Platform, parse_manifest
from ..pids import owner_gone
from ..records import Record
from .blobs import ContentStore
from .files import atomic_write, file_lock, store_error, tree_size


class ImageRecord(Record):
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


def _record(key: str | None, value: object) -> ImageRecord:
    """One record, checked; ValueError says what is wrong with it. ``key``: the reference it
    is filed under, where that is known (None: read from its file, named by its hash)."""
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    try:
        record = ImageRecord(**value)
    except TypeError:
        raise ValueError("missing or unknown fields") from None
    if not all(isinstance(field, str) for field in record):
        raise ValueError("a field that is not text")
    if key is not None and record.reference != key:
        raise ValueError(f'filed under "{key}" but names "{record.reference}"')
    for name in ("digest", "manifest", "config"):
        if not _DIGEST.fullmatch(getattr(record, name)):
            raise ValueError(f'its {name} "{getattr(record, name)}" is not a sha256 digest')
    return record


class _Index(Record):
    records: dict[str, ImageRecord]
    damaged: dict[str, tuple[Path, str]]   # the reference (or the file, where unreadable) -> (file, why)


class ImageStore:
    """The image references, one file each under ``images/``, changed under a file lock.

    Each record is checked when read: a damaged one is left out of ``records()`` (listed by
    ``damaged()``, so that the CLI can name it) and left as it was, never blocking the others;
    a pull of its reference replaces it; ``system prune`` and ``rmi`` of its reference remove it."""

    def __init__(self, root: Path, content: ContentStore) -> None:
        self.root, self.content = root, content
        self.records_dir = root / "images"
        self.old_index = root / "images.json"
        self.lock_path = root / "images.lock"
        self.gc_lock_path = root / "gc.lock"
        self._damaged: dict[str, str] = {}

    def path_of(self, reference: str) -> Path:
        return self.records_dir / f"{sha256.hexdigest(reference.encode())}.json"

    def _load(self) -> _Index:
        """Every record, under the caller's lock (after ``_upgrade``, which takes it itself)."""
        index = _Index({}, {})
        try:
            names = sorted(os.listdir(self.records_dir))
        except FileNotFoundError:
            return index
        except OSError as e:
            raise store_error("reading", self.records_dir, e) from None
        for name in names:
            path = self.records_dir / name
            if not name.endswith(".json") or name.startswith("."):
                continue  # a write in progress (atomic_write's temporary)
            try:
                value = json.loads(path.read_bytes())
            except FileNotFoundError:
                continue  # removed since the listing
            except (OSError, ValueError) as e:
                index.damaged[str(path)] = (path, f"not readable JSON: {getattr(e, 'strerror', None) or e}")
                continue
            reference = value.get("reference") if isinstance(value, dict) else None
            try:
                record = _record(None, value)
                if self.path_of(record.reference) != path:
                    raise ValueError(f'filed as {name}, which is not the name of "{record.reference}"')
                index.records[record.reference] = record
            except ValueError as e:
                label = reference if isinstance(reference, str) and self.path_of(reference) == path else str(path)
                index.damaged[label] = (path, str(e))
        self._damaged = {k: why for k, (_, why) in index.damaged.items()}
        return index

    def _upgrade(self) -> None:
        if self.old_index.exists():
            self._split_old_index()

    def _split_old_index(self) -> None:
        """An older minirun's ``images.json``: each entry becomes a record file (damaged ones
        as they were, to be named and pruned as any other); a file that is not JSON at all is
        kept aside as ``images.json.damaged``, so that nothing is lost, and said once."""
        with file_lock(self.lock_path):
            if not self.old_index.exists():
                return  # another command did it
            try:
                doc = json.loads(self.old_index.read_bytes())
                entries = doc["images"]
                if not isinstance(entries, dict):
                    raise TypeError("not an object")
            except (ValueError, KeyError, TypeError) as e:
                aside = self.old_index.with_name("images.json.damaged")
                os.replace(self.old_index, aside)
                notices.say(f"the image index {self.old_index} was damaged ({e}); kept as {aside}, "
                            "its images are pulled again when used")
                return
            except OSError as e:
                raise store_error("reading", self.old_index, e) from None
            self.records_dir.mkdir(exist_ok=True)
            for key, value in entries.items():
                atomic_write(self.path_of(key), json.dumps(value).encode())
            self.old_index.unlink()

    def damaged(self) -> dict[str, str]:
        """The records the last read found damaged: reference (or file) -> what is wrong."""
        return dict(self._damaged)

    def records(self) -> list[ImageRecord]:
        self._upgrade()
        with file_lock(self.lock_path, shared=True):
            return list(self._load().records.values())

    def get(self, reference: str) -> ImageRecord | None:
        """The record of ``reference``: one file read (None: none, or damaged)."""
        self._upgrade()
        try:
            return _record(reference, json.loads(self.path_of(reference).read_bytes()))
        except (OSError, ValueError):
            return None  # none, or damaged (named by records())

    def put(self, record: ImageRecord) -> None:
        """File ``record`` under its reference. An image has an ID entry only while no name
        refers to it (as Docker's <none>): a name given to it replaces that entry, and an ID
        entry for an image that has a name is not added. A damaged record of the same
        reference is replaced (a pull repairs it)."""
        self._upgrade()
        with file_lock(self.lock_path):
            index = self._load()
            named = [r for r in index.records.values() if r.config == record.config and not r.untagged]
            if record.untagged and named:
                return
            try:
                self.records_dir.mkdir(exist_ok=True)
            except OSError as e:
                raise store_error("creating", self.records_dir, e) from None
            atomic_write(self.path_of(record.reference), json.dumps(record._asdict(), indent=1).encode())
            if record.config in index.records and not record.untagged:
                _unlink(self.path_of(record.config))

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
        self._upgrade()
        busy = f"the pulls, loads, saves and runs unpacking in {self.root} to finish"
        with file_lock(self.gc_lock_path, what=busy), \
                file_lock(self.lock_path):
            index = self._load()
            known = set(index.records) | set(index.damaged)
            missing = [r for r in references if r not in known and not self.path_of(r).exists()]
            if missing:
                raise ImageNotKnown(f"removing image {missing[0]}: no such image")
            ids = {index.records[key].config for key in references if key in index.records}
            for key in references:
                index.records.pop(key, None)
                _unlink(index.damaged.pop(key, (self.path_of(key), ""))[0])
            if drop_damaged:
                for path, _ in index.damaged.values():
                    _unlink(path)
                _unlink(self.old_index.with_name("images.json.damaged"))
            keep: set[str] = set()
            for rec in index.records.values():
                keep |= self.blobs_of(rec)
            deleted, freed = [], 0
            # (the image's ID first, then its other blobs, as Docker's "Deleted:" lines go)
            for digest in sorted(self.content.digests() - keep, key=lambda d: (d not in ids, d)):
                freed += self.content.remove(digest)
                deleted.append(digest)
            freed += self._remove_stale_ingests()
            if collect is not None:
                more, more_freed = collect(list(index.records.values()))
                deleted += more
                freed += more_freed
            return list(references), deleted, freed

    def _remove_stale_ingests(self) -> int:
        """Partial downloads and their locks, half-written blobs (nobody holds those while we
        hold the GC lock: every pull holds it shared first), and the work files of a load or save that was killed
        (``load-PID-START``, ``save-PID-START-DIGEST``: removed once that process is gone)."""
        freed = 0
        for p in self.content.ingest_dir.iterdir():
            kind, _, rest = p.name.partition("-")
            stale = p.suffix in (".partial", ".lock") or (
                kind in ("load", "save") and owner_gone(rest if kind == "load" else "-".join(rest.split("-")[:2])))
            if stale:
                freed += _remove_tree(p)
        # a blob written whole in memory (a manifest, a config) goes through ``.HEX.PID.tmp``,
        # left behind when its writer was killed; every writer holds the GC lock shared
        freed += sum(_remove_tree(p) for p in self.content.blob_dir.iterdir()
                     if p.name.startswith(".") and p.name.endswith(".tmp"))
        return freed


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        raise store_error("removing", path, e) from None


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
