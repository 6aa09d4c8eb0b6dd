"""Usage errors' exit codes as Docker's CLI gives them (issue 29): 125 for run, create and
exec, whose own codes (126, 127, the program's) must stay apart from minirun's."""

from __future__ import annotations

from tests.integration.conftest import Minirun


def test_run_create_and_exec_usage_errors_exit_125(mr: Minirun) -> None:
    for argv in (("run", "--bogus", "busybox"), ("create", "--bogus", "busybox"), ("exec", "--bogus", "x", "true"),
                 ("exec",)):
        r = mr(*argv)
        assert r.returncode == 125 and r.stderr.count("\n") == 1 and r.stdout == "", (argv, r)
    r = mr("ps", "--bogus")
    assert r.returncode == 2 and "--bogus" in r.stderr  # (minirun's own: 2, as its README says)
