"""Docker's script-facing verbs (issue 29): container/image/system prune with their filters
and question, the container and image command groups, history, system df, version."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import minirun
from minirun.cli.output import human_size
from tests.integration.conftest import Minirun, until


def _id(mr: Minirun, name: str) -> str:
    return mr("inspect", "-f", "{{.Id}}", name).stdout.strip()


def _names(mr: Minirun) -> list[str]:
    return sorted(mr("container", "ls", "-a", "--format", "{{.Names}}").stdout.split())


def test_prunes_remove_what_docker_s_remove(mr: Minirun) -> None:
    for image in ("busybox", "hello-world"):
        assert mr("image", "pull", "-q", image).returncode == 0
    assert mr("container", "run", "--name", "old", "--label", "keep=no", "busybox", "true").returncode == 0
    assert mr("run", "--name", "kept", "--label", "keep=yes", "busybox", "true").returncode == 0
    assert mr("container", "run", "-d", "--name", "live", "busybox", "sleep", "60").returncode == 0
    old = _id(mr, "old")
    r = mr("container", "prune", "-f", "--filter", "label=keep=no")
    assert r.returncode == 0 and r.stdout.startswith(f"Deleted Containers:\n{old}\n\nTotal reclaimed space: "), r
    assert _names(mr) == ["kept", "live"]
    r = mr("container", "prune", "-f", "--filter", "until=1h")  # made now: not before an hour ago
    assert (r.returncode, r.stdout) == (0, "Total reclaimed space: 0B\n"), r
    r = mr("container", "prune", "--filter", "since=1h")
    assert r.returncode == 1 and "until=, label= and label!=" in r.stderr, r
    # Images: dangling ones only (none here), then -a: every one no container uses.
    assert mr("image", "prune", "-f").stdout == "Total reclaimed space: 0B\n"
    hello = _id(mr, "hello-world")
    r = mr("image", "prune", "-a", "-f")
    lines = r.stdout.splitlines()
    assert lines[:3] == ["Deleted Images:", "untagged: hello-world:latest", f"deleted: {hello}"], r
    assert lines[-1].startswith("Total reclaimed space: ") and lines[-1] != "Total reclaimed space: 0B"
    assert mr("image", "ls", "--format", "{{.Repository}}").stdout == "busybox\n"
    # system prune: stopped containers, then the images nothing uses any more (with -a).
    kept = _id(mr, "kept")
    r = mr("system", "prune", "-a", "-f")
    assert r.stdout.startswith(f"Deleted Containers:\n{kept}\n\nTotal reclaimed space: "), r
    assert _names(mr) == ["live"] and mr("images", "-q").stdout.count("\n") == 1, r
    assert mr("rm", "-f", "live").returncode == 0
    r = mr("system", "prune", "--all", "--force")
    assert r.stdout.startswith("Deleted Images:\nuntagged: busybox:latest\ndeleted: sha256:"), r
    assert mr("images", "-q").stdout == "" and mr.blobs() == set()


def test_prune_asks_on_a_terminal(mr: Minirun) -> None:
    assert mr("run", "--name", "stopped", "busybox", "true").returncode == 0
    stopped = _id(mr, "stopped")
    main, tty = pty.openpty()
    try:
        p = subprocess.Popen(mr.argv("system", "prune"), env=mr.env(), stdin=tty, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        os.write(main, b"n\n")
        out, err = p.communicate(timeout=60)
    finally:
        os.close(main)
        os.close(tty)
    assert (p.returncode, out) == (0, ""), err
    assert err == ("WARNING! This will remove:\n  - all stopped containers\n"
                   "  - all networks not used by at least one container\n  - all dangling images\n\n"
                   "Are you sure you want to continue? [y/N] ")
    assert _names(mr) == ["stopped"]
    r = mr("system", "prune")  # not a terminal: as -f (a script is never stopped by the question)
    assert r.stdout.startswith(f"Deleted Containers:\n{stopped}\n\n"), r
    assert _names(mr) == []


def test_history_df_and_version(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("pull", "-q", "hello-world").returncode == 0
    size = int(mr("inspect", "-f", "{{.Size}}", "busybox").stdout)
    r = mr("history", "busybox")
    header, first = r.stdout.splitlines()[:2]
    assert header.split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"], r
    assert first.startswith(_id(mr, "busybox")[7:19]) and human_size(size) in first.split(), r
    assert mr("image", "history", "-q", "--no-trunc", "busybox").stdout.splitlines()[0] == _id(mr, "busybox")
    assert mr("history", "nosuch").stderr == "minirun: No such image: nosuch\n"

    assert mr("run", "-d", "--name", "up", "busybox", "sleep", "60").returncode == 0
    r = mr("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}")
    assert r.stdout.splitlines() == ["Images|2|1", "Containers|1|1", "Local Volumes|0|0", "Build Cache|0|0"], r
    table = mr("system", "df").stdout.splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    hello = int(mr("inspect", "-f", "{{.Size}}", "hello-world").stdout)
    assert table[1].split()[3:] == [human_size(size + hello), human_size(hello),
                                    f"({100 * hello // (size + hello)}%)"], table
    assert mr("rm", "-f", "up").returncode == 0

    r = mr("version", "--format", "{{.Client.Version}} {{.Server.Version}}")
    assert r.stdout == f"{minirun.__version__} {minirun.__version__}\n"
    doc = json.loads(mr("version", "--format", "json").stdout)
    assert doc["Server"]["KernelVersion"] == os.uname().release and doc["Client"]["Os"] == "linux"
    assert mr("version").stdout.splitlines()[0] == "Client:"


def _shell_env(mr: Minirun) -> dict[str, str]:
    """A shell that finds `minirun` (the one installed beside this Python) on PATH."""
    env = mr.env()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _bash_complete(mr: Minirun, words: str) -> list[str]:
    script = mr("completion", "bash").stdout
    line = f'{script}\nCOMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); _minirun_completion; ' \
           'printf "%s\\n" "${COMPREPLY[@]}"'
    r = subprocess.run(["bash", "-c", line], env=_shell_env(mr), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    return r.stdout.split()


def test_completion_scripts_complete_commands_flags_and_names(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    assert mr("run", "-d", "--name", "webby", "busybox", "sleep", "60").returncode == 0
    assert _bash_complete(mr, "minirun ima") == ["images", "image"]
    assert _bash_complete(mr, "minirun image hi") == ["history"]
    assert _bash_complete(mr, "minirun stop we") == ["webby"]            # container names
    assert _bash_complete(mr, "minirun container exec we") == ["webby"]
    assert _bash_complete(mr, "minirun rmi bu") == ["busybox:latest"]    # image names
    assert _bash_complete(mr, "minirun run --netw") == ["--network", "--network-alias"]  # run's own flags
    assert _bash_complete(mr, "minirun run --rm bus") == ["busybox:latest"]
    assert _bash_complete(mr, "minirun ps --fo") == ["--format"]
    for shell in ("zsh", "fish"):
        assert "_MINIRUN_COMPLETE=complete_" + shell in mr("completion", shell).stdout
    r = mr("completion", "tcsh")
    assert r.returncode == 1 and r.stderr == 'minirun: invalid shell "tcsh": expected bash, zsh or fish\n'
    assert mr("rm", "-f", "webby").returncode == 0


def test_the_manual_page_covers_every_command(mr: Minirun, tmp_path: Path) -> None:
    page = tmp_path / "minirun.1"
    page.write_text(mr("manual").stdout)
    r = subprocess.run(["nroff", "-man", "-Tutf8", str(page)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert r.returncode == 0 and "warning" not in r.stderr, r
    text = re.sub(r".\x08", "", r.stdout)  # nroff's overstrikes (bold)
    for command in ("minirun run", "minirun container prune", "minirun image push", "minirun system df",
                    "minirun network connect", "minirun volume create", "minirun completion"):
        assert command in text, command
    assert "--network-alias" in text and "--health-cmd" in text and "--filter" in text  # run's table, options


def test_exec_env_file_and_detached(mr: Minirun, tmp_path: Path) -> None:
    assert mr("run", "-d", "--name", "box", "busybox", "sleep", "60").returncode == 0
    env_file = tmp_path / "env"
    env_file.write_bytes(b"# settings\nGREETING=hello there  \nQUOTED=\"as is\"\n")
    r = mr("exec", "--env-file", str(env_file), "-e", "EXTRA=1", "box", "sh", "-c",
           'printf "[%s][%s][%s]" "$GREETING" "$QUOTED" "$EXTRA"')
    assert (r.returncode, r.stdout) == (0, '[hello there  ]["as is"][1]'), r
    r = mr("exec", "-d", "box", "sh", "-c", "sleep 1; echo later > /tmp/done")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
    assert mr("exec", "box", "cat", "/tmp/done").stdout == ""  # it runs on after exec -d returned
    until("the detached exec's write", lambda: mr("exec", "box", "cat", "/tmp/done").stdout == "later\n")
    r = mr("exec", "-d", "box", "nosuchprogram")
    assert r.returncode in (126, 127) and "nosuchprogram" in r.stderr, r
    assert mr("rm", "-f", "box").returncode == 0


def test_ps_size_created_at_and_a_nil_health(mr: Minirun) -> None:
    assert mr("run", "--name", "wrote", "busybox", "sh", "-c", "echo hello > /greeting").returncode == 0
    image = int(mr("inspect", "-f", "{{.Size}}", "busybox").stdout)
    r = mr("ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}")
    assert r.stdout == f"wrote 6B (virtual {human_size(6 + image)})\n", r  # its upper layer: /greeting
    assert mr("ps", "-as").stdout.splitlines()[0].split()[-1] == "SIZE"
    created = mr("ps", "-a", "--format", "{{.CreatedAt}}").stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+\n", created), created  # Go's time.String
    r = mr("inspect", "-f", "{{.State.Health}} {{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}", "wrote")
    assert r.stdout == "<nil> 0 no\n", r
    assert "Health" not in json.loads(mr("inspect", "wrote").stdout)[0]["State"]  # omitted, as Docker's JSON
    assert mr("rm", "wrote").returncode == 0
