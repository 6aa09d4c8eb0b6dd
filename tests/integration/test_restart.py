"""Restart policies (issue 28), as root: the monitor starts the container again as Docker's
daemon would, with its backoff, until the policy, a stop or a kill ends it. Each container
counts its runs in a bind-mounted directory of the test's."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from tests.integration.conftest import Minirun, until

COUNT = "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; cat /proc/uptime >> /data/at; "


def _inspect(mr: Minirun, name: str) -> dict[str, object]:
    r = mr("inspect", name)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)[0]
    assert isinstance(doc, dict)
    return doc


def _runs(data: Path) -> int:
    """The runs counted so far. COUNT's ``echo $n > /data/n`` empties the file before it writes
    it: read between the two, it says nothing, and is read again (bounded)."""
    for _ in range(100):
        text = (data / "n").read_text() if (data / "n").exists() else "0"
        if text.strip():
            return int(text)
        time.sleep(0.01)
    raise AssertionError(f"{data / 'n'} stayed empty")


def test_on_failure_restarts_at_most_max_times_and_keeps_the_last_code(mr: Minirun, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    r = mr("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "-v", f"{data}:/data", "busybox", "sh",
           "-c", COUNT + "exit 3")
    assert r.returncode == 0, r.stderr
    until("three runs and the end", lambda: _runs(data) == 3 and _inspect(mr, "flaky")["State"]["Status"] == "exited")  # type: ignore[index]
    time.sleep(1.5)  # and no fourth
    doc = _inspect(mr, "flaky")
    assert _runs(data) == 3 and doc["RestartCount"] == 2 and doc["State"]["ExitCode"] == 3, doc  # type: ignore[index]
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}  # type: ignore[index]
    # Fails twice, then runs: two restarts, running.
    data2 = tmp_path / "data2"
    data2.mkdir()
    r = mr("run", "-d", "--name", "recovers", "--restart", "on-failure:2", "-v", f"{data2}:/data", "busybox", "sh",
           "-c", COUNT + '[ "$n" -ge 3 ] || exit 5; exec sleep 60')
    assert r.returncode == 0, r.stderr
    until("running after two failures", lambda: _runs(data2) == 3 and "Up " in mr("ps").stdout)
    assert _inspect(mr, "recovers")["RestartCount"] == 2
    assert mr("rm", "-f", "flaky", "recovers").returncode == 0


def test_always_restarts_with_backoff_until_stop(mr: Minirun, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    r = mr("run", "-d", "--name", "loop", "--restart", "always", "-v", f"{data}:/data", "busybox", "sh", "-c",
           COUNT + "exit 0")
    assert r.returncode == 0, r.stderr
    until("six runs", lambda: _runs(data) >= 6)
    starts = [float(line.split()[0]) for line in (data / "at").read_text().splitlines()]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # 100 ms doubling (each gap also holds a start): the fifth wait is 1.6 s, the first 0.1 s
    assert gaps[4] > gaps[0] + 1.0 and gaps[4] > 1.5, gaps
    until("restarting, as ps and inspect say", lambda: "Restarting (0)" in mr("ps", "-a").stdout, 20)
    assert _inspect(mr, "loop")["State"]["Restarting"] is True  # type: ignore[index]
    assert mr("stop", "loop").returncode == 0
    after = _runs(data)
    time.sleep(4)
    assert _runs(data) == after and "Exited (0)" in mr("ps", "-a").stdout
    assert _inspect(mr, "loop")["State"]["Restarting"] is False  # type: ignore[index]
    # start: the policy holds again
    assert mr("start", "loop").returncode == 0
    until("restarted after start", lambda: _runs(data) >= after + 2)
    assert mr("kill", "loop").returncode in (0, 1)  # (between two runs: not running; kill still ends it)
    time.sleep(0.5)
    stopped = _runs(data)
    time.sleep(4)
    assert _runs(data) <= stopped + 1
    assert mr("rm", "-f", "loop").returncode == 0


def test_a_foreground_run_returns_its_code_and_hands_the_policy_over(mr: Minirun, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    began = time.monotonic()
    r = mr("run", "--name", "fg", "--restart", "on-failure:1", "-v", f"{data}:/data", "busybox", "sh", "-c",
           COUNT + "echo ran; exit 4")
    assert (r.returncode, r.stdout) == (4, "ran\n") and time.monotonic() - began < 20, r
    until("its one restart", lambda: _runs(data) == 2 and _inspect(mr, "fg")["State"]["Status"] == "exited")  # type: ignore[index]
    assert _inspect(mr, "fg")["RestartCount"] == 1
    assert mr("rm", "fg").returncode == 0


def test_rm_with_a_restart_policy_is_refused_as_docker_does(mr: Minirun) -> None:
    r = mr("run", "--rm", "--restart", "always", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "minirun: Conflicting options: --restart and --rm\n"), r
    r = mr("run", "--restart", "sometimes", "busybox", "true")
    assert r.returncode == 125 and "invalid restart policy" in r.stderr, r
    assert mr("ps", "-a", "-q").stdout == ""


def _reboot(mr: Minirun, names: list[str]) -> None:
    """As a reboot leaves them: monitors and programs gone (SIGKILL), their mounts gone."""
    import os
    import signal
    import subprocess
    for name in names:
        state = json.loads((mr.root / "containers" / str(_inspect(mr, name)["Id"]) / "state.json").read_text())
        for pid in (state.get("monitor"), state.get("pid")):
            if pid and state["status"] == "running":
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    time.sleep(0.5)
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for m in reversed(mounts):
        if m.startswith(str(mr.root)):
            subprocess.run(["umount", "-l", m], check=True)


def test_system_boot_brings_back_always_and_unless_stopped(mr: Minirun) -> None:
    for name, policy in (("a", "always"), ("b", "unless-stopped"), ("c", "unless-stopped"), ("d", "no"),
                         ("e", "on-failure")):
        r = mr("run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "300")
        assert r.returncode == 0, r.stderr
    assert mr("stop", "-t", "0", "c").returncode == 0
    _reboot(mr, ["a", "b", "c", "d", "e"])
    r = mr("system", "boot")
    assert (r.returncode, sorted(r.stdout.split())) == (0, ["a", "b"]), r
    rows = [json.loads(line) for line in mr("ps", "-a", "--format", "json").stdout.splitlines()]
    ps = {row["Names"]: row["State"] for row in rows}
    assert ps == {"a": "running", "b": "running", "c": "exited", "d": "exited", "e": "exited"}, ps
    assert mr("system", "boot").stdout == ""  # running already: nothing to do
    assert "Restart After Reboot: " in mr("info").stdout
    assert mr("rm", "-f", "a", "b", "c", "d", "e").returncode == 0
