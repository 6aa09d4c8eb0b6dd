"""Layers to snapshots to a root filesystem, through the overlay mount and the vfs copy alike."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from minirun.content.files import spread_children
from minirun.errors import LayerError
from minirun.runtime.mount import Mount, mount
from minirun.snapshots.rootfs import Snapshotter, mounted, release_container
from tests.support.layers import GZIP, TAR, ZSTD, E, Layer, listing, make_layer, unpack_stack

CAP = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"  # cap_net_bind_service


@pytest.fixture(params=["overlay", "vfs"])
def snap(request: pytest.FixtureRequest, tmp_path: Path) -> Snapshotter:
    return Snapshotter(tmp_path / "store", request.param)


def tree(snap: Snapshotter, chains: list[str], tmp_path: Path, name: str = "c") -> dict[str, tuple[object, ...]]:
    """The container's view: mount what prepare() returns, list it, unmount."""
    mounts = snap.prepare(chains, tmp_path / "containers" / name)
    with mounted(mounts) as root:
        return listing(Path(root))


@pytest.fixture
def blobs(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


def test_every_entry_type(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    long_dir = "d" * 120
    layer = make_layer(blobs, [
        E("etc", "dir", mode=0o755),
        E("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"),
        E("data", "dir", mode=0o750, uid=1000, gid=1000),
        E("data/file", data=b"hello", mode=0o640, uid=1234, gid=5678, mtime=1500000000),
        E("data/suid", data=b"#!", mode=0o4755),
        E("data/sgid-dir", "dir", mode=0o2775, gid=50),
        E("data/sticky", "dir", mode=0o1777),
        E("data/rel", "sym", target="file", mtime=1400000000, uid=7, gid=8),
        E("data/abs", "sym", target="/etc/passwd"),
        E("data/dangling", "sym", target="/nonexistent/x"),
        E("data/hard", "link", target="data/file"),
        E("dev", "dir"),
        E("dev/null", "chr", dev=(1, 3), mode=0o666, mtime=1300000000),
        E("dev/loop0", "blk", dev=(7, 0), mode=0o660, gid=6),
        E("dev/pipe", "fifo", mode=0o600, mtime=1200000000),
        E("data/ping", data=b"ELF", mode=0o755, xattrs={"security.capability": CAP, "user.note": b"kept"}),
        E(f"{long_dir}/{'f' * 120}", data=b"long"),
        E("data/longlink", "sym", target="/" + "t" * 200),
    ])
    t = tree(snap, unpack_stack(snap, [layer]), tmp_path)
    h = "2cf24dba5fb0a30e"  # sha256("hello")[:16]
    assert t["/data"][:4] == ("dir", 0o750, 1000, 1000)
    assert t["/data/file"] == ("file", 0o640, 1234, 5678, h, 1500000000, (), "/data/file")
    assert t["/data/hard"] == ("file", 0o640, 1234, 5678, h, 1500000000, (), "/data/file")
    assert t["/data/suid"][:2] == ("file", 0o4755)
    assert t["/data/sgid-dir"][:4] == ("dir", 0o2775, 0, 50)
    assert t["/data/sticky"][:2] == ("dir", 0o1777)
    assert t["/data/rel"] == ("sym", None, 7, 8, "file", 1400000000, (), None)
    assert t["/data/abs"][4] == "/etc/passwd" and t["/data/dangling"][4] == "/nonexistent/x"
    assert t["/dev/null"] == ("chr", 0o666, 0, 0, "1,3", 1300000000, (), None)
    assert t["/dev/loop0"][:5] == ("blk", 0o660, 0, 6, "7,0")
    assert t["/dev/pipe"] == ("fifo", 0o600, 0, 0, "", 1200000000, (), None)
    assert t["/data/ping"][6] == (("security.capability", CAP), ("user.note", b"kept"))
    assert t["/data/ping"][1] == 0o755
    assert f"/{long_dir}/{'f' * 120}" in t
    assert t["/data/longlink"][4] == "/" + "t" * 200


def test_gnu_long_names_and_all_compressions(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    name = "g" * 150
    layers = [make_layer(blobs, [E(f"{name}-{i}", data=b"x"), E(f"l{i}", "sym", target="t" * 150)], media,
                         fmt=tarfile.GNU_FORMAT)
              for i, media in enumerate((GZIP, ZSTD, TAR))]
    t = tree(snap, unpack_stack(snap, layers), tmp_path)
    for i in range(3):
        assert t[f"/{name}-{i}"][0] == "file" and t[f"/l{i}"][4] == "t" * 150


def test_unknown_media_type_is_refused(snap: Snapshotter, blobs: Path) -> None:
    layer = make_layer(blobs, [E("a")], TAR)
    layer.desc = layer.desc.__class__("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                                      layer.desc.digest, layer.desc.size)
    with pytest.raises(LayerError, match="foreign layer"):
        unpack_stack(snap, [layer])
    layer.desc = layer.desc.__class__("application/x-rar", layer.desc.digest, layer.desc.size)
    with pytest.raises(LayerError, match="unknown layer media type"):
        unpack_stack(snap, [layer])


def test_hardlink_to_a_lower_layer(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    lower = make_layer(blobs, [E("bin", "dir", mode=0o755), E("bin/tool", data=b"tool", mode=0o755)])
    upper = make_layer(blobs, [E("usr", "dir", mode=0o755), E("usr/alias", "link", target="bin/tool")])
    t = tree(snap, unpack_stack(snap, [lower, upper]), tmp_path)
    assert t["/usr/alias"][7] == t["/bin/tool"][7] == "/bin/tool"
    assert t["/usr/alias"][4] == t["/bin/tool"][4]


def base_for_whiteouts(blobs: Path) -> Layer:
    return make_layer(blobs, [
        E("d", "dir", mode=0o755), E("d/x", data=b"x"), E("d/y", data=b"y"),
        E("f", data=b"f"), E("g", data=b"old g"),
        E("o", "dir", mode=0o711, uid=3), E("o/p", data=b"p"), E("o/q", "dir"), E("o/q/deep", data=b"d"),
        E("o2", "dir"), E("o2/lower", data=b"l"),
        E("x", data=b"file"), E("y", "dir"), E("y/child", data=b"c"),
    ])


def test_whiteouts_apply_to_lower_layers_only(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    top = make_layer(blobs, [
        E(".wh.f"),
        E("d/.wh.x"),
        E("o/.wh..wh..opq"), E("o/new", data=b"n"),
        E("g", data=b"new g"), E(".wh.g"),                   # this layer's g survives its whiteout
        E("o2/keep", data=b"k"), E("o2/.wh..wh..opq"),       # and so do its own files in an opaque dir
        E("x", "dir", mode=0o755), E("x/inside", data=b"i"),  # a file replaced by a directory
        E("y", data=b"now a file"),                           # and the reverse
        E(".wh.never-existed"),
    ])
    t = tree(snap, unpack_stack(snap, [base_for_whiteouts(blobs), top]), tmp_path)
    assert "/f" not in t and "/d/x" not in t and "/d/y" in t
    assert sorted(k for k in t if k.startswith("/o/")) == ["/o/new"]
    assert t["/o"][:4] == ("dir", 0o711, 3, 0)  # an opaque directory keeps its metadata
    assert sorted(k for k in t if k.startswith("/o2/")) == ["/o2/keep"]
    assert t["/g"][4] == listing_hash(b"new g")
    assert t["/x"][0] == "dir" and "/x/inside" in t
    assert t["/y"][0] == "file" and "/y/child" not in t
    assert not any(".wh." in k for k in t)


def listing_hash(data: bytes) -> str:
    import hashlib
    return hashlib.sha256(data).hexdigest()[:16]


def test_overlay_snapshots_hold_overlayfs_whiteouts(tmp_path: Path, blobs: Path) -> None:
    snap = Snapshotter(tmp_path / "store", "overlay")
    top = make_layer(blobs, [E(".wh.f"), E("o/.wh..wh..opq"), E("o/new", data=b"n")])
    chains = unpack_stack(snap, [base_for_whiteouts(blobs), top])
    diff = snap.fs(chains[1])
    st = os.lstat(diff / "f")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(diff / "o", "trusted.overlay.opaque") == b"y"


def test_diff_id_mismatch_leaves_no_snapshot(snap: Snapshotter, blobs: Path) -> None:
    layer = make_layer(blobs, [E("a", data=b"a")])
    layer.diff_id = "sha256:" + "0" * 64
    with pytest.raises(LayerError, match="config says DiffID"):
        unpack_stack(snap, [layer])
    assert snap.chains() == set()
    assert not [p for p in snap.tmp.iterdir() if p.is_dir()]


def test_decompression_bomb_stops_early(snap: Snapshotter, blobs: Path) -> None:
    bomb = make_layer(blobs, [E("zeros", data=bytes(64 << 20))])
    assert bomb.desc.size < (1 << 20)
    with pytest.raises(LayerError, match="decompression bomb"):
        unpack_stack(snap, [bomb], limit=8 << 20)
    assert snap.chains() == set()


def test_many_layers_still_mount(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    """150 lower directories: with absolute paths the mount options would pass a page."""
    layers = [make_layer(blobs, [E(f"f{i}", data=str(i).encode())]) for i in range(150)]
    chains = unpack_stack(snap, layers)
    if snap.driver == "overlay":
        assert len(",".join(snap.prepare(chains, tmp_path / "probe")[0].options)) < 4096
        assert 150 * len(str(snap.fs(chains[0]))) > 4096
    t = tree(snap, chains, tmp_path)
    assert {f"/f{i}" for i in range(150)} <= set(t)


def test_shared_layers_are_unpacked_once(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    base = make_layer(blobs, [E("base", data=b"b")])
    a, b = make_layer(blobs, [E("a", data=b"a")]), make_layer(blobs, [E("b", data=b"b")])
    ca = unpack_stack(snap, [base, a])
    inode = os.stat(snap.fs(ca[0]) / "base").st_ino
    cb = unpack_stack(snap, [base, b])
    assert ca[0] == cb[0] and os.stat(snap.fs(cb[0]) / "base").st_ino == inode
    assert len(snap.chains()) == 3


# -- nothing outside the root --------------------------------------------------

@pytest.fixture
def host(tmp_path: Path) -> Iterator[Path]:
    """Host marker files a malicious layer might try to reach; checked unchanged after."""
    d = tmp_path / "host"
    d.mkdir()
    (d / "marker").write_text("untouched")
    (d / "sub").mkdir()
    (d / "sub" / "marker2").write_text("untouched")
    before = listing(d, with_dir_times=True)
    yield d
    assert listing(d, with_dir_times=True) == before
    assert (d / "marker").read_text() == "untouched"


def malicious(host: Path) -> list[tuple[str, list[E], str]]:
    """(case, entries, expected): "error: <regex>", or "inside: <path>" that must then exist
    inside the container's root, where the in-root resolution put it."""
    h = str(host)
    up = "../../../../../../"
    return [
        ("dotdot name", [E(up + h.lstrip("/") + "/pwned", data=b"x")], "error: points outside the root"),
        ("dotdot in the middle", [E("a/../../pwned", data=b"x")], "error: points outside the root"),
        ("parent symlink to host, same layer", [E("s", "sym", target=h), E("s/pwned", data=b"x")],
         f"inside: {h}/pwned"),
        ("parent symlink relative escape", [E("r", "sym", target=up + up + h), E("r/pwned2", data=b"x")],
         f"inside: {h}/pwned2"),
        ("symlink then overwrite through it", [E("m", "sym", target=h + "/marker"), E("m", data=b"over")],
         "inside: /m"),
        ("hardlink out by dotdot", [E("hl", "link", target=up + h.lstrip("/") + "/marker")],
         "error: points outside the root"),
        ("hardlink through a symlinked parent", [E("s2", "sym", target=h), E("hl2", "link", target="s2/marker")],
         "error: hardlink target 's2/marker' does not exist"),
        ("whiteout through a symlinked parent", [E("s3", "sym", target=h), E("s3/.wh.marker")], "inside: /s3"),
        ("opaque through a symlinked parent", [E("s4", "sym", target=h + "/sub"), E("s4/.wh..wh..opq")],
         f"inside: {h}/sub"),
        ("whiteout of dotdot", [E(".wh...")], "error: names no file"),
        ("symlink loop", [E("l1", "sym", target="l2"), E("l2", "sym", target="l1"), E("l1/x", data=b"x")],
         "error: too many levels of symbolic links"),
        ("absolute name", [E(h + "/abs-pwned", data=b"x")], f"inside: {h}/abs-pwned"),
        ("device over host path", [E("s5", "sym", target=h), E("s5/dev", "chr", dev=(1, 3))], f"inside: {h}/dev"),
    ]


def test_malicious_layers_change_nothing_outside(snap: Snapshotter, blobs: Path, tmp_path: Path,
                                                 host: Path) -> None:
    for i, (what, entries, expected) in enumerate(malicious(host)):
        # A lower layer with a symlink to the host, too: parents from lower layers count.
        lower = make_layer(blobs, [E("hostlink", "sym", target=str(host)), E("sub", "dir")])
        top = make_layer(blobs, [*entries, E("hostlink/from-lower", data=b"x")])
        kind, _, detail = expected.partition(": ")
        if kind == "error":
            with pytest.raises(LayerError, match=detail):
                unpack_stack(snap, [lower, top])
            continue
        t = tree(snap, unpack_stack(snap, [lower, top]), tmp_path, name=f"c{i}")
        assert detail in t, what
        assert f"{host}/from-lower" in t, what  # followed the lower layer's symlink, inside


def test_escapes_are_errors_naming_the_entry(snap: Snapshotter, blobs: Path) -> None:
    layer = make_layer(blobs, [E("../evil", data=b"x")])
    with pytest.raises(LayerError, match=r"entry '\.\./evil': .*outside the root"):
        unpack_stack(snap, [layer])
    loop = make_layer(blobs, [E("l1", "sym", target="l2"), E("l2", "sym", target="l1"), E("l1/x", data=b"x")])
    with pytest.raises(LayerError, match="too many levels of symbolic links"):
        unpack_stack(snap, [loop])


def test_symlinked_directory_from_lower_layer_is_followed_inside(snap: Snapshotter, blobs: Path,
                                                                 tmp_path: Path) -> None:
    """usrmerge: /bin -> usr/bin in one layer; a later layer's bin/tool lands in /usr/bin."""
    lower = make_layer(blobs, [E("usr", "dir", mode=0o755), E("usr/bin", "dir", mode=0o755),
                               E("bin", "sym", target="usr/bin")])
    upper = make_layer(blobs, [E("bin/tool", data=b"t", mode=0o755)])
    t = tree(snap, unpack_stack(snap, [lower, upper]), tmp_path)
    assert t["/bin"][0] == "sym" and t["/usr/bin/tool"][0] == "file"


def test_prepare_returns_mounts_as_data(tmp_path: Path, blobs: Path) -> None:
    snap = Snapshotter(tmp_path / "store", "overlay")
    chains = unpack_stack(snap, [make_layer(blobs, [E("a")]), make_layer(blobs, [E("b")])])
    [m] = snap.prepare(chains, tmp_path / "ctr")
    assert m == Mount("overlay", "overlay", str(tmp_path / "ctr" / "rootfs"),
                      (f"lowerdir={snap.short(chains[1])}:{snap.short(chains[0])}",
                       f"upperdir={tmp_path / 'ctr' / 'upper'}", f"workdir={tmp_path / 'ctr' / 'work'}"),
                      cwd=str(snap.dir))


def test_directory_replaced_by_a_file_in_the_same_layer(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    """Found by the property test: the directory's deferred mtime must not trip over the file."""
    layer = make_layer(blobs, [E("d/e", "dir"), E("a"), E("a", data=b"again"), E("d", data=b"now a file")])
    t = tree(snap, unpack_stack(snap, [layer]), tmp_path)
    assert t["/d"][0] == "file" and "/d/e" not in t and t["/a"][4] == listing_hash(b"again")


def test_release_removes_the_containers_layer_only(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    chains = unpack_stack(snap, [make_layer(blobs, [E("a", data=b"a")])])
    ctr = tmp_path / "containers" / "x"
    mounts = snap.prepare(chains, ctr)
    for m in mounts:
        mount(m)
    (ctr / "rootfs" / "written-by-container").write_text("x")
    (ctr / "rootfs" / "a").unlink()
    release_container(ctr)
    assert not ctr.exists()
    assert (snap.fs(chains[0]) / "a").read_bytes() == b"a"  # the image's layer is untouched
    assert not (snap.fs(chains[0]) / "written-by-container").exists()


def test_store_on_overlayfs_falls_back_to_vfs(tmp_path: Path, blobs: Path, on_overlayfs: Path) -> None:
    """Like Docker: overlay cannot use an upper directory on overlayfs, so vfs is chosen."""
    from minirun.snapshots.rootfs import choose_driver
    store = on_overlayfs / "store"
    assert choose_driver(tmp_path / "store-elsewhere", None) == "overlay"
    assert choose_driver(store, None) == "vfs"
    assert choose_driver(store, "overlay") == "overlay"  # forced, as --storage-driver does
    snap = Snapshotter(store, "vfs")
    chains = unpack_stack(snap, [base_for_whiteouts(blobs), make_layer(blobs, [E(".wh.f")])])
    t = tree(snap, chains, tmp_path)
    assert "/f" not in t and "/d/x" in t


def test_the_overlay_probe_runs_once_per_store_filesystem(tmp_path: Path) -> None:
    """Its verdict is kept in snapshots/driver with the filesystem's device number."""
    from minirun.snapshots.rootfs import choose_driver
    store = tmp_path / "store"
    assert choose_driver(store, None) == "overlay"
    verdict = store / "snapshots" / "driver"
    device = str((store / "snapshots").stat().st_dev)
    assert verdict.read_text() == f"{device} overlay"
    verdict.write_text(f"{device} vfs")
    assert choose_driver(store, None) == "vfs"  # kept: no probe (which would say overlay)
    verdict.write_text("12345 vfs")
    assert choose_driver(store, None) == "overlay"  # another filesystem: probed again
    verdict.write_text("garbage")
    assert choose_driver(store, None) == "overlay" and verdict.read_text() == f"{device} overlay"
    assert [p.name for p in (store / "snapshots").iterdir()] == ["driver"]  # no probe left behind


def test_link_to_a_lower_file_keeps_its_other_names_together(snap: Snapshotter, blobs: Path,
                                                             tmp_path: Path) -> None:
    """Found by the property test: overlayfs copies `a` up to link it, splitting it from `d`."""
    lower = make_layer(blobs, [E("a", data=b"x"), E("d", "link", target="a")])
    upper = make_layer(blobs, [E("b", "link", target="a")])
    t = tree(snap, unpack_stack(snap, [lower, upper]), tmp_path)
    assert t["/a"][7] == t["/b"][7] == t["/d"][7] == "/a"  # one inode, three names


def _fs_type(path: Path) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True,
                          check=True).stdout.strip()


def _lsattr(path: Path) -> str:
    return subprocess.run(["lsattr", "-d", str(path)], capture_output=True, text=True,
                          check=True).stdout.split()[0]


def test_layers_are_unpacked_under_a_top_directory(snap: Snapshotter, blobs: Path, tmp_path: Path) -> None:
    """Where a layer is made is marked chattr +T (lsattr judges), so that ext4 places each new
    snapshot in a block group of its own, away from the inodes a removal just freed (which a
    journal-less ext4 scans past at every create); on a filesystem without the flag, nothing."""
    assert _fs_type(tmp_path) == "ext2/ext3"  # the tests' store is on ext4, as on the VMs
    chains = unpack_stack(snap, [make_layer(blobs, [E("a", data=b"a")])])
    assert "T" in _lsattr(snap.tmp)
    assert snap.fs(unpack_stack(snap, [make_layer(blobs, [E("b", data=b"b")])])[0]).joinpath("b").read_bytes() == b"b"
    # vfs copies the image's tree for each container: that copy too (overlay copies nothing)
    assert tree(snap, chains, tmp_path)["/a"][0] == "file"
    assert ("T" in _lsattr(tmp_path / "containers" / "c")) == (snap.driver == "vfs")


def test_the_top_directory_flag_where_a_filesystem_has_none(tmp_path: Path) -> None:
    shm = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        assert _fs_type(shm) == "tmpfs"
        assert spread_children(shm) is False  # refused, said so, nothing raised
        assert spread_children(tmp_path / "missing") is False
        (tmp_path / "top").mkdir()
        assert spread_children(tmp_path / "top") is True and "T" in _lsattr(tmp_path / "top")
        assert spread_children(tmp_path / "top") is True  # already: left as it is
        os.symlink(tmp_path / "top", tmp_path / "link")
        assert spread_children(tmp_path / "link") is False  # a symlink is never followed
    finally:
        shutil.rmtree(shm)
