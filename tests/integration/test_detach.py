"""Containers that outlive the command (issue 12, first part): run -d with its monitor,
json-file logs, stop, kill, wait; as root, with the busybox test image."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

from tests.integration.conftest import CGROUP_PARENT, Minirun, created, until


def _detach(mr: Minirun, *args: str) -> str:
    start = time.monotonic()
    r = mr("run", "-d", *args)
    assert r.returncode == 0 and r.stderr == "", r
    assert re.fullmatch(r"[0-9a-f]{64}\n", r.stdout), r.stdout
    assert time.monotonic() - start < 10
    return r.stdout.strip()


def _state(mr: Minirun, cid: str) -> dict[str, object]:
    return dict(json.loads((mr.root / "containers" / cid / "state.json").read_text()))


def _gone(mr: Minirun, cid: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while (mr.root / "containers" / cid).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not (mr.root / "containers" / cid).exists()


def test_a_detached_container_outlives_the_command(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    cid = _detach(mr, "--name", "svc", "busybox", "sh", "-c", "echo started; exec sleep 30")
    ps = mr("ps").stdout
    assert "svc" in ps and " Up " in ps, ps
    monitor = int(str(_state(mr, cid)["monitor"]))
    assert os.getsid(monitor) == monitor  # a session of its own, not the caller's
    deadline = time.monotonic() + 10
    while (r := mr("logs", "svc")).stdout != "started\n" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (r.returncode, r.stdout, r.stderr) == (0, "started\n", "")
    start = time.monotonic()
    r = mr("stop", "-t", "1", "svc")  # sleep as PID 1 ignores SIGTERM, as under Docker: killed after 1 s
    took = time.monotonic() - start
    assert (r.returncode, r.stdout) == (0, "svc\n") and 1 <= took < 8, (r, took)
    assert mr("wait", "svc").stdout == "137\n"
    assert "Exited (137)" in mr("ps", "-a").stdout
    assert mr("rm", "svc").returncode == 0


def test_logs_keep_streams_order_and_times(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    cid = _detach(mr, "busybox", "sh", "-c", "echo one; echo two >&2; echo three; sleep 1; echo four")
    r = mr("logs", "-f", cid[:12], timeout=30)  # returns when the container exits
    assert (r.returncode, r.stdout, r.stderr) == (0, "one\nthree\nfour\n", "two\n"), r
    lines = [json.loads(x) for x in (mr.root / "containers" / cid / f"{cid}-json.log").read_text().splitlines()]
    # Each stream in its order (two pipes, as under Docker: their interleaving is the kernel's).
    assert [x["log"] for x in lines if x["stream"] == "stdout"] == ["one\n", "three\n", "four\n"]
    assert [x["log"] for x in lines if x["stream"] == "stderr"] == ["two\n"] and len(lines) == 4
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", x["time"]) for x in lines)
    assert mr("logs", "--tail", "1", cid).stdout == "four\n"
    assert re.fullmatch(r"\S+Z four\n", mr("logs", "-n", "1", "-t", cid).stdout)
    assert mr("wait", cid).stdout == "0\n"
    four = lines[-1]["time"]  # a second after the others
    assert mr("logs", "--since", four, cid).stdout == "four\n"
    r = mr("logs", "--until", four, cid)
    assert (r.stdout, r.stderr) == ("one\nthree\n", "two\n")
    assert mr("logs", "--since", "10m", "--until", "0s", cid).stdout == "one\nthree\nfour\n"
    assert mr("logs", "--since", str(int(time.time()) + 60), cid).stdout == ""
    r = mr("logs", "--since", "yesterday", cid)
    assert r.returncode != 0 and r.stderr.count("\n") == 1 and 'invalid --since "yesterday"' in r.stderr


def test_stop_kill_and_wait(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    trap = "trap 'echo bye; exit 3' TERM; while true; do sleep 0.1; done"
    cid = _detach(mr, "--name", "trapper", "busybox", "sh", "-c", trap)
    time.sleep(0.5)  # the trap is set
    start = time.monotonic()
    assert mr("stop", "trapper").returncode == 0 and time.monotonic() - start < 5
    assert mr("wait", "trapper").stdout == "3\n"
    assert mr("logs", "trapper").stdout == "bye\n"
    r = mr("kill", "trapper")
    assert (r.returncode, r.stderr) == (1, "minirun: cannot kill container trapper: it is not running\n")
    usr1 = "trap 'echo usr1; exit 5' USR1; while true; do sleep 0.1; done"
    _detach(mr, "--name", "usr1", "--stop-signal", "SIGUSR1", "busybox", "sh", "-c", usr1)
    time.sleep(0.5)
    assert mr("stop", "usr1").returncode == 0 and mr("wait", "usr1").stdout == "5\n"
    assert mr("inspect", "-f", "{{.Config.StopSignal}}", "usr1").stdout == "SIGUSR1\n"
    r = mr("run", "--stop-signal", "SIGNOPE", "busybox", "true")
    assert r.returncode == 125 and 'invalid signal "SIGNOPE"' in r.stderr
    _detach(mr, "--name", "victim", "busybox", "sleep", "30")
    assert mr("kill", "victim").stdout == "victim\n"
    assert mr("wait", "victim").stdout == "137\n"
    r = mr("stop", "nosuch")
    assert (r.returncode, r.stderr) == (1, "minirun: No such container: nosuch\n")
    assert mr("rm", "trapper", "victim", "usr1").returncode == 0 and not (mr.root / "containers" / cid).exists()


def test_detached_with_rm_and_failures(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    cid = _detach(mr, "--rm", "busybox", "true")
    assert _gone(mr, cid)
    r = mr("run", "-d", "busybox", "nosuchcmd")
    assert (r.returncode, r.stdout) == (127, ""), r
    assert r.stderr == 'minirun: exec: "nosuchcmd": executable file not found in $PATH\n'
    assert "Exited (127)" in mr("ps", "-a").stdout
    cid = _detach(mr, "-i", "--stop-timeout", "1", "busybox", "sh")  # stdin open, as Docker's -d -i: sh waits
    time.sleep(1)
    assert mr("exec", cid, "ps", "-o", "comm").stdout.split() == ["COMMAND", "sh", "ps"]
    start = time.monotonic()
    assert mr("stop", cid).returncode == 0 and 1 <= time.monotonic() - start < 8  # PID 1 sh ignores TERM
    cid = _detach(mr, "-t", "busybox", "sh", "-c", "tty; echo to-stderr >&2")  # the monitor holds the terminal
    assert mr("wait", cid).stdout == "0\n"
    logged = [json.loads(x) for x in (mr.root / "containers" / cid / f"{cid}-json.log").read_text().splitlines()]
    assert [(x["stream"], x["log"]) for x in logged] == [("stdout", "/dev/pts/0\r\n"), ("stdout", "to-stderr\r\n")]


def test_foreground_runs_are_logged(mr: Minirun, tmp_path: Path) -> None:
    """As in Docker: a foreground run's output reaches the caller and its log; a pipe closed
    by the reader still ends the writer; --log-driver none passes the streams as they are."""
    assert mr("pull", "-q", "busybox").returncode == 0
    r = mr("run", "--name", "fg", "busybox", "sh", "-c", "echo out; echo err >&2; echo more; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\nmore\n", "err\n"), r
    r = mr("logs", "fg")
    assert (r.returncode, r.stdout, r.stderr) == (0, "out\nmore\n", "err\n"), r
    r = mr("run", "-t", "--name", "fgt", "busybox", "sh", "-c", "echo on-the-terminal")
    cid = mr("ps", "-aq", "--no-trunc", "--filter", "name=fgt").stdout.strip()
    log = (mr.root / "containers" / cid / f"{cid}-json.log").read_text()
    assert r.returncode == 0 and json.loads(log)["log"] == "on-the-terminal\r\n", (r, log)
    # `| head -1`: the container's pipe is closed with ours, so an endless writer ends.
    out = tmp_path / "out"
    script = f"{shlex.join(mr.argv('run', '--rm', 'busybox', 'sh', '-c', 'while echo y; do :; done'))} | head -1"
    r2 = subprocess.run(["bash", "-c", script], env=mr.env(), capture_output=True, text=True, timeout=60)
    assert r2.stdout == "y\n", r2
    for driver, fd1 in (("json-file", "pipe:"), ("none", "pipe:")):  # never the caller's own file (issue 22)
        with out.open("w") as f:
            p = subprocess.run(mr.argv("run", "--rm", "--log-driver", driver, "busybox", "ls", "-l", "/proc/self/fd/1"),
                               env=mr.env(), stdout=f, timeout=60)
        assert p.returncode == 0 and f"-> {fd1}" in out.read_text(), out.read_text()
    assert mr("run", "--name", "quiet", "--log-driver", "none", "busybox", "true").returncode == 0
    r = mr("logs", "quiet")
    assert r.returncode == 1 and r.stderr == ("minirun: container quiet: configured logging driver does not "
                                              "support reading (--log-driver none)\n")
    for bad, said in ((("--log-driver", "syslog"), 'invalid --log-driver "syslog"'),
                      (("--log-driver", "none", "--log-opt", "max-size=1m"), "--log-opt needs")):
        r = mr("run", "--rm", *bad, "busybox", "true")
        assert r.returncode == 125 and said in r.stderr, r
    assert mr("rm", "fg", "fgt", "quiet").returncode == 0


def test_a_killed_monitor_shows_exited_and_rm_cleans_up(mr: Minirun) -> None:
    """Its exit code was never recorded: Docker's 255 with the reason, never "running"; it can
    start again, and rm cleans up."""
    assert mr("pull", "-q", "busybox").returncode == 0
    cid = _detach(mr, "--name", "orphan", "busybox", "sh", "-c", "echo run >> /runs; exec sleep 30")
    # run -d returns once the program is exec'd (as Docker's), not once it has run its first
    # command: the monitor is killed after the first run has written, so that two are counted.
    until("the first run's line", lambda: mr("exec", "orphan", "cat", "/runs").stdout == "run\n")
    state = _state(mr, cid)
    os.kill(int(str(state["monitor"])), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while "Exited (255)" not in mr("ps", "-a").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert not Path(f"/proc/{state['pid']}").exists() or "Z" in Path(f"/proc/{state['pid']}/stat").read_text()
    r = mr("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", "orphan")
    assert r.stdout == "exited 255 its monitor ended before it did: the exit code is unknown\n", r
    assert mr("wait", "orphan").stdout == "255\n"
    assert mr("start", "orphan").returncode == 0
    until("the second run's line", lambda: mr("exec", "orphan", "cat", "/runs").stdout == "run\nrun\n", 10)
    r = mr("exec", "orphan", "cat", "/runs")
    assert (r.returncode, r.stdout) == (0, "run\nrun\n"), r
    assert mr("inspect", "--format", "{{.State.Error}}", "orphan").stdout == "\n"
    assert mr("rm", "-f", "orphan").returncode == 0 and not (mr.root / "containers" / cid).exists()


def test_twenty_detached_started_and_stopped_at_once(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    starts = [mr.popen("run", "-d", "busybox", "sleep", "60") for _ in range(20)]
    ids = []
    for p in starts:
        out, errors = p.communicate(timeout=120)
        assert p.returncode == 0, errors
        ids.append(out.strip())
    assert len(set(ids)) == 20 and mr("ps", "-q").stdout.count("\n") == 20
    monitors = [int(str(_state(mr, cid)["monitor"])) for cid in ids]
    shared = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)  # 20 IDs, 16 digits
    r = mr("stop", shared)
    assert (r.returncode, r.stderr) == (1, f'minirun: multiple containers match "{shared}": give more of the ID\n')
    stops = [mr.popen("stop", "-t", "1", cid) for cid in ids]
    for p in stops:
        p.communicate(timeout=60)
        assert p.returncode == 0
    assert mr("ps", "-q").stdout == ""
    assert mr("rm", *ids).returncode == 0
    assert mr("ps", "-a", "-q").stdout == ""
    deadline = time.monotonic() + 10
    while (alive := [p for p in monitors if Path(f"/proc/{p}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive == [], alive  # every monitor has ended


def test_exec_joins_the_running_container(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    cid = _detach(mr, "--name", "host1", "-h", "inside", "-e", "FROM_RUN=yes", "-w", "/tmp", "busybox", "sh", "-c",
                  "echo marker > /tmp/made-by-pid1; exec sleep 60")
    deadline = time.monotonic() + 10
    while not (mr.root / "containers" / cid / "upper" / "tmp" / "made-by-pid1").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = mr("exec", "host1", "sh", "-c", "hostname; pwd; cat /tmp/made-by-pid1; cat /proc/1/cmdline | tr '\\0' ' '; "
           "echo; echo $FROM_RUN $EXTRA; id -u")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "inside\n/tmp\nmarker\nsleep 60 \nyes\n0\n", r.stdout
    r = mr("exec", "-e", "EXTRA=more", "-u", "nobody", "-w", "/", "host1", "sh", "-c", "echo $EXTRA; id -un; pwd")
    assert (r.returncode, r.stdout) == (0, "more\nnobody\n/\n"), r.stderr
    run_ns = {ns: os.readlink(f"/proc/{_state(mr, cid)['pid']}/ns/{ns}") for ns in ("net", "mnt", "uts", "pid")}
    r = mr("exec", "host1", "sh", "-c", "for n in net mnt uts pid; do readlink /proc/self/ns/$n; done")
    assert r.stdout.split() == [run_ns[n] for n in ("net", "mnt", "uts", "pid")], (r.stdout, run_ns)
    assert mr("exec", "host1", "sh", "-c", "exit 7").returncode == 7
    r = mr("exec", "host1", "nosuchcmd")  # 126, as docker exec (run says 127)
    assert (r.returncode, r.stderr) == (126, 'minirun: exec: "nosuchcmd": executable file not found in $PATH\n')
    assert mr("exec", "host1", "/etc/passwd").returncode == 126
    # -t: a terminal of the container's devpts, owned by the user it runs as; -i feeds it.
    r = mr("exec", "-t", "host1", "sh", "-c", "tty; stty size; exit 6")
    assert r.returncode == 6 and re.fullmatch(r"/dev/pts/\d+\n24 80\n", r.stdout), r
    r = mr("exec", "-it", "-u", "nobody", "host1", "sh", "-c", "stat -c %U $(tty); read x; echo got $x",
           input=b"typed\n")
    lines = r.stdout.splitlines()  # with the terminal's echo of "typed" somewhere
    assert r.returncode == 0 and "nobody" in lines and lines[-1] == "got typed", r
    # What the joining process was (minirun, with its environment) is out of the container's reach.
    r = mr("exec", "host1", "sh", "-c", "grep -c CapEff /proc/self/status; grep CapEff /proc/1/status")
    assert r.returncode == 0 and r.stdout.split()[-1] == "00000000a80425fb", r.stdout  # Docker's default set
    assert mr("stop", "-t", "1", "host1").returncode == 0
    r = mr("exec", "host1", "true")
    assert (r.returncode, r.stderr) == (1, "minirun: container host1 is not running\n")
    r = mr("exec", "nosuch", "true")
    assert (r.returncode, r.stderr) == (1, "minirun: No such container: nosuch\n")
    assert mr("rm", "host1").returncode == 0


def test_inspect_and_ps_filters(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    cid = _detach(mr, "--name", "probe1", "-e", "K=V", "-v", "/etc:/host-etc:ro", "busybox", "sleep", "60")
    assert mr("run", "--name", "done1", "busybox", "sh", "-c", "exit 4").returncode == 4
    r = mr("inspect", "probe1", "busybox")
    assert r.returncode == 0, r.stderr
    container, image = json.loads(r.stdout)
    assert (container["Id"], container["Name"], container["State"]["Status"], container["State"]["Running"]) == \
        (cid, "/probe1", "running", True)
    assert container["State"]["Pid"] == _state(mr, cid)["pid"] and "K=V" in container["Config"]["Env"]
    assert container["Config"]["Cmd"] == ["sleep", "60"] and container["Image"] == image["Id"]
    assert container["Mounts"] == [{"Type": "bind", "Source": "/etc", "Destination": "/host-etc", "Mode": "ro",
                                    "RW": False, "Propagation": "rprivate"}]
    assert container["HostConfig"]["Binds"] == ["/etc:/host-etc:ro"]
    assert image["RepoTags"] == ["busybox:latest"] and image["Id"].startswith("sha256:")
    assert image["RepoDigests"][0].startswith("busybox@sha256:") and image["RootFS"]["Layers"]
    assert mr("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "done1").stdout == "exited 4\n"
    assert mr("inspect", "-f", "{{json .Config.Cmd}}", "probe1").stdout == '["sleep","60"]\n'  # Go's encoder
    r = mr("inspect", "-f", "{{range .Config.Env}}{{if eq . \"K=V\"}}{{.}}{{end}}{{end}}", "probe1")
    assert (r.returncode, r.stdout) == (0, "K=V\n"), r  # Go's text/template (issue 29)
    r = mr("inspect", "-f", "{{nosuch .}}", "probe1")
    assert (r.returncode, r.stdout) == (1, "") and 'function "nosuch" not defined' in r.stderr, r
    r = mr("inspect", "nosuch")
    assert (r.returncode, r.stderr) == (1, "minirun: No such object: nosuch\n")
    assert mr("ps", "--filter", "status=exited", "--format", "{{.Names}}").stdout == "done1\n"
    assert mr("ps", "--filter", "name=probe", "-q").stdout == cid[:12] + "\n"
    assert sorted(mr("ps", "-a", "--format", "{{.Names}}\\t{{.State}}").stdout.splitlines()) == \
        ["done1\texited", "probe1\trunning"]
    r = mr("ps", "--filter", "colour=red")
    assert r.returncode == 1 and "invalid --filter" in r.stderr
    assert mr("rm", "-f", "probe1", "done1").returncode == 0


def test_the_cli_ended_after_creation_leaves_the_container_running(mr: Minirun) -> None:
    """Issue 25, defect 1: once the container exists, nothing that happens to the CLI ends it
    (its monitor told a CLI that was gone, EPIPE, and recorded 125). A SIGINT or SIGHUP the
    CLI outlives: it still says what became of the container (its ID)."""
    assert mr("pull", "-q", "busybox").returncode == 0
    for sig in (signal.SIGKILL, signal.SIGHUP, signal.SIGINT):
        name = f"survivor{int(sig)}"
        p = mr.popen("run", "-d", "--name", name, "busybox", "sleep", "1000")
        directory = created(mr, name)
        os.kill(p.pid, sig)
        out, err = p.communicate(timeout=30)
        time.sleep(0.5)
        state = _state(mr, directory.name)
        assert state["status"] == "running" and os.path.exists(f"/proc/{state['pid']}"), (sig, state, err)
        if sig != signal.SIGKILL:  # handled: the CLI waited for the start and says it as ever
            assert (p.returncode, out.strip(), err) == (0, directory.name, ""), (sig, p.returncode, out, err)
        assert mr("rm", "-f", name).returncode == 0


def test_a_ctrl_c_once_the_container_exists_is_the_containers(mr: Minirun) -> None:
    """Issue 25, defect 1 (the foreground part): a SIGINT to the command's process group the
    moment the container exists (before its process does) is held for the program, which as
    PID 1 without a handler ignores it: the run ends as the program does, never "interrupted"
    with a container left behind."""
    assert mr("pull", "-q", "busybox").returncode == 0
    for i in range(8):
        name = f"held{i}"
        p = subprocess.Popen(mr.argv("run", "--rm", "--name", name, "busybox", "sh", "-c", "sleep 0.2; exit 3"),
                             env=mr.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             process_group=0)
        created(mr, name)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert (p.returncode, err) == (3, ""), (i, p.returncode, err)
    assert mr("ps", "-aq").stdout == ""


def test_a_pid_without_its_start_time_is_nobody(mr: Minirun) -> None:
    """Issue 25, defect 12: a state whose PIDs have no start times (written before they were
    recorded, or damaged) is never trusted: not shown as running, and rm -f signals nobody,
    whatever process has that PID now."""
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("run", "--name", "old", "busybox", "true").returncode == 0
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        directory = created(mr, "old")
        state = _state(mr, directory.name)
        state.update(status="running", pid=stranger.pid, pid_start=None, monitor=stranger.pid, monitor_start=None)
        (directory / "state.json").write_text(json.dumps(state))
        assert "Up" not in mr("ps", "-a", "--filter", "name=old").stdout
        assert mr("rm", "-f", "old").returncode == 0
        time.sleep(0.2)
        assert stranger.poll() is None  # still alive: never taken for the container
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_says_when_it_saw_no_end(mr: Minirun) -> None:
    """Issue 25, defect 5: with its monitor stopped (SIGSTOP), no end is recorded even after
    SIGKILL: stop fails with a line saying so (it printed the name and exited 0)."""
    assert mr("pull", "-q", "busybox").returncode == 0
    cid = _detach(mr, "--name", "frozen", "busybox", "sleep", "1000")
    monitor = int(str(_state(mr, cid)["monitor"]))
    os.kill(monitor, signal.SIGSTOP)
    try:
        r = mr("stop", "-t", "1", "frozen")
        assert (r.returncode, r.stdout) == (1, ""), r
        assert "still running" in r.stderr and "has not recorded its end" in r.stderr, r
    finally:
        os.kill(monitor, signal.SIGCONT)
    assert mr("rm", "-f", "frozen").returncode == 0


def test_times_say_when_it_ran(mr: Minirun) -> None:
    """Issue 25, defect 7 (its times): StartedAt is kept when the container exits (it was
    erased), and a started container is "Up" since it started, not since it was made."""
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("run", "--name", "timed", "busybox", "true").returncode == 0
    state = json.loads(mr("inspect", "timed").stdout)[0]["State"]
    assert state["StartedAt"] and state["StartedAt"] <= state["FinishedAt"], state
    assert mr("run", "-d", "--name", "later", "busybox", "sleep", "30").returncode == 0
    time.sleep(4.5)
    cid = mr("ps", "-q", "--no-trunc", "--filter", "name=later").stdout.strip()
    state = _state(mr, cid)
    assert state["started_at"], state
    assert mr("stop", "-t", "0", "later").returncode == 0
    assert mr("start", "later").returncode == 0
    up = mr("ps", "--format", "{{.Status}}", "--filter", "name=later").stdout.strip()
    # since its start (not "Up 4 seconds" or more: since it was made)
    assert up in ("Up Less than a second", "Up 1 second", "Up 2 seconds"), up
    assert mr("rm", "-f", "later", "timed").returncode == 0


def test_times_are_dockers_and_an_end_nobody_recorded_is_kept(mr: Minirun) -> None:
    """Issue 25, defect 7 (the rest): FinishedAt of a container whose monitor died was "now"
    on every read; times are Docker's: RFC 3339 with nanoseconds, 0001-01-01T00:00:00Z unset."""
    assert mr("pull", "-q", "busybox").returncode == 0
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
    cid = _detach(mr, "--name", "orphan", "busybox", "sleep", "60")
    state = json.loads(mr("inspect", "orphan").stdout)[0]
    assert stamp.fullmatch(state["Created"]) and stamp.fullmatch(state["State"]["StartedAt"]), state
    assert state["State"]["FinishedAt"] == "0001-01-01T00:00:00Z", state
    monitor = int(str(_state(mr, cid)["monitor"]))
    os.kill(monitor, signal.SIGKILL)  # its program dies with it (PDEATHSIG); nobody records the end
    deadline = time.monotonic() + 10
    while Path(f"/proc/{monitor}").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first = mr("inspect", "-f", "{{.State.FinishedAt}}", "orphan").stdout.strip()
    assert stamp.fullmatch(first), first
    time.sleep(1.2)
    r = mr("ps", "-a", "--format", "{{.Status}}", "--filter", "name=orphan")
    assert r.stdout.startswith("Exited (255)"), r
    assert mr("inspect", "-f", "{{.State.FinishedAt}}", "orphan").stdout.strip() == first  # not "now" again
    assert _state(mr, cid)["status"] == "exited" and _state(mr, cid)["finished"] == first
    assert mr("rm", "orphan").returncode == 0


def test_logs_follow_reads_through_rotation(mr: Minirun) -> None:
    """Issue 25, defect 4: logs -f lost lines at rotation (the rotated file's unread tail was
    never read). 3,000 numbered lines in bursts into a 10k log kept in two files: every one
    arrives, in order."""
    assert mr("pull", "-q", "busybox").returncode == 0
    script = "for i in $(seq 0 29); do seq $((i * 100 + 1)) $((i * 100 + 100)); sleep 0.25; done"
    cid = _detach(mr, "--name", "rotating", "--log-opt", "max-size=10k", "--log-opt", "max-file=2",
                  "busybox", "sh", "-c", script)
    r = mr("logs", "-f", cid[:12], timeout=60)
    got = [int(x) for x in r.stdout.split()]
    missing = sorted(set(range(1, 3001)) - set(got))
    assert got == sorted(got) and not missing, (len(got), missing[:20])
    assert mr("rm", "-f", "rotating").returncode == 0


def test_start_again_keeps_the_files(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    script = "echo run >> /count; wc -l < /count; exit 3"
    r = mr("run", "--name", "again", "-e", "K=kept", "busybox", "sh", "-c", script)
    assert (r.returncode, r.stdout) == (3, "1\n"), r
    r = mr("start", "-a", "again")
    assert (r.returncode, r.stdout) == (3, "2\n"), r  # its upper layer kept: the file has two lines
    assert mr("start", "again").stdout == "again\n"  # detached: in a monitor
    assert mr("wait", "again").stdout == "3\n"
    assert mr("start", "-a", "again").stdout == "4\n"
    cid = _detach(mr, "--name", "busy", "busybox", "sleep", "60")
    r = mr("start", "busy")  # as Docker: a running container's start is done already (issue 25, defect 10)
    assert (r.returncode, r.stdout, r.stderr) == (0, "busy\n", ""), r
    r = mr("start", "-a", "busy")
    assert r.returncode == 1 and "already running: start -a cannot attach" in r.stderr, r
    assert mr("exec", "busy", "true").returncode == 0
    first = _state(mr, cid)["pid"]
    assert mr("restart", "-t", "1", "busy").stdout == "busy\n"
    assert _state(mr, cid)["status"] == "running" and _state(mr, cid)["pid"] != first
    assert mr("rm", "-f", "busy", "again").returncode == 0 and not (mr.root / "containers" / cid).exists()


def test_start_brings_it_back_as_it_was_made(mr: Minirun, tmp_path: Path) -> None:
    """start reads nothing of the caller's again (issue 24's defect): not the variables -e K
    took, not the env files (changed, then gone), not MINIRUN_NETWORK."""
    assert mr("pull", "-q", "busybox").returncode == 0
    env_file = tmp_path / "env"
    env_file.write_text("FROM_FILE=first\n")
    script = "echo $FROM_CALLER $FROM_FILE; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"
    r = mr("run", "--name", "made", "-e", "FROM_CALLER", "--env-file", str(env_file), "busybox", "sh", "-c", script,
           FROM_CALLER="first", MINIRUN_NETWORK="none")
    assert (r.returncode, r.stdout) == (0, "first first\nlo\n"), r
    env_file.write_text("FROM_FILE=second\n")
    r = mr("start", "-a", "made", FROM_CALLER="second", MINIRUN_NETWORK="host")
    assert (r.returncode, r.stdout) == (0, "first first\nlo\n"), r
    env_file.unlink()
    r = mr("start", "-a", "made")
    assert (r.returncode, r.stdout) == (0, "first first\nlo\n"), r
    assert mr("rm", "made").returncode == 0


def test_a_container_an_older_minirun_made_starts_again(mr: Minirun) -> None:
    """A container of minirun before config.json (run.json beside a state.json holding its
    environment, user and stop settings) gets its config.json the first time it is needed,
    from what it kept, and starts as it was made."""
    assert mr("pull", "-q", "busybox").returncode == 0
    script = "echo $GREETING; id -u"
    r = mr("run", "--name", "older", "-e", "GREETING=hello", "-u", "nobody", "--stop-signal", "SIGINT",
           "busybox", "sh", "-c", script)
    assert (r.returncode, r.stdout) == (0, "hello\n65534\n"), r
    directory = next(d for d in (mr.root / "containers").iterdir()
                     if json.loads((d / "state.json").read_text())["name"] == "older")
    made = json.loads((directory / "config.json").read_text())
    (directory / "config.json").unlink()  # as 0.x left it: its settings in state.json and run.json
    state = json.loads((directory / "state.json").read_text())
    state.update(env=made["process"]["env"], workdir="/", user="nobody", capabilities=[0, 1], seccomp=True,
                 no_new_privileges=False, rlimits=[], stop_signal="SIGINT", stop_timeout=10,
                 cgroup_parent=CGROUP_PARENT, network="none")
    (directory / "state.json").write_text(json.dumps(state))
    (directory / "run.json").write_text(json.dumps({
        "image": "busybox", "command": ["sh", "-c", script], "network": "none", "user": "nobody",
        "stop_signal": "SIGINT", "log_opt": [], "env": [], "env_file": []}))
    r = mr("start", "-a", "older", GREETING="not this")
    assert (r.returncode, r.stdout) == (0, "hello\n65534\n"), r
    doc = json.loads(mr("inspect", "older").stdout)[0]
    assert (doc["Config"]["User"], doc["Config"]["StopSignal"]) == ("nobody", "SIGINT")
    assert "GREETING=hello" in doc["Config"]["Env"] and (directory / "config.json").exists()
    assert mr("rm", "older").returncode == 0


def test_commands_on_one_container_take_turns(mr: Minirun) -> None:
    """stop and rm -f, two starts, start -a and rm -f: one at a time, none waits for ever."""
    assert mr("pull", "-q", "busybox").returncode == 0
    trap = "trap 'sleep 2; echo trapped; exit 3' TERM; while :; do sleep 0.1; done"
    cid = _detach(mr, "--name", "turns", "busybox", "sh", "-c", trap)
    time.sleep(0.5)
    start = time.monotonic()
    stop = mr.popen("stop", "turns")
    time.sleep(0.5)
    rm = mr("rm", "-f", "turns")  # as Docker's: kills at once, never waits out the stop's grace period
    assert stop.wait(timeout=30) == 0 and rm.returncode == 0, (stop.stderr.read() if stop.stderr else "", rm)
    assert time.monotonic() - start < 2.5, time.monotonic() - start
    assert not (mr.root / "containers" / cid).exists()
    _detach(mr, "--name", "twice", "busybox", "sleep", "30")
    assert mr("stop", "-t", "0", "twice").returncode == 0
    starts = [mr.popen("start", "twice") for _ in range(2)]
    results = sorted((p.wait(timeout=30), p.stderr.read() if p.stderr else "") for p in starts)
    assert results == [(0, ""), (0, "")], results  # the second finds it running: done, as Docker
    assert mr("ps", "-q", "--filter", "name=twice").stdout.count("\n") == 1
    assert mr("stop", "-t", "0", "twice").returncode == 0
    attached = mr.popen("start", "-a", "twice")
    deadline = time.monotonic() + 10
    while "Up" not in mr("ps", "--filter", "name=twice").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    start = time.monotonic()
    assert mr("rm", "-f", "twice").returncode == 0 and time.monotonic() - start < 8  # start -a holds no lock now
    assert attached.wait(timeout=30) == 137


def _holds_lock(pid: int, directory: Path) -> bool:
    """Whether ``pid`` holds an flock on ``directory`` (its fdinfo names the lock)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == str(directory) and "FLOCK" in Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text():
                return True
        except OSError:
            continue
    return False


def test_rm_f_is_bounded_whatever_another_command_does(mr: Minirun) -> None:
    """Issue 25, defect 6: rm -f waited without bound behind another command's lock (a
    ``stop -t -1``, a stopped command). Docker's rm -f returns at once: it kills first."""
    assert mr("pull", "-q", "busybox").returncode == 0
    ignore_term = "trap '' TERM; while :; do sleep 0.1; done"
    for frozen in (False, True):
        cid = _detach(mr, "--name", "held", "busybox", "sh", "-c", ignore_term)
        stop = mr.popen("stop", "-t", "-1", "held")  # never SIGKILLs: waits for ever
        directory = mr.root / "containers" / cid
        deadline = time.monotonic() + 10
        while not _holds_lock(stop.pid, directory):
            assert time.monotonic() < deadline and stop.poll() is None
            time.sleep(0.01)
        if frozen:
            os.kill(stop.pid, signal.SIGSTOP)  # a command that holds the container and never lets go
        start = time.monotonic()
        rm = mr("rm", "-f", "held", timeout=30)
        took = time.monotonic() - start
        assert (rm.returncode, rm.stdout) == (0, "held\n") and took < 5, (rm, took)
        assert not directory.exists() and "held" not in mr("ps", "-a").stdout
        status = stop.wait(timeout=30)
        assert status == (-signal.SIGKILL if frozen else 0), (status, stop.stderr.read() if stop.stderr else "")


def test_several_names_each_handled_and_exit_codes_as_dockers(mr: Minirun) -> None:
    """Issue 25, defect 10 (the rest): rm, wait, rmi and inspect stopped at the first bad
    name (Docker handles every one, then exits 1); wait on a --rm container that ended said
    "No such container" (Docker prints its exit code); an unclosed template printed its text
    and exited 0 (Docker: "unclosed action", 1); exec -w of a missing directory is an error."""
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("pull", "-q", "hello-world").returncode == 0
    for name in ("one", "two"):
        assert mr("run", "--name", name, "busybox", "sh", "-c", "exit 4").returncode == 4
    r = mr("wait", "nosuch", "one", "two")
    assert (r.returncode, r.stdout) == (1, "4\n4\n") and "No such container: nosuch" in r.stderr, r
    r = mr("inspect", "-f", "{{.Name}}", "one", "nosuch", "two")
    assert (r.returncode, r.stdout) == (1, "/one\n/two\n") and "nosuch" in r.stderr, r
    for template in ("{{", "{{.ID"):
        r = mr("ps", "-a", "--format", template)
        assert (r.returncode, r.stdout) == (1, "") and "unclosed action" in r.stderr, r
    r = mr("rm", "nosuch", "one")
    assert (r.returncode, r.stdout) == (1, "one\n") and "No such container: nosuch" in r.stderr, r
    # -f: a name that is not there is said on stderr, and the exit is 0 (Docker 20.10: docker/cli#2678)
    r = mr("rm", "-f", "nosuch", "two")
    assert (r.returncode, r.stdout, r.stderr) == (0, "two\n", "minirun: No such container: nosuch\n"), r
    r = mr("rmi", "nosuch", "hello-world")
    assert r.returncode == 1 and "Untagged: hello-world:latest" in r.stdout and "nosuch" in r.stderr, r
    assert "hello-world" not in mr("images").stdout
    cid = _detach(mr, "--rm", "busybox", "sh", "-c", "sleep 1; exit 7")
    r = mr("wait", cid[:12], timeout=30)
    assert (r.returncode, r.stdout) == (0, "7\n"), r
    assert not (mr.root / "containers" / cid).exists()
    _detach(mr, "--name", "busy", "busybox", "sleep", "60")
    r = mr("exec", "-w", "/nonexistent", "busy", "pwd")
    assert r.returncode == 126 and "/nonexistent" in r.stderr and r.stdout == "", r
    assert mr("exec", "busy", "sh", "-c", "test -e /nonexistent").returncode == 1  # not made
    assert mr("rm", "-f", "busy").returncode == 0


def test_rm_f_after_the_program_ended_never_kills_its_monitor(mr: Minirun) -> None:
    """rm -f of a container whose program had ended but whose end was not yet recorded
    SIGKILLed its monitor (while it recorded: its log's last lines, a --rm's removal). Now
    rm waits for it (a second, for one stopped as here) and never kills it. This process is
    the monitors' subreaper here, so that their ends can be read."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    assert mr("pull", "-q", "busybox").returncode == 0
    assert libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    try:
        for rm in ([], ["--rm"]):
            cid = _detach(mr, *rm, "--name", "short", "busybox", "sh", "-c", "echo bye; sleep 0.3")
            state = _state(mr, cid)
            monitor = int(str(state["monitor"]))
            os.kill(monitor, signal.SIGSTOP)  # its end stays unrecorded
            deadline = time.monotonic() + 10
            while Path(f"/proc/{state['pid']}/stat").exists() and \
                    Path(f"/proc/{state['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                assert time.monotonic() < deadline
                time.sleep(0.01)
            r = mr("rm", "-f", "short")
            assert (r.returncode, r.stdout) == (0, "short\n"), r
            os.kill(monitor, signal.SIGCONT)
            _, status = os.waitpid(monitor, 0)
            assert os.WIFEXITED(status), (rm, status)  # it went on and ended: not killed
            assert not (mr.root / "containers" / cid).exists()
    finally:
        libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)


def _monitor_of(mr: Minirun, cid: str) -> int:
    pid = int(str(_state(mr, cid)["pid"]))
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # its parent


def test_the_monitor_becomes_the_lean_one_and_still_does_its_work(mr: Minirun) -> None:
    """Once the program runs, the monitor (the same process, the container's parent) is the
    lean one: a bare interpreter with runtime/keeper.py alone, which relays and logs, forwards
    the signals it gets, and hands the end to the full minirun (state, --rm, restart policy)."""
    assert mr("pull", "-q", "busybox").returncode == 0
    script = 'trap "echo got TERM; exit 3" TERM; echo up; echo err >&2; while true; do sleep 0.1; done'
    cid = _detach(mr, "busybox", "sh", "-c", script)
    monitor = _monitor_of(mr, cid)
    assert monitor == int(str(_state(mr, cid)["monitor"]))
    # The full monitor has cffi mapped (it made the container through it); the lean one, exec'd
    # in its place, none of the CLI's heavy modules. It titles itself as the full one did.
    deadline = time.monotonic() + 10
    while "_cffi_backend" in (maps := Path(f"/proc/{monitor}/maps").read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "_cffi_backend" not in maps and "libcrypto" not in maps and "libseccomp" not in maps
    while not Path(f"/proc/{monitor}/cmdline").read_bytes().startswith(b"minirun-monitor ") \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Path(f"/proc/{monitor}/cmdline").read_bytes().startswith(f"minirun-monitor {cid[:12]}".encode())
    while mr("logs", cid).stdout != "up\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(monitor, signal.SIGTERM)  # forwarded to the container, as the full monitor did
    assert mr("wait", cid).stdout == "3\n"
    r = mr("logs", cid)
    assert (r.stdout, r.stderr) == ("up\ngot TERM\n", "err\n")
    assert _state(mr, cid)["status"] == "exited"
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{monitor}") and time.monotonic() < deadline:  # its end recorded, it ends
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{monitor}")
    assert mr("rm", cid).returncode == 0
    # --rm and a restart policy, from the end the lean monitor handed on; -t logged through it.
    # (Each program lives a moment: one that has ended by the hand-off is ended by the full
    # monitor itself, as the other tests' quick ones are.)
    gone = _detach(mr, "--rm", "busybox", "sh", "-c", "sleep 0.3")
    assert _gone(mr, gone)
    again = _detach(mr, "--restart", "on-failure:2", "busybox", "sh", "-c", "sleep 0.3; echo run; exit 4")
    deadline = time.monotonic() + 20
    while mr("inspect", "-f", "{{.RestartCount}} {{.State.Status}}", again).stdout != "2 exited\n" \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    ended = mr("inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", again).stdout
    assert ended == "2 exited 4\n", ended
    assert mr("logs", again).stdout == "run\nrun\nrun\n"
    tty = _detach(mr, "-t", "busybox", "sh", "-c", "sleep 0.3; echo on a terminal")
    assert mr("wait", tty).stdout == "0\n"
    assert mr("logs", tty).stdout.replace("\r\n", "\n") == "on a terminal\n"
    assert mr("rm", again, tty).returncode == 0
    assert not list((mr.root / "containers").iterdir())
