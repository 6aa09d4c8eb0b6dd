"""Docker's json-file log: lines, partial lines, rotation, options; signal names."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from minirun.errors import UsageError
from minirun.runtime import logs
from minirun.runtime.signals import parse


def test_lines_partials_and_rotation(tmp_path: Path) -> None:
    d = tmp_path / ("c" * 64)
    d.mkdir()
    w = logs.LogWriter(d, logs.LogOptions(max_size=1000, max_file=2))
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    w.write("stdout", b"o\n")
    first = [json.loads(x) for x in logs.log_path(d).read_text().splitlines()]
    assert [(x["stream"], x["log"]) for x in first] == [("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n")]
    for i in range(40):
        w.write("stdout", f"line {i}\n".encode())
    w.write("stdout", b"no end")
    w.close()
    kept = logs.entries(d)
    assert kept[-1].text == "no end" and logs.log_path(d).stat().st_size <= 1000
    assert sorted(p.name for p in d.iterdir()) == [f"{d.name}-json.log", f"{d.name}-json.log.1"]  # max-file 2
    texts = [e.text for e in kept]
    assert texts == sorted(texts, key=texts.index) and "line 39\n" in texts and "one\n" not in texts


def test_options_and_signals() -> None:
    assert logs.parse_options(("max-size=2m", "max-file=5")) == logs.LogOptions(2_000_000, 5)
    for bad in ("max-size=big", "colour=red", "max-file=0", "max-size=10"):
        with pytest.raises(UsageError, match="--log-opt"):
            logs.parse_options((bad,))
    assert parse("SIGTERM") == parse("term") == parse("15") == signal.SIGTERM
    with pytest.raises(UsageError, match="invalid signal"):
        parse("SIGNOPE")
