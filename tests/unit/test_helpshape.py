"""--help in Docker's (cobra's) shape, from click's text."""

from __future__ import annotations

from minirun.cli.helpshape import docker_help

CLICK = """Usage: minirun ps [OPTIONS]

  List containers.

Options:
  -a, --all                 Show all containers, not only running ones.
  --format <str>            table, json, or a template: {{.ID}} {{.Names}}
                            [default: table]
  -n, --last <int>          The N last created.  [default: -1]
  --no-trunc                Full IDs.
  -h, --help                Show this message and exit.
"""

DOCKER = """Usage:  minirun ps [OPTIONS]

List containers.

Options:
  -a, --all             Show all containers, not only running ones.
      --format string   table, json, or a template: {{.ID}} {{.Names}} (default "table")
  -n, --last int        The N last created. (default -1)
      --no-trunc        Full IDs.
  -h, --help            Show this message and exit.
"""


def test_a_command_s_help() -> None:
    assert docker_help(CLICK, False, "minirun ps") == DOCKER


def test_a_group_s_help_ends_with_docker_s_hint() -> None:
    text = docker_help("Usage: minirun system [OPTIONS] COMMAND [ARGS]...\n\n  Manage.\n\nOptions:\n"
                       "  -h, --help  Show this message and exit.\n\nCommands:\n  df  Show disk usage.\n",
                       True, "minirun system")
    assert text == ("Usage:  minirun system [OPTIONS] COMMAND [ARGS]...\n\nManage.\n\nOptions:\n"
                    "  -h, --help   Show this message and exit.\n\nCommands:\n  df  Show disk usage.\n\n"
                    "Run 'minirun system COMMAND --help' for more information on a command.\n")
