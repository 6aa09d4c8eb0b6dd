"""runc runs minirun's config.json: for each set of flags, the container minirun made is run
again by Debian's runc from a bundle of that config.json and a copy of the image's root
filesystem, and what a probe inside reports (identity, capabilities, no_new_privs, seccomp,
limits, hostname, working directory, environment, every mount with its options, /dev) is
the same, but for the differences listed and justified in ``_comparable``. Every config.json
is also checked against the runtime spec's schema."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import CGROUP_PARENT, Minirun
from tests.support import images, ocischema

PROBE = r"""
id; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
echo "hostname $(hostname)"; echo "cwd $(pwd)"; env | busybox sort | busybox sed 's/^/env /'
busybox sed -n 's/^/limit /p' /proc/self/limits
while read -r _ _ _ _ point opts rest; do
    set -- ${rest#*- }; echo "mount $point $opts $1 $3"
done < /proc/self/mountinfo | busybox sort
ls -l /dev | busybox sed 1d | while read -r mode _ _ _ size rest; do echo "dev $mode ${rest##* }"; done
for f in memory/memory.limit_in_bytes pids/pids.max cpu/cpu.cfs_quota_us memory.max pids.max cpu.max; do
    [ -r /sys/fs/cgroup/$f ] && echo "cgroup $f $(cat /sys/fs/cgroup/$f)"
done
touch /written 2>/dev/null && echo "root writable" || echo "root read-only"
mkdir -p /data 2>/dev/null; touch /data/x 2>/dev/null && echo "data writable" || echo "data read-only"
cat /proc/kcore 2>&1 | wc -c | busybox sed 's/^/kcore /'
"""

SECCOMP_PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}

CASES: dict[str, list[str]] = {
    "defaults": [],
    "user": ["-u", "1000:1000"],
    "workdir and env": ["-w", "/tmp", "-e", "GREETING=hello", "-e", "EMPTY="],
    "read-only and tmpfs": ["--read-only", "--tmpfs", "/run:size=1m", "--tmpfs", "/scratch:exec"],
    "volume": ["-v", "VOLUME:/data:ro"],
    "no capabilities": ["--cap-drop", "ALL"],
    "added capabilities": ["--cap-add", "SYS_TIME", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN"],
    "privileged": ["--privileged"],
    "limits": ["--memory", "64m", "--pids-limit", "20", "--cpus", "0.5"],
    "no new privileges": ["--security-opt", "no-new-privileges"],
    "custom seccomp": ["--security-opt", "seccomp=PROFILE"],
    "ulimits": ["--ulimit", "nofile=100:200", "--ulimit", "core=0"],  # lowered: no privilege needed
}


def _rootfs(at: Path) -> None:
    """The busybox image's files (its only layer), as a bundle's root."""
    trusted = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}  # 3.11.4 and later
    with tarfile.open(fileobj=io.BytesIO(images.busybox_layer())) as tar:
        tar.extractall(at, **trusted)  # type: ignore[arg-type]


def _container(mr: Minirun, name: str) -> Path:
    for d in (mr.root / "containers").iterdir():
        if json.loads((d / "state.json").read_text())["name"] == name:
            return d
    raise AssertionError(f"no container {name}")


def _run_in_runc(config: dict[str, Any], bundle: Path, name: str) -> subprocess.CompletedProcess[str]:
    """``config`` as minirun wrote it, but for the bundle's root and a cgroup of runc's own."""
    config = json.loads(json.dumps(config))
    config["root"]["path"] = str(bundle / "rootfs")
    config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}-runc/{name}"
    (bundle / "config.json").write_text(json.dumps(config))
    return subprocess.run(["runc", "--root", str(bundle / "state"), "run", "--bundle", str(bundle), name],
                          capture_output=True, text=True, timeout=60)


def _comparable(lines: list[str], mounted: set[str]) -> set[str]:
    """What both runtimes must agree on. Left out or narrowed, with the reason:
    - the mount of / : minirun's root is the image's layers as overlayfs, the bundle's a copy
      of them in a plain directory (a different filesystem, by construction of the test);
    - cgroup v1's hierarchies: runc mounts every one (and leaves the tmpfs that holds them
      writable), minirun mounts only the controllers its container has a directory in, under a
      read-only tmpfs; the values are compared for the controllers both show (``mounted``);
    - the supplementary groups of ``id``: minirun resolves them from the image's /etc/group
      inside the container at each start, as Docker's daemon does when it makes the spec;
      config.json carries the uid and gid, which are compared, and runc adds no groups;
    - the lines of /proc/self/limits: runc leaves the caller's, and the callers differ (pytest
      starting runc, minirun's monitor); --ulimit's values are compared ("nofile"/"core").
    """
    out = set()
    for line in lines:
        words = line.split()
        if words[:2] == ["mount", "/"] or (words[:1] == ["mount"] and words[1].startswith("/sys/fs/cgroup")):
            continue
        if words[:1] == ["cgroup"] and words[1].split("/")[0] not in mounted:
            continue
        if words[:1] == ["limit"] and not any(w in line for w in ("open files", "core file")):
            continue
        if line.startswith("uid="):
            line = line.split(" groups=")[0]
        out.add(line)
    return out


def _held() -> int:
    """The capabilities this test (and so minirun) holds: --privileged's, where it runs."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("CapPrm:"))
    return int(line.split()[1], 16)


def _controllers(lines: list[str]) -> set[str]:
    """The cgroup v1 controllers mounted in the container (v2: its one directory, "")."""
    points = [w.split()[1] for w in lines if w.startswith("mount /sys/fs/cgroup")]
    return {p.removeprefix("/sys/fs/cgroup").strip("/") for p in points}


@pytest.mark.parametrize("case", CASES)
def test_runc_runs_miniruns_config(mr: Minirun, tmp_path: Path, case: str) -> None:
    volume, profile = tmp_path / "volume", tmp_path / "profile.json"
    volume.mkdir()
    profile.write_text(json.dumps(SECCOMP_PROFILE))
    flags = [f.replace("VOLUME", str(volume)).replace("PROFILE", str(profile)) for f in CASES[case]]
    name = "probe-" + case.replace(" ", "-")
    ours = mr("run", "--network", "none", "--name", name, "--hostname", "probe", *flags, "busybox", "sh", "-c",
              PROBE)
    assert ours.returncode == 0, ours.stderr
    bundle = tmp_path / "bundle"
    try:
        config = json.loads((_container(mr, name) / "config.json").read_text())
        assert ocischema.errors(config) == []
        _rootfs(bundle / "rootfs")
        theirs = _run_in_runc(config, bundle, name)
        assert theirs.returncode == 0, theirs.stderr
    finally:
        assert mr("rm", name).returncode == 0
        shutil.rmtree(bundle, ignore_errors=True)
    ours_lines, runc_lines = ours.stdout.splitlines(), theirs.stdout.splitlines()
    mounted = _controllers(ours_lines)
    mine, runcs = _comparable(ours_lines, mounted), _comparable(runc_lines, mounted)
    assert mine == runcs, "\n".join(["minirun only:", *sorted(mine - runcs), "runc only:", *sorted(runcs - mine)])
    said = "\n".join(ours_lines)
    # and each case shows what it is about (the probe is not blind to it)
    expected = {"user": "uid=1000 gid=1000", "workdir and env": "env GREETING=hello", "volume": "data read-only",
                "read-only and tmpfs": "root read-only", "no capabilities": "CapBnd:\t0000000000000000",
                "privileged": f"CapBnd:\t{_held():016x}", "limits": "cgroup pids/pids.max 20",
                "no new privileges": "NoNewPrivs:\t1", "custom seccomp": "Seccomp:\t2",
                "ulimits": "Max open files            100                  200"}.get(case, "cwd /")
    assert expected in said, said
