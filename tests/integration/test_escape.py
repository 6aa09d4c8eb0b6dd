"""The second audit's holes (issue 22), each a real attempt as root, with Docker 20.10 + runc's
answer as the expected one: an escape through ``exec``, host files rewritten through the
caller's descriptors, ``save -o`` through a local user's symlinks, flag values in the monitor's
command line, the admin's environment in exec's joining process."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from tests.integration.conftest import Minirun
from tests.integration.test_detach import _detach, _state
from tests.integration.test_run import caps_of

DOCKER_DEFAULT_CAPS = 0xA80425FB  # docker exec's CapEff and CapBnd in a default container

# PID 1 builds a tree of its own and chroots into it: busybox, a /where that says "fake", a
# /proc/sys/kernel/cap_last_cap holding 0 and a FIFO for /dev/null. Then it waits.
_FAKE_ROOT = ("mkdir -p /fake/bin /fake/proc/sys/kernel /fake/proc/self /fake/dev /fake/etc && "
              "cp /bin/busybox /fake/bin/ && for a in sh cat grep sleep id; do ln -s busybox /fake/bin/$a; done && "
              "echo 0 > /fake/proc/sys/kernel/cap_last_cap && "
              "printf 'CapPrm:\\tffffffffff\\n' > /fake/proc/self/status && "
              "mkfifo /fake/dev/null /fake/etc/passwd && echo fake > /fake/where && echo real > /where && "
              "exec chroot /fake /bin/sleep 600")


def _wait_for(path: Path, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_exec_is_not_steered_by_pid1s_chroot(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    marker = tmp_path / "host-marker"
    marker.write_text("untouched\n")
    cid = _detach(mr, "--name", "trap", "busybox", "sh", "-c", _FAKE_ROOT)
    _wait_for(mr.root / "containers" / cid / "upper" / "fake" / "where")
    time.sleep(0.3)  # the chroot
    root = os.readlink(f"/proc/{_state(mr, cid)['pid']}/root")
    assert root.endswith("/fake"), root  # PID 1 is in its tree: the trap is set
    # exec lands in the container's root (not PID 1's), reads the host's facts, and its program
    # has Docker's capabilities and the seccomp filter; it never opens the FIFOs.
    for user in ("root", "nobody"):
        r = mr("exec", "-u", user, "trap", "sh", "-c", "cat /where; grep -E '^(Cap(Eff|Bnd|Prm)|Seccomp):' "
               "/proc/self/status", timeout=30)
        assert r.returncode == 0, r
        lines = r.stdout.splitlines()
        assert lines[0] == "real", lines
        got = caps_of("\n".join(lines[1:]))
        effective = DOCKER_DEFAULT_CAPS if user == "root" else 0
        assert (got["CapEff"], got["CapPrm"], got["CapBnd"]) == (effective, effective, DOCKER_DEFAULT_CAPS), r.stdout
        assert "Seccomp:\t2" in lines, lines
    # A second exec completes as the first did, and -i reads the caller's input through a pipe.
    r = mr("exec", "-i", "trap", "sh", "-c", "cat; echo done", input=b"fed\n", timeout=30)
    assert (r.returncode, r.stdout) == (0, "fed\ndone\n"), r
    assert marker.read_text() == "untouched\n"
    assert mr("rm", "-f", "trap").returncode == 0


def test_exec_leaves_the_callers_environment_and_command_line_behind(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    _detach(mr, "--name", "env1", "--cap-add", "SYS_PTRACE", "busybox", "sleep", "600")
    secret = "admin-secret-4711"
    proc = subprocess.Popen(mr.argv("exec", "-e", f"PASSED={secret}-flag", "env1", "sleep", "30"),
                            env=mr.env(ADMIN_TOKEN=secret), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        joiner, program = _exec_processes(proc.pid)
        # The joining process (a fork of the CLI): none of the caller's command line or environment.
        cmdline = Path(f"/proc/{joiner}/cmdline").read_bytes()
        assert cmdline == b"minirun-exec\0", cmdline
        assert secret.encode() not in Path(f"/proc/{joiner}/environ").read_bytes()
        # The program: the container's environment and -e, nothing of the caller's.
        environ = Path(f"/proc/{program}/environ").read_bytes().split(b"\0")
        assert f"PASSED={secret}-flag".encode() in environ and not any(e.startswith(b"ADMIN_TOKEN") for e in environ)
        # From inside (CAP_SYS_PTRACE): no process shows the caller's environment.
        r = mr("exec", "env1", "sh", "-c", "cat /proc/*/environ | tr '\\0' '\\n' | grep -c ADMIN_TOKEN")
        assert r.stdout.strip() == "0", r
    finally:
        proc.kill()
        proc.wait()
    assert mr("rm", "-f", "env1").returncode == 0


def _exec_processes(cli: int, seconds: float = 15) -> tuple[int, int]:
    """exec's joining process (the CLI's child) and its program (the joining process's child)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        joiners = _children(cli)
        programs = [p for j in joiners for p in _children(j)]
        if programs and Path(f"/proc/{programs[0]}/cmdline").read_bytes().startswith(b"sleep"):
            return joiners[0], programs[0]
        time.sleep(0.05)
    raise AssertionError("exec's processes never appeared")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _ps_args(user: str) -> str:
    return subprocess.run(["runuser", "-u", user, "--", "ps", "-eo", "args"], capture_output=True, text=True,
                          check=True).stdout


def test_the_monitors_command_line_shows_no_flag_value(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    cid = _detach(mr, "--name", "mon1", "-e", "DB_PASSWORD=hunter2", "-e", "K=v2",
                  "busybox", "sleep", "600")
    # The monitor titles itself again once it is the lean one (keeper.py), a few ms after the
    # CLI returned; its command line never had a flag's value.
    deadline = time.monotonic() + 10
    while True:
        seen = _ps_args("nobody")
        assert "hunter2" not in seen and "DB_PASSWORD" not in seen, seen
        if re.search(rf"^minirun-monitor {cid[:12]}\s*$", seen, re.M) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert re.search(rf"^minirun-monitor {cid[:12]}\s*$", seen, re.M), seen
    assert mr("rm", "-f", "mon1").returncode == 0


# What a container tries with the descriptors it was given: reopen each through /proc/self/fd
# read-write (at offset 0: over the start of a file it was appended to) and write there.
_REOPEN = ("echo X 1<>/proc/self/fd/1; echo W 1<>/proc/self/fd/0; echo E 1<>/proc/self/fd/2; "
           "echo out; echo err >&2")


def _with_host_files(tmp_path: Path, argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes, bytes]:
    """``argv`` with stdin from a host file and stdout and stderr appended to host files:
    its exit code and the three files' contents afterwards."""
    paths = [tmp_path / name for name in ("in", "out", "err")]
    for p in paths:
        p.write_bytes(f"before-{p.name}\n".encode())
    with open(paths[0], "rb") as i, open(paths[1], "ab") as o, open(paths[2], "ab") as e:
        code = subprocess.run(argv, stdin=i, stdout=o, stderr=e, env=env, timeout=60).returncode
    i_, o_, e_ = (p.read_bytes() for p in paths)
    return code, i_, o_, e_


def test_no_mode_gives_the_container_the_callers_descriptors(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    _detach(mr, "--name", "fd1", "busybox", "sleep", "600")
    assert mr("run", "--name", "fd2", "busybox", "sh", "-c", _REOPEN).returncode == 0
    modes = {
        "run": ["run", "--rm", "busybox", "sh", "-c", _REOPEN],
        "run -i": ["run", "--rm", "-i", "busybox", "sh", "-c", _REOPEN + "; cat"],
        "--log-driver none": ["run", "--rm", "-i", "--log-driver", "none", "busybox", "sh", "-c", _REOPEN],
        "exec": ["exec", "fd1", "sh", "-c", _REOPEN],
        "exec -i": ["exec", "-i", "fd1", "sh", "-c", _REOPEN + "; cat"],
        "start -a": ["start", "-a", "fd2"],
    }
    for mode, args in modes.items():
        code, stdin, out, err = _with_host_files(tmp_path, mr.argv(*args), mr.env())
        assert (code, stdin) == (0, b"before-in\n"), (mode, code, stdin, err)
        # What it wrote came through minirun, appended; nothing was written over the files.
        assert out.startswith(b"before-out\n") and b"out\n" in out and b"X\n" in out, (mode, out)
        assert err.startswith(b"before-err\n") and b"err\n" in err and b"E\n" in err, (mode, err)
        if mode.endswith("-i"):
            assert b"before-in\n" in out, (mode, out)  # cat: the host file's bytes, through a pipe
    # A process left behind by exec keeps no stream of the caller's: exec returns when its
    # program does, and a late write goes nowhere.
    start = time.monotonic()
    code, _, out, _ = _with_host_files(tmp_path, mr.argv("exec", "fd1", "sh", "-c", "(sleep 1; echo late; "
                                       "echo late 1<>/proc/self/fd/1) & echo now"), mr.env())
    assert code == 0 and time.monotonic() - start < 5
    time.sleep(1.5)
    assert (tmp_path / "out").read_bytes() == b"before-out\nnow\n"
    assert mr("rm", "-f", "fd1", "fd2").returncode == 0


def test_save_o_never_follows_a_planted_symlink(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    victim = tmp_path / "victim"
    victim.write_bytes(b"root's secret\n")
    victim.chmod(0o600)
    userdir = tmp_path / "userdir"  # a directory a local user owns: they plant links for root to write
    userdir.mkdir()
    nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True, check=True).stdout)
    os.chown(userdir, nobody, nobody)
    last = int(Path("/proc/sys/kernel/ns_last_pid").read_text())
    planted = {f"out.tar.partial-{pid}" for pid in range(last, last + 3000)} | {"out.tar"}
    for name in planted:
        os.symlink(victim, userdir / name)
        os.lchown(userdir / name, nobody, nobody)
    r = mr("save", "-o", str(userdir / "out.tar"), "busybox")
    assert r.returncode == 0, r.stderr
    assert victim.read_bytes() == b"root's secret\n" and victim.stat().st_mode & 0o777 == 0o600
    out = userdir / "out.tar"
    assert not out.is_symlink() and out.stat().st_mode & 0o777 == 0o600 and out.stat().st_size > 0
    assert {p.name for p in userdir.iterdir()} == planted  # the links as planted, out.tar now a file
    assert all((userdir / n).is_symlink() for n in planted - {"out.tar"})
