"""info: what this host can do, and what ``run`` would miss here (with how to fix it).

A VM image pipeline gates on it: every requirement of ``run`` that is missing is a
``Problem`` with its fix, and the CLI exits 1 when there is one.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

from .. import __version__
from ..records import Record
from .context import Context

NAMESPACES = ("mnt", "uts", "ipc", "pid", "net", "cgroup", "user")
_NEEDED = ("mnt", "uts", "ipc", "pid", "net", "cgroup")


class Problem(Record):
    what: str
    fix: str


def _boot_service() -> bool:
    from .boot import boot_enabled
    return boot_enabled()


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _controllers(version: int) -> list[str]:
    from ..runtime.cgroups import ROOT
    if version == 2:
        try:
            return (ROOT / "cgroup.controllers").read_text().split()
        except OSError:
            return []
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and not p.is_symlink()) if ROOT.is_dir() else []


def _seccomp() -> tuple[str, Problem | None]:
    try:
        kernel = "Seccomp:" in Path("/proc/self/status").read_text()
    except OSError:
        kernel = False
    if not kernel:
        return "no", Problem("the kernel has no seccomp filters", "use a kernel built with CONFIG_SECCOMP_FILTER")
    from ..errors import UsageError
    from ..runtime.seccomp_bpf import library
    try:
        v = library()[1].seccomp_version()
    except UsageError:
        return "no libseccomp", Problem("libseccomp is missing (the seccomp filter is compiled with it)",
                                        "apt-get install libseccomp2")
    return f"libseccomp {v.major}.{v.minor}.{v.micro}, Docker's default profile", None


def _storage(ctx: Context) -> tuple[str, str, Problem | None]:
    """The storage driver (Docker's plain ``overlay``-style value), why, and its problem."""
    from ..snapshots.rootfs import _overlay_works, choose_driver
    base = ctx.root / "snapshots"
    try:
        base.mkdir(parents=True, exist_ok=True)
        works = _overlay_works(base)
        driver = choose_driver(ctx.root, ctx.driver)
    except OSError as e:
        return "none", "the store cannot be written", Problem(
            f"the store {ctx.root} cannot be written: {e.strerror}", "set MINIRUN_ROOT to a writable directory")
    said = f"overlayfs {'works' if works else 'does not work'} on {ctx.root}"
    if driver == "overlay" and not works:
        return driver, said, Problem(f"the overlay storage driver does not work on {ctx.root} (a store on "
                                     "overlayfs?)", "use --storage-driver vfs, or MINIRUN_ROOT on another filesystem")
    return driver, said, None


def gather(ctx: Context) -> tuple[dict[str, object], list[Problem]]:
    """Docker's ``info`` fields for what minirun knows, and the problems ``run`` would meet."""
    from .. import config
    from ..containers.state import list_all
    from ..content.files import tree_size
    from ..runtime import cgroups
    from ..runtime.net import network
    problems: list[Problem] = []
    if os.geteuid() != 0:
        problems.append(Problem("not root: run makes namespaces and mounts", "use sudo minirun ..."))
    spaces = [n for n in NAMESPACES if os.path.exists(f"/proc/self/ns/{n}")]
    problems += [Problem(f"the kernel has no {n} namespace", "use a kernel with namespaces (CONFIG_NAMESPACES)")
                 for n in _NEEDED if n not in spaces]
    version = cgroups.version()
    controllers = _controllers(version)
    if "devices" not in controllers and version == 1:
        problems.append(Problem("cgroup v1 without the devices controller (the device policy needs it)",
                                "mount it under /sys/fs/cgroup/devices"))
    seccomp, trouble = _seccomp()
    problems += [trouble] if trouble else []
    storage, why, trouble = (_storage(ctx) if os.geteuid() == 0 else ("unknown", "not root", None))
    problems += [trouble] if trouble else []
    containers = [s for _, s in list_all(ctx.root)] if (ctx.root / "containers").is_dir() else []
    running = sum(1 for s in containers if s.status == "running")
    doc: dict[str, object] = {
        "KernelVersion": os.uname().release, "OperatingSystem": _os_name(), "Architecture": os.uname().machine,
        "NCPU": os.cpu_count(), "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "CgroupVersion": str(version), "CgroupControllers": controllers, "Driver": storage,
        "DriverStatus": [["Why", why]], "ServerVersion": __version__, "Name": os.uname().nodename,
        "OSType": "linux", "CgroupDriver": "cgroupfs", "LoggingDriver": "json-file", "DockerRootDir": str(ctx.root),
        "IndexServerAddress": "https://index.docker.io/v1/", "ContainersPaused": 0,
        "SecurityOptions": ["name=seccomp,profile=default"] if seccomp.startswith("libseccomp") else [],
        "Namespaces": spaces, "Seccomp": seccomp,
        "Nftables": shutil.which("nft") is not None, "MinirunRootDir": str(ctx.root),
        "StoreBytes": tree_size(ctx.root) if ctx.root.is_dir() else 0,
        "Images": len({r.config for r in ctx.images.records()}) if ctx.root.is_dir() else 0,
        "Containers": len(containers), "ContainersRunning": running, "ContainersStopped": len(containers) - running,
        "RegistryMirrors": list(ctx.registry_options().mirrors),
        "Firewall": network.firewall_state(),
        "BootService": _boot_service(),
        "ConfigFile": config.loaded[0] if os.path.exists(config.loaded[0]) else "",
        "Settings": {var: {"Value": os.environ[var], "Source": source}
                     for var, source in sorted(config.loaded[1].items())},
        "Problems": [f"{p.what}: {p.fix}" for p in problems],
    }
    return doc, problems
