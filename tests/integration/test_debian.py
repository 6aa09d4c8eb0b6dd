"""A real image: minbase Debian from debootstrap, pushed, pulled, unpacked, compared with GNU tar's tree."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from minirun.oci import chain_ids
from minirun.snapshots.rootfs import Snapshotter, mounted
from tests.integration.conftest import Env, Minirun
from tests.support.debian import extract_reference, rootfs_tarball
from tests.support.images import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST
from tests.support.layers import listing


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


@pytest.fixture(scope="module")
def debian(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    """(reference, ChainID, reference tree) of a Debian image on the plain registry."""
    from dxf import DXF
    tarball = rootfs_tarball()
    work = tmp_path_factory.mktemp("debian")
    layer = work / "layer.tar.gz"
    with open(layer, "wb") as out:
        subprocess.run(["gzip", "-1", "-n", "-c", str(tarball)], stdout=out, check=True)
    diff_id = file_digest(tarball)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["bash"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                   "size": len(config)},
        "layers": [{"mediaType": DOCKER_LAYER, "digest": file_digest(layer), "size": layer.stat().st_size}]})
    registry = DXF(env.plain.host, "library/debian", insecure=True)
    registry.push_blob(filename=str(layer))
    registry.push_blob(data=iter([config]), digest="sha256:" + hashlib.sha256(config).hexdigest())
    registry.set_manifest("bookworm", manifest)
    reference = work / "reference"
    extract_reference(tarball, reference)
    yield f"{env.plain.host}/library/debian:bookworm", chain_ids([diff_id])[0], reference


@pytest.mark.parametrize("driver", ["overlay", "vfs"])
def test_debian_image_unpacks_like_gnu_tar(debian: tuple[str, str, Path], minirun: Minirun, tmp_path: Path,
                                           driver: str) -> None:
    ref, chain, reference = debian
    r = minirun("--storage-driver", driver, "pull", ref)
    assert r.returncode == 0, r.stderr
    snap = Snapshotter(minirun.root, driver)
    assert snap.exists(chain)
    expected = listing(reference)
    assert len(expected) > 5000  # a real distribution, not a toy
    with mounted(snap.prepare([chain], tmp_path / "ctr")) as root:
        got = listing(Path(root))
        # And it works: the image's own dpkg reads its own database.
        out = subprocess.run(["chroot", root, "dpkg-query", "-W", "-f", "${Package}\\n", "bash"],
                             capture_output=True, text=True)
        assert out.stdout == "bash\n", out.stderr
    missing = sorted(set(expected) - set(got))[:5]
    extra = sorted(set(got) - set(expected))[:5]
    differ = [(k, expected[k], got[k]) for k in sorted(expected) if k in got and expected[k] != got[k]][:5]
    assert (missing, extra, differ) == ([], [], [])


def test_debian_programs_run_under_the_default_filter(debian: tuple[str, str, Path], minirun: Minirun) -> None:
    """Ordinary programs of a real distribution are not stopped by the default seccomp filter."""
    ref = debian[0]
    r = minirun("run", "--rm", ref, "sh", "-c", "grep ^Seccomp: /proc/self/status; dpkg-query -W -f '${Package}\\n' "
                "dpkg apt; apt-get --version | head -n 1; ls /usr/bin | wc -l > /dev/null && echo listed",
                MINIRUN_NETWORK="none")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["Seccomp:", "2"] and sorted(lines[1:3]) == ["apt", "dpkg"], r.stdout
    assert lines[3].startswith("apt ") and lines[4] == "listed", r.stdout
