"""What a container is made with that the OCI runtime spec has no field for: its network and
published ports, its log, how it is stopped, and some flags as they were typed (for
``inspect``). Kept in config.json's ``annotations`` under ``io.minirun.``, each value a string
as the spec requires (JSON for lists), and read back typed (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..errors import StoreError
from ..records import Record

PREFIX = "io.minirun."


class Joined(Record):
    """A network ``network connect`` added: its name, and the aliases and address asked for."""
    name: str
    aliases: tuple[str, ...] = ()
    ip: str = ""

    def text(self) -> str:
        """As ``Settings.connected`` keeps it."""
        return json.dumps({"name": self.name, "aliases": list(self.aliases), "ip": self.ip})


class Settings(Record):
    network: str = "none"                  # bridge, none, host, container:NAME|ID, a user network's name
    network_alias: tuple[str, ...] = ()    # on that user network
    ip: str = ""                           # --ip on it
    connected: tuple[str, ...] = ()        # network connect: {"name", "aliases", "ip"} as JSON, each
    publish: tuple[str, ...] = ()          # -p as typed
    publish_all: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_option: tuple[str, ...] = ()
    add_host: tuple[str, ...] = ()
    log_driver: str = "json-file"          # json-file or none
    log_opt: tuple[str, ...] = ()          # as resolved at run (the configuration's defaults taken then)
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    interactive: bool = False              # -i: its stdin stays open
    init: bool = False                     # --init: process.args starts with the bound init
    privileged: bool = False
    user: str = ""                         # -u or the image's User, resolved inside the container
    security_opt: tuple[str, ...] = ()     # as typed: a custom profile by its file name
    volume: tuple[str, ...] = ()           # -v as typed
    mount: tuple[str, ...] = ()            # --mount as typed
    labels: tuple[str, ...] = ()           # KEY=VALUE: --label-file's, then --label's
    auto_remove: bool = False              # --rm: removed when it exits (create, then start)
    restart: str = "no"                    # --restart: no, always, unless-stopped, on-failure[:N]
    health: str = ""                       # its health check (spec/health.py's JSON; "": none)

    def joined(self) -> list[Joined]:
        """The networks ``network connect`` added (``connected``), read."""
        docs = [json.loads(text) for text in self.connected]
        return [Joined(str(d["name"]), tuple(d.get("aliases") or ()), str(d.get("ip") or "")) for d in docs]

    def networks(self) -> list[str]:
        """Every network it is on: the one it was made on, then those connected."""
        return [self.network, *(j.name for j in self.joined())]


def to_annotations(s: Settings) -> dict[str, str]:
    return {PREFIX + k.replace("_", "-"): v if isinstance(v, str) else json.dumps(v)
            for k, v in s._asdict().items()}


def from_annotations(annotations: Mapping[str, str], what: str) -> Settings:
    """The settings of a config.json (``what`` names it in errors); a missing one is its
    default, one of the wrong kind a StoreError."""
    values: dict[str, object] = {}
    for field, default in Settings._field_defaults.items():
        key = PREFIX + field.replace("_", "-")
        text = annotations.get(key)
        if text is None:
            continue
        try:
            value = text if isinstance(default, str) else json.loads(text)
        except ValueError:
            raise StoreError(f"reading {what}: annotation {key} is not valid JSON") from None
        if isinstance(default, tuple):
            value = tuple(value) if isinstance(value, list) and all(isinstance(x, str) for x in value) else None
        if value is None or type(value) is not type(default):
            raise StoreError(f"reading {what}: annotation {key} has the wrong kind of value")
        values[field] = value
    return Settings(**values)  # type: ignore[arg-type]
