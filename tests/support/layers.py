"""Crafted layers (python's tarfile writer) and a comparable listing of a tree."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from minirun.oci import Descriptor, chain_ids
from minirun.snapshots.rootfs import Snapshotter

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR = "application/vnd.oci.image.layer.v1.tar"
MTIME = 1600000000


@dataclass
class E:
    """One tar entry. kind: file dir sym link chr blk fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    target: str = ""
    dev: tuple[int, int] = (0, 0)
    mtime: int = MTIME
    xattrs: dict[str, bytes] = field(default_factory=dict)


_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
          "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}


def tar_bytes(entries: list[E], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _TYPES[e.kind]
            info.mode, info.uid, info.gid, info.mtime = e.mode, e.uid, e.gid, e.mtime
            info.linkname = e.target
            info.devmajor, info.devminor = e.dev
            if e.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                                    for k, v in e.xattrs.items()}
            if e.kind == "file":
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def compress(raw: bytes, media: str) -> bytes:
    if media == GZIP:
        return gzip.compress(raw, mtime=0)
    if media == ZSTD:
        import zstandard
        return zstandard.ZstdCompressor().compress(raw)
    return raw


@dataclass
class Layer:
    blob: Path
    desc: Descriptor
    diff_id: str


def make_layer(directory: Path, entries: list[E] | bytes, media: str = GZIP, fmt: int = tarfile.PAX_FORMAT) -> Layer:
    raw = entries if isinstance(entries, bytes) else tar_bytes(entries, fmt)
    blob = compress(raw, media)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    path = directory / digest[7:]
    directory.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return Layer(path, Descriptor(media, digest, len(blob)), "sha256:" + hashlib.sha256(raw).hexdigest())


def unpack_stack(snap: Snapshotter, layers: list[Layer], limit: int | None = None) -> list[str]:
    chains = chain_ids([layer.diff_id for layer in layers])
    for i, layer in enumerate(layers):
        snap.unpack(chains[i], chains[:i], layer.blob, layer.desc, layer.diff_id, limit)
    return chains


def listing(root: Path, with_dir_times: bool = False) -> dict[str, tuple[object, ...]]:
    """path -> (type, mode, uid, gid, detail, mtime, xattrs, hardlink group).

    detail: content sha256, link target or device numbers. Hardlinked files share a group
    (the first path with that inode); others have None.
    """
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[tuple[int, int], str] = {}
    counts: dict[tuple[int, int], int] = {}
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            paths.append(os.path.join(dirpath, n))
    for p in sorted(paths):
        st = os.lstat(p)
        counts[(st.st_dev, st.st_ino)] = counts.get((st.st_dev, st.st_ino), 0) + 1
    for p in sorted(paths):
        st = os.lstat(p)
        rel = "/" + os.path.relpath(p, root)
        m = st.st_mode
        if stat.S_ISREG(m):
            kind, detail = "file", hashlib.sha256(Path(p).read_bytes()).hexdigest()[:16]
        elif stat.S_ISDIR(m):
            kind, detail = "dir", ""
        elif stat.S_ISLNK(m):
            kind, detail = "sym", os.readlink(p)
        elif stat.S_ISCHR(m):
            kind, detail = "chr", f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
        elif stat.S_ISBLK(m):
            kind, detail = "blk", f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
        elif stat.S_ISFIFO(m):
            kind, detail = "fifo", ""
        else:
            kind, detail = "other", ""
        try:
            names = os.listxattr(p, follow_symlinks=False)
        except OSError:
            names = []
        xattrs = tuple(sorted((k, os.getxattr(p, k, follow_symlinks=False)) for k in names
                              if not k.startswith(("trusted.overlay.", "security.selinux"))))
        key = (st.st_dev, st.st_ino)
        group = None
        if kind != "dir" and counts[key] > 1:
            group = inodes.setdefault(key, rel)
        mtime = st.st_mtime_ns // 10**9 if (kind != "dir" or with_dir_times) else None
        out[rel] = (kind, stat.S_IMODE(m) if kind != "sym" else None, st.st_uid, st.st_gid, detail, mtime,
                    xattrs, group)
    return out
