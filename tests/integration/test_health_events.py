"""Health checks, the event journal and wait --condition (issue 28), as root, without a
daemon or systemd: the container's monitor probes it, and every command and monitor writes
the events a script can filter instead of polling."""

from __future__ import annotations

import json
import time

from tests.integration.conftest import Minirun, until


def _health(mr: Minirun, name: str) -> dict[str, object]:
    r = mr("inspect", "-f", "{{json .State.Health}}", name)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc


def test_health_moves_from_starting_to_healthy_to_unhealthy(mr: Minirun) -> None:
    since = str(time.time())
    # Failing until /tmp/ok is made (2 s in): in the start period, which those failures do not count in.
    r = mr("run", "-d", "--name", "svc", "--health-cmd", "test -e /tmp/ok && echo fine", "--health-interval", "300ms",
           "--health-retries", "2", "--health-start-period", "3s", "busybox", "sh", "-c",
           "sleep 2; touch /tmp/ok; sleep 3; rm /tmp/ok; sleep 60")
    assert r.returncode == 0, r.stderr
    assert _health(mr, "svc")["Status"] == "starting" and "(health: starting)" in mr("ps").stdout
    until("healthy", lambda: _health(mr, "svc")["Status"] == "healthy")
    assert "(healthy)" in mr("ps").stdout
    assert mr("inspect", "-f", "{{.State.Health.Status}}", "svc").stdout == "healthy\n"
    until("unhealthy", lambda: _health(mr, "svc")["Status"] == "unhealthy")
    health = _health(mr, "svc")
    log = health["Log"]
    assert isinstance(log, list) and 1 < len(log) <= 5, health
    # unhealthy at the second failure in a row; the probes go on meanwhile (every 300 ms)
    assert int(health["FailingStreak"]) >= 2 and [e["ExitCode"] for e in log[-2:]] == [1, 1], health  # type: ignore[call-overload]
    assert any(e["Output"] == "fine\n" and e["ExitCode"] == 0 for e in log) or len(log) == 5, health
    assert "(unhealthy)" in mr("ps").stdout
    r = mr("events", "--since", since, "--until", str(time.time()), "--filter", "event=health_status",
           "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    assert r.stdout == "health_status: healthy svc\nhealth_status: unhealthy svc\n", r
    assert mr("rm", "-f", "svc").returncode == 0


def test_a_probe_that_outlives_its_timeout_fails_and_flags_are_checked(mr: Minirun) -> None:
    r = mr("run", "-d", "--name", "slow", "--health-cmd", "sleep 5", "--health-interval", "200ms",
           "--health-timeout", "300ms", "--health-retries", "1", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    until("unhealthy by timeout", lambda: _health(mr, "slow")["Status"] == "unhealthy")
    entry = _health(mr, "slow")["Log"][0]  # type: ignore[index]
    assert entry["ExitCode"] == -1 and entry["Output"] == "Health check exceeded timeout (0.3s)", entry
    assert mr("rm", "-f", "slow").returncode == 0
    r = mr("run", "--rm", "--no-healthcheck", "--health-cmd", "true", "busybox", "true")
    assert r.returncode == 125 and "--no-healthcheck conflicts" in r.stderr, r
    r = mr("run", "--rm", "--health-interval", "soon", "--health-cmd", "true", "busybox", "true")
    assert r.returncode == 125 and 'invalid --health-interval "soon"' in r.stderr, r
    r = mr("run", "--rm", "busybox", "true")  # no health check: no State.Health, as Docker
    assert r.returncode == 0
    assert mr("ps", "-a", "-q").stdout == ""


def test_events_are_journaled_filtered_formatted_and_followed(mr: Minirun) -> None:
    since = str(time.time())
    follower = mr.popen("events", "--filter", "event=start", "--format", "{{.Actor.Attributes.name}}")
    try:
        time.sleep(1)
        r = mr("run", "--rm", "--name", "once", "--label", "team=a", "busybox", "sh", "-c", "exit 3")
        assert r.returncode == 3
        assert follower.stdout is not None and follower.stdout.readline() == "once\n"
    finally:
        follower.kill()
        follower.wait()
    until = str(time.time())
    r = mr("events", "--since", since, "--until", until, "--filter", "container=once")
    lines = r.stdout.splitlines()
    assert [line.split()[1:3] for line in lines] == [["container", "create"], ["container", "start"],
                                                    ["container", "die"], ["container", "destroy"]], r
    assert "exitCode=3" in lines[2] and "(exitCode=3, image=busybox, name=once, team=a)" in lines[2], lines
    assert lines[0].split()[0].endswith("Z") and len(lines[0].split()[3]) == 64
    r = mr("events", "--since", since, "--until", until, "--filter", "type=container", "--filter", "event=die",
           "--format", "{{json .}}")
    doc = json.loads(r.stdout)
    assert (doc["status"], doc["Type"], doc["Action"], doc["from"]) == ("die", "container", "die", "busybox")
    assert doc["Actor"]["Attributes"]["exitCode"] == "3" and isinstance(doc["timeNano"], int)
    assert mr("volume", "create", "v1").returncode == 0
    r = mr("events", "--since", since, "--until", str(time.time()), "--filter", "type=volume")
    assert r.stdout.split()[1:4] == ["volume", "create", "v1"], r
    r = mr("events", "--filter", "nope=1", "--until", "0")
    assert r.returncode == 1 and "invalid filter" in r.stderr, r


def test_wait_conditions(mr: Minirun) -> None:
    assert mr("run", "-d", "--name", "w", "busybox", "sh", "-c", "sleep 1; exit 7").returncode == 0
    assert mr("wait", "--condition", "next-exit", "w").stdout == "7\n"
    # next-exit on a stopped container waits for its next run's end
    waiter = mr.popen("wait", "--condition", "next-exit", "w")
    time.sleep(1)
    assert waiter.poll() is None
    assert mr("start", "w").returncode == 0
    out, _ = waiter.communicate(timeout=30)
    assert out == "7\n"
    remover = mr.popen("wait", "--condition", "removed", "w")
    time.sleep(0.5)
    assert remover.poll() is None
    assert mr("rm", "-f", "w").returncode == 0
    out, _ = remover.communicate(timeout=30)
    assert (remover.returncode, out) == (0, "7\n")
    assert mr("run", "-d", "--rm", "--name", "r", "busybox", "sh", "-c", "sleep 1; exit 5").returncode == 0
    assert mr("wait", "--condition", "removed", "r").stdout == "5\n"
    r = mr("wait", "--condition", "sometime", "nosuch")
    assert r.returncode == 1 and "invalid --condition" in r.stderr, r

