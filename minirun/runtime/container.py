"""A container on disk: its ID, name, files it is given, and its recorded state.

``<root>/containers/<64 hex>/`` holds ``state.json``, the files bound over the image's
``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf``, and its root filesystem
(overlay upper and work directories, or the vfs copy).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from ..store import atomic_write, now_iso

_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "quiet", "sharp", "vivid", "wise")
_NAMES = ("curie", "hopper", "lovelace", "noether", "ritchie", "shannon", "thompson", "turing")


@dataclass
class ContainerState:
    id: str
    name: str
    image: str
    command: list[str]
    created: str
    status: str = "created"          # created, running, exited
    exit_code: int | None = None
    pid: int | None = None


def new_id() -> str:
    return secrets.token_hex(32)


def generated_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NAMES)}_{secrets.token_hex(2)}"


def create(root: Path, image: str, command: list[str], name: str | None, hostname: str | None
           ) -> tuple[ContainerState, Path, dict[str, Path]]:
    cid = new_id()
    directory = root / "containers" / cid
    directory.mkdir(parents=True)
    state = ContainerState(cid, name or generated_name(), image, command, now_iso())
    host = hostname or cid[:12]
    files = {"/etc/hostname": directory / "hostname", "/etc/hosts": directory / "hosts",
             "/etc/resolv.conf": directory / "resolv.conf"}
    files["/etc/hostname"].write_text(host + "\n")
    files["/etc/hosts"].write_text(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"127.0.1.1\t{host}\n")
    try:
        resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        resolv = ""
    files["/etc/resolv.conf"].write_text(resolv)
    save(directory, state)
    return state, directory, files


def save(directory: Path, state: ContainerState) -> None:
    atomic_write(directory / "state.json", json.dumps(asdict(state), indent=1).encode())


def hostname_of(directory: Path) -> str:
    return (directory / "hostname").read_text().strip()


def running_as(state: ContainerState) -> ContainerState:
    state.status, state.pid = "running", os.getpid()
    return state
