"""A randomized fault test of the whole store (issue 10): rounds of pull, run, rm, rmi and
prune in parallel, some SIGKILLed at random moments. Afterwards every listed image runs,
every listed container can be removed, prune leaves only what is referenced, and nothing is
left mounted or in cgroups (the ``mr`` fixture checks those two). The seed is printed and
named in every failure: MINIRUN_FAULT_SEED=N reruns one."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time

from tests.integration.conftest import Minirun, verify_store

IMAGES = ("busybox", "busybox-app", "hello-world", "many-files")  # many-files: slow to unpack
ROUNDS, PER_ROUND = 4, 6


def _command(rng: random.Random, names: list[str], round_no: int, k: int) -> list[str]:
    image = rng.choice(IMAGES)
    program = [] if image == "hello-world" else ["true"]
    kind = rng.choice(("pull", "run-rm", "run", "run", "rm", "rmi", "prune"))
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


def _round(mr: Minirun, rng: random.Random, names: list[str], round_no: int, seed: int) -> None:
    procs = []
    for k in range(PER_ROUND):
        args = _command(rng, names, round_no, k)
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


def _referenced(mr: Minirun) -> set[str]:
    """The blobs the image records use (index, manifest, config, layers)."""
    records = mr.root / "images"
    out: set[str] = set()
    for rec in (json.loads(p.read_bytes()) for p in (records.glob("*.json") if records.is_dir() else [])):
        out |= {rec["digest"], rec["manifest"], rec["config"]}
        manifest = json.loads((mr.root / "blobs" / "sha256" / rec["manifest"][7:]).read_bytes())
        out |= {layer["digest"] for layer in manifest["layers"]}
    return out


def test_parallel_operations_killed_at_random_leave_a_sound_store(mr: Minirun) -> None:
    seed = int(os.environ.get("MINIRUN_FAULT_SEED") or random.randrange(1 << 30))
    print(f"MINIRUN_FAULT_SEED={seed}")
    rng = random.Random(seed)
    assert mr("pull", "-q", "busybox").returncode == 0
    names: list[str] = []
    deadline = time.monotonic() + 240
    for round_no in range(ROUNDS):
        _round(mr, rng, names, round_no, seed)
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
