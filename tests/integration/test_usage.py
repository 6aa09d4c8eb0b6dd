"""Usage errors' exit codes as Docker 20.10's CLI gives them (issue 29; its answers are in the
golden table too): a flag that does not parse is 125 for every command; arguments missing or
extra, or a command that does not exist, are 1 (run's and create's too)."""

from __future__ import annotations

from tests.integration.conftest import Minirun


def test_usage_errors_exit_as_docker_s(mr: Minirun) -> None:
    for argv, code in ((("run", "--bogus", "busybox"), 125), (("create", "--bogus", "busybox"), 125),
                       (("exec", "--bogus", "x", "true"), 125), (("ps", "--bogus"), 125),
                       (("rm", "--bogus", "x"), 125), (("stop", "-t", "nan", "x"), 125),
                       (("system", "prune", "--bogus"), 125), (("run",), 1), (("create",), 1), (("exec",), 1),
                       (("exec", "one"), 1), (("stop",), 1), (("logs", "a", "b"), 1), (("tag", "a"), 1),
                       (("xyzzy",), 1), (("pull", "::bad"), 1)):
        r = mr(*argv)
        assert r.returncode == code and r.stderr.count("\n") == 1 and r.stdout == "", (argv, r)
