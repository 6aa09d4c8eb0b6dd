"""Dockerfile.test (issue 15): the test environment as an image, as CI systems run minirun.

Built with Podman from the cached debootstrap tree (the base: no registry outside) and Debian's
archive, then run privileged: the unit tests pass inside, and minirun runs the busybox test
image there with its store on the container's overlayfs (the vfs driver) and nested cgroups."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.integration.conftest import Minirun
from tests.support import debian

REPO = Path(__file__).resolve().parents[2]
BASE, IMAGE = "localhost/minirun-test-base:bookworm", "localhost/minirun-test:ci"

# The image's own store (/var/lib/minirun, a VOLUME: overlay works there), then one on the
# container's overlayfs (/root/store), where minirun must fall back to its vfs driver.
INSIDE = """
set -u
.venv/bin/python -m pytest -q -p no:cacheprovider tests/unit > /tmp/unit.log 2>&1; echo "unit=$?"
tail -1 /tmp/unit.log
mkdir /data && echo from-the-host > /data/note
for root in /var/lib/minirun /root/store; do
    echo "== $root"
    export MINIRUN_ROOT=$root
    .venv/bin/minirun info --format '{{.Driver}} ({{index .DriverStatus 0 1}})'; echo "info=$?"
    .venv/bin/minirun load -i /archives/busybox.tar
    echo piped | .venv/bin/minirun run --rm -i -v /data:/data busybox sh -c 'cat; cat /data/note; exit 3'
    echo "run=$?"
    ls $root/containers | wc -l
done
"""


def _podman(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    # runc: Debian's crun refuses this machine's hybrid cgroups (scripts/test installs runc);
    # cgroupfs: no systemd to ask for cgroups.
    return subprocess.run(["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs", *args],
                          capture_output=True, text=True, timeout=timeout)


def _build_flags() -> list[str]:
    """The build reaches Debian's archive and PyPI as this machine does: its network, its apt
    settings (e.g. a snapshot mirror's validity) and its CA bundle (an intercepting proxy)."""
    flags = ["--network", "host", "--build-arg", f"BASE={BASE}", "-v", "/etc/apt/apt.conf.d:/etc/apt/apt.conf.d:ro"]
    bundle = Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))
    if bundle.is_file():
        flags += ["-v", f"{bundle}:/run/host-ca.crt:ro", "--build-arg", "PIP_CERT=/run/host-ca.crt"]
    return flags


def test_the_test_image_builds_and_runs_minirun_inside(mr: Minirun, tmp_path: Path) -> None:
    archives = tmp_path / "archives"
    archives.mkdir()
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("save", "-o", str(archives / "busybox.tar"), "busybox").returncode == 0
    r = _podman("import", "-q", str(debian.rootfs_tarball()), BASE)
    assert r.returncode == 0, r.stderr
    try:
        r = _podman("build", "-q", "--no-cache", *_build_flags(), "-f", "Dockerfile.test", "-t", IMAGE, str(REPO),
                    timeout=1200)
        assert r.returncode == 0, r.stderr[-3000:]
        cmd = _podman("image", "inspect", "-f", "{{json .Config.Cmd}}", IMAGE).stdout.strip()
        # The suite is what the image runs by default (but this test, which would build it within itself).
        assert cmd == '["/usr/bin/tini","--","scripts/test","--ignore=tests/integration/test_dockerfile.py"]', cmd
        # Podman's default rlimits exceed what this machine lets root set: lower ones.
        r = _podman("run", "--rm", "--privileged", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096",
                    "-v", f"{archives}:/archives:ro", IMAGE, "bash", "-c", INSIDE)
        out = r.stdout.splitlines()
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert "unit=0" in out and re.fullmatch(r"\d+ passed in [\d.]+s", out[out.index("unit=0") + 1]), out
        rounds = {part.split("\n", 1)[0]: part.split("\n")[1:-1] for part in r.stdout.split("== ")[1:]}
        overlay, vfs = rounds["/var/lib/minirun"], rounds["/root/store"]
        assert overlay[0].startswith("overlay (overlayfs works on /var/lib/minirun"), out
        assert vfs[0].startswith("vfs (overlayfs does not work on /root/store"), out
        for lines in (overlay, vfs):  # load, run with stdin, a bind mount and an exit code; --rm left nothing
            assert lines[1:] == ["info=0", "Loaded image: busybox:latest", "piped", "from-the-host", "run=3", "0"], out
    finally:
        _podman("rmi", "-f", IMAGE, BASE)
