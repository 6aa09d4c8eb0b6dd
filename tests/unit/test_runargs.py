"""`minirun run`'s flags, parsed as Docker's flag library parses them (pure: no typer)."""

from __future__ import annotations

import pytest

from minirun import runargs
from minirun.errors import UsageError


def test_flags_before_the_image_and_the_command_after_it() -> None:
    a = runargs.parse(["--rm", "-it", "-e", "A=1", "-eB=2", "--env=C=3", "-e=D=4", "--name=web", "-v", "/a:/b",
                       "--pids-limit", "20", "-m", "64m", "busybox", "sh", "-c", "echo --rm -e"])
    assert (a.rm, a.interactive, a.tty, a.name, a.volume, a.pids_limit, a.memory) == (
        True, True, True, "web", ("/a:/b",), 20, "64m")
    assert a.env == ("A=1", "B=2", "C=3", "D=4")
    assert (a.image, a.command) == ("busybox", ("sh", "-c", "echo --rm -e"))
    # After the image, every word is the program's, flags included.
    b = runargs.parse(["busybox", "--rm", "-it"])
    assert (b.rm, b.tty, b.command) == (False, False, ("--rm", "-it"))


def test_defaults() -> None:
    a = runargs.parse(["hello-world"])
    assert a == runargs.RunArgs(image="hello-world")
    assert (a.network, a.env, a.command, a.rm, a.pids_limit) == ("", (), (), False, None)  # "": the default
    a = runargs.parse(["-p", "8080:80", "-P", "--dns", "192.0.2.1", "--add-host=db:192.0.2.9", "x"])
    assert (a.publish, a.publish_all, a.dns, a.add_host) == (("8080:80",), True, ("192.0.2.1",), ("db:192.0.2.9",))


@pytest.mark.parametrize(("words", "expected"), [
    (["-ti", "x"], {"tty": True, "interactive": True}),
    (["-itw", "/srv", "x"], {"tty": True, "interactive": True, "workdir": "/srv"}),
    (["-itw/srv", "x"], {"workdir": "/srv"}),
    (["--rm=false", "x"], {"rm": False}),
    (["--rm=true", "--init=1", "x"], {"rm": True, "init": True}),
    (["-h", "box", "x"], {"hostname": "box"}),   # -h is --hostname, as in docker run
    (["--", "-x"], {"image": "-x"}),
    (["--network", "host", "--pids-limit=-1", "x"], {"network": "host", "pids_limit": -1}),
    (["--pull", "always", "x"], {"pull": "always"}),
    (["x"], {"pull": "missing"}),
    (["--cap-add", "NET_ADMIN", "--cap-add=SYS_TIME", "--cap-drop", "ALL", "x"],
     {"cap_add": ("NET_ADMIN", "SYS_TIME"), "cap_drop": ("ALL",)}),
])
def test_docker_spellings(words: list[str], expected: dict[str, object]) -> None:
    a = runargs.parse(words)
    assert {k: getattr(a, k) for k in expected} == expected


@pytest.mark.parametrize(("words", "message"), [
    (["--bogus", "x"], "No such option: --bogus"),
    (["--bogus=1", "x"], "No such option: --bogus"),
    (["-x", "busybox"], "No such option: -x"),
    (["-ix", "busybox"], "No such option: -x"),
    (["--name"], "Option '--name' requires an argument."),
    (["-e"], "Option '-e' requires an argument."),
    (["--pids-limit", "many", "x"], "Invalid value for '--pids-limit': 'many' is not a valid integer."),
    (["--rm=maybe", "x"], "Invalid value for '--rm': 'maybe' is not a valid boolean."),
    ([], "Missing argument 'IMAGE'."),
    (["--rm", "-i"], "Missing argument 'IMAGE'."),
])
def test_bad_flags_are_one_clear_line(words: list[str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        runargs.parse(words)
    assert str(e.value) == f"{message} (see 'minirun run --help')"


def test_help_lists_every_flag() -> None:
    assert runargs.parse(["--help"]).help and runargs.parse(["--rm", "--help"]).help
    text = runargs.help_text()
    assert text.startswith("Usage:  minirun run [OPTIONS] IMAGE [COMMAND] [ARG...]\n")
    for flag in runargs.FLAGS:
        assert all(name in text for name in flag.names) and flag.help in text, flag


def test_the_typer_app_hands_run_to_the_same_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """``minirun --help`` lists run; reaching run through typer gives the same command."""
    from minirun.cli import app as cli_app
    assert cli_app.run_app(["run", "--help"]) == 0
    assert capsys.readouterr().out == runargs.help_text()
    with pytest.raises(UsageError, match="No such option: --bogus"):
        cli_app.run_app(["run", "--bogus", "x"])
