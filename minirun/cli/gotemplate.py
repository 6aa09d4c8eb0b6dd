"""Go's text/template, as Docker's ``--format`` and ``inspect -f`` expose it (pure): parsed
once into a tree (here), then executed over the JSON-like document a command shows
(``gofuncs``: the functions and Go's way of printing values).

What is understood: text, ``{{- -}}`` trimming, ``{{/* comments */}}``, pipelines with ``|``,
variables (``$``, ``$x :=``, ``$x =``, ``$i, $v :=`` in range), ``if``/``else if``/``else``,
``range``/``else``, ``with``/``else``, parenthesised pipelines with fields after them, string,
raw string, number, ``true``/``false``/``nil`` literals. Parse errors are Go's words
("unclosed action", "function "x" not defined", "unexpected {{end}}").
"""

from __future__ import annotations

import re

from ..errors import TemplateError
from ..records import Record

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<dot>\.)
  | (?P<var>\$[A-Za-z0-9_]*)(?P<varfields>(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<pipe>\|)
  | (?P<open>\()
  | (?P<close>\))(?P<closefields>(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<comma>,)
""", re.VERBOSE)

KEYWORDS = ("if", "else", "end", "range", "with", "define", "template", "block", "break", "continue")
# The functions a template may call (``gofuncs.FUNCTIONS`` has them, a test checks the two agree).
FUNCTION_NAMES = frozenset((
    "and", "or", "not", "len", "index", "slice", "print", "println", "printf", "eq", "ne", "lt", "le", "gt", "ge",
    "html", "js", "urlquery", "json", "join", "split", "title", "lower", "upper", "pad", "truncate"))


class Arg(Record):
    kind: str                  # field dot var str num bool nil ident pipe
    value: object = None       # the literal, the function's or variable's name, a Pipe
    chain: tuple[str, ...] = ()   # fields after it (.A.B)


class Cmd(Record):
    args: tuple[Arg, ...]


class Pipe(Record):
    names: tuple[str, ...]     # variables declared or assigned
    declare: bool              # := (else =)
    cmds: tuple[Cmd, ...]


class Text(Record):
    text: str


class Action(Record):
    pipe: Pipe


class Block(Record):
    kind: str                  # if, range, with
    pipe: Pipe
    body: list[Node]
    other: list[Node]          # after {{else}} ({{else if}} is an if inside it)


Node = Text | Action | Block


def error(why: str) -> TemplateError:
    return TemplateError(f"template parsing error: template: :1: {why}")


# -- the template's text and actions --------------------------------------------------------

def pieces(template: str) -> list[tuple[str, str]]:
    """("text", ...) and ("action", body) in order, Go's trim markers applied, comments gone."""
    out: list[tuple[str, str]] = []
    pos = 0
    while (start := template.find("{{", pos)) >= 0:
        text, i = template[pos:start], start + 2
        if template[i:i + 1] == "-" and template[i + 1:i + 2] in (" ", "\t", "\r", "\n"):
            text, i = text.rstrip(" \t\r\n"), i + 1
        out.append(("text", text))
        if template[i:].lstrip().startswith("/*"):
            end = template.find("*/", i)
            close = template.find("}}", end) if end >= 0 else -1
            if close < 0:
                raise error("unclosed comment")
            body = ""
            trim = template[end + 2:close].strip() == "-"
        else:
            close = _close_of(template, i)
            body = template[i:close]
            trim = len(body) > 1 and body[-1] == "-" and body[-2] in " \t\r\n"
            body = body[:-1] if trim else body
            out.append(("action", body))
        pos = close + 2
        if trim:
            while pos < len(template) and template[pos] in " \t\r\n":
                pos += 1
    out.append(("text", template[pos:]))
    return out


def _close_of(template: str, i: int) -> int:
    """Where the action starting at ``i`` ends (a ``}}`` inside a string does not)."""
    quote = ""
    while i < len(template):
        c = template[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"`":
            quote = c
        elif template.startswith("}}", i):
            return i
        i += 1
    raise error("unclosed action")


# -- parsing --------------------------------------------------------------------------------

def parse(template: str) -> list[Node]:
    root: list[Node] = []
    # Open blocks: (block, the list it sits in, whether it is an "else if" that its parent's
    # {{end}} closes).
    stack: list[tuple[Block, list[Node], bool]] = []
    current = root
    for kind, body in pieces(template):
        if kind == "text":
            if body:
                current.append(Text(body))
            continue
        words = _tokens(body)
        head = words[0].text if words[0].kind == "ident" else ""
        if head in ("if", "range", "with"):
            block = Block(head, _pipe(words[1:], head == "range"), [], [])
            current.append(block)
            stack.append((block, current, False))
            current = block.body
        elif head == "else":
            if not stack or current is stack[-1][0].other:
                raise error("unexpected {{else}}")
            current = stack[-1][0].other
            if len(words) > 1 and words[1].text in ("if", "with"):  # else if: a block in the else
                inner = Block(words[1].text, _pipe(words[2:], False), [], [])
                current.append(inner)
                stack.append((inner, current, True))
                current = inner.body
        elif head == "end":
            while stack and stack[-1][2]:
                stack.pop()
            if not stack:
                raise error("unexpected {{end}}")
            current = stack.pop()[1]
        elif head in KEYWORDS:
            raise error(f"{{{{{head}}}}} is not supported")
        else:
            current.append(Action(_pipe(words, False)))
    if stack:
        raise error(f"unexpected EOF: {{{{{stack[-1][0].kind}}}}} without {{{{end}}}}")
    return root


def _tokens(body: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None:
            raise error(f"unexpected {body[pos]!r} in command")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "varfields":
            kind = "var"
        if kind == "closefields":
            kind = "close"
        if kind != "space":
            out.append(Tok(kind, m.group()))
    if not out:
        raise error("missing value for command")
    return out


class Tok(Record):
    kind: str
    text: str


def _pipe(words: list[Tok], in_range: bool) -> Pipe:
    names: list[str] = []
    declare = True
    i = 0
    while i + 1 < len(words) and words[i].kind == "var" and "." not in words[i].text:
        if words[i + 1].kind in ("declare", "assign"):
            names.append(words[i].text)
            declare, i = words[i + 1].kind == "declare", i + 2
            break
        if in_range and words[i + 1].kind == "comma" and i + 3 < len(words):
            names.append(words[i].text)
            i += 2
            continue
        break
    cmds: list[Cmd] = []
    args: list[Arg] = []
    j = i
    while j < len(words):
        w = words[j]
        if w.kind == "pipe":
            cmds.append(_cmd(args))
            args = []
            j += 1
            continue
        arg, j = _operand(words, j)
        args.append(arg)
    cmds.append(_cmd(args))
    return Pipe(tuple(names), declare, tuple(cmds))


def _cmd(args: list[Arg]) -> Cmd:
    if not args:
        raise error("missing value for command")
    return Cmd(tuple(args))


def _operand(words: list[Tok], j: int) -> tuple[Arg, int]:
    w = words[j]
    if w.kind == "open":
        depth, k = 1, j + 1
        while k < len(words) and depth:
            depth += {"open": 1, "close": -1}.get(words[k].kind, 0)
            k += 1
        if depth:
            raise error("unclosed left paren")
        close = words[k - 1].text
        chain = tuple(p for p in close[1:].split(".") if p)
        return Arg("pipe", _pipe(words[j + 1:k - 1], False), chain), k
    if w.kind == "field":
        return Arg("field", None, tuple(w.text[1:].split("."))), j + 1
    if w.kind == "dot":
        return Arg("dot"), j + 1
    if w.kind == "var":
        name, _, rest = w.text.partition(".")
        return Arg("var", name, tuple(rest.split(".")) if rest else ()), j + 1
    if w.kind in ("string", "raw"):
        return Arg("str", _unquote(w.text)), j + 1
    if w.kind == "number":
        text = w.text
        return Arg("num", float(text) if any(c in text for c in ".eE") and not text.lower().startswith(
            ("0x", "-0x", "+0x")) else int(text, 0)), j + 1
    if w.kind == "ident":
        if w.text in ("true", "false"):
            return Arg("bool", w.text == "true"), j + 1
        if w.text == "nil":
            return Arg("nil"), j + 1
        if w.text not in FUNCTION_NAMES:
            raise error(f'function "{w.text}" not defined')
        return Arg("ident", w.text), j + 1
    raise error(f"unexpected {w.text!r} in command")


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    import ast
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise error(f"bad string {text}") from None
    return str(value)
