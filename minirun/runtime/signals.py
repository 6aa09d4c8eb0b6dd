"""Signals sent to minirun go to the container's PID 1, as docker run's sig-proxy does.

Handlers are installed before the fork, so a signal arriving while the container starts
is held and delivered once its PID is known, never lost and never fatal to minirun.
"""

from __future__ import annotations

import os
import signal

from ..errors import UsageError

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGWINCH)


class Forwarder:
    """Forwards FORWARDED signals to a process; those arriving before it exists wait."""

    def __init__(self) -> None:
        self.pid = 0
        self.ended = False
        self.pending: list[int] = []
        self.previous = {s: signal.signal(s, self._handle) for s in FORWARDED}

    def _handle(self, signum: int, _frame: object) -> None:
        if self.ended:
            return  # its process was reaped (its PID may be another's now): nothing to forward to
        if self.pid:
            _forward(self.pid, signum)
        else:
            self.pending.append(signum)

    def end(self) -> None:
        """The process was reaped: what comes now is held until ``restore``, and dropped."""
        self.ended = True

    def target(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            _forward(pid, signum)
        self.pending.clear()

    def restore(self) -> None:
        for s, h in self.previous.items():
            signal.signal(s, h)


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def parse(name: str) -> int:
    """A signal as Docker takes it: ``SIGTERM``, ``TERM``, ``term`` or ``15``."""
    text = name.strip().upper()
    if text.isdigit() and 0 < int(text) < signal.NSIG:
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        raise UsageError(f'invalid signal "{name}": expected a name such as SIGTERM or a number') from None
