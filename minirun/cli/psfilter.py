"""ps --filter as Docker 20.10 reads it: the same key twice is either, different keys are
all; ``name`` a regular expression (on the name with and without Docker's leading slash)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..spec.flags import label_matches

if TYPE_CHECKING:
    from ..containers.state import ContainerState
    from ..ops.context import Context

KEYS = ("status", "name", "id", "label", "ancestor", "exited", "before", "since", "volume", "network", "health")


def parse(items: list[str]) -> dict[str, list[str]]:
    from .options import filters
    out = filters(items, KEYS, f'{"=, ".join(KEYS)}=', "--filter")
    for value in out.get("exited", []):
        if not value.lstrip("-").isdigit():
            raise UsageError(f'invalid --filter "exited={value}": exited takes an exit code')
    for value in out.get("name", []):
        try:
            re.compile(value)
        except re.error as e:
            raise UsageError(f'invalid --filter "name={value}": {e}') from None
    return out


class Matcher:
    """The filters against each container; what they need from the store read once."""

    def __init__(self, ctx: Context, wanted: dict[str, list[str]], states: list[ContainerState]) -> None:
        self.ctx, self.wanted, self.states = ctx, wanted, states
        self.created = {s.id: s.created for s in states}

    def __call__(self, state: ContainerState) -> bool:
        return all(self._one(state, key, values) for key, values in self.wanted.items())

    def _one(self, s: ContainerState, key: str, values: list[str]) -> bool:
        if key == "label":  # KEY or KEY=VALUE: each must hold (Docker's)
            from ..ops.containers import labels_of
            labels = labels_of(self.ctx, s)
            return all(label_matches(labels, x) for x in values)
        if key in ("before", "since"):
            return all(self._ordered(s, key, v) for v in values)
        return any(self._test(s, key, v) for v in values)

    def _test(self, s: ContainerState, key: str, v: str) -> bool:
        if key == "status":
            return s.status == v
        if key == "name":
            return re.search(v, s.name) is not None or re.search(v, "/" + s.name) is not None
        if key == "id":
            return s.id.startswith(v)
        if key == "exited":
            return s.status == "exited" and s.exit_code == int(v)
        if key == "ancestor":
            return self._ancestor(s, v)
        if key == "health":
            return self._health(s) == v
        if key == "network":
            return v in self._networks(s)
        return v in self._volumes(s)

    def _ordered(self, s: ContainerState, key: str, v: str) -> bool:
        other = next((o for o in self.states if o.name == v or o.id.startswith(v)), None)
        if other is None:
            raise UsageError(f"No such container: {v}")
        return s.created < other.created if key == "before" else s.created > other.created

    def _ancestor(self, s: ContainerState, v: str) -> bool:
        """Its image by name (as Docker: the image that name is now, by its ID) or ID prefix."""
        from ..errors import ReferenceFormatError
        from ..remote import reference
        record = self.ctx.images.get(s.reference) if s.reference else None
        mine = record.config.removeprefix("sha256:") if record else ""
        if v in (s.image, s.reference):
            return True
        try:
            named = self.ctx.images.get(str(reference.parse(v)))
        except ReferenceFormatError:
            named = None
        if named is not None:
            return bool(mine) and named.config.removeprefix("sha256:") == mine
        wanted = v.removeprefix("sha256:")
        return bool(mine) and len(wanted) >= 3 and mine.startswith(wanted)

    def _health(self, s: ContainerState) -> str:
        from ..ops.health import read
        health = read(self.ctx.root / "containers" / s.id)
        return "none" if health is None else str(health.get("Status"))

    def _networks(self, s: ContainerState) -> set[str]:
        from ..ops.containers import settings_or_defaults
        return set(settings_or_defaults(self.ctx.root / "containers" / s.id).networks())

    def _volumes(self, s: ContainerState) -> set[str]:
        """Its volumes' names and every mount's destination (Docker matches either)."""
        from ..containers.state import load_config
        from ..containers.volumes import Volumes
        from ..errors import StoreError
        try:
            spec = load_config(self.ctx.root / "containers" / s.id)
        except StoreError:
            return set()
        volumes, out = Volumes(self.ctx.root), set()
        for m in spec.get("mounts") or []:
            out.add(str(m.get("destination")))
            name = volumes.name_of(str(m.get("source"))) if m.get("type") == "bind" else None
            if name:
                out.add(name)
        return out
