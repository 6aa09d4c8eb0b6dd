"""Health checks without a daemon or systemd: the process that waits for the container (its
monitor, or a foreground run) probes it from a thread, every interval, with ``minirun exec``
(the same confinement as any exec: the container's namespaces, user, capabilities, seccomp
filter), and keeps Docker's ``State.Health`` in ``health.json`` beside its state: the status,
the failing streak and the last five results with their output."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

from ..containers import events
from ..containers.state import now_rfc3339
from ..content.files import atomic_write
from ..records import TYPE_CHECKING
from ..spec.health import LOG_KEPT, OUTPUT_KEPT, SECOND, Check, next_status

if TYPE_CHECKING:
    from pathlib import Path

    from ..containers.state import ContainerState

HEALTH = "health.json"


def read(directory: Path) -> dict[str, object] | None:
    """Its State.Health as last written (None: it has no health check)."""
    try:
        doc = json.loads((directory / HEALTH).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


class Checker:
    """Probes one running container until ``stop``."""

    def __init__(self, root: Path, directory: Path, state: ContainerState, check: Check,
                 labels: dict[str, str]) -> None:
        self.root, self.directory, self.state, self.check, self.labels = root, directory, state, check, labels
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="health", daemon=True)
        self.health: dict[str, object] = {"Status": "starting", "FailingStreak": 0, "Log": []}

    def start(self) -> None:
        self._write()
        self.thread.start()

    def stop(self) -> None:
        self.done.set()

    def _run(self) -> None:
        began = time.monotonic()
        while not self.done.wait(self.check.interval / SECOND):
            start = now_rfc3339()
            code, output = self._probe()
            if self.done.is_set():
                return  # the container ended meanwhile: its last result is not a probe of it
            in_start = time.monotonic() - began < self.check.start_period / SECOND
            before = str(self.health["Status"])
            status, streak = next_status(before, int(str(self.health["FailingStreak"])), code == 0,
                                         self.check.retries, in_start)
            log = [*list(self.health["Log"]), {"Start": start, "End": now_rfc3339(),  # type: ignore[call-overload]
                                               "ExitCode": code, "Output": output}][-LOG_KEPT:]
            self.health = {"Status": status, "FailingStreak": streak, "Log": log}
            self._write()
            if status != before:
                events.of_container(self.root, f"health_status: {status}", self.state.id, self.state.name,
                                    self.state.image, self.labels)

    def _write(self) -> None:
        with contextlib.suppress(OSError):
            atomic_write(self.directory / HEALTH, json.dumps(self.health).encode())

    def _probe(self) -> tuple[int, str]:
        """The check's command through ``minirun exec``: its exit code and output (-1 and
        Docker's words when it outlives the timeout)."""
        argv = [sys.executable, "-m", "minirun", "exec", self.state.id, *self.check.argv()]
        env = {**os.environ, "MINIRUN_ROOT": str(self.root)}
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True)
        except OSError as e:
            return -1, f"starting the health check: {e.strerror}"
        seconds = self.check.timeout / SECOND
        try:
            out, _ = p.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            return -1, f"Health check exceeded timeout ({seconds:g}s)"
        return p.returncode, out[:OUTPUT_KEPT].decode(errors="replace")
