"""save and load (issue 15, first part), with skopeo (Debian's) as the neutral judge."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

from tests.integration.conftest import Env, Minirun

OFFLINE = {"MINIRUN_REGISTRY_MIRROR": "http://127.0.0.1:9", "MINIRUN_NETWORK": "none"}  # nothing listens on 9


def _skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, check=True).stdout


def test_save_is_read_by_skopeo_and_loads_back_with_its_id(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    image_id = mr("images", "-q").stdout.strip()
    out = tmp_path / "bb.tar"
    r = mr("save", "-o", str(out), "busybox")
    assert r.returncode == 0 and r.stdout == "", r
    config = json.loads(_skopeo("inspect", "--raw", "--config", f"docker-archive:{out}"))
    full_id = mr("inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
    assert full_id.startswith(f"sha256:{image_id}")
    assert config == json.loads((mr.root / "blobs" / "sha256" / full_id[7:]).read_bytes())
    assert json.loads(_skopeo("inspect", f"oci-archive:{out}"))["Layers"]  # the same file, as OCI too
    other = Minirun(tmp_path / "other", mr.docker_config, dict(OFFLINE))
    pipeline = (f"env MINIRUN_ROOT={mr.root} {' '.join(mr.argv('save', 'busybox'))} | gzip | "
                f"env MINIRUN_ROOT={other.root} {' '.join(other.argv('load'))}")
    r = subprocess.run(["bash", "-c", pipeline], env=other.env(), capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, "Loaded image: busybox:latest\n"), r
    assert other("images", "-q").stdout.strip() == image_id  # the image ID survives the round trip
    r = other("run", "--rm", "--pull", "never", "busybox", "echo", "from an archive")
    assert (r.returncode, r.stdout) == (0, "from an archive\n"), r


def test_skopeo_archives_load_and_run_with_no_registry(env: Env, tmp_path: Path) -> None:
    minirun = Minirun(tmp_path / "store", tmp_path / "docker-config", dict(OFFLINE))
    src = f"docker://{env.plain.host}/library/busybox:latest"
    d, o = tmp_path / "d.tar", tmp_path / "o.tar"
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", src, f"docker-archive:{d}:busybox:one"],
                   check=True)
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", src, f"oci-archive:{o}:docker.io/library/bb:two"],
                   check=True)
    r = minirun("load", "-i", str(d))
    assert (r.returncode, r.stdout) == (0, "Loaded image: busybox:one\n"), r
    with open(o, "rb") as f:
        r = subprocess.run(minirun.argv("load"), stdin=f, env=minirun.env(), capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (0, "Loaded image: bb:two\n"), r
    layout = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", src, f"oci:{layout}:docker.io/library/bb:dir"],
                   check=True)
    before = sorted(p.name for p in (layout / "blobs" / "sha256").iterdir())
    r = minirun("load", "-i", str(layout))
    assert (r.returncode, r.stdout) == (0, "Loaded image: bb:dir\n"), r
    assert sorted(p.name for p in (layout / "blobs" / "sha256").iterdir()) == before  # read, not moved
    for name in ("busybox:one", "bb:two", "bb:dir"):
        r = minirun("run", "--rm", "--pull", "never", name, "echo", name)
        assert (r.returncode, r.stdout) == (0, f"{name}\n"), r


def test_an_archive_without_a_name_loads_by_id(env: Env, tmp_path: Path) -> None:
    src = f"docker://{env.plain.host}/library/busybox:latest"
    nameless, named = tmp_path / "nameless.tar", tmp_path / "named.tar"
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", src, f"docker-archive:{nameless}"], check=True)
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", src, f"docker-archive:{named}:bb:named"],
                   check=True)
    config = json.loads(_skopeo("inspect", "--raw", "--config", f"docker-archive:{nameless}"))
    image_id = json.loads(_skopeo("inspect", "--raw", f"docker-archive:{nameless}"))["config"]["digest"]
    minirun = Minirun(tmp_path / "store", tmp_path / "docker-config", dict(OFFLINE))
    r = minirun("load", "-i", str(nameless))
    assert (r.returncode, r.stdout) == (0, f"Loaded image ID: {image_id}\n"), r
    rows = minirun("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}").stdout.splitlines()
    assert rows == [f"<none> <none> {image_id[7:19]}"], rows
    r = minirun("run", "--rm", image_id[7:19], "echo", "by id")  # never pulled: nothing listens
    assert (r.returncode, r.stdout) == (0, "by id\n"), r
    assert minirun("inspect", "-f", "{{.Id}} {{.RepoTags}}", image_id).stdout.strip() == f"{image_id} []"
    again = tmp_path / "again.tar"
    assert minirun("save", "-o", str(again), image_id[7:]).returncode == 0
    assert json.loads(_skopeo("inspect", "--raw", "--config", f"docker-archive:{again}")) == config
    with tarfile.open(again) as tf:
        member = tf.extractfile("manifest.json")
        assert member is not None and json.load(member)[0]["RepoTags"] is None
    r = minirun("load", "-i", str(named))  # a name given to the image replaces its ID entry
    assert (r.returncode, r.stdout) == (0, "Loaded image: bb:named\n"), r
    rows = minirun("images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}").stdout.splitlines()
    assert rows == [f"bb named {image_id[7:19]}"], rows
    assert minirun("rmi", "bb:named").returncode == 0
    assert minirun("load", "-q", "-i", str(again)).returncode == 0
    r = minirun("rmi", image_id[7:19])
    assert r.returncode == 0 and r.stdout.startswith("Deleted: ") and "Untagged" not in r.stdout, r
    assert minirun("images", "-q").stdout == "" and os.listdir(minirun.root / "blobs" / "sha256") == []


def test_corrupt_and_truncated_archives_leave_nothing(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    good = tmp_path / "good.tar"
    assert mr("save", "-o", str(good), "busybox").returncode == 0
    data = good.read_bytes()
    fresh = Minirun(tmp_path / "fresh", mr.docker_config, dict(OFFLINE))
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0xFF  # inside the layer: its digest no longer matches
    cases = {"truncated": data[:len(data) // 2], "corrupt": bytes(flipped), "not a tar": b"hello" * 1000}
    for what, blob in cases.items():
        bad = tmp_path / f"{what}.tar"
        bad.write_bytes(blob)
        r = fresh("load", "-i", str(bad))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith(f"minirun: loading {bad}: "), r
        blobs = fresh.root / "blobs" / "sha256"
        assert not blobs.exists() or os.listdir(blobs) == [], what
        assert not (fresh.root / "ingest").exists() or os.listdir(fresh.root / "ingest") == [], what
        assert "busybox" not in fresh("images").stdout, what
    r = mr("save", "-o", str(tmp_path / "x.tar"), "nosuch")
    assert r.returncode != 0 and "No such image: nosuch" in r.stderr and not (tmp_path / "x.tar").exists()


def test_prune_removes_what_a_killed_load_or_save_left(mr: Minirun, tmp_path: Path) -> None:
    """Issue 25, defect 8: a load or save killed part way left its work files in ingest/
    (tens of MB) that system prune never removed. Now they carry their owner (PID and start
    time) and prune removes those whose owner is gone, never a live one's."""
    import signal
    import time
    assert mr("pull", "-q", "busybox").returncode == 0
    archive = tmp_path / "busybox.tar"
    assert mr("save", "-o", str(archive), "busybox").returncode == 0
    ingest = mr.root / "ingest"
    gone = subprocess.Popen(["true"])
    gone.wait()  # its PID names nobody now
    (ingest / f"load-{gone.pid}-4242").mkdir()
    (ingest / f"load-{gone.pid}-4242" / "layer").write_bytes(b"x" * 1_000_000)
    (ingest / f"save-{gone.pid}-4242-{'a' * 64}").write_bytes(b"y" * 100_000)
    mine = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    live = ingest / f"load-{os.getpid()}-{mine}"  # a load still at work (this process stands for it)
    live.mkdir()
    # and a real load, killed once its work directory exists
    p = subprocess.Popen(mr.argv("load", "-i", str(archive)), env=mr.env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not any(d.name.startswith(f"load-{p.pid}") for d in ingest.iterdir()) and p.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    r = mr("system", "prune")
    assert r.returncode == 0, r
    left = sorted(d.name for d in ingest.iterdir())
    assert left == [live.name], left
    assert "Total reclaimed space: 1." in r.stdout, r.stdout  # the 1.1 MB of the two left behind, at least
    live.rmdir()
