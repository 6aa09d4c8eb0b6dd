"""A real Debian root filesystem (debootstrap --variant=minbase), cached as a tarball.

The tarball is made once per machine (``MINIRUN_TEST_CACHE``, default
/var/cache/minirun-tests) from the Debian mirror apt already uses, then reused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

SUITE = "bookworm"


def cache_dir() -> Path:
    d = Path(os.environ.get("MINIRUN_TEST_CACHE", "/var/cache/minirun-tests"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def apt_mirror() -> str:
    """The Debian mirror of this machine's apt sources (deb822 or one-line format)."""
    for path in [*sorted(Path("/etc/apt").glob("sources.list.d/*.sources")), Path("/etc/apt/sources.list")]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for m in re.finditer(r"^URIs:\s*(\S+/debian)/?\s*$|^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", text, re.M):
            return m.group(1) or m.group(2)
    return "http://deb.debian.org/debian"


def rootfs_tarball() -> Path:
    """minbase Debian as an uncompressed tar with numeric owners and xattrs."""
    tarball = cache_dir() / f"debian-{SUITE}-minbase.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: scripts/test installs it")
    work = cache_dir() / f"debootstrap.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(work), apt_mirror()], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1200)
        # Sorted, numeric owners, xattrs: a layer as a registry would carry it.
        tmp = tarball.with_suffix(".tmp")
        subprocess.run(["tar", "--sort=name", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                        "-cpf", str(tmp), "-C", str(work), "."], check=True)
        tmp.rename(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def extract_reference(tarball: Path, dest: Path) -> None:
    """GNU tar's extraction of the same tarball: the independent reference tree."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--same-permissions",
                    "-xpf", str(tarball), "-C", str(dest)], check=True)
