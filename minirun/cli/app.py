"""The typer app: every command line but ``run``'s (which ``cli`` dispatches without typer).

The commands are plain functions in their verb modules (``images``, ``auth``,
``containers``, ``system``), registered here, so that no verb module needs this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from .. import __version__
from ..ops.context import Context
from ..runargs import SUMMARY
from . import auth, completion, containers, events, images, networks, system, transfer, volumes

app = typer.Typer(
    name="minirun", add_completion=False,
    pretty_exceptions_enable=False, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Pull and run OCI container images, without a daemon.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"minirun version {__version__}")
        raise typer.Exit()


def _help_without_command(tctx: typer.Context) -> None:
    """``minirun`` or ``minirun system`` alone: the help on stdout and exit 0, as Docker does
    (typer's no_args_is_help makes it a usage error)."""
    if tctx.invoked_subcommand is None:
        typer.echo(tctx.get_help())
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_options(
    tctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", "-v", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    storage_driver: Annotated[str | None, typer.Option(
        "--storage-driver", metavar="overlay|vfs",
        help="How layers become root filesystems (default: overlay where it works, else vfs; "
             "also MINIRUN_STORAGE_DRIVER).")] = None,
) -> None:
    """Pull and run OCI container images, without a daemon."""
    from ..snapshots.rootfs import check_driver
    if storage_driver is not None:
        check_driver(storage_driver)  # now, even where no snapshot is made (not root)
    tctx.obj = Context.from_environment(storage_driver)
    _help_without_command(tctx)


# A verb: its name, its command and, for some, click's context settings.
_Verbs = tuple[tuple[str, Callable[..., object]] | tuple[str, Callable[..., object], dict[str, bool]], ...]
_TOP = {"ignore_unknown_options": True, "allow_interspersed_args": False}  # top's ps options are ps's
_EXEC = {"allow_interspersed_args": False}  # what follows the container is the command's
# run and create are parsed and carried out by cli.run, without typer; listed here for help,
# completion and the manual (and reached through typer only after other global flags).
_RUN_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "allow_interspersed_args": False}
_CREATE_HELP = "Create a new container (run's flags; start runs it)."


def _register(where: typer.Typer, verbs: _Verbs) -> None:
    for verb, command, *settings in verbs:
        where.command(verb, context_settings=settings[0] if settings else None)(command)


def _group(name: str, help_text: str, verbs: _Verbs) -> typer.Typer:
    """A command group (``minirun system ...``): alone, its help on stdout, as Docker's."""
    group = typer.Typer(help=help_text, invoke_without_command=True, callback=_help_without_command)
    app.add_typer(group, name=name)
    _register(group, verbs)
    return group


def _run_like(where: typer.Typer) -> None:
    for name, help_text, command in (("run", SUMMARY, containers.run_cmd), ("create", _CREATE_HELP,
                                                                          containers.create_cmd)):
        where.command(name, cls=completion.run_command_class(), help=help_text, add_help_option=False,
                      context_settings=_RUN_SETTINGS)(command)


_register(app, (("pull", images.pull_cmd), ("images", images.images_cmd), ("rmi", images.rmi_cmd),
                ("tag", images.tag_cmd), ("push", images.push_cmd), ("history", images.history_cmd)))
_group("system", "Manage minirun's store.", (
    ("prune", system.prune_cmd), ("boot", system.boot_cmd), ("df", system.df_cmd), ("info", system.info_cmd),
    ("events", events.events_cmd)))
_register(app, (("version", system.version_cmd), ("completion", system.completion_cmd),
                ("manual", system.manual_cmd), ("info", system.info_cmd)))
_group("volume", "Manage volumes.", tuple((verb, getattr(volumes, f"{verb}_cmd"))
                                          for verb in ("create", "ls", "inspect", "rm", "prune")))
_group("network", "Manage networks.", tuple((verb, getattr(networks, f"{verb}_cmd")) for verb in (
    "create", "ls", "inspect", "rm", "prune", "connect", "disconnect")))
_register(app, (
    ("events", events.events_cmd), ("load", transfer.load_cmd), ("save", transfer.save_cmd),
    ("export", transfer.export_cmd), ("cp", transfer.cp_cmd), ("login", auth.login_cmd),
    ("logout", auth.logout_cmd), ("ps", containers.ps_cmd), ("rm", containers.rm_cmd),
    ("logs", containers.logs_cmd), ("port", containers.port_cmd), ("top", containers.top_cmd, _TOP),
    ("stop", containers.stop_cmd), ("kill", containers.kill_cmd), ("wait", containers.wait_cmd),
    ("inspect", containers.inspect_cmd), ("start", containers.start_cmd), ("restart", containers.restart_cmd),
    ("exec", containers.exec_cmd, _EXEC)))
_run_like(app)
# Docker's management commands: the same commands under `container` and `image`.
_run_like(_group("container", "Manage containers.", (
    ("ls", containers.ps_cmd), ("ps", containers.ps_cmd), ("list", containers.ps_cmd), ("rm", containers.rm_cmd),
    ("logs", containers.logs_cmd), ("port", containers.port_cmd), ("stop", containers.stop_cmd),
    ("kill", containers.kill_cmd), ("wait", containers.wait_cmd), ("inspect", containers.inspect_cmd),
    ("start", containers.start_cmd), ("restart", containers.restart_cmd), ("export", transfer.export_cmd),
    ("cp", transfer.cp_cmd), ("prune", system.container_prune_cmd), ("top", containers.top_cmd, _TOP),
    ("exec", containers.exec_cmd, _EXEC))))
_group("image", "Manage images.", (
    ("ls", images.images_cmd), ("list", images.images_cmd), ("rm", images.rmi_cmd),
    ("inspect", containers.inspect_cmd), ("pull", images.pull_cmd), ("push", images.push_cmd),
    ("tag", images.tag_cmd), ("save", transfer.save_cmd), ("load", transfer.load_cmd),
    ("history", images.history_cmd), ("prune", system.image_prune_cmd)))


class DockerHelpContext(typer.Context):
    """A command's context whose --help reads as Docker's (see ``helpshape``)."""

    def get_help(self) -> str:
        from .helpshape import docker_help
        return docker_help(super().get_help(), hasattr(self.command, "commands"), self.command_path)


def _docker_help_everywhere(command: object) -> None:
    """Every command of the tree makes its contexts (and so its help) the Docker way."""
    command.context_class = DockerHelpContext  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        _docker_help_everywhere(sub)


def run_app(argv: list[str]) -> int:
    """Parse and run one command line; errors propagate to ``cli.main``'s guard."""
    command = typer.main.get_command(app)
    _docker_help_everywhere(command)
    try:
        result = command.main(args=argv, prog_name="minirun", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        raise KeyboardInterrupt from None
    return result if isinstance(result, int) else 0
