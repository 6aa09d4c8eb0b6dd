"""Golden tables (issue 29): command lines whose answer Docker 20.10 gave on this machine,
recorded once by ``scripts/record-docker-golden`` into tests/integration/data/, and the
normalising both answers go through before they are compared (IDs, times, sizes of what
differs by construction, and each tool's name in its messages).

A case: ``setup`` command lines run first (their answers not compared; ``{tmp}`` is a
directory of the case's own), then ``argv``; ``compare`` says what must agree: ``all``
(exit code, stdout, stderr), ``out`` (exit code and stdout; stderr only as empty or not)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from typing import NamedTuple


class Case(NamedTuple):
    family: str
    setup: tuple[tuple[str, ...], ...]
    argv: tuple[str, ...]
    compare: str = "all"


def _c(family: str, argv: str, *setup: str, compare: str = "all") -> Case:
    import shlex
    return Case(family, tuple(tuple(shlex.split(s)) for s in setup), tuple(shlex.split(argv)), compare)


ENV_FILE = b"# a comment\nPLAIN=value\nSPACED=trailing  \nQUOTED=\"kept\"\n  INDENTED=yes\nEMPTY=\n"

CASES: list[Case] = [
    # images: filters, REPOSITORY[:TAG], formats, tag and rmi
    _c("images", "images --format {{.Repository}}:{{.Tag}}"),
    _c("images", "images busybox --format {{.Repository}}:{{.Tag}}"),
    _c("images", "images busybox:nosuch --format {{.Repository}}"),
    _c("images", "images -f reference=bus* --format {{.Repository}}"),
    _c("images", "images -f reference=*/* --format {{.Repository}}"),
    _c("images", "images -f dangling=true -q"),
    _c("images", "images -f before=hello-world --format {{.Repository}}"),
    _c("images", "images -f bogus=1", compare="out"),
    _c("images", "images --format {{.Repository}}|{{.Tag}}|{{.Size}}"),
    _c("images", "images --digests -q"),  # (Docker's images here were loaded: no digests to compare)
    _c("images", "images --format 'table {{.Repository}}\\t{{.Tag}}'"),
    _c("images", "images mine --format {{.Repository}}:{{.Tag}}", "tag busybox mine:1", "tag busybox mine:2"),
    _c("images", "rmi mine:1 mine:2", "tag busybox mine:1", "tag busybox mine:2"),
    _c("images", "rmi nosuch", compare="out"),
    _c("images", "tag nosuch other", compare="out"),
    _c("images", "inspect -f {{.Size}} busybox"),
    _c("images", "history --format {{.CreatedBy}}|{{.Size}} busybox"),
    # containers: ps formats and filters, several names, rm -f of a missing one
    _c("ps", "ps -a --format {{.Names}}|{{.Status}}",
       "run --name one busybox sh -c 'exit 3'", "run --name two busybox true"),
    _c("ps", "ps -a --filter exited=3 --format {{.Names}}",
       "run --name one busybox sh -c 'exit 3'", "run --name two busybox true"),
    _c("ps", "ps -a --filter name=^/o --format {{.Names}}",
       "run --name one busybox true", "run --name two busybox true"),
    _c("ps", "ps -a --format 'table {{.Names}}\\t{{.Command}}'", "run --name one busybox echo hi"),
    _c("ps", "ps -a -n 1 --format {{.Names}}", "run --name one busybox true", "run --name two busybox true"),
    _c("ps", "container ls -a -q --filter name=nothing"),
    _c("rm", "rm one nosuch two", "run --name one busybox true", "run --name two busybox true", compare="out"),
    _c("rm", "rm -f nosuch", compare="out"),
    _c("rm", "wait one two", "run --name one busybox sh -c 'exit 4'", "run --name two busybox sh -c 'exit 5'"),
    _c("rm", "inspect -f '{{.State.ExitCode}}|{{.Config.Image}}|{{json .Config.Cmd}}' one",
       "run --name one busybox sh -c 'exit 6'"),
    _c("rm", "container prune -f", "run --name one busybox true"),
    # volumes
    _c("volume", "volume ls --format {{.Name}}|{{.Driver}}", "volume create v1", "volume create --label a=b v2"),
    _c("volume", "volume ls -q --filter label=a=b", "volume create v1", "volume create --label a=b v2"),
    _c("volume", "volume inspect -f {{.Name}}|{{.Driver}}|{{.Labels}} v2 nosuch", "volume create --label a=b v2",
       compare="out"),
    _c("volume", "volume rm v1 nosuch v2", "volume create v1", "volume create v2", compare="out"),
    _c("volume", "volume rm v1", "volume create v1", "run --name one -v v1:/data busybox true", compare="out"),
    # exec and env files
    _c("exec", "exec one sh -c 'echo $A; exit 3'", "run -d --name one busybox sleep 60", "exec one true"),
    _c("exec", "exec -e A=1 -e B one sh -c 'echo [$A][$B]'", "run -d --name one busybox sleep 60"),
    _c("exec", "exec --env-file {tmp}/env one env", "run -d --name one busybox sleep 60"),
    _c("exec", "exec -d one sh -c 'echo dropped'", "run -d --name one busybox sleep 60"),
    _c("exec", "exec nosuch true", compare="out"),
    _c("exec", "run --rm --env-file {tmp}/env busybox env"),
    # usage errors: exit codes as Docker's CLI gives them
    _c("usage", "run --bogus busybox", compare="out"),
    _c("usage", "exec", compare="out"),
    _c("usage", "ps --bogus", compare="out"),
    _c("usage", "run", compare="out"),
    _c("usage", "exec one", compare="out"),
    _c("usage", "stop -t abc one", compare="out"),
    _c("usage", "tag busybox", compare="out"),
    _c("usage", "xyzzy", compare="out"),
]


Run = Callable[[list[str]], "subprocess.CompletedProcess[str]"]  # one command line of the tool's


def clean(run: Run) -> None:
    """What a case leaves behind removed (containers, the tags and volumes cases make), with
    the tool's own commands: the same words for Docker and minirun."""
    for cid in run(["ps", "-aq"]).stdout.split():
        run(["rm", "-f", cid])
    run(["rmi", "mine:1", "mine:2"])
    for volume in run(["volume", "ls", "-q"]).stdout.split():
        run(["volume", "rm", "-f", volume])


def play(run: Run, case: Case, tmp: str) -> dict[str, object]:
    """A case from a clean state: its setup, then its command line; the answer to compare."""
    clean(run)
    for step in case.setup:
        run([part.replace("{tmp}", tmp) for part in step])
    r = run([part.replace("{tmp}", tmp) for part in case.argv])
    return answer(r.returncode, r.stdout, r.stderr, case.compare)


_ID = re.compile(r"\b(sha256:)?[0-9a-f]{64}\b|\b[0-9a-f]{12}\b")
_AGO = re.compile(r"(About an? \w+|Less than a second|\d+ \w+) ago")
_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
_PREFIX = re.compile(r"^(minirun: |docker: |Error response from daemon: |Error: )+", re.M)
_HOST = re.compile(r"^HOSTNAME=.*$", re.M)


def normal(text: str) -> str:
    """What may differ between the tools by construction made the same: IDs, times, the
    program's name before an error, a container's generated hostname."""
    text = _ID.sub("<ID>", text)
    text = _STAMP.sub("<TIME>", text)
    text = _AGO.sub("<AGO>", text)
    text = _HOST.sub("HOSTNAME=<ID>", text)
    return _PREFIX.sub("", text)


def answer(code: int, out: str, err: str, compare: str) -> dict[str, object]:
    """What of one answer is compared (see ``Case.compare``)."""
    doc: dict[str, object] = {"exit": code, "stdout": normal(out)}
    doc["stderr"] = normal(err) if compare == "all" else bool(err.strip())
    return doc
