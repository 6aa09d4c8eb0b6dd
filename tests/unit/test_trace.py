"""The --explain trace (pure parts): its sinks, numbering, schema and flag."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from minirun import runargs, trace
from minirun.errors import UsageError
from minirun.remote.reference import normalisation, parse
from tests.support.explain_doc import collapse, render, steps

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "explain.schema.json").read_text())


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    trace.install(None)
    os.close(r)
    os.close(w)


def test_off_by_default_and_silent() -> None:
    trace.install(None)
    assert not trace.active() and trace.descriptor() == -1
    trace.event("reference", "normalised", "nothing is written")  # no sink: returns at once


def test_json_lines_are_numbered_and_follow_the_schema(pipe: tuple[int, int]) -> None:
    r, w = pipe
    trace.install(trace.JsonSink(w))
    trace.event("reference", "normalised", "a -> b", typed="a")
    trace.event("http", "response", "GET x -> 200", status_code=200)
    docs = [json.loads(line) for line in os.read(r, 65536).decode().splitlines()]
    assert [(d["n"], d["stage"], d["event"]) for d in docs] == [(1, "reference", "normalised"), (2, "http", "response")]
    assert docs[0]["typed"] == "a" and 0 <= docs[0]["t"] <= docs[1]["t"]
    for d in docs:
        jsonschema.validate(d, SCHEMA)
    assert trace.last_stage() == "http" and trace.descriptor() == w


def test_text_names_dockers_part_once_per_stage_even_across_a_fork(pipe: tuple[int, int]) -> None:
    r, w = pipe
    trace.install(trace.TextSink(w))
    trace.event("mounts", "pivot_root", "parent")
    pid = os.fork()
    if pid == 0:  # the container's setup reports from a forked child: same numbers, same stages
        trace.event("mounts", "mount", "child")
        trace.event("exec", "execve", "child")
        os._exit(0)
    os.waitpid(pid, 0)
    trace.event("exec", "running", "parent again")
    trace.event("exit", "exited", "done")
    text = os.read(r, 65536).decode().splitlines()
    heads = [line for line in text if line.startswith("-- ")]
    assert heads == [f"-- mounts: in Docker, {trace.STAGES['mounts']}", f"-- exec: in Docker, {trace.STAGES['exec']}",
                     f"-- exit: in Docker, {trace.STAGES['exit']}"]
    numbered = [line.split() for line in text if not line.startswith("-- ")]
    assert [(int(p[0]), p[-1]) for p in numbered] == [(1, "parent"), (2, "child"), (3, "child"), (4, "again"),
                                                      (5, "done")]
    assert trace.last_stage() == "exec"  # exit and cleanup are not where a run fails


def test_the_schema_names_every_stage() -> None:
    assert SCHEMA["properties"]["stage"]["enum"] == list(trace.STAGES)


def test_the_flag() -> None:
    assert runargs.parse(["--explain", "hello-world"]).explain == "text"
    assert runargs.parse(["--explain=json", "hello-world"]).explain == "json"
    assert runargs.parse(["hello-world"]).explain is None
    with pytest.raises(UsageError, match="--explain=json"):
        runargs.parse(["--explain=xml", "hello-world"])
    assert "--explain [=json]" in runargs.help_text()


def test_normalisation_reasons() -> None:
    assert len(normalisation("hello-world", parse("hello-world"))) == 3
    assert normalisation("ghcr.io/a/b:1", parse("ghcr.io/a/b:1")) == []
    assert normalisation("user/app:2", parse("user/app:2")) == [
        "no registry host in the name (its first part has no '.' or ':' and is not localhost): Docker Hub, docker.io"]


def test_the_walk_through_reads_back_its_steps() -> None:
    events: list[dict[str, object]] = [
        {"t": 0.1 * i, "n": i + 1, "stage": s, "event": e, "msg": f"step {i}"}
        for i, (s, e) in enumerate([("reference", "normalised"), ("http", "response"), ("http", "response"),
                                    ("auth", "challenge"), ("mounts", "mask"), ("mounts", "mask")])]
    doc = render(events, "minirun run --rm --explain hello-world")
    assert steps(doc) == [("reference", "normalised"), ("http", "response"), ("auth", "challenge"),
                          ("mounts", "mask")]
    assert doc.count("*In Docker:*") == 4 and collapse([("a", "b"), ("a", "b")]) == [("a", "b")]


def test_threads_get_one_number_each_in_line_order(pipe: tuple[int, int]) -> None:
    import threading
    r, w = pipe
    trace.install(trace.JsonSink(w))
    def report() -> None:
        for _ in range(100):
            trace.event("layer", "status", "x")

    threads = [threading.Thread(target=report) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = b""
    while data.count(b"\n") < 400:
        data += os.read(r, 65536)
    assert [json.loads(line)["n"] for line in data.decode().splitlines()] == list(range(1, 401))
