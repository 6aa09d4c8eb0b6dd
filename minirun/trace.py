"""``--explain``: the events the working code reports as it goes, and where they are written.

The code that does a step calls ``event(stage, name, msg, **fields)`` right where it does it
(the registry client, the puller, the snapshotter, the container's setup through
``runtime.kernel.TracingKernel``), so the trace is the run's own story, never a separate
re-telling. When no sink is installed (``--explain`` off), ``event`` returns at once; call
sites that would compute much for an event test ``active()`` first, and the container's
setup uses the plain ``Kernel``: a run without ``--explain`` pays nothing measurable.

An event is one JSON object: ``t`` (seconds since the command started), ``n`` (its number),
``stage``, ``event``, ``msg`` (one human sentence) and the stage's own fields. The sink writes
to a descriptor with ``os.write``, so the forked child that sets up the container (before its
exec) reports into the same stream; the number is kept in memory shared with it.
"""

from __future__ import annotations

import _thread
import json
import os
import struct
import time

from .records import TYPE_CHECKING

if TYPE_CHECKING:
    import mmap

# Each stage, in the order of a run, with the part of Docker that does that step there.
STAGES: dict[str, str] = {
    "reference": "the docker CLI parses the name; dockerd normalises it (distribution/reference)",
    "registry": "dockerd picks the endpoint: a configured registry-mirror first, then the origin",
    "http": "dockerd's registry client (containerd's remotes in Docker 25+) speaks the Registry HTTP API",
    "auth": "dockerd answers the registry's 401 challenge with a token from the auth server",
    "pull": "dockerd streams the pull's progress to the CLI as JSON messages",
    "index": "dockerd/containerd pick the manifest for this platform from the image index",
    "manifest": "the platform's image manifest: a config and layers, each named by its digest",
    "config": "the image config: environment, command, and the DiffIDs of the layers",
    "layer": "dockerd's download manager (containerd's content store) fetches and verifies blobs",
    "snapshot": "the graph driver overlay2 (containerd's overlayfs snapshotter) unpacks each layer",
    "container": "dockerd creates the container; containerd starts a shim, which calls runc create",
    "namespaces": "runc (runc init) joins the cgroup and unshares the namespaces",
    "mounts": "runc mounts the root filesystem, /proc, /dev, /sys, masks paths and pivots root",
    "security": "runc sets the user, rlimits, capabilities, no_new_privs and the seccomp filter",
    "exec": "runc init execs the program: from here it is the container's PID 1",
    "exit": "the shim reaps PID 1; containerd tells dockerd; the CLI exits with the code",
    "cleanup": "dockerd removes the container (--rm): its mounts, cgroup and directory",
    "error": "where Docker would stop with the same error",
}


if TYPE_CHECKING:
    from typing import Protocol

    class Sink(Protocol):
        def __call__(self, t: float, n: int, stage: str, event: str, fields: dict[str, object]) -> None: ...


_sink: Sink | None = None
_t0 = 0.0
# Shared with forked children: the last number, a bit per stage already shown, the last stage.
_shared: mmap.mmap | None = None
_AFTER = ("exit", "cleanup", "error")  # what follows a failure: not where it happened
_lock = _thread.allocate_lock()


def install(sink: Sink | None) -> None:
    """Start (or, with None, stop) tracing; the clock and the numbering start here."""
    global _sink, _t0, _shared
    _sink, _t0, _shared = sink, time.monotonic(), None
    if sink is not None:
        import mmap  # only here: a run without --explain does not load it
        _shared = mmap.mmap(-1, 24)


def active() -> bool:
    return _sink is not None


def descriptor() -> int:
    """The descriptor events are written to (-1: none), for a child to keep open until exec."""
    return getattr(_sink, "fd", -1)


def last_stage() -> str:
    """The last stage that did work (not exit, cleanup or error), in any of the processes."""
    if _shared is None:
        return ""
    index = struct.unpack_from("Q", _shared, 16)[0]
    return list(STAGES)[index - 1] if index else ""


def event(stage: str, name: str, msg: str, **fields: object) -> None:
    sink = _sink
    if sink is None:
        return
    with _lock:  # the pull's download threads report too: one number each, written in order
        n = 1
        if _shared is not None:
            n = struct.unpack_from("Q", _shared)[0] + 1
            struct.pack_into("Q", _shared, 0, n)
            if stage in STAGES and stage not in _AFTER:
                struct.pack_into("Q", _shared, 16, list(STAGES).index(stage) + 1)
        sink(time.monotonic() - _t0, n, stage, name, {"msg": msg, **fields})


def first(stage: str) -> bool:
    """True the first time ``stage`` is asked about in this trace (in any of its processes)."""
    if _shared is None or stage not in STAGES:
        return False
    bit = 1 << list(STAGES).index(stage)
    seen = struct.unpack_from("Q", _shared, 8)[0]
    struct.pack_into("Q", _shared, 8, seen | bit)
    return not seen & bit


def record(t: float, n: int, stage: str, name: str, fields: dict[str, object]) -> dict[str, object]:
    return {"t": round(t, 6), "n": n, "stage": stage, "event": name, **fields}


class JsonSink:
    """One JSON object per line on ``fd`` (--explain=json, pull --progress json)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self, t: float, n: int, stage: str, event: str, fields: dict[str, object]) -> None:
        _write(self.fd, json.dumps(record(t, n, stage, event, fields)) + "\n")


class TextSink:
    """Numbered, timed lines on ``fd``; the first event of a stage is preceded by the line
    that says which part of Docker does that step."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self, t: float, n: int, stage: str, event: str, fields: dict[str, object]) -> None:
        head = f"-- {stage}: in Docker, {STAGES[stage]}\n" if first(stage) else ""
        _write(self.fd, f"{head}{n:4d} {t:8.3f}s  {fields['msg']}\n")


def _write(fd: int, text: str) -> None:
    data = text.encode(errors="replace")
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # a closed stderr must not stop the run it narrates
