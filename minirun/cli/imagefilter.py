"""images [REPOSITORY[:TAG]] --filter as Docker 20.10 reads them (pure): dangling, label,
before, since, reference. A reference is a shell pattern as Go's path.Match has it (``*``
stops at ``/``), matched against ``repo:tag`` and then ``repo``, in Docker's short form."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from ..containers.state import parse_stamp
from ..errors import UsageError
from ..spec.flags import label_matches

KEYS = ("dangling", "label", "before", "since", "reference")
Row = Mapping[str, object]


def parse(items: list[str], positional: str | None) -> dict[str, list[str]]:
    """The filters by key; ``images REPO[:TAG]`` is Docker's reference filter too."""
    from .options import filters
    out = filters(items, KEYS, f'{"=, ".join(KEYS)}=')
    for value in out.get("dangling", []):
        if value not in ("true", "false", "1", "0"):
            raise UsageError(f'invalid --filter "dangling={value}": expected true or false')
    if positional is not None:
        out.setdefault("reference", []).append(positional)
    for value in out.get("reference", []):
        pattern_regex(value)  # a bad pattern is an error before anything is listed
    return out


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Go's path.Match as a regular expression: ``*`` and ``?`` never match ``/``, ``[...]``
    a class (``[^...]`` its negation), ``\\`` quotes the next character."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise UsageError(f'invalid reference filter "{pattern}": syntax error in pattern')
            body = pattern[i + 1:end]
            negated = body.startswith("^")
            body = body[1:] if negated else body
            out.append(("[^" if negated else "[") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def created(row: Row) -> datetime:
    """The image's creation time (the earliest time where it has none, as an ordering wants)."""
    return parse_stamp(str(row.get("CreatedAt") or "")) or datetime.min.replace(tzinfo=UTC)


def _names(row: Row) -> list[str]:
    repo, tag = str(row["Repository"]), str(row["Tag"])
    return [] if repo == "<none>" else [f"{repo}:{tag}", repo]


def _find(rows: Sequence[Row], name: str) -> Row:
    """An image named by before=/since=: by reference or ID prefix, as Docker's lookup."""
    wanted = name if ":" in name.rpartition("/")[2] or "@" in name else name + ":latest"
    for row in rows:
        if wanted in _names(row) or f"{row['Repository']}:{row['Tag']}" == wanted:
            return row
    short = name.removeprefix("sha256:")
    for row in rows:
        if len(short) >= 3 and str(row["ID"]).startswith(short):
            return row
    raise UsageError(f"No such image: {name}")


def select(rows: Sequence[Row], wanted: dict[str, list[str]]) -> list[Row]:
    """The rows every filter keeps (one key given twice: either value)."""
    bounds = [(key, created(_find(rows, v))) for key in ("before", "since") for v in wanted.get(key, [])]
    patterns = [pattern_regex(v) for v in wanted.get("reference", [])]
    out = []
    for row in rows:
        if "dangling" in wanted:
            dangling = row["Repository"] == "<none>"
            if not any(dangling == (v in ("true", "1")) for v in wanted["dangling"]):
                continue
        if patterns and not any(p.match(n) for p in patterns for n in _names(row)):
            continue
        if not _labelled(row, wanted.get("label", [])):
            continue
        when = created(row)
        if all(when < b if key == "before" else when > b for key, b in bounds):
            out.append(row)
    return out


def _labelled(row: Row, wanted: list[str]) -> bool:
    """label=KEY[=VALUE]: each must hold (Docker's)."""
    labels = dict(x.partition("=")[::2] for x in str(row["Labels"]).split(",") if x)
    return all(label_matches(labels, w) for w in wanted)
