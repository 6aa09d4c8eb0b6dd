"""The README's Commands section against the commands themselves (issue 29): every command
and subcommand `--help` lists is in the table, everything the table names is a command, and
what it says is not supported is not one."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from minirun.cli.app import app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section() -> str:
    start = README.index("## Commands")
    return README[start:README.index("\n## ", start + 1)]


def _first_columns() -> list[str]:
    return [row.split(" | ")[0] for row in _section().splitlines() if row.startswith("| `minirun")]


def _tree() -> dict[str, list[str]]:
    """Each top-level command -> its subcommands ([] for a plain command), as click has them."""
    root = typer.main.get_command(app)
    commands = getattr(root, "commands", {})
    return {name: sorted(getattr(cmd, "commands", {})) for name, cmd in commands.items()}


def test_every_command_is_in_the_table_and_every_listed_one_exists() -> None:
    columns = _first_columns()
    text = "\n".join(columns)
    named = set(re.findall(r"`minirun (?:--[a-z-]+ \S+ )?([a-z]+)", text))
    tree = _tree()
    assert named - {"run"} <= set(tree), named - set(tree)  # (--storage-driver ...'s row names run)
    assert set(tree) <= named, set(tree) - named
    for group, subcommands in tree.items():
        if not subcommands:
            continue
        rows = " ".join(c for c in columns if f"`minirun {group} " in c)
        for sub in subcommands:
            assert re.search(rf"[`\\| ]{sub}\b", rows), f"{group} {sub} is not in the README's table"


def test_what_the_readme_says_is_not_supported_is_not_a_command() -> None:
    section = _section()
    said = section[section.index("Not supported"):]
    said = said[:said.index("\n\n")]
    missing = set(re.findall(r"`([a-z]+)`", said))
    assert {"attach", "build", "pause", "stats"} <= missing
    assert not missing & set(_tree()), missing & set(_tree())
