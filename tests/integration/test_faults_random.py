"""A randomized fault test of the whole store (issue 10, extended by issue 25): rounds of
pull, run, run -d, start, stop, logs -f during rotation, rm, rmi, save, load and prune in
parallel, some SIGKILLed at random moments. After every round: every container's log reads as
what its program wrote (numbers in order, none lost in the middle, none torn but an
interrupted last one), every container's state matches its processes, and no save left a
partial file. Afterwards every listed image runs, every listed container can be removed,
prune leaves only what is referenced, and nothing is left mounted or in cgroups (the ``mr``
fixture checks those two). The seed is printed and named in every failure:
MINIRUN_FAULT_SEED=N reruns one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from itertools import pairwise
from pathlib import Path

from tests.integration.conftest import Minirun, cgroup_parents, verify_store

IMAGES = ("busybox", "busybox-app", "hello-world", "many-files")  # many-files: slow to unpack
ROUNDS, PER_ROUND = 5, 7
# A detached program whose log rotates (3,000 entries into 4 KB files, two kept) while logs -f
# follows it: numbers, so that a lost line shows; one write per line (the shell's echo, not
# seq's buffered stdio), so that a kill never leaves half of one.
COUNTING = ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo $i; [ $i = 1500 ] && sleep 0.3; done"]
ROTATING = ["--log-opt", "max-size=4k", "--log-opt", "max-file=2"]


def _command(rng: random.Random, names: list[str], round_no: int, k: int, files: Path) -> list[str]:
    image = rng.choice(IMAGES)
    program = [] if image == "hello-world" else ["true"]
    kind = rng.choice(("pull", "run-rm", "run", "run-d", "run-d", "start", "stop", "logs", "rm", "rmi",
                       "prune", "save", "load"))
    if kind == "run-d":
        names.append(f"d{round_no}x{k}")
        return ["run", "-d", "--name", names[-1], *ROTATING, "busybox", *COUNTING]
    if kind in ("start", "stop", "logs") and names:
        name = rng.choice(names)
        return {"start": ["start", name], "stop": ["stop", "-t", "1", name], "logs": ["logs", "-f", name]}[kind]
    if kind == "save":
        return ["save", "-o", str(files / f"saved-{round_no}-{k}.tar"), image]
    if kind == "load":
        return ["load", "-i", str(files / "busybox.tar")]
    if kind == "pull":
        return ["pull", "-q", image]
    if kind == "run-rm":
        return ["run", "--rm", image, *program]
    if kind == "run":
        names.append(f"c{round_no}x{k}")
        return ["run", "--name", names[-1], image, *program]
    if kind == "rm" and names:
        return ["rm", "-f", rng.choice(names)]
    if kind == "rmi":
        return ["rmi", "-f", image]
    return ["system", "prune"]


def _round(mr: Minirun, rng: random.Random, names: list[str], round_no: int, seed: int, files: Path) -> None:
    procs = []
    for k in range(PER_ROUND):
        args = _command(rng, names, round_no, k, files)
        kill_at = rng.uniform(0.0, 1.5) if rng.random() < 0.4 else None
        procs.append((args, kill_at, subprocess.Popen(mr.argv(*args), env=mr.env(), stdout=subprocess.DEVNULL,
                                                      stderr=subprocess.PIPE, text=True)))
    start = time.monotonic()
    for _args, kill_at, p in sorted(procs, key=lambda x: x[1] if x[1] is not None else 99):
        if kill_at is not None:
            time.sleep(max(0.0, start + kill_at - time.monotonic()))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
    for args, _kill_at, p in procs:
        _, errors = p.communicate(timeout=120)
        if p.returncode != -signal.SIGKILL:
            assert "internal error" not in errors and "Traceback" not in errors, (seed, args, errors)


def _log_reads_as_written(mr: Minirun, seed: int) -> None:
    """Each counting container's log: the numbers its runs wrote, each one after the one
    before or a new run's 1 (rotation drops the oldest entries, never one in the middle)."""
    for name in mr("ps", "-a", "--format", "{{.Names}}", "--filter", "name=d").stdout.split():
        r = mr("logs", name)
        if r.returncode != 0:
            assert "has no log" in r.stderr or "No such container" in r.stderr, (seed, name, r.stderr)
            continue  # made, never started; or removed by a --rm meanwhile
        lines = r.stdout.splitlines()
        assert all(x.isdigit() for x in lines), (seed, name, [x for x in lines if not x.isdigit()][:5])
        for n, (before, now) in enumerate(pairwise(lines)):
            assert int(now) in (1, int(before) + 1), (seed, name, n, lines[max(0, n - 3):n + 4])


def _states_match_processes(mr: Minirun, seed: int) -> None:
    """A container said to run has its process; one said not to has none left in its cgroup
    (given a moment: the kernel ends a namespace's last processes after its PID 1)."""
    for row in mr("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}").stdout.splitlines():
        cid, status = row.split()
        state = json.loads((mr.root / "containers" / cid / "state.json").read_text())
        procs = [d / cid / "cgroup.procs" for d in cgroup_parents()]
        deadline = time.monotonic() + 3
        while True:
            members = {p for f in procs if f.exists() for p in f.read_text().split()}
            now = json.loads((mr.root / "containers" / cid / "state.json").read_text())["status"]
            if status == "running" and now == "running":
                ok = str(state["pid"]) in members
            else:
                ok = now != "running" and not members
            if ok:
                break
            assert time.monotonic() < deadline, (seed, cid, status, now, sorted(members))
            time.sleep(0.05)


def _no_partial_saves(files: Path, seed: int) -> None:
    left = sorted(p.name for p in files.iterdir() if p.name.startswith("."))
    assert left == [], (seed, left)


def _referenced(mr: Minirun) -> set[str]:
    """The blobs the image records use (index, manifest, config, layers)."""
    records = mr.root / "images"
    out: set[str] = set()
    for rec in (json.loads(p.read_bytes()) for p in (records.glob("*.json") if records.is_dir() else [])):
        out |= {rec["digest"], rec["manifest"], rec["config"]}
        manifest = json.loads((mr.root / "blobs" / "sha256" / rec["manifest"][7:]).read_bytes())
        out |= {layer["digest"] for layer in manifest["layers"]}
    return out


def test_parallel_operations_killed_at_random_leave_a_sound_store(mr: Minirun, tmp_path: Path) -> None:
    seed = int(os.environ.get("MINIRUN_FAULT_SEED") or random.randrange(1 << 30))
    print(f"MINIRUN_FAULT_SEED={seed}")
    rng = random.Random(seed)
    assert mr("pull", "-q", "busybox").returncode == 0
    files = tmp_path / "files"
    files.mkdir()
    assert mr("save", "-o", str(files / "busybox.tar"), "busybox").returncode == 0
    names: list[str] = []
    deadline = time.monotonic() + 300
    for round_no in range(ROUNDS):
        _round(mr, rng, names, round_no, seed, files)
        _log_reads_as_written(mr, seed)
        _states_match_processes(mr, seed)
        _no_partial_saves(files, seed)
        assert time.monotonic() < deadline, seed

    listed = [json.loads(line) for line in mr("images", "--format", "json").stdout.splitlines()]
    for image in listed:
        program = [] if image["Repository"] == "hello-world" else ["true"]
        r = mr("run", "--rm", "--pull", "never", image["Reference"], *program)
        assert r.returncode == 0, (seed, image["Reference"], r.stderr)
    for cid in mr("ps", "-a", "-q").stdout.split():
        r = mr("rm", "-f", cid)
        assert r.returncode == 0, (seed, cid, r.stderr)
    r = mr("ps", "-a", "-q")
    assert (r.stdout, r.stderr) == ("", ""), seed

    r = mr("system", "prune")
    assert r.returncode == 0, (seed, r.stderr)
    assert verify_store(mr.root) == _referenced(mr), seed
    assert list((mr.root / "ingest").iterdir()) == [], seed
    assert list((mr.root / "containers").iterdir()) == [], seed
    for driver in (mr.root / "snapshots").iterdir():
        if driver.is_dir():
            assert not [p for p in (driver / "tmp").iterdir() if p.is_dir()], seed
    r = mr("images")
    assert r.returncode == 0 and r.stderr == "", (seed, r.stderr)
