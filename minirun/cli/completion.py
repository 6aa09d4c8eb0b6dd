"""Shell completion (bash, zsh, fish) and the manual page, both made from the command
definitions themselves: the typer app's commands and options, and run's flag table.

A shell's completion script calls ``minirun`` back with ``_MINIRUN_COMPLETE`` set (typer's
protocol); the names offered for containers and images are read from the store then."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

COMPLETE_VAR = "_MINIRUN_COMPLETE"

_SCRIPTS = {
    "bash": """_minirun_completion() {
    local IFS=$'\\n'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" COMP_CWORD=$COMP_CWORD %(var)s=complete_bash minirun ) )
    return 0
}
complete -o default -F _minirun_completion minirun
""",
    "zsh": """#compdef minirun
_minirun_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" %(var)s=complete_zsh minirun)
}
compdef _minirun_completion minirun
""",
    "fish": 'complete --command minirun --no-files --arguments "(env %(var)s=complete_fish '
            '_TYPER_COMPLETE_FISH_ACTION=get-args _TYPER_COMPLETE_ARGS=(commandline -cp) minirun)" --condition '
            '"env %(var)s=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args _TYPER_COMPLETE_ARGS=(commandline -cp) '
            'minirun"\n',
}


def script(shell: str) -> str:
    from ..errors import UsageError
    if shell not in _SCRIPTS:
        raise UsageError(f'invalid shell "{shell}": expected bash, zsh or fish')
    return _SCRIPTS[shell] % {"var": COMPLETE_VAR}


def asked() -> bool:
    """Whether this run of minirun answers a shell's completion request; then typer's shells
    are set up to answer it."""
    if COMPLETE_VAR not in os.environ:
        return False
    from typer._completion_classes import completion_init  # (typer's own shells; add_completion=False hides them)
    completion_init()
    return True


def containers(incomplete: str) -> list[str]:
    """Container names and short IDs starting with ``incomplete``."""
    from ..containers.state import scan
    from ..ops.context import Context
    try:
        sound, _ = scan(Context.from_environment().root)
    except OSError:
        return []
    names = [s.name for _, s in sound if s.name] + [s.id[:12] for _, s in sound]
    return sorted(n for n in names if n.startswith(incomplete))


def images(incomplete: str) -> list[str]:
    """Image references (Docker's short form) and short IDs starting with ``incomplete``."""
    from ..errors import MiniRunError
    from ..ops.context import Context
    from ..remote import reference
    out = []
    try:
        records = Context.from_environment().images.records()
    except (OSError, MiniRunError):
        return []
    for record in records:
        try:
            out.append(record.config[7:19] if record.untagged else reference.parse(record.reference).familiar())
        except MiniRunError:
            continue
    return sorted(n for n in set(out) if n.startswith(incomplete))


def run_words(incomplete: str) -> list[str]:
    """run and create: their flags, else image names."""
    from ..runargs import FLAGS
    if incomplete.startswith("-"):
        return sorted(name for flag in FLAGS for name in flag.names if name.startswith(incomplete))
    return images(incomplete)


def run_command_class() -> type[typer.core.TyperCommand]:
    """run and create's command: a flag being typed completes from run's own flag table (click
    completes options it parses, and run's flags are parsed by ``runargs``, not by click)."""
    from typer._click.core import Context
    from typer._click.shell_completion import CompletionItem
    from typer.core import TyperCommand

    class RunCommand(TyperCommand):
        def shell_complete(self, ctx: Context, incomplete: str) -> list[CompletionItem]:
            return [CompletionItem(word) for word in run_words(incomplete)] if incomplete.startswith("-") else []

    return RunCommand


def manual(root: typer.core.TyperGroup) -> str:
    """The manual page (roff, man(7)) of every command under ``root`` and its options."""
    import datetime

    from .. import __version__
    from ..runargs import FLAGS, SUMMARY
    date = datetime.date.today().isoformat()
    out = [f'.TH MINIRUN 1 "{date}" "minirun {__version__}" "User Commands"', ".SH NAME",
           r"minirun \- pull and run OCI container images, without a daemon", ".SH SYNOPSIS",
           r"\fBminirun\fR [\fIOPTIONS\fR] \fICOMMAND\fR [\fIARG\fR...]", ".SH DESCRIPTION",
           _roff(root.help or ""), ".SH GLOBAL OPTIONS", *_options(root), ".SH COMMANDS"]
    for path, command in _commands(root, "minirun"):
        out += [".SS " + _roff(path), _roff(command.help or "")]
        if path.endswith((" run", " create")):
            out += [_roff(SUMMARY)] if path.endswith(" run") else []
            for flag in FLAGS:
                metavar = f" {flag.metavar}" if flag.metavar else ""
                out += [".TP", r"\fB" + _roff(", ".join(flag.names)) + r"\fR" + _roff(metavar), _roff(flag.help)]
        else:
            out += _options(command)
    out += [".SH FILES", r"\fI/var/lib/minirun\fR (the store; \fBMINIRUN_ROOT\fR), "
            r"\fI/etc/minirun/config.toml\fR (settings)", ".SH SEE ALSO", r"\fBdocker\fR(1), \fBpodman\fR(1)"]
    return "\n".join(out) + "\n"


def _commands(group: object, path: str) -> list[tuple[str, typer.core.TyperCommand]]:
    """Every command under ``group`` with its full name, in the order they were defined."""
    out = []
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "hidden", False):
            continue
        if getattr(command, "commands", None):
            out += _commands(command, f"{path} {name}")
        else:
            out.append((f"{path} {name}", command))
    return out


def _options(command: object) -> list[str]:
    out = []
    for param in getattr(command, "params", []):
        names = ", ".join(getattr(param, "opts", []) + getattr(param, "secondary_opts", []))
        if not names.startswith("-"):
            continue  # an argument: named in the command's help
        out += [".TP", r"\fB" + _roff(names) + r"\fR", _roff(getattr(param, "help", "") or "")]
    return out


def _roff(text: str) -> str:
    """Text safe in roff: backslashes doubled, no line starting with a control character."""
    lines = text.replace("\\", "\\e").splitlines() or [""]
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in lines)


def any_name(incomplete: str) -> list[str]:
    """inspect: containers and images."""
    return containers(incomplete) + images(incomplete)
