"""From an image config and ``run`` flags to what the container runs (pure).

Docker's rules: ``--entrypoint`` replaces the image's Entrypoint *and* clears its Cmd;
arguments after the image replace Cmd; ``-e K=V`` overrides, ``-e K`` copies from the
caller's environment (or drops K); PATH has a default; HOSTNAME and HOME are set.
"""

import posixpath
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..errors import UsageError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class User(NamedTuple):
    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    home: str = "/"


class Bind(NamedTuple):
    source: str      # absolute host path
    target: str      # absolute container path
    readonly: bool = False


class RunSpec(NamedTuple):
    argv: tuple[str, ...]
    env: tuple[str, ...]     # without HOME unless set: HOME comes from the image's passwd
    cwd: str
    user: str                # as given (-u or the image's User); resolved inside the container
    hostname: str
    interactive: bool = False
    binds: tuple[Bind, ...] = ()
    tmpfs: tuple[tuple[str, str], ...] = ()   # (container path, mount options)
    read_only: bool = False
    privileged: bool = False
    init: str = ""           # --init: the host's static init, bound into the container ("": none)
    tty: bool = False
    capabilities: frozenset[int] = frozenset()
    seccomp: bytes = b""     # the BPF program loaded last before exec (b"": none)
    no_new_privileges: bool = False
    rlimits: tuple[tuple[int, int, int], ...] = ()   # (RLIMIT_*, soft, hard); -1: unlimited


# Docker's --ulimit names and the resources they set (getrlimit(2)).
ULIMITS = {"cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
           "memlock": 8, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14, "rttime": 15}


def parse_ulimit(text: str) -> tuple[int, int, int]:
    """``--ulimit NAME=SOFT[:HARD]`` as Docker takes it (HARD defaults to SOFT; -1: unlimited)."""
    name, eq, values = text.partition("=")
    if not eq or name not in ULIMITS:
        raise UsageError(f'invalid --ulimit "{text}": expected NAME=SOFT[:HARD] with NAME one of '
                         f"{', '.join(sorted(ULIMITS))}")
    soft_text, _, hard_text = values.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if hard_text else soft
    except ValueError:
        raise UsageError(f'invalid --ulimit "{text}": limits are numbers (-1: unlimited)') from None
    if min(soft, hard) < -1 or (hard != -1 and (soft == -1 or soft > hard)):
        raise UsageError(f'invalid --ulimit "{text}": the soft limit must not be above the hard limit')
    return ULIMITS[name], soft, hard


def command(config: Mapping[str, Any], args: list[str], entrypoint: str | None) -> tuple[str, ...]:
    image_ep = list(config.get("Entrypoint") or [])
    image_cmd = list(config.get("Cmd") or [])
    if entrypoint is not None:
        ep = [entrypoint] if entrypoint else []
        cmd = args  # --entrypoint clears the image's Cmd
    else:
        ep, cmd = image_ep, args or image_cmd
    argv = tuple(ep + cmd)
    if not argv:
        raise UsageError("no command specified: the image has no Entrypoint or Cmd and none was given")
    return argv


def working_dir(config: Mapping[str, Any], flag: str | None) -> str:
    """``-w`` (absolute, as Docker requires), else the image's WorkingDir, else ``/``."""
    if flag:
        if not flag.startswith("/"):
            raise UsageError(f'invalid working directory "{flag}": it must be an absolute path')
        return flag
    return str(config.get("WorkingDir") or "/")


def parse_env_file(text: str, source: str, caller: Mapping[str, str]) -> list[str]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line and line not in caller:
            continue
        if line.split("=", 1)[0] == "" or any(c.isspace() for c in line.split("=", 1)[0]):
            raise UsageError(f"{source}:{n}: invalid variable name in {line!r}")
        out.append(line)
    return out


def environment(config: Mapping[str, Any], flags: list[str], caller: Mapping[str, str],
                hostname: str) -> tuple[str, ...]:
    env: dict[str, str] = {}
    for item in list(config.get("Env") or []):
        k, _, v = str(item).partition("=")
        env[k] = v
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOSTNAME"] = hostname
    for item in flags:
        k, eq, v = item.partition("=")
        if not k:
            raise UsageError(f'invalid environment variable "{item}"')
        if eq:
            env[k] = v
        elif k in caller:
            env[k] = caller[k]
        else:
            env.pop(k, None)
    return tuple(f"{k}={v}" for k, v in env.items())


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
    # As Docker 20.10 (runc) sets them: the group asked for alone, else the primary group and
    # every group that lists the user (tests/unit/test_spec.py has Docker's answers).
    members = set() if group_part else {int(g[2]) for g in groups
                                        if len(g) >= 4 and name and name in g[3].split(",") and g[2].isdigit()}
    supplementary = tuple(sorted({gid} | members))
    return User(uid, gid, supplementary, home)


# Docker's -v options on Linux: one of ro/rw, one of z/Z (SELinux relabelling: nothing to do
# without SELinux, as Docker on Debian), and macOS's consistency hints (ignored on Linux).
_VOLUME_OPTION_GROUPS = ({"ro", "rw"}, {"z", "Z"}, {"consistent", "cached", "delegated"})


def parse_volume(text: str) -> Bind:
    """``-v /host:/container[:OPTIONS]`` (named volumes are not supported)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f'invalid volume "{text}": expected /host/path:/container/path[:ro]')
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    if any(sum(o in group for o in options) > 1 for group in _VOLUME_OPTION_GROUPS) or \
            not all(any(o in group for group in _VOLUME_OPTION_GROUPS) for o in options):
        raise UsageError(f'invalid volume "{text}": invalid mode: {parts[2]}')  # Docker's words after the colon
    if not source.startswith("/"):
        raise UsageError(f'invalid volume "{text}": named volumes are not supported, give an absolute host path')
    if not target.startswith("/") or posixpath.normpath(target) == "/":
        raise UsageError(f'invalid volume "{text}": the container path must be absolute and not /')
    return Bind(posixpath.normpath(source), posixpath.normpath(target), "ro" in options)


TMPFS_BASE = "noexec,nosuid,nodev"   # Docker's, before the user's options (which may say exec, suid, dev)
TMPFS_SIZE = "size=65536k"           # when the user gives no options at all


def parse_tmpfs(text: str) -> tuple[str, str]:
    """``--tmpfs /path[:options]``: Docker starts from noexec,nosuid,nodev and applies the
    user's options on top, so ``size=1m`` alone keeps all three."""
    path, _, options = text.partition(":")
    if not path.startswith("/") or posixpath.normpath(path) == "/":
        raise UsageError(f'invalid tmpfs "{text}": the container path must be absolute and not /')
    return posixpath.normpath(path), f"{TMPFS_BASE},{options or TMPFS_SIZE}"
