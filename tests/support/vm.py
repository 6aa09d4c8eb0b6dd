"""A throwaway virtual machine on a cgroup v2 kernel, for what this machine's kernel cannot show.

The machines here boot with cgroup v1 (hybrid): the memory, pids and cpu controllers
are bound to v1 hierarchies and cannot be moved to v2 while anything uses them. So the
cgroup v2 tests boot Debian's own kernel (the package linux-image-amd64 depends on,
fetched with apt and cached in /var/cache/minirun-tests) under qemu, with this machine's
root filesystem shared read-only over virtio-9p, and run a shell script as the guest's
init. The guest mounts cgroup2 alone on /sys/fs/cgroup, so all controllers are v2.

qemu runs with TCG (software emulation): nested KVM hangs at boot on these machines.
Boot takes about 4 s; the guest runs the host's own Python and pytest.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.debian import cache_dir

# The guest's init: load the modules for virtio-9p and overlayfs, mount the host's root
# read-only, and hand over to the script (the kernel passes GUEST_SCRIPT=... as environment).
_INIT = """#!/bin/busybox sh
echo "guest: init"
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in $(/bin/busybox cat /modules/order); do
    /bin/busybox insmod "/modules/$m" || echo "guest: insmod $m failed"
done
if ! /bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /newroot; then
    echo "guest: cannot mount the host's root filesystem"
    /bin/busybox poweroff -f
fi
for d in proc sys dev; do /bin/busybox mount --move /$d /newroot/$d; done
exec /bin/busybox switch_root /newroot /bin/sh "$GUEST_SCRIPT"
"""

# What the guest script starts with: writable scratch space, cgroup v2 alone, lo up.
GUEST_PRELUDE = """\
bb=/bin/busybox
$bb mount -t tmpfs tmpfs /run
$bb mount -t tmpfs -o size=1500m tmpfs /mnt
$bb mount -t cgroup2 none /sys/fs/cgroup
$bb mkdir -p /dev/pts /dev/shm /mnt/tmp /mnt/home
$bb mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$bb mount -t tmpfs tmpfs /dev/shm
$bb ip link set lo up
$bb hostname minirun-vm
export HOME=/mnt/home TMPDIR=/mnt/tmp PYTHONDONTWRITEBYTECODE=1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""

_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay", "loop")  # loop: the device policy test


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600, cwd=cwd)


def kernel() -> tuple[Path, Path]:
    """(vmlinuz, a directory of the modules the guest loads, with ``order``), fetched once per
    machine: only these are kept of the package (400 MB unpacked)."""
    arch = _run(["dpkg", "--print-architecture"]).stdout.strip()
    if arch != "amd64":
        raise RuntimeError(f"the cgroup v2 VM needs an amd64 host (this one is {arch})")
    depends = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
    package = next(line.split(":", 1)[1].strip() for line in depends.splitlines()
                   if line.strip().startswith("Depends:") and "linux-image-" in line)
    version = package.removeprefix("linux-image-")
    modules_key = hashlib.sha256(" ".join(_MODULES).encode()).hexdigest()[:8]  # new list, new cache
    cached = cache_dir() / f"vm-{package}-{modules_key}"
    if (cached / "modules" / "order").exists():
        return cached / "vmlinuz", cached / "modules"
    work = cache_dir() / f"vm-download.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "keep" / "modules").mkdir(parents=True)
    try:
        _run(["apt-get", "download", package], cwd=work)
        [deb] = work.glob("*.deb")
        root = work / "x"
        _run(["dpkg-deb", "-x", str(deb), str(root)])
        _run(["depmod", "-b", str(root), version])
        order: list[str] = []
        for module in _MODULES:  # modprobe knows each module's dependencies: load those first
            shown = _run(["modprobe", "-d", str(root), "-S", version, "--show-depends", module]).stdout
            for line in shown.splitlines():
                path = Path(line.split()[1])
                if line.startswith("insmod ") and path.name not in order:
                    shutil.copy(path, work / "keep" / "modules" / path.name)
                    order.append(path.name)
        (work / "keep" / "modules" / "order").write_text("\n".join(order) + "\n")
        shutil.copy(root / "boot" / f"vmlinuz-{version}", work / "keep" / "vmlinuz")
        shutil.rmtree(cached, ignore_errors=True)
        (work / "keep").rename(cached)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cached / "vmlinuz", cached / "modules"


def initramfs(modules: Path, dest: Path) -> Path:
    """busybox, the modules and their load order, and _INIT, as a gzipped newc cpio."""
    tree = dest / "initramfs"
    for d in ("bin", "proc", "sys", "dev", "newroot"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", tree / "bin" / "busybox")
    shutil.copytree(modules, tree / "modules")
    (tree / "init").write_text(_INIT)
    (tree / "init").chmod(0o755)
    names = "\n".join(str(p.relative_to(tree)) for p in sorted(tree.rglob("*"))) + "\n"
    archive = subprocess.run(["/bin/busybox", "cpio", "-o", "-H", "newc"], input=names.encode(), cwd=tree,
                             check=True, capture_output=True, timeout=120).stdout
    image = dest / "initramfs.cpio.gz"
    image.write_bytes(gzip.compress(archive, compresslevel=1))
    return image


def run_guest(script: str, work: Path, timeout: float = 1200, boot: float = 300) -> str:
    """Boot the VM with ``script`` (after GUEST_PRELUDE) as its init; the console's output.

    ``work`` must be on the host's root filesystem: the guest reads the script there. A VM
    whose kernel has not reached the init in ``boot`` seconds is started once more: CI saw
    qemu (TCG, no KVM) print nothing after "Booting from ROM" for 20 minutes, once; the
    same test passed alone right after, in 3.5."""
    vmlinuz, modules = kernel()
    image = initramfs(modules, work)
    guest = work / "guest.sh"
    guest.write_text(GUEST_PRELUDE + script + "\n/bin/busybox poweroff -f\n")
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", "2048", "-smp", "2", "-nographic", "-no-reboot",
            "-kernel", str(vmlinuz), "-initrd", str(image),
            "-append", f"console=ttyS0 quiet panic=-1 GUEST_SCRIPT={guest}",
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot"]
    for attempt in (1, 2):
        console = work / f"console-{attempt}.txt"
        with open(console, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            try:
                if not _reached(console, b"guest: init", proc, boot) and attempt == 1:
                    proc.kill()
                    proc.wait()
                    continue
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # what the guest said until then: where it stuck
                proc.kill()
                proc.wait()
                said = console.read_bytes().decode(errors="replace")[-6000:]
                raise AssertionError(f"the VM did not finish in {timeout:.0f} s; its console:\n{said}") from None
        break
    return console.read_bytes().decode(errors="replace")


def _reached(console: Path, marker: bytes, proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether ``marker`` appears on the console within ``seconds`` (or the VM ended first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if marker in console.read_bytes() or proc.poll() is not None:
            return True
        time.sleep(0.5)
    return False
