"""State that survives kills and races, and answers that stay true (issue 10), as root."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.integration.conftest import Env, Minirun, verify_store
from tests.support.faultproxy import FaultProxy


def test_prune_waits_for_a_run_that_is_unpacking(mr: Minirun) -> None:
    """Unpacking and GC exclude each other: a prune during a run's unpack never takes its work
    away, and what the run unpacked is complete."""
    assert mr("pull", "-q", "many-files").returncode == 0  # overlay snapshots; run below makes vfs ones
    count = "ls /many | wc -l"
    p = subprocess.Popen(mr.argv("--storage-driver", "vfs", "run", "--rm", "many-files", "sh", "-c", count),
                         env=mr.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    work = mr.root / "snapshots" / "vfs" / "tmp"
    deadline = time.monotonic() + 60
    while not (work.is_dir() and any(d.is_dir() for d in work.iterdir())):
        assert time.monotonic() < deadline and p.poll() is None, "the run never started unpacking"
        time.sleep(0.005)
    prune = mr("system", "prune", timeout=120)  # now, in the middle of the unpack
    out, errors = p.communicate(timeout=120)
    assert (p.returncode, out) == (0, "20000\n"), errors
    assert prune.returncode == 0, prune.stderr
    for _ in range(2):  # and again, from what was kept
        r = mr("--storage-driver", "vfs", "run", "--rm", "many-files", "sh", "-c", count)
        assert (r.returncode, r.stdout) == (0, "20000\n"), r.stderr


def test_a_download_killed_at_full_size_is_kept_without_asking_again(env: Env, minirun: Minirun,
                                                                     proxy: FaultProxy) -> None:
    """A kill after the last byte, before the rename: the next pull verifies and keeps it."""
    blob = env.images["big"].layer_digests[0]
    data = env.images["big"].blobs[blob]
    assert minirun("pull", "-q", f"{proxy.host}/library/hello-world").returncode == 0  # makes the store
    partial = minirun.root / "ingest" / f"{blob.split(':')[1]}.partial"
    partial.write_bytes(data)
    r = minirun("pull", "-q", f"{proxy.host}/library/big")
    assert r.returncode == 0, r.stderr
    assert proxy.requests("GET", f"/blobs/{blob}") == [] and not partial.exists()
    assert blob in verify_store(minirun.root)
    # Full size but damaged: fetched again, once.
    assert minirun("rmi", f"{proxy.host}/library/big").returncode == 0
    partial.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    r = minirun("pull", "-q", f"{proxy.host}/library/big")
    assert r.returncode == 0, r.stderr
    assert len(proxy.requests("GET", f"/blobs/{blob}")) == 1 and blob in verify_store(minirun.root)


def _sh(mr: Minirun, line: str) -> subprocess.CompletedProcess[str]:
    """``line`` in a shell, with MR standing for minirun's command."""
    return subprocess.run(["sh", "-c", line.replace("MR", " ".join(mr.argv()))], env=mr.env(),
                          capture_output=True, text=True, timeout=120)


def test_closed_or_full_stdout_and_stderr(mr: Minirun) -> None:
    """The program's exit code always wins; minirun's own output failing is one line."""
    assert mr("pull", "-q", "busybox").returncode == 0
    for redirect in (">&-", "2>&-", "<&-"):
        r = _sh(mr, f"MR run --rm busybox sh -c 'echo out; echo err >&2; exit 3' {redirect}")
        assert r.returncode == 3 and "Traceback" not in r.stderr and "Bad file descriptor" not in r.stderr, r
    r = _sh(mr, "MR pull busybox >&-")
    assert (r.returncode, r.stderr) == (0, "")
    for args in ("images", "ps -a", "pull busybox"):
        r = _sh(mr, f"MR {args} > /dev/full")
        assert (r.returncode, r.stderr) == (1, "minirun: writing to stdout: No space left on device\n"), (args, r)
    r = _sh(mr, "MR run --rm busybox sh -c 'exit 5' 2> /dev/full")
    assert r.returncode == 5


def test_a_relative_store_is_made_absolute(mr: Minirun, tmp_path: Path) -> None:
    r = subprocess.run(mr.argv("run", "--rm", "busybox", "echo", "ran"), cwd=tmp_path,
                       env=mr.env(MINIRUN_ROOT="relative-store"), capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, "ran\n"), r.stderr
    assert (tmp_path / "relative-store" / "containers").is_dir() and os.listdir(tmp_path / "relative-store")


def _take_pid(pid: int) -> subprocess.Popen[bytes]:
    """A new process with exactly ``pid`` (through ns_last_pid; retried while others race)."""
    for _ in range(200):
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        p = subprocess.Popen(["sleep", "120"])
        if p.pid == pid:
            return p
        p.kill()
        p.wait()
    raise AssertionError(f"could not take PID {pid}")


def test_a_reused_pid_is_never_taken_for_the_container(mr: Minirun) -> None:
    """minirun SIGKILLed, then its PID and its container's given to unrelated processes: ps says
    Exited, and rm -f kills neither of them."""
    import json
    import signal
    assert mr("pull", "-q", "busybox").returncode == 0
    run = mr.popen("run", "--name", "victim", "busybox", "sleep", "60")
    deadline = time.monotonic() + 20
    while "victim" not in mr("ps").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    [d] = list((mr.root / "containers").iterdir())
    state = json.loads((d / "state.json").read_text())
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    while Path(f"/proc/{state['pid']}").exists():  # the container dies with its minirun
        assert time.monotonic() < deadline + 20
        time.sleep(0.05)
    strangers = [_take_pid(state["monitor"]), _take_pid(state["pid"])]
    try:
        assert "Exited (255)" in mr("ps", "-a").stdout and "victim" not in mr("ps").stdout
        r = mr("rm", "-f", "victim")  # it would SIGKILL whatever holds the container's PID now
        assert (r.returncode, r.stdout) == (0, "victim\n"), r.stderr
        assert mr("ps", "-a", "-q").stdout == ""
        assert [s.poll() for s in strangers] == [None, None], "an unrelated process was killed"
    finally:
        for s in strangers:
            s.kill()
            s.wait()


def test_rm_that_cannot_remove_says_so_and_keeps_the_container(mr: Minirun) -> None:
    """An immutable file in its upper directory, then a read-only store: rm fails (one line,
    exit 1), the container stays listed, and a later rm removes it."""
    assert mr("run", "--name", "stuck", "busybox", "touch", "/pinned").returncode == 0
    [d] = list((mr.root / "containers").iterdir())
    pinned = d / "upper" / "pinned"
    subprocess.run(["chattr", "+i", str(pinned)], check=True)
    try:
        r = mr("rm", "stuck")
        assert (r.returncode, r.stdout) == (1, ""), r.stderr
        assert r.stderr.startswith("minirun: removing container ") and r.stderr.count("\n") == 1, r.stderr
        assert "Operation not permitted" in r.stderr
        assert "Dead" in mr("ps", "-a").stdout and d.exists()
    finally:
        subprocess.run(["chattr", "-i", str(pinned)], check=True)
    subprocess.run(["mount", "--bind", str(mr.root), str(mr.root)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mr.root)], check=True)
        r = mr("rm", "stuck")
        assert r.returncode == 1 and "Read-only file system" in r.stderr and r.stdout == "", r.stderr
        assert "stuck" in mr("ps", "-a").stdout
    finally:
        subprocess.run(["umount", str(mr.root)], check=True)
    r = mr("rm", "stuck")
    assert (r.returncode, r.stdout) == (0, "stuck\n"), r.stderr
    assert not d.exists() and mr("ps", "-a", "-q").stdout == ""


def _blob(mr: Minirun, digest: str) -> Path:
    return mr.root / "blobs" / "sha256" / digest.split(":", 1)[1]


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x20
    path.write_bytes(bytes(data))


def test_an_edited_config_is_found_and_fetched_again(env: Env, mr: Minirun) -> None:
    """Configs are checked against their digest on every read (as Docker): an edited one is
    never used; run removes it and pulls it again (not with --pull never)."""
    config = env.images["busybox"].config_digest
    assert mr("pull", "-q", "busybox").returncode == 0
    path = _blob(mr, config)
    path.write_bytes(path.read_bytes().replace(b'"sh"', b'"id"'))  # still valid JSON, another Cmd
    r = mr("run", "--rm", "--pull", "never", "busybox")
    assert r.returncode == 125 and r.stdout == "" and not path.exists(), r
    assert r.stderr.count("\n") == 1 and f"blob {config}" in r.stderr and "is damaged" in r.stderr, r.stderr
    r = mr("run", "--rm", "busybox", "echo", "repaired")
    assert (r.returncode, r.stdout) == (0, "repaired\n"), r.stderr
    assert config in verify_store(mr.root)


def test_a_damaged_layer_blob_is_fetched_again(env: Env, mr: Minirun) -> None:
    """A flipped byte in a stored layer shows when an unpack needs it: the blob is removed,
    and pull (or run) fetches it again instead of answering "up to date"."""
    layer = env.images["busybox-app"].layer_digests[1]
    assert mr("pull", "-q", "busybox-app").returncode == 0  # overlay snapshots
    _flip(_blob(mr, layer), 100)
    # The vfs driver has no snapshot yet: its pull unpacks, finds the blob damaged, fetches it.
    r = mr("--storage-driver", "vfs", "pull", "busybox-app")
    assert r.returncode == 0, r.stderr
    assert "Status: Downloaded newer image" in r.stdout and layer in verify_store(mr.root), r.stdout
    _flip(_blob(mr, layer), 100)
    shutil.rmtree(mr.root / "snapshots" / "vfs")  # so that run unpacks it again
    r = mr("--storage-driver", "vfs", "run", "--rm", "busybox-app", "cat", "/app/hello.txt")
    assert (r.returncode, r.stdout) == (0, "hello from the app layer\n"), r.stderr
    assert f"blob {layer}" in r.stderr and layer in verify_store(mr.root)


def test_a_truncated_manifest_breaks_only_its_image(env: Env, mr: Minirun) -> None:
    for name in ("busybox", "busybox-app", "hello-world"):
        assert mr("pull", "-q", name).returncode == 0
    manifest = _blob(mr, env.images["busybox-app"].digest)
    manifest.write_bytes(manifest.read_bytes()[:40])
    r = mr("images", "--format", "json")
    assert r.returncode == 0 and "busybox-app" not in r.stdout, r
    assert sorted(line.split('"Repository": "')[1].split('"')[0] for line in r.stdout.splitlines()) == \
        ["busybox", "hello-world"]
    assert r.stderr.count("\n") == 1 and "image docker.io/library/busybox-app:latest" in r.stderr, r.stderr
    r = mr("rmi", "hello-world")  # collects blobs: another image's damage does not stop it
    assert r.returncode == 0 and "Untagged: hello-world:latest" in r.stdout, r
    assert env.images["hello-world"].config_digest not in mr.blobs()
    r = mr("pull", "busybox-app")  # repaired from the registry
    assert r.returncode == 0 and "Downloaded newer image" in r.stdout, r
    r = mr("run", "--rm", "busybox-app", "cat", "/app/hello.txt")
    assert (r.returncode, r.stdout) == (0, "hello from the app layer\n"), r.stderr
    assert mr("system", "prune").returncode == 0
    assert env.images["busybox-app"].config_digest in verify_store(mr.root)


def test_a_missing_snapshot_link_is_made_again(mr: Minirun) -> None:
    """A kill between a snapshot's rename and its short link (overlay's lowerdir names)."""
    assert mr("pull", "-q", "busybox-app").returncode == 0
    links = mr.root / "snapshots" / "overlay" / "l"
    removed = sorted(links.iterdir())
    for link in removed:
        link.unlink()
    r = mr("run", "--rm", "busybox-app", "cat", "/app/hello.txt")
    assert (r.returncode, r.stdout) == (0, "hello from the app layer\n"), r.stderr
    assert sorted(links.iterdir()) == removed and all(link.resolve().is_dir() for link in removed)


def test_a_damaged_container_state_is_named_and_removable(mr: Minirun) -> None:
    assert mr("run", "--name", "keeper", "busybox", "true").returncode == 0
    assert mr("run", "--name", "broken", "busybox", "true").returncode == 0
    broken = next(d for d in (mr.root / "containers").iterdir()
                  if b'"broken"' in (d / "state.json").read_bytes())
    state = broken / "state.json"
    state.write_bytes(state.read_bytes()[:120])  # truncated: its id and name survive
    r = mr("ps", "-a", "--format", "json")
    assert r.returncode == 0 and '"keeper"' in r.stdout and "broken" not in r.stdout, r
    assert r.stderr.count("\n") == 1 and broken.name[:12] in r.stderr and "damaged" in r.stderr, r.stderr
    r = mr("run", "--name", "broken", "busybox", "true")  # its name is still taken
    assert r.returncode == 125 and "already in use" in r.stderr, r
    r = mr("rm", "broken")
    assert (r.returncode, r.stdout) == (0, "broken\n"), r.stderr
    assert not broken.exists()
    # Damaged past its name: removed by prune (nothing could use it).
    assert mr("run", "--name", "second", "busybox", "true").returncode == 0
    second = next(d for d in (mr.root / "containers").iterdir()
                  if b'"second"' in (d / "state.json").read_bytes())
    (second / "state.json").write_bytes(b"{")
    r = mr("system", "prune", "--filter", "until=1h")  # (keeper, stopped but made now, stays)
    assert r.returncode == 0 and r.stdout.startswith(f"Deleted Containers:\n{second.name}\n\n"), r
    assert not second.exists()
    assert [s.split()[-1] for s in mr("ps", "-a").stdout.splitlines()[1:]] == ["keeper"]


def _record_of(mr: Minirun, reference: str) -> Path:
    return mr.root / "images" / (hashlib.sha256(reference.encode()).hexdigest() + ".json")


def test_a_damaged_image_entry_is_named_skipped_and_repaired(env: Env, mr: Minirun) -> None:
    for name in ("busybox", "hello-world"):
        assert mr("pull", "-q", name).returncode == 0
    record = _record_of(mr, "docker.io/library/busybox:latest")
    damage = '"config": "sha256:', '"config": "'
    record.write_text(record.read_text().replace(*damage, 1))
    r = mr("images", "--format", "json")
    assert r.returncode == 0 and r.stdout.count("\n") == 1 and "is not a sha256 digest" in r.stderr, r
    r = mr("run", "--rm", "busybox", "echo", "ok")  # pulled again: the pull replaces the record
    assert (r.returncode, r.stdout) == (0, "ok\n"), r.stderr
    assert mr("images", "-q").stdout.count("\n") == 2
    record.write_text(record.read_text().replace(*damage, 1))
    r = mr("system", "prune")
    assert r.returncode == 0 and mr("images", "-q").stdout.count("\n") == 1, r
    r = mr("images")
    assert r.stderr == "" and "hello-world" in r.stdout and "busybox" not in r.stdout


def test_one_unreadable_image_record_blocks_no_other_image(env: Env, mr: Minirun) -> None:
    """Issue 25, defect 11: one damaged images.json (all the records in one file) stopped
    every image command, with no way to repair it. Records are one file each now."""
    for name in ("busybox", "hello-world"):
        assert mr("pull", "-q", name).returncode == 0
    record = _record_of(mr, "docker.io/library/hello-world:latest")
    record.write_bytes(record.read_bytes()[:20])  # torn: not JSON at all
    r = mr("images", "--format", "{{.Repository}}")
    assert (r.returncode, r.stdout) == (0, "busybox\n") and "is damaged" in r.stderr, r
    r = mr("run", "--rm", "--pull", "never", "busybox", "echo", "ok")
    assert (r.returncode, r.stdout) == (0, "ok\n"), r
    assert mr("inspect", "-f", "{{.Id}}", "busybox").returncode == 0
    r = mr("rmi", "hello-world")  # its reference names its record: removed as it is
    assert r.returncode == 0 and not record.exists(), r
    assert mr("pull", "-q", "hello-world").returncode == 0
    record.write_bytes(b"\0" * 10)
    r = mr("system", "prune")
    assert r.returncode == 0 and not record.exists(), r
    r = mr("images", "--format", "{{.Repository}}")
    assert (r.returncode, r.stdout, r.stderr) == (0, "busybox\n", ""), r


def test_an_older_image_index_is_split_into_records(env: Env, mr: Minirun) -> None:
    """An older minirun kept every record in images.json: split up on first use, its damaged
    entries kept to be named and pruned; one that is not JSON at all is kept aside."""
    assert mr("pull", "-q", "busybox").returncode == 0
    record = _record_of(mr, "docker.io/library/busybox:latest")
    value = json.loads(record.read_bytes())
    broken = dict(value, reference="docker.io/library/other:1", config="nonsense")
    (mr.root / "images.json").write_text(json.dumps({"version": 1, "images": {
        value["reference"]: value, broken["reference"]: broken}}))
    shutil.rmtree(mr.root / "images")
    r = mr("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert (r.returncode, r.stdout) == (0, "busybox:latest\n") and "other:1" in r.stderr, r
    assert not (mr.root / "images.json").exists() and record.exists()
    assert mr("system", "prune").returncode == 0
    assert sorted(p.name for p in (mr.root / "images").iterdir()) == [record.name]
    (mr.root / "images.json").write_text("{ torn")
    r = mr("images", "--format", "{{.Repository}}")
    assert (r.returncode, r.stdout) == (0, "busybox\n") and "images.json.damaged" in r.stderr, r
    assert (mr.root / "images.json.damaged").read_text() == "{ torn"
    assert mr("system", "prune").returncode == 0 and not (mr.root / "images.json.damaged").exists()
