"""Executing a parsed Go template (``gotemplate``) over a JSON-like document (pure): Go's
functions, Docker's (json, join, split, title, lower, upper, pad, truncate), truth as Go's
(empty values are false), and values printed as Go's ``%v`` prints them."""

from __future__ import annotations

import html
import json
import math
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import TemplateError
from .gotemplate import Action, Arg, Block, Node, Pipe, Text


class _Missing:
    """A key that is not there (Go's invalid value): prints ``<no value>``."""


MISSING = _Missing()


def fail(why: str) -> TemplateError:
    return TemplateError(f"template parsing error: template: :1: {why}")  # Docker's CLI says "parsing" for all


# -- printing as Go's fmt %v -------------------------------------------------------------------

def text(v: object) -> str:
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{text(k)}:{text(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(text(x) for x in v) + "]"
    return str(v)


def _float(v: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64), as %v prints a float64: exponent form from 1e21."""
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    if v == int(v) and abs(v) < 1e21:
        return str(int(v))
    r = repr(v)
    if "e" in r:
        mantissa, _, exp = r.partition("e")
        return f"{mantissa}e{exp[0] if exp[0] in '+-' else '+'}{abs(int(exp)):02d}"
    return r


def truth(v: object) -> bool:
    """Go's: false, 0, nil, an empty string, list or map (and a missing value) are false."""
    if v is MISSING or v is None:
        return False
    if isinstance(v, bool | int | float | str | list | tuple | Mapping):
        return bool(v)
    return True


# -- functions -------------------------------------------------------------------------------

def _json(v: object) -> str:
    """Docker's json: Go's encoder, no HTML escaping, no trailing newline."""
    return json.dumps(None if v is MISSING else v, separators=(",", ":"), ensure_ascii=False)


def _index(v: object, *keys: object) -> object:
    for k in keys:
        if isinstance(v, Mapping):
            v = v.get(k, MISSING) if isinstance(k, str) else MISSING
        elif isinstance(v, list | tuple | str) and isinstance(k, int):
            if not 0 <= k < len(v):
                raise fail(f"error calling index: index out of range: {k}")
            v = v[k]
        else:
            raise fail(f"error calling index: can't index item of type {_kind(v)}")
    return v


def _len(v: object) -> int:
    if isinstance(v, str | list | tuple | Mapping):
        return len(v)
    raise fail(f"error calling len: len of type {_kind(v)}")


def _compare(op: str) -> Callable[..., bool]:
    def compare(a: object, *others: object) -> bool:
        if op == "eq":  # eq a b c: a equals any of them
            return any(_same(a, b) for b in others)
        b = others[0] if others else None
        if op == "ne":
            return not _same(a, b)
        numbers = isinstance(a, int | float) and isinstance(b, int | float)
        if not numbers and not (isinstance(a, str) and isinstance(b, str)):
            raise fail(f"error calling {op}: incompatible types for comparison")
        return bool({"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op])  # type: ignore[operator]
    return compare


def _same(a: object, b: object) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        raise fail("error calling eq: incompatible types for comparison")
    return a == b


def _printf(fmt: str, *args: object) -> str:
    """Go's verbs that scripts use: %s %v %d %q %x %f %t %%, widths and flags as Python's."""
    import re
    values = iter(args)

    def one(m: re.Match[str]) -> str:
        spec, verb = m.group(1), m.group(2)
        if verb == "%":
            return "%"
        v = next(values, MISSING)
        if verb in "sv":
            return ("%" + spec + "s") % text(v)
        if verb == "q":
            return ("%" + spec + "s") % json.dumps(text(v))
        if verb == "t":
            return text(bool(v))
        return ("%" + spec + verb) % v  # d, x, X, o, f, e, g
    return re.sub(r"%([-+ #0]*\d*(?:\.\d+)?)([svdqtxXofeg%])", one, fmt)


def _pad(s: str, before: int, after: int) -> str:
    return " " * before + s + " " * after


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
    "not": lambda a: not truth(a),
    "len": _len,
    "index": _index,
    "slice": lambda v, *i: v[slice(*i)],
    "print": lambda *a: "".join(text(x) if isinstance(x, str) else " " + text(x) if i else text(x)
                                for i, x in enumerate(a)).strip(),
    "println": lambda *a: " ".join(text(x) for x in a) + "\n",
    "printf": _printf,
    "eq": _compare("eq"), "ne": _compare("ne"), "lt": _compare("lt"), "le": _compare("le"),
    "gt": _compare("gt"), "ge": _compare("ge"),
    "html": lambda *a: html.escape("".join(text(x) for x in a)),
    "js": lambda *a: json.dumps("".join(text(x) for x in a))[1:-1],
    "urlquery": lambda *a: urllib.parse.quote_plus("".join(text(x) for x in a)),
    "json": _json,
    "join": lambda items, sep: sep.join(text(x) for x in items),
    "split": lambda s, sep: s.split(sep),
    "title": lambda s: " ".join(w[:1].upper() + w[1:] for w in s.split(" ")),
    "lower": lambda s: s.lower(),
    "upper": lambda s: s.upper(),
    "pad": _pad,
    "truncate": lambda s, n: s[:n],
}


def _kind(v: object) -> str:
    return {dict: "map[string]interface {}", list: "[]interface {}", str: "string", int: "int",
            float: "float64", bool: "bool"}.get(type(v), "interface {}")


# -- execution ---------------------------------------------------------------------------------

class Scope:
    def __init__(self, root: object) -> None:
        self.vars: list[dict[str, object]] = [{"$": root}]

    def get(self, name: str) -> object:
        for frame in reversed(self.vars):
            if name in frame:
                return frame[name]
        raise fail(f'undefined variable "{name}"')

    def set(self, name: str, value: object, declare: bool) -> None:
        if declare:
            self.vars[-1][name] = value
            return
        for frame in reversed(self.vars):
            if name in frame:
                frame[name] = value
                return
        raise fail(f'undefined variable "{name}"')


def execute(nodes: list[Node], dot: object, scope: Scope, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Action):
            value = pipeline(node.pipe, dot, scope)
            if not node.pipe.names:
                out.append(text(value))
        else:
            _block(node, dot, scope, out)


def _block(block: Block, dot: object, scope: Scope, out: list[str]) -> None:
    scope.vars.append({})
    try:
        value = pipeline(block.pipe if block.kind != "range" else block.pipe._replace(names=()), dot, scope)
        if block.kind == "range":
            _range(block, value, scope, out)
        elif truth(value):
            if block.kind == "with" and block.pipe.names:
                scope.set(block.pipe.names[0], value, True)
            execute(block.body, value if block.kind == "with" else dot, scope, out)
        else:
            execute(block.other, dot, scope, out)
    finally:
        scope.vars.pop()


def _range(block: Block, value: object, scope: Scope, out: list[str]) -> None:
    if isinstance(value, Mapping):
        items: list[tuple[object, object]] = [(k, value[k]) for k in sorted(value)]
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    elif value is None or value is MISSING:
        items = []
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [(i, i) for i in range(value)]
    else:
        raise fail(f"range can't iterate over {text(value)}")
    if not items:
        execute(block.other, value, scope, out)
        return
    names = block.pipe.names
    for key, item in items:
        if len(names) == 1:
            scope.set(names[0], item, True)
        elif len(names) == 2:
            scope.set(names[0], key, True)
            scope.set(names[1], item, True)
        execute(block.body, item, scope, out)


def pipeline(pipe: Pipe, dot: object, scope: Scope) -> object:
    value: object = MISSING
    for n, cmd in enumerate(pipe.cmds):
        value = _command(cmd.args, dot, scope, value if n else None, n > 0)
    for name in pipe.names:
        scope.set(name, value, pipe.declare)
    return value


def _command(args: tuple[Arg, ...], dot: object, scope: Scope, piped: object, has_piped: bool) -> object:
    head = args[0]
    if head.kind == "ident":
        values = [_operand(a, dot, scope) for a in args[1:]] + ([piped] if has_piped else [])
        try:
            return FUNCTIONS[str(head.value)](*values)
        except TemplateError:
            raise
        except (TypeError, AttributeError, ValueError, IndexError, StopIteration) as e:
            raise fail(f"error calling {head.value}: {e}") from None
    if len(args) > 1 or has_piped:
        raise fail(f"can't give argument to non-function {_describe(head)}")
    return _operand(head, dot, scope)


def _operand(a: Arg, dot: object, scope: Scope) -> object:
    if a.kind == "field":
        return _fields(dot, a.chain)
    if a.kind == "dot":
        return dot
    if a.kind == "var":
        return _fields(scope.get(str(a.value)), a.chain)
    if a.kind == "pipe":
        assert isinstance(a.value, Pipe)
        return _fields(pipeline(a.value, dot, scope), a.chain)
    if a.kind == "ident":
        return FUNCTIONS[str(a.value)]()
    return None if a.kind == "nil" else a.value


def _fields(value: object, chain: tuple[str, ...]) -> object:
    """A field chain. A key that is not there is an error, as Docker runs templates over an
    inspect document (missingkey=error); ``index`` of one gives <no value> instead."""
    for name in chain:
        if isinstance(value, Mapping):
            if name not in value:
                raise fail(f'map has no entry for key "{name}"')
            value = value[name]
        elif value is None or value is MISSING:
            raise fail(f"nil pointer evaluating interface {{}}.{name}")
        else:
            raise fail(f"can't evaluate field {name} in type {_kind(value)}")
    return value


def _describe(a: Arg) -> str:
    return "." + ".".join(a.chain) if a.kind == "field" else str(a.value)
