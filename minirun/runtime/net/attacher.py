"""The helper process that attaches a container to its networks (and starts its resolver).

pyroute2's netlink messages take about 20 ms to import, as much as the rest of a warm start,
and a container on the bridge cannot exec before its ``eth0`` is attached. So ``run`` forks
this helper first thing, when it knows the container goes on the bridge: the helper loads
them on the other core while ``run`` reads the image, makes the container and its child sets
up its mounts, then attaches the container's network when it is told its PID and lease, and
exits. Nothing of minirun's stays open in it (not the store's locks, not the caller's stdout).
"""

from __future__ import annotations

import json
import os
import signal

from ... import records
from .. import _libc

if records.TYPE_CHECKING:
    from .leases import Lease
    from .wiring import Wiring


def for_mode(mode: str, detached: bool = False) -> Attacher | None:
    """For a container on a bridge (network ``mode``), the helper that attaches it, started
    now so that it has loaded its netlink messages by the time the container needs them.
    ``detached`` (run -d): the monitor, a sibling, will ask it, and the container must start
    even if the CLI is killed meanwhile (as without a helper): it is not killed with the CLI."""
    if mode in ("none", "host") or mode.startswith("container:") or os.geteuid() != 0:
        return None
    return Attacher(names=mode not in ("bridge", "default"), bound=not detached)


class Attacher:
    def __init__(self, names: bool = False, bound: bool = True) -> None:
        """``names``: a user network's container, whose resolver the helper starts (its
        module loaded ahead too). ``bound``: killed if this process dies (else it ends when
        every holder of its request pipe has closed it, or once it has attached)."""
        cmd_r, cmd_w = os.pipe2(os.O_CLOEXEC)
        res_r, res_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            try:
                signal.pthread_sigmask(signal.SIG_BLOCK, _QUIET)  # minirun's signals are not its own
                if bound:
                    _libc.prctl(_libc.PR_SET_PDEATHSIG, signal.SIGKILL)
                from ..kernel import close_all_but
                close_all_but((cmd_r, res_w), low=0)
                _serve(cmd_r, res_w, names)
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(res_w)
        self.pid, self.cmd, self.res = pid, cmd_w, res_r
        self.parent = os.getpid()

    def descriptors(self) -> tuple[int, int]:
        """What a monitor forked meanwhile keeps open to ask the helper (run -d)."""
        return self.cmd, self.res

    def attach(self, leases: list[Lease], pid: int, wiring: Wiring) -> None:
        """Attach the container (its process ``pid``) with its leases, as ``wiring`` says; an
        OSError says why not."""
        from .leases import lease_doc
        request = {"leases": [lease_doc(lease) for lease in leases], "pid": pid, "wiring": wiring._asdict()}
        os.write(self.cmd, json.dumps(request).encode() + b"\n")
        answer = os.read(self.res, 4096)
        self.close()
        if answer != b"ok":
            raise OSError(5, answer.decode(errors="replace") or "the network helper ended")  # EIO

    def close(self) -> None:
        """Done, or the run ended before its container started: the helper exits. Only the
        process that forked it waits for it (a run -d monitor, which asked it, is a sibling)."""
        if self.cmd >= 0:
            os.close(self.cmd)
            os.close(self.res)
            self.cmd = -1
            if os.getpid() == self.parent:
                os.waitpid(self.pid, 0)


_QUIET = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
          signal.SIGWINCH}


def _serve(cmd: int, res: int, names: bool) -> None:
    from . import leases, netlink, wiring
    netlink.preload()  # what this process is for: now, in parallel with the container's making
    if names:
        from . import resolver  # noqa: F401 - (likewise: its sockets are bound while the container waits)
    data = b""
    while not data.endswith(b"\n"):
        more = os.read(cmd, 4096)
        if not more:
            return  # the run ended before its container started
        data += more
    request = json.loads(data)
    attached = [leases.lease_from(doc) for doc in request["leases"]]
    try:
        wiring.wire_up(attached, request["pid"], wiring.Wiring(**request["wiring"]), lambda: os.write(res, b"ok"))
    except OSError as e:
        os.write(res, (e.strerror or str(e)).encode())
