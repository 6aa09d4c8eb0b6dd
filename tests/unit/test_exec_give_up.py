"""exec's CLI gives up on SIGINT or SIGTERM while the process is still being set up (issue 22,
finding 9): the joining process is ended, and the report is one line. Real processes and
signals; no root needed."""

from __future__ import annotations

import os
import signal
import threading
import time

from minirun.runtime import execute
from minirun.runtime.signals import Forwarder


def test_a_signal_during_the_setup_ends_it_with_one_line() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        errr, errw = os.pipe2(os.O_CLOEXEC)
        child = os.fork()
        if child == 0:  # a setup that never reports (as one blocked would be)
            time.sleep(60)
            os._exit(0)
        os.close(errw)
        forwarder = Forwarder()
        try:
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signum))
            timer.start()
            started = time.monotonic()
            report = execute._setup_report(errr, child, forwarder)
        finally:
            forwarder.restore()
        _, status = os.waitpid(child, 0)
        assert time.monotonic() - started < 5
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        name = signal.Signals(signum).name
        assert report == f"125\nexec: gave up on {name} before the program started".encode()


def test_a_signal_that_came_before_the_fork_is_not_lost() -> None:
    errr, errw = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    os.close(errw)
    forwarder = Forwarder()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # held by the forwarder: no process to send it to yet
        report = execute._setup_report(errr, child, forwarder)
    finally:
        forwarder.restore()
    os.waitpid(child, 0)
    assert report.startswith(b"125\nexec: gave up on SIGTERM")
