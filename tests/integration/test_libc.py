"""The cffi-wrapped calls against the real kernel (as root): namespaces joined and named."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable

import pytest

from minirun.runtime import _libc


def _in_child(body: Callable[[], bytes]) -> bytes:
    """Run ``body`` (returning bytes) in a forked process; its answer, or its error as text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.write(w, body())
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which asserts on it
            os.write(w, f"error: {e}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read()
    os.waitpid(pid, 0)
    return out


def test_sethostname_in_a_new_uts_namespace_and_setns_into_it() -> None:
    host = socket.gethostname()
    ready_r, ready_w = os.pipe()
    holder = os.fork()
    if holder == 0:  # names its own UTS namespace, then keeps it alive
        try:
            _libc.unshare(_libc.CLONE_NEWUTS)
            _libc.sethostname("minirun-uts-test")
            os.write(ready_w, b"x")
            signal.pause()
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"x"
        path = f"/proc/{holder}/ns/uts"

        def join() -> bytes:
            fd = os.open(path, os.O_RDONLY)
            _libc.setns(fd, _libc.CLONE_NEWUTS, path)
            return socket.gethostname().encode()

        assert _in_child(join) == b"minirun-uts-test"
        assert socket.gethostname() == host  # the test's own namespace is untouched
    finally:
        os.kill(holder, signal.SIGKILL)
        os.waitpid(holder, 0)


def test_failures_name_the_call_the_object_and_the_cause() -> None:
    with pytest.raises(OSError) as e:
        _libc.setns(-1, _libc.CLONE_NEWUTS, "/proc/1/ns/uts")
    assert str(e.value) == "[Errno 9] setns /proc/1/ns/uts: Bad file descriptor"

    def too_long() -> bytes:
        _libc.unshare(_libc.CLONE_NEWUTS)
        _libc.sethostname("x" * 65)
        return b"set"
    assert _in_child(too_long) == b"error: [Errno 22] sethostname " + b"x" * 65 + b": Invalid argument"


def test_socket_gives_a_bare_close_on_exec_descriptor() -> None:
    fd = _libc.socket(_libc.AF_INET, _libc.SOCK_DGRAM)
    try:
        assert not os.get_inheritable(fd)
        with socket.socket(fileno=os.dup(fd)) as s:
            assert s.type == socket.SOCK_DGRAM
    finally:
        os.close(fd)
