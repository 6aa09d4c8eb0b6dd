"""``run``'s flags and the image's config, read as Docker reads them (pure): the command,
working directory, environment, ``--ulimit``, ``-v`` and ``--tmpfs``.

Docker's rules: ``--entrypoint`` replaces the image's Entrypoint *and* clears its Cmd;
arguments after the image replace Cmd; ``-e K=V`` overrides, ``-e K`` copies from the
caller's environment (or drops K); PATH has a default; HOSTNAME and HOME are set.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from ..errors import UsageError
from ..oci import RunConfig
from ..records import Record
from ..runtime.rlimit import RLIMITS
from ..runtime.user import DEFAULT_PATH


class Bind(Record):
    source: str      # absolute host path; for a volume its name ("": an anonymous one)
    target: str      # absolute container path
    readonly: bool = False
    volume: bool = False   # a named or anonymous volume (made in the store on first use)
    nocopy: bool = False   # a volume that is not given the image's content at its path


# Docker's rule for a local volume's name (at least two characters).
VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def check_volume_name(name: str, what: str) -> None:
    if not VOLUME_NAME.fullmatch(name):
        raise UsageError(f'{what}: "{name}" includes invalid characters for a local volume name, only '
                         '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed; to pass a host directory, give an absolute path')


# Docker's --ulimit names and the resources they set (getrlimit(2)).
ULIMITS = {name[7:].lower(): number for name, number in RLIMITS.items() if name != "RLIMIT_AS"}


def parse_ulimit(text: str) -> tuple[str, int, int]:
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
    return f"RLIMIT_{name.upper()}", soft, hard


def command(config: RunConfig, args: list[str], entrypoint: str | None) -> tuple[str, ...]:
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


def working_dir(config: RunConfig, flag: str | None) -> str:
    """``-w`` (absolute, as Docker requires), else the image's WorkingDir, else ``/``."""
    if flag:
        if not flag.startswith("/"):
            raise UsageError(f'invalid working directory "{flag}": it must be an absolute path')
        return flag
    return str(config.get("WorkingDir") or "/")


def parse_env_file(data: bytes, source: str, caller: Mapping[str, str]) -> list[str]:
    """An --env-file as Docker 20.10 reads it: lines (a CR before the LF dropped, a BOM at the
    start), leading whitespace trimmed, ``#`` comments; ``K=V`` kept byte for byte after the
    name (trailing spaces and quotes included); ``K`` alone takes the caller's value, or is
    left out where the caller has none."""
    out = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.removesuffix(b"\r")
        if n == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            raise UsageError(f"env file {source} contains invalid utf8 bytes at line {n}") from None
        line = text.lstrip()
        if not line or line.startswith("#"):
            continue
        name, eq, value = line.partition("=")  # (the line's leading whitespace is gone already)
        if " " in name or "\t" in name:
            raise UsageError(f"poorly formatted environment: variable '{name}' contains whitespaces")
        if not name:
            raise UsageError(f"poorly formatted environment: no variable name on line '{line}'")
        if eq:
            out.append(f"{name}={value}")
        elif line in caller:
            out.append(f"{line.strip()}={caller[line]}")
    return out


def environment(config: RunConfig, flags: list[str], caller: Mapping[str, str],
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


# Docker's -v options on Linux: one of ro/rw, one of z/Z (SELinux relabelling: nothing to do
# without SELinux, as Docker on Debian), and macOS's consistency hints (ignored on Linux).
_VOLUME_OPTION_GROUPS = ({"ro", "rw"}, {"z", "Z"}, {"consistent", "cached", "delegated"})


def parse_volume(text: str) -> Bind:
    """``-v /host:/container[:OPTIONS]`` (a bind), ``-v NAME:/container[:OPTIONS]`` (a named
    volume) or ``-v /container`` (an anonymous volume), as Docker reads them."""
    parts = text.split(":")
    if len(parts) == 1 and parts[0]:
        parts = ["", parts[0]]
    elif len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f'invalid volume "{text}": expected /host/path:/container/path[:ro] or NAME:/path')
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 else []
    volume = not source.startswith("/")
    groups = (*_VOLUME_OPTION_GROUPS, *([{"nocopy"}] if volume else []))
    if any(sum(o in group for o in options) > 1 for group in groups) or \
            not all(any(o in group for group in groups) for o in options):
        raise UsageError(f'invalid volume "{text}": invalid mode: {parts[2]}')  # Docker's words after the colon
    if source and volume:
        check_volume_name(source, f'invalid volume "{text}"')
    if not target.startswith("/") or posixpath.normpath(target) == "/":
        raise UsageError(f'invalid volume "{text}": the container path must be absolute and not /')
    return Bind(posixpath.normpath(source) if not volume else source, posixpath.normpath(target), "ro" in options,
                volume, "nocopy" in options)


_MOUNT_KEYS = {"type", "source", "src", "target", "destination", "dst", "readonly", "ro", "bind-propagation",
               "volume-nocopy", "tmpfs-size", "tmpfs-mode", "consistency"}
_PROPAGATIONS = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}


def parse_mount(text: str) -> Bind | tuple[str, str]:
    """``--mount type=bind|volume|tmpfs,source=...,target=...[,readonly]...`` as Docker reads
    it: a Bind (a bind or a volume: ``volume`` set) or, for a tmpfs, (path, mount options)."""
    fields: dict[str, str] = {}
    bad = f'invalid argument "{text}" for "--mount" flag'
    for item in text.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if key not in _MOUNT_KEYS:
            raise UsageError(f"{bad}: unexpected key '{key}' in '{item}'")
        if not eq and key not in ("readonly", "ro", "volume-nocopy"):
            raise UsageError(f"{bad}: invalid field '{item}' must be a key=value pair")
        fields[{"src": "source", "destination": "target", "dst": "target", "ro": "readonly"}.get(key, key)] = \
            value if eq else "true"
    kind, target = fields.get("type", "volume"), fields.get("target", "")
    flags = {k: fields[k].lower() in ("true", "1") for k in ("readonly", "volume-nocopy") if k in fields}
    if any(fields[k].lower() not in ("true", "1", "false", "0") for k in ("readonly", "volume-nocopy") if k in fields):
        raise UsageError(f"{bad}: readonly and volume-nocopy take true or false")
    if kind not in ("bind", "volume", "tmpfs"):
        raise UsageError(f'{bad}: mount type "{kind}" is not bind, volume or tmpfs')
    if not target.startswith("/") or posixpath.normpath(target) == "/":
        raise UsageError(f"{bad}: target must be an absolute path, not /")
    propagation = fields.get("bind-propagation", "rprivate")
    if propagation not in _PROPAGATIONS or ("bind-propagation" in fields and kind != "bind"):
        raise UsageError(f"{bad}: bind-propagation is one of {', '.join(sorted(_PROPAGATIONS))}, for binds")
    if kind == "tmpfs":
        return posixpath.normpath(target), _tmpfs_options(fields, bad)
    source = fields.get("source", "")
    if kind == "bind":
        if not source.startswith("/"):
            raise UsageError(f"{bad}: a bind's source must be an absolute path")
        return Bind(posixpath.normpath(source), posixpath.normpath(target), flags.get("readonly", False))
    if source:
        check_volume_name(source, bad)
    return Bind(source, posixpath.normpath(target), flags.get("readonly", False), True,
                flags.get("volume-nocopy", False))


def _tmpfs_options(fields: dict[str, str], bad: str) -> str:
    if "source" in fields or "volume-nocopy" in fields:
        raise UsageError(f"{bad}: a tmpfs has no source")
    options = [TMPFS_BASE]
    if "tmpfs-size" in fields:
        options.append(f"size={parse_size(fields['tmpfs-size'], bad)}")
    if "tmpfs-mode" in fields:
        if not re.fullmatch(r"[0-7]{1,4}", fields["tmpfs-mode"]):
            raise UsageError(f"{bad}: tmpfs-mode is octal")
        options.append(f"mode={int(fields['tmpfs-mode'], 8):o}")
    if fields.get("readonly", "false").lower() in ("true", "1"):
        options.append("ro")
    return ",".join(options)


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, what: str) -> int:
    """Docker's sizes (``64m``, ``1g``, ``1048576``): bytes, more than none."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt]?)b?", text.strip().lower())
    if not m or float(m.group(1)) * _SIZE_UNITS[m.group(2)] < 1:
        raise UsageError(f'{what}: invalid size "{text}": expected a size such as 64m or 1g')
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def parse_labels(given: list[str], files: dict[str, str]) -> tuple[str, ...]:
    """--label KEY=VALUE (KEY alone: an empty value) after --label-file's lines (FILE -> its
    text; blank lines and # comments skipped), as Docker merges them."""
    out: dict[str, str] = {}
    for path, text in files.items():
        for raw in text.splitlines():
            item = raw.strip()
            if item and not item.startswith("#"):
                key, _, value = item.partition("=")
                if not key:
                    raise UsageError(f'invalid label "{item}" in {path}: expected KEY=VALUE')
                out[key] = value
    for item in given:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f'invalid label "{item}": expected KEY=VALUE')
        out[key] = value
    return tuple(f"{k}={v}" for k, v in out.items())


TMPFS_BASE = "noexec,nosuid,nodev"   # Docker's, before the user's options (which may say exec, suid, dev)
TMPFS_SIZE = "size=65536k"           # when the user gives no options at all


def label_matches(labels: Mapping[str, object], wanted: str) -> bool:
    """A ``--filter label=`` value against an object's labels, as Docker reads it: ``KEY``
    (the label is there) or ``KEY=VALUE`` (and has that value)."""
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


def parse_tmpfs(text: str) -> tuple[str, str]:
    """``--tmpfs /path[:options]``: Docker starts from noexec,nosuid,nodev and applies the
    user's options on top, so ``size=1m`` alone keeps all three."""
    path, _, options = text.partition(":")
    if not path.startswith("/") or posixpath.normpath(path) == "/":
        raise UsageError(f'invalid tmpfs "{text}": the container path must be absolute and not /')
    return posixpath.normpath(path), f"{TMPFS_BASE},{options or TMPFS_SIZE}"
