"""A container on disk: its ID, name, files it is given, and its recorded state.

``<root>/containers/<64 hex>/`` holds ``config.json`` (what it is: an OCI runtime spec, written
once when it is made), ``state.json`` (where it is in its life: status, PIDs, exit code,
times), the files bound over the image's ``/etc/hostname``, ``/etc/hosts`` and
``/etc/resolv.conf``, and its root filesystem (overlay upper and work directories, or the
vfs copy).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from ..content.files import atomic_write, file_lock, ignore_failure, remove_tree
from ..errors import ContainerConflict, ContainerNotFound, StoreError
from ..pids import alive, start_time
from ..records import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from datetime import datetime

_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "quiet", "sharp", "vivid", "wise")
_NAMES = ("curie", "hopper", "lovelace", "noether", "ritchie", "shannon", "thompson", "turing")


if TYPE_CHECKING:
    from typing import Any, Literal

    Status = Literal["created", "running", "exited", "dead"]

# Docker's times: RFC 3339 in UTC with nanoseconds (nine digits here, so that they sort as
# text), and this for a time that never happened (a container that never started or ended).
NEVER = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    import time
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def parse_stamp(text: str | None) -> datetime | None:
    """An RFC 3339 time as minirun and images record them (``...Z`` or ``+00:00``), aware (one
    without a zone taken as UTC); None when there is none or it does not parse."""
    import datetime as dt  # (here: the run path formats no time)
    try:
        when = dt.datetime.fromisoformat((text or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def docker_time(text: str | None) -> str:
    """A recorded time as Docker shows it (an older minirun wrote ``...+00:00``)."""
    if not text:
        return NEVER
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ContainerState(Record):
    id: str
    name: str
    image: str                       # as the user named it (familiar form)
    command: list[str]
    created: str
    reference: str = ""              # the image's full reference in the store
    chains: list[str] = []  # noqa: RUF012 - never mutated; the snapshots its root filesystem stacks
    status: Status = "created"       # dead: its removal failed
    exit_code: int | None = None
    pid: int | None = None           # the container's process, on the host
    monitor: int | None = None       # the minirun process that waits for it
    finished: str | None = None
    # A PID alone does not name a process (PIDs are reused, after a reboot always): each is
    # trusted only while /proc/PID/stat's start time (field 22) is still this one.
    pid_start: int | None = None
    monitor_start: int | None = None
    address: str | None = None       # on the bridge (its lease: rm gives it back)
    ports: list[str] = []  # noqa: RUF012 - never mutated; published, as ps shows them
    started_at: str | None = None
    error: str = ""                  # why its exit code is not known (inspect's State.Error)
    log_dropped: int = 0             # log entries that could not be written (a full disk), its last run
    restart_count: int = 0           # restarts by its policy (--restart)
    restarting: bool = False         # exited, and its monitor restarts it after the backoff

    # The transitions: created -> running -> exited, or created -> exited (it never started).
    def started(self, pid: int, monitor: int) -> ContainerState:
        if self.status != "created":
            raise ContainerConflict(f"container {self.id[:12]} is {self.status}: it cannot start again")
        return self._replace(status="running", pid=pid, monitor=monitor, pid_start=start_time(pid),
                             monitor_start=start_time(monitor), started_at=now_rfc3339())

    def restarted(self, address: str | None, ports: list[str]) -> ContainerState:
        """start: an exited container made ready to run again (as created, on a new address)."""
        if self.status not in ("exited", "created"):
            raise ContainerConflict(f"container {self.id[:12]} is {self.status}: it cannot be started")
        return self._replace(status="created", exit_code=None, pid=None, monitor=None, finished=None,
                             pid_start=None, monitor_start=None, address=address, ports=ports, error="",
                             log_dropped=0)

    def waiting_to_restart(self) -> bool:
        """Exited, and its monitor (alive) restarts it after the backoff (ps: Restarting)."""
        return self.status == "exited" and self.restarting and alive(self.monitor, self.monitor_start)

    def dead(self) -> ContainerState:
        """Its removal failed part way (Docker's "Dead"): listed until a later rm succeeds."""
        return self._replace(status="dead")

    def ended(self, code: int, monitor: int) -> ContainerState:
        if self.status == "exited":
            raise ContainerConflict(f"container {self.id[:12]} has already exited")
        return self._replace(status="exited", exit_code=code, monitor=monitor, finished=now_rfc3339())


def new_id() -> str:
    return os.urandom(32).hex()  # os.urandom, not secrets: the same bytes, 3 ms less to import


def generated_name() -> str:
    a, n, *suffix = os.urandom(4)
    return f"{_ADJECTIVES[a % len(_ADJECTIVES)]}_{_NAMES[n % len(_NAMES)]}_{bytes(suffix).hex()}"


def create(root: Path, new: ContainerState, etc: dict[str, str],
           spec: Callable[[dict[str, Path]], Mapping[str, object]]) -> tuple[ContainerState, Path]:
    """A new container's directory (``new``: its state as created; an empty name is made up):
    ``etc`` (/etc/hostname, /etc/hosts, /etc/resolv.conf: their text) first, then its
    config.json (``spec``, given where the ``etc`` files are), its state.json last, so that a
    failure (a full disk) leaves nothing behind. Returns the state and the directory."""
    base = root / "containers"
    base.mkdir(parents=True, exist_ok=True)
    directory = base / new.id
    with file_lock(root / "containers.lock"):  # names are unique: check and claim at once
        if new.name:
            if not valid_name(new.name):
                raise ContainerConflict(f'invalid container name "{new.name}": '
                                        "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            taken = next((s for _, s in every(root) if s.name == new.name), None)
            if taken is not None:
                raise ContainerConflict(f'the container name "{new.name}" is already in use by container '
                                        f'"{taken.id}": remove it (minirun rm) or choose another name')
        state = new._replace(name=new.name or generated_name(), created=now_rfc3339())
        try:
            directory.mkdir()
            save_config(directory, spec(write_etc(directory, etc)))
            save(directory, state)
        except BaseException as e:  # a Ctrl-C too: never a directory without its state
            remove_tree(directory, ignore_failure)  # best effort: the cause is what is raised
            if isinstance(e, OSError | StoreError):
                raise creation_error(root, e) from None
            raise
    return state, directory


def write_etc(directory: Path, etc: dict[str, str]) -> dict[str, Path]:
    """The files bound over the image's /etc ones (path in the container -> text), written in
    the container's directory; where each one is."""
    files = {path: directory / path.rsplit("/", 1)[1] for path in etc}
    for path, text in etc.items():
        files[path].write_text(text)
    return files


def creation_error(root: Path, e: OSError | StoreError) -> StoreError:
    if e.errno == errno.ENOSPC:
        return StoreError(f"creating container: no space left in {root}", e.errno)
    return StoreError(f"creating container in {root}: {e.strerror if isinstance(e, OSError) else e}", e.errno)


def save(directory: Path, state: ContainerState) -> None:
    atomic_write(directory / "state.json", json.dumps(state._asdict(), indent=1).encode())


def save_config(directory: Path, spec: Mapping[str, object]) -> None:
    """Its config.json, written before its state (a container is listed once its state is),
    as its /etc files are: without atomic_write's two fsyncs (3 to 5 ms of every run here). A
    crash may lose it; start, exec and inspect then say so."""
    (directory / "config.json").write_text(json.dumps(spec, separators=(",", ":")))  # compact: C's encoder


def load_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise StoreError(f"reading the configuration of container {directory.name[:12]} ({path}): "
                         f"{e.strerror}") from None
    except ValueError:
        raise StoreError(f"reading the configuration of container {directory.name[:12]} ({path}): "
                         "not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("process"), dict) or not isinstance(doc.get("linux"), dict):
        raise StoreError(f"reading the configuration of container {directory.name[:12]} ({path}): "
                         "not an OCI runtime spec")
    return doc


def hostname_of(directory: Path) -> str:
    return (directory / "hostname").read_text().strip()


USER_STOPPED = "user-stopped"   # stop or kill said so: its restart policy is over until a start


def mark_user_stopped(directory: Path, stopped: bool) -> None:
    path = directory / USER_STOPPED
    if stopped:
        with contextlib.suppress(OSError):
            path.touch()
    else:
        path.unlink(missing_ok=True)


def user_stopped(directory: Path) -> bool:
    return (directory / USER_STOPPED).exists()


def valid_name(name: str) -> bool:
    """Docker's rule for container names."""
    return re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name) is not None


_STATUSES = ("created", "running", "exited", "dead")  # Status's


def load(directory: Path) -> ContainerState:
    path = directory / "state.json"
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise StoreError(f"reading container state {path}: {e.strerror}") from None
    except ValueError as e:
        raise StoreError(f"reading container state {path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise StoreError(f"reading container state {path}: not a JSON object")
    try:
        # Fields an older minirun kept here (now in config.json) are passed over.
        state = ContainerState(**{k: v for k, v in doc.items() if k in ContainerState._fields})
    except TypeError:
        raise StoreError(f"reading container state {path}: missing or unknown fields") from None
    if not (state.id == directory.name and isinstance(state.name, str) and isinstance(state.image, str)
            and isinstance(state.command, list) and isinstance(state.chains, list)
            and state.status in _STATUSES):
        raise StoreError(f"reading container state {path}: fields of the wrong kind")
    return state


EXIT_UNKNOWN = 255  # as Docker says of a container that was running when its daemon died


def refresh(state: ContainerState, directory: Path | None = None) -> ContainerState:
    """A container whose monitor died (killed, or the machine rebooted) is exited (its process
    died with it: PDEATHSIG), with an exit code nobody recorded. Given its ``directory``, that
    end is recorded the first time it is seen, so that its FinishedAt stays what it was."""
    if state.status == "running" and not alive(state.monitor, state.monitor_start):
        ended = state._replace(status="exited", exit_code=EXIT_UNKNOWN, finished=state.finished or now_rfc3339(),
                               error="its monitor ended before it did: the exit code is unknown")
        if directory is not None:
            _record_end(directory, state, ended)
        return ended
    return state


def _record_end(directory: Path, seen: ContainerState, ended: ContainerState) -> None:
    """Save ``ended`` unless a command is changing the container (its lock is held: a start
    may be making it run again) or its state is no longer the one ``seen``; best effort."""
    import fcntl
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if load(directory) == seen:
            save(directory, ended)
    except (OSError, StoreError):
        pass  # held by a command (it records what it sees), removed meanwhile, or a read-only store
    finally:
        os.close(fd)


ENDED = ".ended"      # containers/.ended/ID: the exit code of a --rm container, for its waiters
ENDED_KEPT = 600.0    # seconds an exit code is kept there


WAITED = "waited"     # containers/ID/waited: a wait is waiting on it


def waiting_on(directory: Path) -> None:
    """Said by ``wait`` (best effort): a --rm container leaves its exit code when removed."""
    with contextlib.suppress(OSError):
        (directory / WAITED).touch()


def leave_exit_code(directory: Path, code: int) -> None:
    """Before a --rm container that a ``wait`` waits on is removed: its exit code, kept a
    while for it (Docker's wait has it from the daemon); older ones are swept now. Best
    effort: a full store loses only this."""
    import time
    if not (directory / WAITED).exists():
        return  # nobody waits (as nearly always): one stat
    ended = directory.parent / ENDED
    with contextlib.suppress(OSError):
        ended.mkdir(mode=0o700, exist_ok=True)
        (ended / directory.name).write_text(str(code))
        sweep_exit_codes(ended, time.time() - ENDED_KEPT)


def sweep_exit_codes(ended: Path, before: float) -> None:
    with contextlib.suppress(OSError):
        for p in ended.iterdir():
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < before:
                    p.unlink()


def exit_code_left(directory: Path) -> int | None:
    """The exit code a --rm container left when it was removed (None: none)."""
    try:
        return int((directory.parent / ENDED / directory.name).read_text())
    except (OSError, ValueError):
        return None


class Damaged(Record):
    """A container whose state.json cannot be read. Its name is salvaged from what is left of
    the file when it can be (a truncated file keeps its start), so that it stays taken."""
    directory: Path
    id: str
    name: str
    reason: str

    def as_state(self) -> ContainerState:
        """What ``rm`` works with: a dead container of unknown image."""
        return ContainerState(self.id, self.name, "", [], "", status="dead")


def _salvaged_name(directory: Path) -> str:
    with contextlib.suppress(OSError):
        m = re.search(rb'"name": "([a-zA-Z0-9][a-zA-Z0-9_.-]*)"', (directory / "state.json").read_bytes())
        if m:
            return m.group(1).decode()
    return ""


def scan(root: Path) -> tuple[list[tuple[Path, ContainerState]], list[Damaged]]:
    """Every container (newest first), and those whose state cannot be read. A directory
    without state.json is being created or removed right now and is neither."""
    base = root / "containers"
    if not base.is_dir():
        return [], []
    out, damaged = [], []
    for d in base.iterdir():
        if len(d.name) == 64 and (d / "state.json").exists():
            try:
                state = load(d)
            except StoreError as e:
                if (d / "state.json").exists():  # else removed meanwhile
                    damaged.append(Damaged(d, d.name, _salvaged_name(d), str(e)))
                continue
            out.append((d, refresh(state, d)))
    return sorted(out, key=lambda x: x[1].created, reverse=True), damaged


def list_all(root: Path) -> list[tuple[Path, ContainerState]]:
    return scan(root)[0]


def every(root: Path) -> list[tuple[Path, ContainerState]]:
    """The sound containers and the damaged ones (as dead): for names, rm and GC."""
    sound, damaged = scan(root)
    return sound + [(d.directory, d.as_state()) for d in damaged]


def find(root: Path, key: str) -> tuple[Path, ContainerState]:
    """By name, full ID or unique ID prefix, as Docker finds containers (a damaged one too,
    as dead: so that rm can remove it)."""
    known = every(root)
    exact = [x for x in known if key in (x[1].name, x[1].id)]
    if exact:
        return exact[0]
    prefix = [x for x in known if key and x[1].id.startswith(key)]
    if len(prefix) == 1:
        return prefix[0]
    if len(prefix) > 1:
        raise ContainerConflict(f'multiple containers match "{key}": give more of the ID')
    raise ContainerNotFound(f"No such container: {key}")
