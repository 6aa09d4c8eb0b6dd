"""The operations layer's own rules, without root: container state transitions, what
garbage collection keeps, the context built once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from minirun import pids
from minirun.containers import state as container
from minirun.errors import ContainerConflict
from minirun.ops.context import Context
from minirun.ops.gc import collect_snapshots
from minirun.snapshots.rootfs import Snapshotter


def _state(**fields: Any) -> container.ContainerState:
    base = container.ContainerState("a" * 64, "name", "busybox", ["sh"], "2026-01-01T00:00:00Z")
    return base._replace(**fields)


def test_container_state_transitions() -> None:
    created = _state()
    running = created.started(pid=42, monitor=7)
    assert (running.status, running.pid, running.monitor) == ("running", 42, 7)
    exited = running.ended(3, monitor=7)
    assert (exited.status, exited.exit_code) == ("exited", 3) and exited.finished
    assert created.ended(127, monitor=7).status == "exited"  # it never started: still recorded
    with pytest.raises(ContainerConflict, match="is running: it cannot start again"):
        running.started(43, 7)
    with pytest.raises(ContainerConflict, match="already exited"):
        exited.ended(0, 7)
    with pytest.raises(ContainerConflict, match="is exited"):
        exited.started(43, 7)


def test_a_killed_minirun_shows_its_container_exited() -> None:
    running = _state(status="running", pid=999_999_999, monitor=999_999_999)  # no such process
    seen = container.refresh(running)
    assert (seen.status, seen.exit_code) == ("exited", 255)  # nobody recorded it: unknown, as Docker says
    assert container.refresh(_state(status="exited", exit_code=0)).exit_code == 0


def test_a_reused_pid_is_not_the_container() -> None:
    """Its PID now held by another process (same PID, other start time): exited, not Up."""
    me, started = os.getpid(), pids.start_time(os.getpid())
    assert started is not None
    assert container.refresh(_state(status="running", monitor=me, monitor_start=started)).status == "running"
    seen = container.refresh(_state(status="running", monitor=me, monitor_start=started - 1))
    assert (seen.status, seen.exit_code) == ("exited", 255)  # nobody recorded it: unknown, as Docker says
    # A state without start times (older, or damaged) is trusted with nothing (issue 25, defect 12).
    assert container.refresh(_state(status="running", monitor=me)).status == "exited"


def _snapshot(snap: Snapshotter, hexid: str) -> str:
    snap.fs("sha256:" + hexid).mkdir(parents=True)
    return "sha256:" + hexid


def test_gc_keeps_what_images_and_containers_use(tmp_path: Path) -> None:
    ctx = Context(tmp_path / "store", driver="vfs")
    snap = Snapshotter(ctx.root, "vfs")
    used_by_container, unused = _snapshot(snap, "1" * 64), _snapshot(snap, "2" * 64)
    directory = ctx.root / "containers" / ("c" * 64)
    directory.mkdir(parents=True)
    container.save(directory, _state(id="c" * 64, chains=[used_by_container], status="exited"))
    (snap.tmp / "stale-unpack").mkdir()  # a killed unpack's work directory
    (snap.tmp / f"{'2' * 64}.lock").touch()
    (snap.fs(unused) / "data").write_bytes(b"x" * 5000)
    os.link(snap.fs(unused) / "data", snap.fs(unused) / "hardlink")  # counted once
    assert collect_snapshots(ctx.images, []) == ([unused], 5000)
    assert snap.chains() == {used_by_container} and not (snap.tmp / "stale-unpack").exists()
    assert list(snap.tmp.iterdir()) == []


def test_context_builds_the_store_once(tmp_path: Path) -> None:
    ctx = Context(tmp_path / "store")
    assert ctx.images is ctx.images
    other = ctx.with_registry(("http://127.0.0.1:1",), ("example.test",))
    assert other.images is ctx.images and other.registry_options().insecure[0] == "example.test"
