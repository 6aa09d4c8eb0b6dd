"""Issue 25, defects 8-10 for save and load: full disks, a read-only store, a killed
``save -o``, ``save`` racing ``rmi``, and the exit codes (Docker 20.10 answers 1, with one
line, for each of these)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

from minirun.oci import Platform
from tests.integration.conftest import Minirun, fill_disk

OFFLINE = {"MINIRUN_REGISTRY_MIRROR": "http://127.0.0.1:9", "MINIRUN_NETWORK": "none"}  # nothing listens on 9


def big_archive(path: Path, layers: int, size: int, tag: str = "big:latest") -> Path:
    """A docker-archive of ``layers`` uncompressed layers of ``size`` random bytes each."""
    def tar_of(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    blobs = {f"layer{n}.tar": tar_of({f"data{n}": os.urandom(size)}) for n in range(layers)}
    host = Platform.host()
    config = json.dumps({"architecture": host.architecture, "os": "linux", "config": {"Cmd": ["/data0"]},
                         "rootfs": {"type": "layers", "diff_ids": [
                             "sha256:" + hashlib.sha256(b).hexdigest() for b in blobs.values()]}}).encode()
    blobs["config.json"] = config
    blobs["manifest.json"] = json.dumps([{"Config": "config.json", "RepoTags": [tag],
                                          "Layers": [f"layer{n}.tar" for n in range(layers)]}]).encode()
    path.write_bytes(tar_of(blobs))
    return path


def _tmpfs(where: Path, size: str) -> Path:
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    return where


def _one_line(r: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r
    assert "internal error" not in r.stderr and all(p in r.stderr for p in parts), r


def test_save_to_a_full_disk_fails_in_one_line_and_leaves_nothing(mr: Minirun, tmp_path: Path) -> None:
    assert mr("load", "-i", str(big_archive(tmp_path / "big.tar", 1, 2 << 20))).returncode == 0
    out = _tmpfs(tmp_path / "out", "1m")
    try:
        r = mr("save", "-o", str(out / "big.tar"), "big")
        _one_line(r, "saving", str(out / "big.tar"), "No space left on device")
        assert os.listdir(out) == []
        with open(out / "redirected.tar", "wb") as f:  # save > file-on-a-full-disk
            r = subprocess.run(mr.argv("save", "big"), env=mr.env(), stdout=f, stderr=subprocess.PIPE, text=True)
        _one_line(r, "saving", "No space left on device")
        with open("/dev/full", "wb") as f:
            r = subprocess.run(mr.argv("save", "big"), env=mr.env(), stdout=f, stderr=subprocess.PIPE, text=True)
        _one_line(r, "No space left on device")
        r = mr("save", "-o", str(tmp_path / "x.tar"), "nosuch")
        _one_line(r, "No such image: nosuch")
    finally:
        subprocess.run(["umount", "-l", str(out)], check=True)


def test_load_into_a_full_or_read_only_store_says_so(mr: Minirun, tmp_path: Path) -> None:
    archive = big_archive(tmp_path / "big.tar", 2, 4 << 20)
    small = _tmpfs(tmp_path / "small", "16m")
    store = Minirun(small / "store", tmp_path / "docker-config", dict(OFFLINE))
    try:
        assert store("images").returncode == 0  # the store exists
        filler = fill_disk(small, 2 << 20)
        r = store("load", "-i", str(archive))
        _one_line(r, f"loading {archive}", "No space left on device")
        assert "not a complete archive" not in r.stderr, r
        assert os.listdir(small / "store" / "blobs" / "sha256") == [] and os.listdir(small / "store" / "ingest") == []
        layout = tmp_path / "layout"  # the same archive as a directory (load -i DIR)
        layout.mkdir()
        with tarfile.open(archive) as tf:  # (by hand: Debian's 3.11.2 has no extraction filters)
            for member in tf.getmembers():
                data = tf.extractfile(member)
                assert data is not None
                (layout / member.name).write_bytes(data.read())
        r = store("load", "-i", str(layout))
        _one_line(r, f"loading {layout}", "No space left on device")
        assert os.listdir(small / "store" / "blobs" / "sha256") == [] and os.listdir(small / "store" / "ingest") == []
        filler.unlink()
        r = store("load", "-i", str(archive))  # the archive was sound all along
        assert (r.returncode, r.stdout) == (0, "Loaded image: big:latest\n"), r
        assert store("rmi", "big").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(small)], check=True)
        r = store("load", "-i", str(archive))
        _one_line(r, "Read-only file system")
    finally:
        subprocess.run(["umount", "-l", str(small)], check=True)


def test_a_killed_save_leaves_nothing_beside_its_output(mr: Minirun, tmp_path: Path) -> None:
    """Defect 8: ``save -o`` killed part way left ``.x.tar.*.partial`` beside the output,
    which nothing removes. Now the file has no name until it is whole."""
    assert mr("load", "-i", str(big_archive(tmp_path / "big.tar", 2, 32 << 20))).returncode == 0
    out = tmp_path / "out"
    out.mkdir()
    p = subprocess.Popen(mr.argv("save", "-o", str(out / "big.tar"), "big"), env=mr.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    writing = False
    while not writing and p.poll() is None:  # until it has its output open
        assert time.monotonic() < deadline
        for fd in Path(f"/proc/{p.pid}/fd").glob("*"):
            try:
                writing = writing or os.readlink(fd).startswith(str(out))
            except OSError:
                pass
        time.sleep(0.001)
    assert writing and p.poll() is None, "save ended before it was caught writing"
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert os.listdir(out) == []
    assert mr("system", "prune").returncode == 0
    assert os.listdir(mr.root / "ingest") == []


def test_save_holds_what_it_reads_while_rmi_removes_the_image(mr: Minirun, tmp_path: Path) -> None:
    """Defect 9: ``rmi`` during ``save`` pulled the layers away (FileNotFoundError, a
    truncated archive). Now the save holds what it reads; the rmi goes ahead."""
    archive = big_archive(tmp_path / "big.tar", 3, 1 << 20)
    assert mr("load", "-i", str(archive)).returncode == 0
    p = subprocess.Popen(mr.argv("save", "big"), env=mr.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    head = p.stdout.read(64 << 10)  # the save has begun (and waits on the pipe)
    r = mr("rmi", "big", timeout=30)
    assert r.returncode == 0 and "Deleted" in r.stdout, r
    assert mr("system", "prune", timeout=30).returncode == 0
    assert os.listdir(mr.root / "blobs" / "sha256") == []
    whole = head + p.stdout.read()
    assert (p.wait(), p.stderr.read()) == (0, b"")
    (tmp_path / "saved.tar").write_bytes(whole)
    fresh = Minirun(tmp_path / "fresh", mr.docker_config, dict(OFFLINE))
    r = fresh("load", "-i", str(tmp_path / "saved.tar"))
    assert (r.returncode, r.stdout) == (0, "Loaded image: big:latest\n"), r
