"""ps's filters and -n/-l as Docker 20.10 has them (issue 29), on containers of every state."""

from __future__ import annotations

from tests.integration.conftest import Minirun, until


def _names(mr: Minirun, *args: str) -> list[str]:
    r = mr("ps", "-a", "--format", "{{.Names}}", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_filters_as_docker(mr: Minirun) -> None:
    assert mr("volume", "create", "data").returncode == 0
    assert mr("run", "--name", "first", "busybox", "sh", "-c", "exit 3").returncode == 3
    assert mr("run", "--name", "second", "-v", "data:/srv", "busybox", "true").returncode == 0
    assert mr("run", "-d", "--name", "web-1", "-l", "tier=front", "--health-cmd", "true", "--health-interval", "200ms",
              "busybox", "sleep", "60").returncode == 0
    assert mr("create", "--name", "web-2", "hello-world").returncode == 0
    until("web-1 healthy", lambda: "(healthy)" in mr("ps").stdout)
    assert _names(mr, "--filter", "name=^web-") == ["web-2", "web-1"]          # a regular expression
    assert _names(mr, "--filter", "name=^/first$") == ["first"]                # Docker's leading slash too
    assert _names(mr, "--filter", "exited=3") == ["first"]
    assert _names(mr, "--filter", "exited=0") == ["second"]
    assert _names(mr, "--filter", "ancestor=hello-world") == ["web-2"]
    assert _names(mr, "--filter", "ancestor=busybox:latest", "--filter", "status=exited") == ["second", "first"]
    assert _names(mr, "--filter", "volume=data") == ["second"] == _names(mr, "--filter", "volume=/srv")
    assert _names(mr, "--filter", "health=healthy") == ["web-1"]
    assert _names(mr, "--filter", "health=none", "--filter", "status=exited") == ["second", "first"]
    assert _names(mr, "--filter", "network=none") == ["web-2", "web-1", "second", "first"]  # (the tests' default)
    assert _names(mr, "--filter", "since=second") == ["web-2", "web-1"]
    assert _names(mr, "--filter", "before=second") == ["first"]
    assert _names(mr, "--filter", "label=tier=front") == ["web-1"]
    r = mr("ps", "-l", "--format", "{{.Names}}")
    assert r.stdout == "web-2\n"
    assert mr("ps", "-n", "2", "--format", "{{.Names}}").stdout == "web-2\nweb-1\n"
    r = mr("ps", "--filter", "colour=red")
    assert r.returncode != 0 and "invalid --filter" in r.stderr
    r = mr("ps", "--filter", "before=nosuch")
    assert r.returncode != 0 and "No such container: nosuch" in r.stderr
    assert mr("rm", "-f", "first", "second", "web-1", "web-2").returncode == 0
