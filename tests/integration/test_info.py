"""info: what the host can do, checked against the machine itself; exit 1 when run cannot work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import minirun
from minirun.runtime import cgroups
from tests.integration.conftest import Minirun


def test_info_says_what_this_host_has(mr: Minirun) -> None:
    r = mr("info", "--format", "json")
    assert r.returncode == 0 and r.stderr == "", r
    doc = json.loads(r.stdout)
    assert doc["KernelVersion"] == os.uname().release and doc["Architecture"] == os.uname().machine
    assert doc["CgroupVersion"] == str(cgroups.version()) and "devices" in doc["CgroupControllers"]
    assert set(doc["Namespaces"]) >= {"mnt", "uts", "ipc", "pid", "net", "cgroup"}
    assert doc["Driver"] == "overlay" and doc["DriverStatus"][0][1].startswith("overlayfs works on")
    assert doc["Seccomp"].startswith("libseccomp 2.") and doc["SecurityOptions"] == ["name=seccomp,profile=default"]
    assert (doc["Images"], doc["Containers"], doc["Problems"]) == (0, 0, [])
    assert doc["RegistryMirrors"] == [mr.extra_env["MINIRUN_REGISTRY_MIRROR"]]
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("run", "--name", "one", "busybox", "true").returncode == 0
    doc = json.loads(mr("info", "--format", "json").stdout)
    assert (doc["Images"], doc["Containers"], doc["ContainersStopped"]) == (1, 1, 1) and doc["StoreBytes"] > 10**6
    text = mr("info").stdout
    assert f" Kernel Version: {os.uname().release}\n" in text and " Images: 1\n" in text
    assert mr("info", "-f", "{{.Images}}").stdout == "1\n"
    # Docker's plain values, for scripts: `docker info -f '{{.Driver}}'` is overlay2, not a sentence.
    r = mr("info", "-f", "{{.Driver}} {{.ServerVersion}} {{.OSType}} {{.CgroupVersion}} {{.NCPU}} {{.MemTotal}}")
    assert r.stdout == f"overlay {minirun.__version__} linux {cgroups.version()} {os.cpu_count()} " \
                       f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')}\n", r
    assert mr("rm", "one").returncode == 0


def test_info_exits_1_naming_what_run_would_miss(minirun: Minirun, on_overlayfs: Path) -> None:
    store = on_overlayfs / "store"
    r = minirun("--storage-driver", "overlay", "info", MINIRUN_ROOT=str(store))
    assert r.returncode == 1, r
    assert r.stderr == (f"minirun: run cannot work here: the overlay storage driver does not work on {store} "
                        "(a store on overlayfs?): use --storage-driver vfs, or MINIRUN_ROOT on another "
                        "filesystem\n")
    assert f" Storage Driver: overlay (overlayfs does not work on {store})\n" in r.stdout
    r = minirun("info", MINIRUN_ROOT=str(store))  # left to choose: vfs, and run works
    assert r.returncode == 0 and f" Storage Driver: vfs (overlayfs does not work on {store})\n" in r.stdout, r
