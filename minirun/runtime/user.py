"""Who the container's program runs as: ``-u`` or the image's User resolved against the
image's own /etc/passwd and /etc/group, inside the container's root (pure; the runtime reads
the files after pivot_root, never through a host path)."""

from __future__ import annotations

from ..errors import UsageError
from ..records import Record

MAX_ID = 2**31 - 1  # as Docker (runc) allows them
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class User(Record):
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    home: str = "/"


def with_home(env: tuple[str, ...], home: str) -> tuple[str, ...]:
    return env if any(e.startswith("HOME=") for e in env) else (*env, f"HOME={home}")


def _table(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(spec: str, passwd: str, group: str) -> User:
    """``name``, ``uid``, ``uid:gid``, ``name:group``, as Docker resolves them in the image."""
    if not spec:
        spec = "0"
    user_part, _, group_part = spec.partition(":")
    users, groups = _table(passwd), _table(group)
    entry = next((u for u in users if len(u) >= 7 and (u[0] == user_part or u[2] == user_part)), None)
    if entry is not None:
        uid, gid, home, name = int(entry[2]), int(entry[3]), entry[5] or "/", entry[0]
    elif user_part.isdigit():
        uid, gid, home, name = int(user_part), 0 if not group_part else -1, "/", None
    else:
        raise UsageError(f"unable to find user {user_part}: no matching entries in passwd file")
    if group_part:
        g = next((g for g in groups if len(g) >= 3 and (g[0] == group_part or g[2] == group_part)), None)
        if g is not None:
            gid = int(g[2])
        elif group_part.isdigit():
            gid = int(group_part)
        else:
            raise UsageError(f"unable to find group {group_part}: no matching entries in group file")
    if gid < 0:
        gid = 0
    if max(uid, gid) > MAX_ID:
        raise UsageError(f"invalid user {spec}: uids and gids must be in range 0-{MAX_ID}")
    # As Docker 20.10 (runc) sets them: the group asked for alone, else the primary group and
    # every group that lists the user (tests/unit/test_spec.py has Docker's answers).
    members = set() if group_part else {int(g[2]) for g in groups
                                        if len(g) >= 4 and name and name in g[3].split(",") and g[2].isdigit()}
    supplementary = tuple(sorted({gid} | members))
    return User(uid, gid, supplementary, home)
