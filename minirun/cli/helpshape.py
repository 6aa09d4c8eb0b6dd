"""--help in Docker's shape (pure): click's help text made to read as docker's (cobra's) does:
``Usage:  minirun ps [OPTIONS]``, the description unindented, options one per line with a
long-only flag indented past where a short one would be (``      --format string``), Docker's
type names for values, defaults as pflag prints them, and a group's closing hint."""

from __future__ import annotations

import re

from ..runargs import option_lines

_TYPES = {"<str>": "string", "<int>": "int", "<float>": "float", "<list[str]>": "list", "<path>": "string"}
_DEFAULT = re.compile(r"\s*\[default: (.*?)\]")
_ROW = re.compile(r"^  (-\S.*?)(?:\s{2,}(.*))?$")


def docker_help(text: str, group: bool, path: str) -> str:
    """``text``: click's help for the command ``path`` (``minirun ps``)."""
    out: list[str] = []
    section = "head"
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("Usage: "):
            out.append("Usage:  " + line[len("Usage: "):])
            continue
        if line in ("Options:", "Commands:", "Arguments:"):
            out += _rows(rows)
            rows = []
            section = line[:-1]
            out.append(line)
            continue
        if section == "head":
            out.append(line[2:] if line.startswith("  ") else line)
        elif section == "Options":
            match = _ROW.match(line)
            if match:
                rows.append([match.group(1), match.group(2) or ""])
            elif rows and line.strip():
                rows[-1][1] = (rows[-1][1] + " " + line.strip()).strip()
        else:
            out.append(line)
    out += _rows(rows)
    text = "\n".join(out).rstrip("\n") + "\n"
    if group:
        text += f"\nRun '{path} COMMAND --help' for more information on a command.\n"
    return text


def _rows(rows: list[list[str]]) -> list[str]:
    """Options as pflag lists them: ``-a, --all``, or ``    --format string``; aligned."""
    shaped = []
    for spec, help_text in rows:
        for ours, docker in _TYPES.items():
            spec = spec.replace(ours, docker)
        default = _DEFAULT.search(help_text)
        help_text = _DEFAULT.sub("", help_text)
        if default and default.group(1) not in ("False", "0", "None", ""):
            value = default.group(1)
            help_text += f' (default {value if value.lstrip("-").isdigit() else chr(34) + value + chr(34)})'
        shaped.append(("    " + spec if spec.startswith("--") else spec, help_text))
    return option_lines(shaped) + ([""] if shaped else [])
