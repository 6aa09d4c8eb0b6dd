"""A process by its PID and start time: a PID alone does not name a process (PIDs are reused,
after a reboot always), so each PID minirun records is trusted only while /proc/PID/stat's
start time (field 22) is still the one recorded."""

from __future__ import annotations

import os


def _stat(pid: int) -> tuple[bytes, int] | None:
    """``pid``'s state letter and start time (in clock ticks since boot: field 22 of
    /proc/PID/stat); None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()  # after the name, which may hold spaces
        return fields[0], int(fields[19])  # the list starts at field 3
    except (OSError, IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started; None: gone."""
    found = _stat(pid)
    return found[1] if found else None


def alive(pid: int | None, started: int | None) -> bool:
    """``pid`` still names the process that had it when it ``started``, and it has not ended (a
    zombie, not yet reaped by a stopped parent, has). A PID without its start time (a state
    written before start times were recorded, or damaged) names nobody: whatever has that PID
    now is never taken for it, never signalled."""
    if not pid or started is None:
        return False
    found = _stat(pid)
    return found is not None and found[0] not in (b"Z", b"X") and found[1] == started


def lock_holders(path: str) -> list[int]:
    """The processes whose open file on ``path`` holds an flock on it (``/proc/PID/fdinfo``
    names the lock on the very descriptor that holds it, inherited copies too). Only
    kernel-made links are read (readlink of /proc/PID/fd), never a file they point at."""
    holders = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry.name}/fd/{fd}") != path:
                    continue
                with open(f"/proc/{entry.name}/fdinfo/{fd}") as info:
                    if "FLOCK" in info.read():
                        holders.append(int(entry.name))
                        break
            except OSError:
                continue
    return holders


def owner_tag() -> str:
    """``PID-STARTTIME`` of this process, for the names of its work files in the store: a prune
    removes those whose owner is gone (a PID alone could be another process's by then)."""
    return f"{os.getpid()}-{start_time(os.getpid()) or 0}"


def owner_gone(tag: str) -> bool:
    """Whether the process a name's ``PID-STARTTIME`` (or an older name's bare PID) names has
    ended: an unreadable tag is nobody's."""
    pid_text, _, start_text = tag.partition("-")
    if not pid_text.isdigit():
        return True
    if not start_text.isdigit():  # an older minirun's name: its PID alone, gone only if no process has it
        return start_time(int(pid_text)) is None
    return not alive(int(pid_text), int(start_text))
