"""The OCI runtime spec's own JSON schema for config.json, as Debian ships it
(golang-github-opencontainers-specs-dev), checked with jsonschema: an independent judge of
what minirun writes (scripts/test installs the package)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMA_DIR = Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")


@cache
def _validator() -> jsonschema.Draft4Validator:
    if not (SCHEMA_DIR / "config-schema.json").is_file():
        raise AssertionError(f"{SCHEMA_DIR}: the OCI runtime spec's schema is missing "
                             "(apt-get install golang-github-opencontainers-specs-dev; scripts/test does)")

    def retrieve(uri: str) -> Resource[Any]:
        return Resource.from_contents(json.loads((SCHEMA_DIR / uri.rsplit("/", 1)[-1]).read_text()),
                                      default_specification=DRAFT4)

    schema = json.loads((SCHEMA_DIR / "config-schema.json").read_text())
    return jsonschema.Draft4Validator(schema, registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


def errors(config: dict[str, Any]) -> list[str]:
    """Every way ``config`` breaks the schema (none: it is a valid config.json)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator().iter_errors(config)]
