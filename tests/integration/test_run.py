"""`minirun run` end to end: the test images, real namespaces and mounts, as root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import CGROUP_PARENT, Env, Minirun
from tests.support.images import HELLO_MESSAGE


def sh(mr: Minirun, script: str, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(mr.argv("run", "--rm", *flags, "busybox", "sh", "-c", script), env=mr.env(**env),
                          capture_output=True, text=True, timeout=120)


def test_hello_world_end_to_end(mr: Minirun) -> None:
    r = mr("run", "hello-world")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (f"\n{HELLO_MESSAGE}\n\n"
                        "This message shows that your installation appears to be working correctly.\n")
    err = r.stderr.splitlines()
    assert err[0] == "Unable to find image 'hello-world:latest' locally"
    assert err[1] == "latest: Pulling from library/hello-world"
    assert err[-1] == "Status: Downloaded newer image for hello-world:latest"
    r = mr("run", "--rm", "hello-world")
    assert (r.returncode, r.stderr) == (0, "")  # cached: only the program speaks
    assert HELLO_MESSAGE in r.stdout


def test_exit_codes(mr: Minirun) -> None:
    assert sh(mr, "exit 7").returncode == 7
    r = mr("run", "--rm", "busybox", "nosuchcmd")
    assert r.returncode == 127 and r.stderr == 'minirun: exec: "nosuchcmd": executable file not found in $PATH\n'
    r = mr("run", "--rm", "busybox", "/etc/passwd")
    assert r.returncode == 126 and "Permission denied" in r.stderr
    r = mr("run", "--rm", "-u", "ghost", "busybox", "id")
    assert r.returncode == 125 and "unable to find user ghost" in r.stderr
    r = mr("run", "--rm", "--network", "bridged", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "minirun: network bridged not found\n")
    r = mr("run", "--rm", "--network", "-x", "busybox", "true")
    assert r.returncode == 125 and "invalid --network" in r.stderr
    r = mr("run", "--rm", "-w", "relative", "busybox", "pwd")
    assert (r.returncode, r.stdout) == (125, "") and "must be an absolute path" in r.stderr


def test_output_that_cannot_be_written_is_said(mr: Minirun) -> None:
    """Issue 25, defect 3: run ... >/dev/full exited 0 with its output lost. Docker: one line,
    exit 1; the program itself runs to its end (and is logged); start -a too."""
    assert sh(mr, "true").returncode == 0
    with open("/dev/full", "w") as full:
        r = subprocess.run(mr.argv("run", "--name", "full", "busybox", "sh", "-c", "echo hi; echo done > /tmp/x"),
                           env=mr.env(), stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r
        assert "writing the container's output to stdout: No space left on device" in r.stderr, r
        r = subprocess.run(mr.argv("start", "-a", "full"), env=mr.env(), stdout=full, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        assert r.returncode == 1 and "No space left on device" in r.stderr, r
    assert mr("logs", "full").stdout == "hi\nhi\n"  # logged all the same, both times
    assert mr("inspect", "-f", "{{.State.ExitCode}}", "full").stdout == "0\n"  # the program's own
    assert mr("rm", "full").returncode == 0


def test_a_full_disk_under_the_log_does_not_end_the_program(mr: Minirun) -> None:
    """Issue 25, defect 2: the store on a small tmpfs, the program fills it, then writes: its
    log cannot take the line. The program goes on to its own end (exit 5), its output still
    reaches us, the loss is said once and kept for inspect (the program frees the disk before
    it ends, so that its end can be recorded); nothing is left behind."""
    mr.root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mr.root)], check=True)
    try:
        assert mr("pull", "-q", "busybox").returncode == 0
        r = mr("run", "--name", "filler", "busybox", "sh", "-c",
               "dd if=/dev/zero of=/big bs=1M 2>/dev/null; echo wrote; sleep 0.2; rm /big; exit 5")
        assert (r.returncode, r.stdout) == (5, "wrote\n"), r
        assert r.stderr.count("\n") == 1 and "log entries could not be written" in r.stderr, r
        assert "No space left on device" in r.stderr, r
        state = json.loads(mr("inspect", "filler").stdout)[0]["State"]
        assert (state["ExitCode"], state["LogDropped"]) == (5, 1), state
        assert mr("rm", "filler").returncode == 0
    finally:
        subprocess.run(["umount", str(mr.root)], check=True)


def test_no_internal_errors_for_odd_input(mr: Minirun) -> None:
    """Issue 25, defect 9 (those that are input): one clear line and a non-zero exit, never
    "internal error"."""
    assert sh(mr, "true").returncode == 0
    cases: list[tuple[list[str | bytes], int, str]] = [
        (["run", "--rm", "--log-opt", "max-size=1e400", "busybox", "true"], 125, "invalid --log-opt"),
        (["run", "--rm", "-h", b"h\xff", "busybox", "true"], 125, "invalid hostname"),
        (["logs", "--since", "99999999999999999999999", "x"], 1, 'invalid --since "99999999999999999999999"'),
        (["logs", "--since", "99999999999999h", "x"], 1, "out of range"),
    ]
    for words, code, said in cases:
        r = subprocess.run([*mr.argv(), *words], env=mr.env(), capture_output=True, timeout=60)
        err = r.stderr.decode(errors="replace")
        assert (r.returncode, err.count("\n")) == (code, 1) and said in err, (words, r)
        assert "internal error" not in err
    with open("/dev/full", "w") as full:
        r2 = subprocess.run(mr.argv("stop", "--help"), env=mr.env(), stdout=full, stderr=subprocess.PIPE, text=True)
    assert (r2.returncode, r2.stderr) == (1, "minirun: No space left on device\n"), r2


def test_docker_codes_and_lines_where_they_differed(mr: Minirun) -> None:
    """Issue 25, defect 10 (those of it that are run's, stop's and exec's): -it without a
    terminal, a uid out of range, stop -t that is no number of seconds; exec's missing command
    is in test_detach (126 as docker exec), start of a running container there too."""
    assert sh(mr, "true").returncode == 0
    r = subprocess.run(mr.argv("run", "--rm", "-it", "busybox", "true"), env=mr.env(), input="x",
                       capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "minirun: the input device is not a TTY\n"), r
    r = mr("run", "--rm", "-u", "99999999999", "busybox", "true")
    assert r.returncode == 125 and "uids and gids must be in range 0-2147483647" in r.stderr, r
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    for bad in ("nan", "1e999", "inf"):
        r = mr("stop", "-t", bad, "nosuch")
        assert r.returncode == 125 and "Invalid value for '--time'" in r.stderr, (bad, r)  # a flag: Docker's 125


def test_killed_by_a_signal_is_128_plus_n(mr: Minirun) -> None:
    assert sh(mr, "true").returncode == 0  # pull first
    p = mr.popen("run", "--rm", "busybox", "sleep", "30")
    child = None
    deadline = time.monotonic() + 20
    while child is None and time.monotonic() < deadline:
        out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(p.pid)], capture_output=True, text=True)
        child = next((int(line.split()[0]) for line in out.stdout.splitlines() if "sleep" in line), None)
        time.sleep(0.05)
    assert child is not None
    os.kill(child, signal.SIGKILL)
    assert p.wait(20) == 137


def test_signals_are_forwarded(mr: Minirun) -> None:
    assert sh(mr, "true").returncode == 0
    p = mr.popen("run", "--rm", "busybox", "sh", "-c", 'trap "echo got TERM; exit 3" TERM; echo ready; '
                 "sleep 30 & wait")
    assert p.stdout is not None
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(20) == 3
    assert p.stdout.read() == "got TERM\n"


def test_isolation(mr: Minirun) -> None:
    r = sh(mr, "echo $$; hostname; cat /etc/hostname; cat /proc/net/dev | tail -n +3 | cut -d: -f1; "
               "cat /proc/mounts")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1"
    assert len(lines[1]) == 12 and lines[2] == lines[1]
    assert [x.strip() for x in lines[3:] if " " not in x.strip()] == ["lo"]  # interfaces: lo alone
    mounts = "\n".join(lines[3:])
    points = {line.split()[1] for line in lines[3:] if len(line.split()) >= 4}
    # Only the container's own mounts: none of the host's (its /, /proc, ... are the container's).
    from minirun.runtime.cgroups import version
    from minirun.spec.defaults import MASKED_PATHS as MASKED
    from minirun.spec.defaults import READONLY_PATHS as READONLY
    kernel_has = {p for p in MASKED + READONLY if os.path.exists(p)}  # absent ones are skipped
    # Its own cgroup (v1: the devices controller alone, as it has no limits)
    cgroup = {"/sys/fs/cgroup"} if version() == 2 else {"/sys/fs/cgroup", "/sys/fs/cgroup/devices"}
    assert points == {"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/etc/hostname",
                      "/etc/hosts", "/etc/resolv.conf"} | kernel_has | cgroup
    assert {"/proc/keys", "/proc/timer_list", "/sys/firmware"} <= points
    assert " /proc/sys proc ro," in mounts and " /sys sysfs ro," in mounts
    assert sh(mr, "hostname", "--hostname", "box").stdout == "box\n"
    r = sh(mr, "echo x > /proc/sys/kernel/hostname")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    r = sh(mr, "ls /sys/firmware | wc -l; cat /proc/timer_list | wc -c")
    assert r.stdout.split() == ["0", "0"]


def test_network_host(mr: Minirun) -> None:
    ours = sorted(line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:])
    r = sh(mr, "tail -n +3 /proc/net/dev | cut -d: -f1", "--network", "host")
    assert sorted(x.strip() for x in r.stdout.splitlines()) == ours


def test_env_workdir_and_user(mr: Minirun, tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\nPASSED_THROUGH\n")
    r = sh(mr, 'echo "$PATH|$FOO|$FROM_FILE|$PASSED_THROUGH|$HOME|$HOSTNAME"', "-e", "FOO=bar",
           "--env-file", str(env_file), "-e", "UNSET_IN_CALLER", "--hostname", "hh", PASSED_THROUGH="from caller")
    assert r.stdout == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|bar|yes|from caller|/root|hh\n"
    r = sh(mr, "pwd", "-w", "/made/for/you")
    assert r.stdout == "/made/for/you\n"
    # (its primary group among its groups, as Docker sets them: test_spec.py has Docker's answers)
    assert sh(mr, "id", "-u", "nobody").stdout == "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"
    r = sh(mr, "id -u; id -g; echo $HOME", "-u", "1234:5678")
    assert r.stdout.split() == ["1234", "5678", "/"]
    r = mr("run", "--rm", "--entrypoint", "echo", "busybox", "a", "-n", "b")
    assert r.stdout == "a -n b\n"  # options after the image belong to the container


def test_stdin_only_with_i_and_stdout_only_for_the_program(mr: Minirun) -> None:
    assert sh(mr, "true").returncode == 0
    r = mr("run", "--rm", "-i", "busybox", "cat", input=b"hi\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hi\n", "")
    r = mr("run", "--rm", "busybox", "cat", input=b"hi\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = sh(mr, "echo out; echo err >&2")
    assert (r.stdout, r.stderr) == ("out\n", "err\n")


def test_containers_leave_nothing_behind_and_rm(mr: Minirun) -> None:
    assert sh(mr, "true").returncode == 0
    r = mr("run", "--name", "kept", "busybox", "sh", "-c", "echo data > /written; exit 4")
    assert r.returncode == 4
    [kept] = list((mr.root / "containers").iterdir())
    state = json.loads((kept / "state.json").read_text())
    assert (state["name"], state["status"], state["exit_code"]) == ("kept", "exited", 4)
    assert (kept / "upper" / "written").read_text() == "data\n"  # its own layer, not the image's
    assert str(mr.root) not in Path("/proc/mounts").read_text()
    sh(mr, "true")
    assert list((mr.root / "containers").iterdir()) == [kept]  # --rm removed the other


def test_run_pulls_again_for_another_platform(mr: Minirun) -> None:
    assert mr("run", "--rm", "hello-world").returncode == 0
    other = "linux/arm64/v8" if os.uname().machine != "aarch64" else "linux/amd64"
    r = mr("pull", "--platform", other, "hello-world")
    assert r.returncode == 0, r.stderr
    # The tag now holds the other platform's image; run for this host pulls it back.
    r = mr("run", "--rm", "hello-world")
    assert r.returncode == 0, r.stderr
    assert "Unable to find image 'hello-world:latest' locally" in r.stderr and HELLO_MESSAGE in r.stdout


def test_pull_policy(mr: Minirun) -> None:
    """--pull missing (Docker's default), always, never."""
    # Bad flags are refused before anything is pulled.
    r = mr("run", "--rm", "--memory", "lots", "-v", "/tmp:/x", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, 'minirun: invalid --memory "lots": expected a size such as 512m or 1g\n')
    assert mr.blobs() == set()
    r = mr("run", "--rm", "--pull", "never", "busybox", "true")
    assert (r.returncode, r.stderr) == (125, "minirun: No such image: busybox:latest (and --pull never)\n")
    assert sh(mr, "true").returncode == 0  # missing: pulled now
    r = mr("run", "--rm", "--pull", "never", "busybox", "echo", "cached")
    assert (r.returncode, r.stdout, r.stderr) == (0, "cached\n", "")
    r = mr("run", "--rm", "--pull", "always", "busybox", "echo", "checked")
    assert (r.returncode, r.stdout) == (0, "checked\n"), r.stderr
    assert "Status: Image is up to date for busybox:latest" in r.stderr and "Unable to find" not in r.stderr
    r = mr("run", "--rm", "--pull", "sometimes", "busybox", "true")
    assert r.returncode == 125 and 'invalid --pull "sometimes"' in r.stderr


@pytest.mark.parametrize(("args", "text"), [
    (("run", "--bogus", "busybox"), "No such option: --bogus"),
    (("run", "Busybox"), 'invalid reference format "Busybox"'),
    (("run", "{plain}/library/nope"), "not found"),
    (("--storage-driver", "zfs", "run", "busybox"), "invalid storage driver")])
def test_run_failures_of_minirun_itself_exit_125(mr: Minirun, env: Env, args: tuple[str, ...], text: str) -> None:
    r = mr(*(a.format(plain=env.plain.host) for a in args))
    assert r.returncode == 125, (args, r.stderr)
    assert r.stderr.splitlines()[-1].startswith("minirun: ") and text in r.stderr, (args, r.stderr)


def test_the_programs_own_codes_are_never_remapped(mr: Minirun) -> None:
    for code in (1, 2, 3):  # minirun's own failure codes elsewhere; a program's here
        assert mr("run", "--rm", "busybox", "sh", "-c", f"exit {code}").returncode == code


def test_ps_rm_and_names(mr: Minirun) -> None:
    assert sh(mr, "true").returncode == 0
    assert mr("run", "--name", "first", "busybox", "sh", "-c", "exit 3").returncode == 3
    r = mr("run", "--name", "first", "busybox", "true")
    assert r.returncode == 125 and 'the container name "first" is already in use' in r.stderr
    r = mr("run", "--name", "-bad name", "busybox", "true")
    assert r.returncode == 125 and 'invalid container name "-bad name"' in r.stderr
    table = mr("ps", "-a").stdout.splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert "Exited (3)" in table[1] and table[1].endswith("first") and '"sh -c exit 3"' in table[1]
    assert mr("ps").stdout.splitlines()[1:] == []  # nothing running
    [row] = [json.loads(line) for line in mr("ps", "-a", "--format", "json").stdout.splitlines()]
    assert (row["Names"], row["State"], row["ExitCode"], row["Image"]) == ("first", "exited", 3, "busybox")

    r = mr("rmi", "busybox")
    assert r.returncode == 1 and "conflict: unable to remove image" in r.stderr and row["ID"] in r.stderr
    assert (mr("rm", "first").returncode, mr("ps", "-a", "-q").stdout) == (0, "")
    assert mr("rm", "first").stderr == "minirun: No such container: first\n"


def test_running_container_ps_rm_f_and_killed_monitor(mr: Minirun) -> None:
    assert sh(mr, "true").returncode == 0
    p = mr.popen("run", "--name", "sleeper", "--pids-limit", "100", "busybox", "sleep", "60")
    deadline = time.monotonic() + 20
    while "sleeper" not in mr("ps").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "Up " in mr("ps").stdout
    r = mr("rm", "sleeper")
    assert r.returncode == 1 and "cannot remove running container" in r.stderr
    # minirun itself killed: its container dies with it and is shown as exited, not running forever.
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-f", "^sleep 60$"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the container outlived minirun"
        time.sleep(0.1)
    assert "Exited (255)" in mr("ps", "-a").stdout and mr("ps").stdout.splitlines()[1:] == []  # code unknown, as Docker
    [state] = [json.loads((d / "state.json").read_text()) for d in (mr.root / "containers").iterdir()]
    assert any(d.exists() for d in _cgroup_dirs(state["id"]))  # nobody was left to remove it...
    assert mr("rm", "sleeper").returncode == 0
    assert not any(d.exists() for d in _cgroup_dirs(state["id"]))  # ...until rm
    # rm -f on a running one.
    p = mr.popen("run", "--name", "sleeper2", "busybox", "sleep", "60")
    while "sleeper2" not in mr("ps").stdout and time.monotonic() < deadline + 20:
        time.sleep(0.1)
    assert mr("rm", "-f", "sleeper2").returncode == 0
    assert p.wait(10) == 137
    assert "sleeper2" not in mr("ps", "-a").stdout


def test_volumes_tmpfs_and_read_only(mr: Minirun, tmp_path: Path) -> None:
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in").write_text("from host\n")
    r = sh(mr, "cat /data/in; echo from container > /data/out", "-v", f"{host}:/data")
    assert (r.returncode, r.stdout) == (0, "from host\n"), r.stderr
    assert (host / "out").read_text() == "from container\n"
    r = sh(mr, "cat /data/in; touch /data/nope", "-v", f"{host}:/data:ro")
    assert r.returncode != 0 and r.stdout == "from host\n" and "Read-only file system" in r.stderr
    assert not (host / "nope").exists()
    # A file, and a path through .. that must stay inside the container.
    r = sh(mr, "cat /etc/injected; ls /tmp/escape", "-v", f"{host}/in:/etc/injected:ro",
           "-v", f"{host}:/../../tmp/escape")
    assert r.stdout.splitlines() == ["from host", "in", "out"], r.stderr
    assert not Path("/tmp/escape").exists()
    r = sh(mr, "touch /x", "--read-only")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    r = sh(mr, "touch /scratch/ok && grep /scratch /proc/mounts", "--read-only", "--tmpfs", "/scratch")
    assert r.returncode == 0 and "tmpfs /scratch tmpfs rw,nosuid,nodev,noexec" in r.stdout, r.stderr


# ("relative:/data" and "/path" alone are volumes since issue 26: a named and an anonymous one)
@pytest.mark.parametrize("bad", ["rel/ative:/data", "{host}:data", "{host}:/data:rx", "{host}:/", "x:/data"])
def test_bad_volumes_are_refused_before_anything(mr: Minirun, tmp_path: Path, bad: str) -> None:
    r = mr("run", "--rm", "-v", bad.format(host=tmp_path), "busybox", "true")
    assert r.returncode == 125 and "invalid volume" in r.stderr, bad
    assert mr("ps", "-a", "-q").stdout == "" and mr.blobs() == set()  # refused before any pull or container


def caps_of(out: str) -> dict[str, int]:
    return {k: int(v, 16) for k, v in (line.split(":\t") for line in out.splitlines() if line.startswith("Cap"))}


def test_capabilities_like_docker(mr: Minirun) -> None:
    from minirun.runtime.caps import DEFAULT, NUMBER, mask
    ours = caps_of(Path("/proc/self/status").read_text())["CapBnd"]  # all that --privileged can give
    read = "grep ^Cap /proc/self/status"
    r = sh(mr, read)
    assert r.returncode == 0, r.stderr
    c = caps_of(r.stdout)
    assert c["CapEff"] == c["CapPrm"] == c["CapBnd"] == mask(DEFAULT) == 0xA80425FB  # Docker's default set
    c = caps_of(sh(mr, read, "--privileged").stdout)
    assert c["CapEff"] == c["CapBnd"] == ours
    c = caps_of(sh(mr, read, "--cap-drop", "NET_RAW", "--cap-add", "cap_sys_admin").stdout)
    assert c["CapEff"] == mask(DEFAULT) - (1 << NUMBER["NET_RAW"]) + (1 << NUMBER["SYS_ADMIN"])
    c = caps_of(sh(mr, read, "--cap-drop", "ALL", "--cap-add", "CHOWN").stdout)
    assert c["CapEff"] == 1 << NUMBER["CHOWN"]
    c = caps_of(sh(mr, read, "-u", "nobody").stdout)
    assert (c["CapEff"], c["CapBnd"]) == (0, mask(DEFAULT))  # a user other than root has none in effect
    # What it means: without CAP_SYS_ADMIN no mount; without CHOWN no chown.
    r = sh(mr, "mkdir /m && mount -t tmpfs none /m")
    assert r.returncode != 0 and "permission denied" in r.stderr  # EPERM, in busybox's words
    assert sh(mr, "touch /f && chown 5 /f", "--cap-drop", "CHOWN").returncode != 0
    assert sh(mr, "mkdir -p /m && mount -t tmpfs none /m", "--privileged").returncode == 0
    assert sh(mr, "ls /sys/firmware >/dev/null", "--privileged").returncode == 0
    r = mr("run", "--rm", "--cap-add", "CAP_NOPE", "busybox", "true")
    assert r.returncode == 125 and 'unknown capability: "CAP_NOPE"' in r.stderr


def _cgroup_dirs(container_id: str) -> list[Path]:
    from minirun.runtime.cgroups import ROOT, version
    name = Path(CGROUP_PARENT) / container_id
    return [ROOT / name] if version() == 2 else [ROOT / c / name for c in ("memory", "pids", "cpu")]


def test_memory_limit_ends_with_137_and_cgroups_are_removed(mr: Minirun) -> None:
    assert sh(mr, "true").returncode == 0
    r = mr("run", "--rm", "--memory", "32m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    assert r.returncode == 137, r.stderr
    assert mr("run", "--rm", "--memory", "32m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=8M",
              "count=1").returncode == 0  # within the limit
    r = mr("run", "--rm", "--memory", "lots", "busybox", "true")
    assert r.returncode == 125 and 'invalid --memory "lots"' in r.stderr


def test_pids_limit_stops_a_fork_bomb(mr: Minirun) -> None:
    r = sh(mr, "for i in $(seq 50); do sleep 3 & done; wait", "--pids-limit", "10")
    assert "can't fork" in r.stderr


def test_the_container_sees_its_own_cgroup_read_only(mr: Minirun) -> None:
    """As Docker: /sys/fs/cgroup holds the container's own cgroup, read-only, where runtimes
    read their limits (v2: cgroup2 at its root; v1: a mount per controller it has)."""
    from minirun.runtime.cgroups import version
    read = ("cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max" if version() == 2 else
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
    r = sh(mr, f"{read}; touch /sys/fs/cgroup/x; mkdir /sys/fs/cgroup/y", "--memory", "64m", "--pids-limit", "20")
    assert r.stdout.split() == [str(64 << 20), "20"], r
    assert r.stderr.count("Read-only file system") == 2, r.stderr
    # Its cgroup is the root it sees: nothing of the host's tree (no other container, no parent).
    r = sh(mr, "cat /proc/self/cgroup; ls /sys/fs/cgroup" + ("" if version() == 2 else "/devices"))
    assert all(line.endswith(":/") for line in r.stdout.splitlines() if line.count(":") == 2 and "devices" in line)
    assert CGROUP_PARENT not in r.stdout and "minirun" not in r.stdout, r.stdout


def test_limits_are_set_while_running_and_removed_after(mr: Minirun) -> None:
    from minirun.runtime.cgroups import version
    assert sh(mr, "true").returncode == 0
    p = mr.popen("run", "--name", "limited", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "20",
                 "busybox", "sleep", "30")
    deadline = time.monotonic() + 20
    while "limited" not in mr("ps").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    [row] = [json.loads(line) for line in mr("ps", "--format", "json").stdout.splitlines()]
    [state] = [json.loads((d / "state.json").read_text()) for d in (mr.root / "containers").iterdir()]
    dirs = _cgroup_dirs(state["id"])
    if version() == 2:
        d = dirs[0]
        assert (d / "memory.max").read_text().strip() == str(64 << 20)
        assert (d / "cpu.max").read_text().split() == ["50000", "100000"]
        assert (d / "pids.max").read_text().strip() == "20"
    else:
        assert (dirs[0] / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (dirs[2] / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (dirs[1] / "pids.max").read_text().strip() == "20"
    assert str(state["pid"]) in (dirs[0] / "cgroup.procs").read_text().split()
    assert row["Names"] == "limited"
    assert mr("rm", "-f", "limited").returncode == 0
    assert p.wait(10) == 137
    assert not any(d.exists() for d in dirs)


def _zombies_under(host_pid: int) -> int:
    out = subprocess.run(["ps", "-eo", "ppid=,stat="], capture_output=True, text=True).stdout.split("\n")
    return sum(1 for line in out if line.split() and int(line.split()[0]) == host_pid and "Z" in line.split()[1])


def _pid1(mr: Minirun, name: str) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for d in (mr.root / "containers").iterdir():
            try:
                state = json.loads((d / "state.json").read_text())
            except FileNotFoundError:
                continue  # a container directory made a moment before its state
            if state["name"] == name and state["pid"]:
                return int(state["pid"])
        time.sleep(0.05)
    raise AssertionError(f"container {name} did not start")


def test_init_reaps_orphans_and_passes_codes(mr: Minirun) -> None:
    assert sh(mr, "true").returncode == 0
    orphan = "(sleep 0.2 &); exec sleep 2"  # the orphaned sleep is handed to PID 1
    p = mr.popen("run", "--rm", "--name", "no-init", "busybox", "sh", "-c", orphan)
    pid1 = _pid1(mr, "no-init")
    time.sleep(1)
    assert _zombies_under(pid1) == 1  # `sleep` as PID 1 never reaps it
    p.wait(10)
    p = mr.popen("run", "--rm", "--init", "--name", "with-init", "busybox", "sh", "-c", orphan)
    pid1 = _pid1(mr, "with-init")
    time.sleep(1)
    assert _zombies_under(pid1) == 0
    assert p.wait(10) == 0
    assert sh(mr, "echo $$; exit 5", "--init").stdout == "2\n"
    assert sh(mr, "exit 5", "--init").returncode == 5
    r = mr("run", "--rm", "--init", "busybox", "nosuch")
    assert r.returncode == 127 and "executable file not found" in r.stderr
    p = mr.popen("run", "--rm", "--init", "busybox", "sh", "-c", 'trap "exit 9" TERM; echo ready; sleep 30 & wait')
    assert p.stdout is not None and p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 9


def test_program_starts_with_default_signal_dispositions(mr: Minirun) -> None:
    """Python ignores SIGPIPE and SIGXFSZ; none of that may reach the program."""
    for flags in ((), ("--init",)):
        # grep itself, not through sh: busybox sh ignores SIGQUIT for what it starts.
        r = mr("run", "--rm", *flags, "busybox", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status")
        assert r.stdout.split() == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"], r.stderr
    r = sh(mr, "yes | head -n 2")
    assert (r.returncode, r.stdout) == (0, "y\ny\n")


def test_tty_in_a_script(mr: Minirun) -> None:
    """-t without a terminal on minirun's side (a script): still a terminal inside."""
    r = sh(mr, "tty; stty size; stat -c %U:%g /dev/pts/0 2>/dev/null || ls -l /dev/pts/0; exit 4", "-t")
    assert r.returncode == 4
    lines = r.stdout.splitlines()  # (text mode has already turned the terminal's \r\n into \n)
    assert lines[:3] == ["/dev/pts/0", "24 80", "root:5"], r.stderr
    # -it with a pipe for stdin: Docker refuses it (issue 25, defect 10); -it on a real terminal
    # is test_tty_on_a_terminal_sizes_and_restores_it.
    r = mr("run", "--rm", "-it", "busybox", "sh", input=b"echo hi from input\nexit 3\n")
    assert (r.returncode, r.stderr) == (1, "minirun: the input device is not a TTY\n"), r


def test_tty_on_a_terminal_sizes_and_restores_it(mr: Minirun, tmp_path: Path) -> None:
    """Under a real pty: the container sees our size and a change of it; raw mode is undone."""
    import pty
    import struct
    import termios

    assert sh(mr, "true").returncode == 0
    probe = tmp_path / "probe.py"
    argv = mr.argv("run", "--rm", "-it", "busybox", "sh", "-c", "stty size; read x; stty size")
    probe.write_text(
        "import subprocess, sys, termios\n"
        "before = termios.tcgetattr(0)\n"
        f"r = subprocess.run({argv!r})\n"
        "print('EXIT', r.returncode, 'RESTORED' if termios.tcgetattr(0) == before else 'CHANGED', flush=True)\n")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sys.executable, [sys.executable, str(probe)], mr.env())
    import fcntl
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    out = b""

    def read_until(marker: bytes) -> None:
        nonlocal out
        deadline = time.monotonic() + 30
        while marker not in out and time.monotonic() < deadline:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break

    read_until(b"33 111")
    # Resizing our terminal makes the kernel send SIGWINCH to its foreground group: minirun.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    time.sleep(0.3)
    os.write(fd, b"\n")
    read_until(b"RESTORED")
    os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert "33 111" in text and "40 120" in text, text
    assert "EXIT 0 RESTORED" in text, text


def test_supplementary_groups_from_the_images_group_file(mr: Minirun, env: Env) -> None:
    """As Docker (its answers, recorded with the same /etc/group): the primary group and the
    groups that list the user are set, for the image's user and for -u; with -u USER:GROUP,
    that group alone."""
    from tests.support import images as test_images
    from tests.support.layers import E, tar_bytes
    layer = tar_bytes([E("etc/group", data=b"root:x:0:\nwheel:x:10:root\naudio:x:29:nobody,root\n"
                                        b"nogroup:x:65534:\n")])
    test_images.push(test_images.crafted("library/grouped", layer), env.plain.host)
    r = mr("run", "--rm", "grouped", "sh", "-c", "id; grep Groups /proc/self/status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "uid=0(root) gid=0(root) groups=0(root),10(wheel),29(audio)", r.stdout
    r = mr("run", "--rm", "-u", "nobody", "grouped", "id")
    assert r.stdout.strip() == "uid=65534(nobody) gid=65534(nogroup) groups=29(audio),65534(nogroup)", r.stdout
    r = mr("run", "--rm", "-u", "root:wheel", "grouped", "grep", "Groups", "/proc/self/status")
    assert r.stdout.split() == ["Groups:", "10"], r.stdout
