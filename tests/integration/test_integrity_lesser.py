"""Issue 10's lesser findings, as root: full disks, interrupts, concurrent rm, stopped runs,
lock waits, leftovers of pulls, what prune frees, a corrupt Docker config."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import CGROUP_PARENT, Env, Minirun, fill_disk, verify_store
from tests.support.faultproxy import Fault, FaultProxy


def _containers(mr: Minirun) -> list[str]:
    d = mr.root / "containers"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_a_full_disk_when_creating_a_container_leaves_nothing(small_store: Minirun) -> None:
    mr = small_store
    assert mr("pull", "-q", "busybox").returncode == 0
    filler = fill_disk(mr.root.parent, 0)
    for rm in (["--rm"], []):
        r = mr("run", *rm, "busybox", "true")
        assert r.returncode == 125 and r.stderr == f"minirun: creating container: no space left in {mr.root}\n", r
        assert _containers(mr) == []
    filler.unlink()
    r = mr("run", "--rm", "busybox", "echo", "room again")
    assert (r.returncode, r.stdout) == (0, "room again\n"), r.stderr


def test_too_little_space_to_unpack_is_not_called_a_bomb(small_store: Minirun) -> None:
    mr = small_store
    assert mr("pull", "-q", "busybox").returncode == 0  # overlay snapshots; vfs has none yet
    fill_disk(mr.root.parent, 256 << 10)
    r = mr("--storage-driver", "vfs", "run", "--rm", "busybox", "true")
    assert r.returncode == 125 and r.stderr.count("\n") == 1, r
    assert f"no space left in {mr.root}" in r.stderr and "bomb" not in r.stderr, r.stderr
    assert _containers(mr) == [] and list((mr.root / "snapshots" / "vfs").glob("*/fs")) == []


def test_two_rm_of_one_container_one_succeeds(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    for _ in range(3):
        run = mr.popen("run", "--name", "target", "busybox", "sleep", "60")
        deadline = time.monotonic() + 30
        while "target" not in mr("ps").stdout:
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.05)
        removers = [mr.popen("rm", "-f", "target") for _ in range(2)]
        results = sorted((p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in removers)  # type: ignore[union-attr]
        # (rm -f of one gone: said, exit 0, as Docker 20.10's)
        assert results == [(0, "", "minirun: No such container: target\n"), (0, "target\n", "")], results
        assert run.wait(timeout=30) == 137
        run.stdout.close()  # type: ignore[union-attr]
        run.stderr.close()  # type: ignore[union-attr]
    assert _containers(mr) == []


def test_rm_f_of_a_stopped_run(mr: Minirun) -> None:
    """Its minirun SIGSTOPped: rm -f does not wait for it to record the exit; resumed, the run
    exits 137 as it would have (not 125 for the container it no longer finds)."""
    assert mr("pull", "-q", "busybox").returncode == 0
    run = mr.popen("run", "--name", "frozen", "busybox", "sleep", "60")
    deadline = time.monotonic() + 30
    while "frozen" not in mr("ps").stdout:
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.05)
    run.send_signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        r = mr("rm", "-f", "frozen")
        took = time.monotonic() - start
        assert (r.returncode, r.stdout) == (0, "frozen\n"), r.stderr
        assert took < 5, took
    finally:
        run.send_signal(signal.SIGCONT)
    _, errors = run.communicate(timeout=30)
    assert (run.returncode, errors) == (137, ""), errors
    assert _containers(mr) == []


def test_a_wait_on_a_lock_says_what_it_waits_for(mr: Minirun) -> None:
    assert mr("pull", "-q", "hello-world").returncode == 0
    fd = os.open(mr.root / "gc.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a prune holds it
        pull = mr.popen("pull", "-q", "busybox")
        time.sleep(2.5)
        assert pull.poll() is None
    finally:
        os.close(fd)
    _, errors = pull.communicate(timeout=60)
    assert pull.returncode == 0
    assert errors == f"minirun: waiting for a prune or rmi in {mr.root} to finish\n"
    r = mr("run", "--rm", "busybox", "true")  # no wait, nothing said
    assert (r.returncode, r.stderr) == (0, "")


def test_prune_removes_pull_leftovers_and_counts_snapshots(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox-app").returncode == 0
    ingest = mr.root / "ingest"
    assert list(ingest.glob("*.lock"))  # one per blob downloaded
    assert mr("run", "--name", "user", "busybox-app", "true").returncode == 0
    assert mr("rmi", "-f", "busybox-app").returncode == 0  # snapshots stay: the container uses them
    assert mr("rm", "user").returncode == 0
    r = mr("system", "prune")
    assert r.returncode == 0 and r.stdout.count("deleted: sha256:") == 2, r  # its two snapshots
    freed = r.stdout.splitlines()[-1]
    assert freed.startswith("Total reclaimed space: ") and freed.endswith("MB"), freed  # busybox: ~2 MB
    assert list(ingest.iterdir()) == [] and list((mr.root / "snapshots" / "overlay").glob("*/fs")) == []


def test_a_corrupt_docker_config_is_warned_about_and_ignored(mr: Minirun) -> None:
    mr.docker_config.mkdir(parents=True, exist_ok=True)
    (mr.docker_config / "config.json").write_text('{"auths": {')
    r = mr("pull", "-q", "busybox")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith(f"minirun: warning: reading {mr.docker_config / 'config.json'}: not valid JSON")
    r = mr("logout", "127.0.0.1:1")
    assert r.returncode == 1 and "not valid JSON" in r.stderr  # what would write it still stops


def test_ctrl_c_during_a_pull_is_one_line(env: Env, minirun: Minirun, proxy: FaultProxy) -> None:
    big = env.images["big"].layer_digests[0]
    proxy.add(Fault("slow", f"/blobs/{big}", rate=256 << 10))
    p = minirun.popen("pull", f"{proxy.host}/library/big")
    partial = minirun.root / "ingest" / f"{big[7:]}.partial"
    deadline = time.monotonic() + 30
    while not (partial.exists() and partial.stat().st_size > 0):
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, errors = p.communicate(timeout=30)
    assert p.returncode == 130
    assert errors == "minirun: pull interrupted: what was downloaded is kept, a pull again resumes it\n"
    assert partial.stat().st_size > 0
    proxy.clear()
    assert minirun("pull", "-q", f"{proxy.host}/library/big").returncode == 0
    assert big in verify_store(minirun.root)


def _cgroup_parent() -> Path:
    from minirun.runtime.cgroups import ROOT, version
    return ROOT / CGROUP_PARENT if version() == 2 else ROOT / "devices" / CGROUP_PARENT


@pytest.fixture
def neighbours(env: Env, tmp_path: Path) -> Iterator[list[str]]:
    """Another minirun user's containers (their own store, the default cgroup parent) starting
    and ending beside the test, as on a shared machine: the IDs of those that ran."""
    other = Minirun(tmp_path / "other-store", tmp_path / "other-config",
                    {"MINIRUN_REGISTRY_MIRROR": env.plain.url, "MINIRUN_CGROUP_PARENT": "minirun"})
    assert other("pull", "-q", "busybox").returncode == 0
    stop, ran = threading.Event(), []

    def churn() -> None:
        while not stop.is_set():
            r = other("run", "-d", "--rm", "busybox", "sleep", "0.3")
            if r.returncode == 0:
                ran.append(r.stdout.strip())
            time.sleep(0.05)

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        yield ran
    finally:
        stop.set()
        thread.join(60)
        deadline = time.monotonic() + 30
        while other("ps", "-aq").stdout.strip() and time.monotonic() < deadline:
            time.sleep(0.2)


def test_sigint_during_setup_is_never_a_bare_setup_error(mr: Minirun, neighbours: list[str]) -> None:
    """Ctrl-C reaches minirun and the container's process (one process group) while the
    container is being set up (from its cgroup's creation on). The signal waits for the
    program, which is PID 1 of its namespace and so ignores a SIGINT it has no handler for
    (as under Docker): the run ends as the program does, never with a setup error."""
    assert mr("pull", "-q", "busybox").returncode == 0
    parent = _cgroup_parent()
    sent = 0
    for i in range(30):
        before = set(parent.iterdir()) if parent.is_dir() else set()
        p = subprocess.Popen(mr.argv("run", "--rm", "busybox", "true"), env=mr.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, process_group=0)
        deadline = time.monotonic() + 30
        while not (parent.is_dir() and set(parent.iterdir()) - before) and p.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        time.sleep((i % 6) * 0.001)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
            sent += 1
        _, errors = p.communicate(timeout=30)
        assert (p.returncode, errors) == (0, ""), (i, p.returncode, errors)
    assert sent >= 20 and _containers(mr) == []
    assert len(neighbours) >= 3  # the other user's containers came and went meanwhile (and the
    # fixture's leak check, which looks only at this suite's cgroup parent, stays green)
