"""``--format`` Go templates, the part scripts use (pure): text with ``{{.Field.Sub}}`` and
``{{json .Field}}`` (``{{json .}}`` for the whole object). Anything else (``range``, ``if``,
pipes, functions other than ``json``) is refused with one line saying what is supported,
rather than printed wrong."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ..errors import TemplateError, UsageError

_ACTION = re.compile(r"{{\s*(.*?)\s*}}")
_PATH = re.compile(r"\.|(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _lookup(obj: object, path: str, template: str) -> object:
    value = obj
    for name in [p for p in path.split(".") if p]:
        if not isinstance(value, Mapping) or name not in value:
            raise TemplateError(f'template "{template}": no field {path} (at "{name}")')
        value = value[name]
    return value


def _text(value: object) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_text(v)}" for k, v in value.items()) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_text(v) for v in value) + "]"
    return str(value)


def render(template: str, obj: object) -> str:
    if "{{" in _ACTION.sub("", template):  # an action never closed: Go's parse error, nothing printed
        raise TemplateError(f'template parsing error: template "{template}": unclosed action')

    def action(m: re.Match[str]) -> str:
        body = m.group(1)
        if body.startswith("json "):
            path = body[5:].strip()
            if _PATH.fullmatch(path):
                return json.dumps(_lookup(obj, path, template))
        elif _PATH.fullmatch(body):
            return _text(_lookup(obj, body, template))
        raise UsageError(f'template "{template}": "{{{{{body}}}}}" is not supported; '
                         "only {{.Field.Sub}} and {{json .Field}}")
    return _ACTION.sub(action, template.replace("\\t", "\t").replace("\\n", "\n"))
