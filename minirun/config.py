"""The system configuration file, ``/etc/minirun/config.toml`` (``--config FILE`` or
``MINIRUN_CONFIG`` name another): what ``sudo`` would otherwise lose, as it clears the
caller's environment, as Docker keeps its in ``/etc/docker/daemon.json``.

Every setting has an environment variable, and flags have the last word: a command line flag,
else the variable, else the file, else the default. The file fills in the variables the
environment does not set (``apply``), so the code that reads each variable needs no second
source; ``sources`` says where each value came from (``info`` shows it). Pure but for
``read``: parsing is tested without a file.

    root = "/var/lib/minirun"                  # MINIRUN_ROOT
    storage-driver = "overlay"                 # MINIRUN_STORAGE_DRIVER
    registry-mirrors = ["https://mirror.example.com"]   # MINIRUN_REGISTRY_MIRROR
    insecure-registries = ["registry.lan:5000"]        # MINIRUN_INSECURE_REGISTRIES
    ca-files = ["/etc/ssl/corp-root.pem"]      # MINIRUN_CA_FILES: trusted besides the system's
    certs-dirs = ["/etc/minirun/certs.d", "/etc/docker/certs.d"]  # MINIRUN_CERTS_DIRS
    bridge-subnet = "10.77.0.0/16"             # MINIRUN_BRIDGE_SUBNET
    network = "bridge"                         # MINIRUN_NETWORK
    cgroup-parent = "minirun"                  # MINIRUN_CGROUP_PARENT
    [log-opts]                                 # MINIRUN_LOG_OPTS: --log-opt's defaults
    max-size = "10m"
    max-file = "3"
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

from .errors import ConfigError

DEFAULT_PATH = "/etc/minirun/config.toml"

# The file's keys: (environment variable, kind). Lists become comma-separated values.
KEYS: dict[str, tuple[str, str]] = {
    "root": ("MINIRUN_ROOT", "path"),
    "storage-driver": ("MINIRUN_STORAGE_DRIVER", "str"),
    "registry-mirrors": ("MINIRUN_REGISTRY_MIRROR", "list"),
    "insecure-registries": ("MINIRUN_INSECURE_REGISTRIES", "list"),
    "ca-files": ("MINIRUN_CA_FILES", "list"),
    "certs-dirs": ("MINIRUN_CERTS_DIRS", "list"),
    "bridge-subnet": ("MINIRUN_BRIDGE_SUBNET", "str"),
    "network": ("MINIRUN_NETWORK", "str"),
    "cgroup-parent": ("MINIRUN_CGROUP_PARENT", "str"),
    "log-opts": ("MINIRUN_LOG_OPTS", "table"),
}


def parse(text: str, source: str) -> dict[str, str]:
    """The file's settings as environment variables (name -> value); a ConfigError naming
    ``source`` for anything that is not a setting of the right kind."""
    import tomllib
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"reading {source}: not valid TOML ({e})") from None
    out = {}
    for key, value in doc.items():
        if key not in KEYS:
            raise ConfigError(f"reading {source}: unknown setting {key!r} (known: {', '.join(KEYS)})")
        var, kind = KEYS[key]
        out[var] = _value(key, value, kind, source)
    return out


def _value(key: str, value: object, kind: str, source: str) -> str:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"reading {source}: {key} must be {expected}, not {value!r}")
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value:
            raise wrong("a string")
        if kind == "path" and not value.startswith("/"):
            raise wrong("an absolute path")
        return value
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) and v and "," not in v for v in value):
            raise wrong("a list of strings")
        return ",".join(value)
    if not isinstance(value, dict) or not all(isinstance(v, str | int) for v in value.values()):
        raise wrong("a table of strings")
    return ",".join(f"{k}={v}" for k, v in value.items())


def path_of(flag: str | None, environ: Mapping[str, str]) -> tuple[str, bool]:
    """The file to read, and whether it was named (a named file must exist; the default may
    be missing)."""
    named = flag or environ.get("MINIRUN_CONFIG")
    return (named, True) if named else (DEFAULT_PATH, False)


def read(flag: str | None, environ: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The file's path and settings ({} when the default file is not there)."""
    path, named = path_of(flag, environ)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if named:
            raise ConfigError(f"reading {path}: no such file") from None
        return path, {}
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"reading {path}: {getattr(e, 'strerror', None) or e}") from None
    return path, parse(text, path)


# What install() found, for info: the file read and where each setting in force came from.
loaded: tuple[str, dict[str, str]] = (DEFAULT_PATH, {})


def apply(path: str, settings: Mapping[str, str], environ: MutableMapping[str, str]) -> dict[str, str]:
    """Fill in the variables the environment does not set; returns each setting's source
    (variable -> "environment" or the file's path)."""
    sources = {}
    for var, value in settings.items():
        if environ.get(var):
            sources[var] = "environment"
        else:
            environ[var] = value
            sources[var] = path
    return sources


def install(flag: str | None, environ: MutableMapping[str, str] = os.environ) -> None:
    """At the start of every command: the file's settings in the environment, below what the
    environment says (and the flags, read after)."""
    global loaded
    path, settings = read(flag, environ)
    sources = apply(path, settings, environ)
    sources.update({var: "environment" for var, _ in KEYS.values() if environ.get(var) and var not in sources})
    loaded = (path, sources)
