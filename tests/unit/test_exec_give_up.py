"""exec's CLI gives up on SIGINT or SIGTERM while the process is still being set up (issue 22,
finding 9): the joining process is ended, and the report is one line. Real processes and
signals; no root needed."""

from __future__ import annotations

import os
import signal
import threading
import time

from minirun.runtime import channel, execute
from minirun.runtime.signals import Forwarder


def test_a_signal_during_the_setup_ends_it_with_one_line() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        ours, theirs = channel.pair()
        child = os.fork()
        if child == 0:  # a setup that never reports (as one blocked would be)
            time.sleep(60)
            os._exit(0)
        theirs.close()
        forwarder = Forwarder()
        try:
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signum))
            timer.start()
            started = time.monotonic()
            report, master = execute._setup_report(ours, child, forwarder)
        finally:
            forwarder.restore()
            ours.close()
        _, status = os.waitpid(child, 0)
        assert time.monotonic() - started < 5
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        name = signal.Signals(signum).name
        assert report is not None and master == -1
        assert channel.failure(report.body) == (125, f"exec: gave up on {name} before the program started")


def test_a_signal_that_came_before_the_fork_is_not_lost() -> None:
    ours, theirs = channel.pair()
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    theirs.close()
    forwarder = Forwarder()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # held by the forwarder: no process to send it to yet
        report, _ = execute._setup_report(ours, child, forwarder)
    finally:
        forwarder.restore()
        ours.close()
    os.waitpid(child, 0)
    assert report is not None and report.body.startswith(b"125\nexec: gave up on SIGTERM")


def test_the_channel_carries_kinds_bodies_and_a_descriptor() -> None:
    ours, theirs = channel.pair()
    r, w = os.pipe()
    try:
        theirs.send(channel.CONSOLE, fd=r)
        theirs.send(channel.FAILED, channel.failed(127, 'exec: "x": not found'))
        got = ours.receive()
        assert got is not None and got.kind == channel.CONSOLE and got.fd >= 0 and got.fd != r
        os.write(w, b"through")
        assert os.read(got.fd, 7) == b"through"  # the same pipe, received as a descriptor of ours
        os.close(got.fd)
        failed = ours.receive()
        assert failed is not None and channel.failure(failed.body) == (127, 'exec: "x": not found')
        theirs.close()
        assert ours.receive() is None  # the other end closed: what exec does to it
    finally:
        ours.close()
        theirs.close()
        os.close(r)
        os.close(w)
