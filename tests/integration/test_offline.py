"""The README's way to run without internet, as a newcomer would use it: scripts/local-registry
on the system's Python with the standard library alone (no .venv, no test extra)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.integration.conftest import Minirun

REPO = Path(__file__).resolve().parents[2]


def test_local_registry_needs_only_the_standard_library(minirun: Minirun) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # -S: no site-packages at all, so nothing the test extra or Debian's python3-* installed
    p = subprocess.Popen(["/usr/bin/python3", "-S", str(REPO / "scripts" / "local-registry"), "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stderr is not None
        line = p.stdout.readline()  # printed once both images are pushed
        said = p.stderr.read() if p.poll() is not None else ""
        assert line == f"export MINIRUN_REGISTRY_MIRROR=http://127.0.0.1:{port}\n", (line, said)
        r = minirun("pull", "hello-world", MINIRUN_REGISTRY_MIRROR=f"http://127.0.0.1:{port}")
        assert r.returncode == 0 and "Downloaded newer image for hello-world:latest" in r.stdout, r
        r = minirun("pull", "-q", "busybox", MINIRUN_REGISTRY_MIRROR=f"http://127.0.0.1:{port}")
        assert (r.returncode, r.stdout) == (0, "docker.io/library/busybox:latest\n"), r
    finally:
        p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if p.poll() is None:
            p.kill()
        p.wait()
