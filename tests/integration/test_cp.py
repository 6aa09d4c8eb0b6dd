"""Issue 26, cp: both ways, with a running or a stopped container, tar streams (-), -a, and
a container whose symlinks point out (absolute to a host directory, ``..`` past its root, to
/) without cp ever reading or writing the host's files through them."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

from tests.integration.conftest import Minirun


def _ls_n(mr: Minirun, name: str, path: str) -> list[str]:
    """uid and gid of ``path`` inside the container (busybox ls -n)."""
    return mr("exec", name, "ls", "-nd", path).stdout.split()[2:4]


def test_cp_both_ways_with_a_running_container(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("run", "-d", "--name", "c", "busybox", "sleep", "60").returncode == 0
    try:
        src = tmp_path / "host.txt"
        src.write_text("from the host\n")
        os.chown(src, 1234, 1234)
        assert mr("cp", str(src), "c:/tmp/").returncode == 0
        assert mr("exec", "c", "cat", "/tmp/host.txt").stdout == "from the host\n"
        assert _ls_n(mr, "c", "/tmp/host.txt") == ["0", "0"]  # the container's root, as Docker's
        assert mr("cp", "-a", str(src), "c:/tmp/kept.txt").returncode == 0  # -a: its owner; a new name
        assert _ls_n(mr, "c", "/tmp/kept.txt") == ["1234", "1234"]
        assert mr("exec", "c", "sh", "-c", "mkdir -p /d/e && echo in > /d/e/f && ln -s /etc /d/link").returncode == 0
        out = tmp_path / "copied"
        r = mr("cp", "c:/d", str(out))  # a new name: the directory becomes it
        assert r.returncode == 0, r
        assert (out / "e" / "f").read_text() == "in\n" and os.readlink(out / "link") == "/etc"
        existing = tmp_path / "existing"
        existing.mkdir()
        assert mr("cp", "c:/d/e/f", str(existing)).returncode == 0 and (existing / "f").read_text() == "in\n"
        assert (existing / "f").stat().st_uid == os.getuid()
        raw = subprocess.run(mr.argv("cp", "c:/d", "-"), env=mr.env(), capture_output=True)
        assert raw.returncode == 0, raw.stderr
        with tarfile.open(fileobj=io.BytesIO(raw.stdout)) as tf:
            assert sorted(tf.getnames()) == ["d", "d/e", "d/e/f", "d/link"]
        stream = tmp_path / "stream"
        stream.mkdir()
        (stream / "s.txt").write_text("streamed\n")
        tar = subprocess.run(["tar", "-c", "-C", str(stream), "."], capture_output=True, check=True).stdout
        assert mr("cp", "-", "c:/tmp", input=tar).returncode == 0
        assert mr("exec", "c", "cat", "/tmp/s.txt").stdout == "streamed\n"
        r = mr("cp", "c:/nosuch", str(tmp_path / "x"))
        assert r.returncode == 1 and "Could not find the file /nosuch in container c" in r.stderr, r
    finally:
        assert mr("rm", "-f", "c").returncode == 0
    r = mr("cp", "nosuch:/x", str(tmp_path))
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr and r.stderr.count("\n") == 1, r


def test_cp_with_a_stopped_container(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("run", "--name", "s", "busybox", "sh", "-c", "echo made > /made.txt").returncode == 0
    assert mr("cp", "s:/made.txt", str(tmp_path / "got.txt")).returncode == 0
    assert (tmp_path / "got.txt").read_text() == "made\n"
    (tmp_path / "put.txt").write_text("put while stopped\n")
    assert mr("cp", str(tmp_path / "put.txt"), "s:/").returncode == 0
    assert mr("cp", "s:/put.txt", str(tmp_path / "back.txt")).returncode == 0
    assert (tmp_path / "back.txt").read_text() == "put while stopped\n"
    r = mr("cp", str(tmp_path / "put.txt"), "s:/missing/dir/")
    assert r.returncode == 1 and "no such directory" in r.stderr and r.stderr.count("\n") == 1, r
    assert mr("rm", "s").returncode == 0
    # A stopped container's volumes and binds are where it would have them (a database's dump).
    shared = tmp_path / "shared"
    shared.mkdir()
    assert mr("run", "--name", "db", "-v", "dbdata:/data", "-v", f"{shared}:/ro:ro", "busybox",
              "sh", "-c", "echo row > /data/table").returncode == 0
    assert mr("cp", "db:/data/table", str(tmp_path / "dump")).returncode == 0
    assert (tmp_path / "dump").read_text() == "row\n"
    assert mr("cp", str(tmp_path / "put.txt"), "db:/data/").returncode == 0
    assert (mr.root / "volumes" / "dbdata" / "_data" / "put.txt").read_text() == "put while stopped\n"
    r = mr("cp", str(tmp_path / "put.txt"), "db:/ro/")
    assert r.returncode == 1 and "Read-only file system" in r.stderr, r
    assert os.listdir(shared) == []
    assert mr("rm", "db").returncode == 0 and mr("volume", "rm", "dbdata").returncode == 0


def test_cp_never_follows_the_containers_links_to_the_host(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    victim = tmp_path / "host-victim"
    victim.mkdir()
    (victim / "secret").write_text("host only\n")
    script = (f"ln -s {victim} /abs; ln -s ../../../../../..{victim} /up; ln -s / /rootlink; "
              f"mkdir -p {victim}; echo decoy > {victim}/secret")  # the container's own path of that name
    assert mr("run", "-d", "--name", "evil", "busybox", "sh", "-c", script + "; sleep 60").returncode == 0
    try:
        import time
        time.sleep(0.5)
        for link in ("abs", "up"):
            out = tmp_path / f"out-{link}"
            assert mr("cp", f"evil:/{link}/secret", str(out)).returncode == 0
            assert out.read_text() == "decoy\n"  # the container's file, never the host's
        (tmp_path / "payload").write_text("payload\n")
        for target in ("evil:/abs/", "evil:/up/", "evil:/rootlink/"):
            assert mr("cp", str(tmp_path / "payload"), target).returncode == 0
        assert sorted(os.listdir(victim)) == ["secret"] and (victim / "secret").read_text() == "host only\n"
        assert not Path("/payload").exists()
        assert mr("exec", "evil", "cat", f"{victim}/payload", "/payload").stdout == "payload\npayload\n"
    finally:
        assert mr("rm", "-f", "evil").returncode == 0
