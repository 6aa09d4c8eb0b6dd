"""``--format`` and ``inspect -f``: Go's text/template as Docker exposes it (``gotemplate``
parses, ``gofuncs`` executes). ``\\t`` and ``\\n`` typed in the template are a tab and a
newline, as Docker's CLI replaces them. A parse error prints nothing (Go's words, exit 1)."""

from __future__ import annotations

import functools

from .gofuncs import Scope, execute
from .gotemplate import Node, parse


@functools.lru_cache(maxsize=8)
def _parsed(template: str) -> list[Node]:
    return parse(template.replace("\\t", "\t").replace("\\n", "\n"))


def render(template: str, obj: object) -> str:
    out: list[str] = []
    execute(_parsed(template), obj, Scope(obj), out)
    return "".join(out)
