"""Golden tables (issue 29): each command family's cases (tests/support/golden.py) as Docker
20.10 answered them on this machine (recorded once: scripts/record-docker-golden), and
minirun's answers to the same command lines, after the same setup, with the same images,
compared after normalising IDs, times and the program's name before an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Minirun
from tests.support import golden

DATA = json.loads((Path(__file__).parent / "data" / "docker-20.10-golden.json").read_text())


def test_the_recording_is_of_these_cases() -> None:
    recorded = [(c["argv"], c["setup"]) for c in DATA["cases"]]
    assert recorded == [(list(c.argv), [list(s) for s in c.setup]) for c in golden.CASES], \
        "the cases changed: record Docker's answers again (scripts/record-docker-golden)"
    assert DATA["docker"].startswith("20.10.")


@pytest.mark.parametrize("family", sorted({c.family for c in golden.CASES}))
def test_minirun_answers_as_docker_did(mr: Minirun, tmp_path: Path, family: str) -> None:
    for image in ("busybox", "hello-world"):
        assert mr("pull", "-q", image).returncode == 0
    (tmp_path / "env").write_bytes(golden.ENV_FILE)
    differ = []
    for case, recorded in zip(golden.CASES, DATA["cases"], strict=True):
        if case.family != family:
            continue
        mine = golden.play(lambda argv: mr(*argv), case, str(tmp_path))
        if mine != recorded["docker"]:
            differ.append(f"{' '.join(case.argv)}\n  docker:  {recorded['docker']}\n  minirun: {mine}")
    golden.clean(lambda argv: mr(*argv))
    assert not differ, "\n".join(differ)
