"""What a container must not reach on the host (issue 8's audit), each a real escape attempt
as root: crafted images pushed to the test registry, a loop device, a pty, a keyring.

Every escape test checks host marker files unchanged afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pty
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Env, Minirun
from tests.integration.test_run import caps_of, sh
from tests.support import images as test_images
from tests.support.layers import E, tar_bytes

MARKER = b"HOST-MARKER-do-not-touch\n"


def push_crafted(env: Env, repo: str, entries: list[E], with_etc: bool = True) -> str:
    """busybox plus a layer of ``entries``, pushed to the plain registry; its name for run."""
    test_images.push(test_images.crafted(f"library/{repo}", tar_bytes(entries), with_etc), env.plain.host)
    return repo


@pytest.fixture
def host_dir(tmp_path: Path) -> Iterator[Path]:
    """A host directory holding a marker, checked unchanged (and alone) after the test."""
    d = tmp_path / "host-victim"
    d.mkdir()
    (d / "marker").write_bytes(MARKER)
    yield d
    assert sorted(p.name for p in d.iterdir()) == ["marker"], "something was written on the host"
    assert (d / "marker").read_bytes() == MARKER


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A host block device (loop) whose first bytes are MARKER: (major, minor)."""
    image = tmp_path / "disk.img"
    image.write_bytes(MARKER + bytes(1 << 20))
    dev = subprocess.run(["losetup", "-f", "--show", str(image)], check=True, capture_output=True,
                         text=True).stdout.strip()
    try:
        rdev = os.stat(dev).st_rdev
        yield os.major(rdev), os.minor(rdev)
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


def test_host_block_devices_are_denied(mr: Minirun, env: Env, loop_device: tuple[int, int]) -> None:
    major, minor = loop_device
    r = sh(mr, f"mknod /disk b {major} {minor} && head -c 24 /disk")
    assert r.returncode == 1 and "Operation not permitted" in r.stderr and "HOST-MARKER" not in r.stdout
    # A node shipped in an image works no better, whatever the capabilities.
    repo = push_crafted(env, "devnode", [E("disk", "blk", dev=(major, minor), mode=0o666),
                                         E("fuse", "chr", dev=(10, 229), mode=0o666)])
    for flags in ((), ("--cap-drop", "ALL")):
        r = mr("run", "--rm", *flags, repo, "head", "-c", "24", "/disk")
        assert r.returncode == 1 and "Operation not permitted" in r.stderr and "HOST-MARKER" not in r.stdout
    r = mr("run", "--rm", repo, "head", "-c", "1", "/fuse")  # fuse stays denied, as in Docker
    assert r.returncode == 1 and "Operation not permitted" in r.stderr
    # Docker's allow-list works: the standard nodes, and /dev/tty exists (no terminal: ENXIO).
    r = sh(mr, "for d in zero urandom random full; do head -c 1 /dev/$d; done | wc -c; "
               "echo x > /dev/null && echo ok; echo > /dev/tty")
    assert r.stdout.split() == ["4", "ok"] and "No such device or address" in r.stderr, r.stderr
    # --privileged has no device policy, as Docker: the same read shows the marker (the control).
    r = sh(mr, f"mknod /disk b {major} {minor} && head -c 24 /disk", "--privileged")
    assert (r.returncode, r.stdout) == (0, MARKER.decode()[:24]), r.stderr


def test_store_is_private_to_root(mr: Minirun, env: Env) -> None:
    # A store where any user may walk up to it, so that only its own modes protect it.
    base = Path(os.environ.get("TMPDIR", "/var/tmp")) / f"minirun-private-{os.getpid()}"
    base.mkdir(mode=0o755)
    try:
        mr.root = base / "store"
        r = mr("run", "--name", "suid", "busybox", "sh", "-c", "cp /bin/busybox /suid && chmod 4755 /suid")
        assert r.returncode == 0, r.stderr
        private = [mr.root, *(mr.root / d for d in ("blobs", "ingest", "snapshots", "containers"))]
        assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in private} == {"0o700"}
        # An older minirun made them 0755: the next command tightens them.
        for p in private:
            p.chmod(0o755)
        assert mr("images").returncode == 0
        assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in private} == {"0o700"}
        [cid] = [d.name for d in (mr.root / "containers").iterdir()]
        suid = mr.root / "containers" / cid / "upper" / "suid"
        assert suid.stat().st_mode & stat.S_ISUID  # the container left a setuid-root program...
        # runuser, not setpriv: setpriv looks the program up while it still holds root's capabilities.
        nobody = ["runuser", "-u", "nobody", "--"]
        r = subprocess.run([*nobody, str(suid), "id", "-u"], capture_output=True, text=True)
        assert r.returncode != 0 and "Permission denied" in r.stderr, r  # ...that no user can reach
        snapshots = next((mr.root / "snapshots").glob("*/*/fs"))
        r = subprocess.run([*nobody, "ls", str(snapshots)], capture_output=True, text=True)
        assert r.returncode != 0 and "Permission denied" in r.stderr
        assert mr("rm", "suid").returncode == 0
    finally:
        shutil.rmtree(base)


def test_container_has_its_own_session(mr: Minirun) -> None:
    """kill 0 inside signals the container's own group, never the calling script's."""
    assert sh(mr, "true").returncode == 0
    argv = " ".join(mr.argv("run", "--rm", "busybox", "sh", "-c", "'kill -TERM 0; echo inside'"))
    r = subprocess.run(["setsid", "-w", "sh", "-c", f"{argv}; echo survived $?"], env=mr.env(),
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.split("\n") == ["inside", "survived 0", ""], r
    r = sh(mr, "cut -d' ' -f6 /proc/1/stat")  # the session is the container's PID 1's
    assert r.stdout == "1\n"


def _under_pty(argv: list[str], env: dict[str, str], typed: bytes = b"") -> str:
    """Run ``argv`` with a new pty as its stdin, stdout and stderr; what it printed."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env)
    if typed:
        time.sleep(1)
        os.write(fd, typed)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break  # EIO: the child has closed the pty
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    return out.decode(errors="replace").replace("\r\n", "\n") + f"EXIT {os.waitstatus_to_exitcode(status)}\n"


def test_no_terminal_without_t(mr: Minirun) -> None:
    """Under a real terminal, without -t: pipes inside, no TIOCSTI into the caller's shell."""
    assert mr("pull", "probe").returncode == 0
    out = _under_pty(mr.argv("run", "--rm", "probe", "/probe", "tty"), mr.env())
    assert "fd 1: not a tty; TIOCSTI refused" in out and "fd 2: not a tty; TIOCSTI refused" in out, out
    assert "fd 0: not a tty; TIOCSTI refused" in out and "/dev/tty: No such device or address" in out, out
    assert "accepted" not in out and out.endswith("EXIT 0\n"), out
    # Streams, input with -i and exit codes come through the relay unchanged.
    out = _under_pty(mr.argv("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"), mr.env())
    assert out.endswith("out\nerr\nEXIT 3\n") or out.endswith("err\nout\nEXIT 3\n"), out
    out = _under_pty(mr.argv("run", "--rm", "-i", "probe", "sh", "-c", "/probe tty; head -n 1 | wc -c"),
                     mr.env(), typed=b"abc\n")
    assert "fd 0: not a tty; TIOCSTI refused" in out and out.endswith("4\nEXIT 0\n"), out


def test_session_keyring_is_not_inherited(mr: Minirun, tmp_path: Path) -> None:
    probe = test_images.build_probe(tmp_path)
    assert mr("pull", "probe").returncode == 0
    keyed = [str(probe), "keyadd", "minirun-test-secret", "s3cret"]
    r = subprocess.run([*keyed, str(probe), "keyfind", "minirun-test-secret"], capture_output=True, text=True)
    assert r.stdout == "found\n", r  # the control: the key is there for the caller
    r = subprocess.run([*keyed, *mr.argv("run", "--rm", "probe", "/probe", "keyfind", "minirun-test-secret")],
                       env=mr.env(), capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("not found") and r.returncode == 1, r


def test_etc_symlink_in_an_image_writes_nothing_on_the_host(mr: Minirun, env: Env, host_dir: Path) -> None:
    repo = push_crafted(env, "etc-escape", [E("etc", "sym", target=str(host_dir))], with_etc=False)
    for flags in ((), ("--read-only",)):
        r = mr("run", "--rm", "--hostname", "inside", *flags, repo, "cat", "/etc/hostname")
        assert (r.returncode, r.stdout) == (0, "inside\n"), r.stderr


def test_volume_target_cannot_reach_the_old_root(mr: Minirun, env: Env, host_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "volume"
    source.mkdir()
    (source / "file").write_text("from the volume\n")
    rel = str(host_dir).lstrip("/")
    repo = push_crafted(env, "volume-escape", [E("data", "sym", target=f"/.minirun-oldroot/{rel}"),
                                               E("up", "sym", target=f"/../../../{rel}")])
    for target in ("/data/newdir", "/up/newdir"):
        r = mr("run", "--rm", "-v", f"{source}:{target}", repo, "cat", f"{target}/file")
        assert (r.returncode, r.stdout) == (0, "from the volume\n"), r.stderr


def test_image_passwd_must_be_a_small_regular_file(mr: Minirun, env: Env) -> None:
    zero = push_crafted(env, "passwd-zero", [E("etc", "dir", mode=0o755), E("etc/passwd", "sym", target="/dev/zero")],
                        with_etc=False)
    fifo = push_crafted(env, "group-fifo", [E("etc", "dir", mode=0o755), E("etc/group", "fifo", mode=0o644)],
                        with_etc=False)
    for repo, path in ((zero, "/etc/passwd"), (fifo, "/etc/group")):
        r = mr("run", "--rm", repo, "true", timeout=60)
        assert r.returncode == 125, r.stderr
        assert r.stderr.splitlines()[-1] == f"minirun: reading {path} of the image: not a regular file"


def test_tmpfs_keeps_docker_flags_and_read_only_covers_etc_files(mr: Minirun) -> None:
    r = sh(mr, "grep -E ' /(x|y) ' /proc/mounts", "--tmpfs", "/x:size=1m", "--tmpfs", "/y:exec,mode=700")
    [x, y] = r.stdout.splitlines()
    assert "nosuid,nodev,noexec" in x and "size=1024k" in x, x
    assert "nosuid,nodev" in y and "noexec" not in y and "mode=700" in y, y  # exec undoes noexec only
    r = sh(mr, "for f in hosts hostname resolv.conf; do echo x >> /etc/$f; done", "--read-only")
    assert r.returncode == 1 and r.stderr.count("Read-only file system") == 3, r.stderr
    assert sh(mr, "echo x >> /etc/hosts && echo x >> /etc/resolv.conf").returncode == 0  # writable otherwise


def test_init_is_a_real_init_with_nothing_of_the_host(mr: Minirun) -> None:
    r = sh(mr, "tr '\\0' ' ' < /proc/1/environ; echo; tr '\\0' ' ' < /proc/1/cmdline; echo; readlink /proc/1/exe; "
               "ls /proc/1/fd; grep -c docker-init /proc/mounts", "--init", SECRET_TOKEN="hunter2")
    assert r.returncode == 0, r.stderr
    environ, cmdline, exe, *fds, mounted = r.stdout.splitlines()
    assert "SECRET_TOKEN" not in environ and "PATH=" in environ
    assert cmdline.startswith("/sbin/docker-init -- sh -c ") and "minirun" not in cmdline
    assert sys.executable not in r.stdout and "python" not in r.stdout
    assert exe == "/sbin/docker-init" and set(fds) <= {"0", "1", "2"} and mounted == "1"
    r = sh(mr, "echo x > /sbin/docker-init", "--init")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    r = mr("run", "--rm", "--init", "busybox", "true", MINIRUN_INIT="/nonexistent/tini")
    assert r.returncode == 125 and "MINIRUN_INIT=/nonexistent/tini is not an executable file" in r.stderr


@pytest.mark.parametrize("flags", [(), ("--privileged",), ("-u", "nobody"), ("--cap-add", "SYS_ADMIN")])
def test_no_inheritable_or_ambient_capabilities(mr: Minirun, flags: tuple[str, ...]) -> None:
    c = caps_of(sh(mr, "grep ^Cap /proc/self/status", *flags).stdout)
    assert (c["CapInh"], c["CapAmb"]) == (0, 0), (flags, c)


def test_what_the_audit_found_fine_stays_so(mr: Minirun) -> None:
    # No descriptor above 2 reaches the program (ls's own directory is 3).
    assert mr("run", "--rm", "busybox", "ls", "/proc/self/fd").stdout.split() == ["0", "1", "2", "3"]
    # -w through /proc/self/fd never leaves the root (runc CVE-2024-21626).
    for n in range(3, 9):
        r = mr("run", "--rm", "-w", f"/proc/self/fd/{n}", "busybox", "pwd")
        assert r.returncode == 125 or r.stdout.startswith("/proc/"), (n, r)
    # Private propagation, Docker's sizes and devpts options, no host groups with -u.
    r = sh(mr, "grep -c shared: /proc/self/mountinfo; grep -E ' /dev(/shm|/pts)? ' /proc/mounts; id -G",
           "-u", "1234:5678")
    lines = r.stdout.splitlines()
    assert lines[0] == "0" and lines[-1] == "5678", r.stdout
    dev, pts, shm = (next(x for x in lines if f" {p} " in x) for p in ("/dev", "/dev/pts", "/dev/shm"))
    assert "size=65536k" in dev and "size=65536k" in shm and "gid=5,mode=620,ptmxmode=666" in pts
    # Each container writes its own copy of the /etc files, never the host's.
    host_hosts = Path("/etc/hosts").read_bytes()
    assert sh(mr, "echo 10.9.9.9 written >> /etc/hosts").returncode == 0
    assert "written" not in sh(mr, "cat /etc/hosts").stdout
    assert Path("/etc/hosts").read_bytes() == host_hosts
    with contextlib.suppress(FileNotFoundError):
        assert not any("written" in (d / "hosts").read_text() for d in (mr.root / "containers").iterdir())
