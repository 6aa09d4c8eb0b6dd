"""Docker's json-file log: lines, partial lines, rotation, options; signal names."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from minirun.containers import logs
from minirun.errors import UsageError
from minirun.runtime import logwriter
from minirun.runtime.signals import parse


def test_lines_partials_and_rotation(tmp_path: Path) -> None:
    d = tmp_path / ("c" * 64)
    d.mkdir()
    w = logwriter.LogWriter(d, logwriter.LogOptions(max_size=1000, max_file=2))
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
    assert logs.parse_options(("max-size=2m", "max-file=5")) == logwriter.LogOptions(2_000_000, 5)
    for bad in ("max-size=big", "colour=red", "max-file=0", "max-size=10"):
        with pytest.raises(UsageError, match="--log-opt"):
            logs.parse_options((bad,))
    assert parse("SIGTERM") == parse("term") == parse("15") == signal.SIGTERM
    with pytest.raises(UsageError, match="invalid signal"):
        parse("SIGNOPE")


def test_long_lines_odd_bytes_and_batches(tmp_path: Path) -> None:
    """Lines of 16 KiB and more in pieces (the last ends the line), bytes that are not UTF-8
    replaced, control characters escaped, a batch of many lines kept in order."""
    d = tmp_path / ("d" * 64)
    d.mkdir()
    w = logwriter.LogWriter(d, logwriter.LogOptions())
    w.write("stdout", b"".join(b"%d\n" % i for i in range(5000)))
    w.write("stdout", b"x" * 40000 + b"\nshort\n" + b"y" * 20000)
    w.write("stderr", b"caf\xc3\xa9 \xff\x00\t\"q\"\\n\n")
    w.close()
    raw = logs.log_path(d).read_text(encoding="utf-8").splitlines()
    assert all(json.loads(x).keys() == {"log", "stream", "time"} for x in raw)
    kept = [(e.stream, e.text) for e in logs.entries(d)]
    out = [t for s, t in kept if s == "stdout"]
    assert out[:5000] == [f"{i}\n" for i in range(5000)]
    out = out[5000:]
    assert [len(t) for t in out] == [16384, 16384, 40000 - 32768 + 1, 6, 16384, 20000 - 16384]
    assert "".join(out[:3]) == "x" * 40000 + "\n" and out[3] == "short\n"
    assert out[4:] == ["y" * 16384, "y" * (20000 - 16384)]  # the end: a piece, then the rest at close
    assert ("stderr", 'caf\u00e9 \ufffd\x00\t"q"\\n\n') in kept


def test_since_and_until_as_docker_takes_them() -> None:
    now = 1_800_000_000 * 10**9
    assert logs.parse_time("10m", now) == logwriter.stamp(now - 600 * 10**9)
    assert logs.parse_time("1h30m", now) == logwriter.stamp(now - 5400 * 10**9)
    assert logs.parse_time("1.5s", now) == logwriter.stamp(now - 1_500_000_000)
    assert logs.parse_time("1700000000.25", now) == "2023-11-14T22:13:20.250000000Z"
    assert logs.parse_time("2026-11-23T13:58:36.5Z", now) == "2026-11-23T13:58:36.500000000Z"
    assert logs.parse_time("2026-11-23T14:58:36+01:00", now) == "2026-11-23T13:58:36.000000000Z"
    for bad in ("", "5x", "tomorrow", "10m5"):
        with pytest.raises(UsageError, match="invalid --until"):
            logs.parse_time(bad, now, "--until")
