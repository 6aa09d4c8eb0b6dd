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


app.command("pull")(images.pull_cmd)
app.command("images")(images.images_cmd)
app.command("rmi")(images.rmi_cmd)
app.command("tag")(images.tag_cmd)
app.command("push")(images.push_cmd)
app.command("history")(images.history_cmd)
system_app = typer.Typer(help="Manage minirun's store.", invoke_without_command=True,
                         callback=_help_without_command)
app.add_typer(system_app, name="system")
system_app.command("prune")(system.prune_cmd)
system_app.command("boot")(system.boot_cmd)
system_app.command("df")(system.df_cmd)
system_app.command("info")(system.info_cmd)
system_app.command("events")(events.events_cmd)
app.command("version")(system.version_cmd)
app.command("completion")(system.completion_cmd)
app.command("manual")(system.manual_cmd)
app.command("info")(system.info_cmd)
app.command("version")(system.version_cmd)
app.command("completion")(system.completion_cmd)
app.command("manual")(system.manual_cmd)
volume_app = typer.Typer(help="Manage volumes.", invoke_without_command=True, callback=_help_without_command)
app.add_typer(volume_app, name="volume")
for _verb in ("create", "ls", "inspect", "rm", "prune"):
    volume_app.command(_verb)(getattr(volumes, f"{_verb}_cmd"))
network_app = typer.Typer(help="Manage networks.", invoke_without_command=True, callback=_help_without_command)
app.add_typer(network_app, name="network")
for _verb in ("create", "ls", "inspect", "rm", "prune", "connect", "disconnect"):
    network_app.command(_verb)(getattr(networks, f"{_verb}_cmd"))
app.command("events")(events.events_cmd)
app.command("load")(transfer.load_cmd)
app.command("save")(transfer.save_cmd)
app.command("export")(transfer.export_cmd)
app.command("cp")(transfer.cp_cmd)
app.command("login")(auth.login_cmd)
app.command("logout")(auth.logout_cmd)
app.command("ps")(containers.ps_cmd)
app.command("rm")(containers.rm_cmd)
app.command("logs")(containers.logs_cmd)
app.command("port")(containers.port_cmd)
app.command("top", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})(
    containers.top_cmd)
app.command("stop")(containers.stop_cmd)
app.command("kill")(containers.kill_cmd)
app.command("wait")(containers.wait_cmd)
app.command("inspect")(containers.inspect_cmd)
app.command("start")(containers.start_cmd)
app.command("restart")(containers.restart_cmd)
app.command("exec", context_settings={"allow_interspersed_args": False})(containers.exec_cmd)
# run and create are parsed and carried out by cli.run, without typer; listed here for help,
# completion and the manual (and reached through typer only after other global flags).
_RUN_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "allow_interspersed_args": False}
_CREATE_HELP = "Create a new container (run's flags; start runs it)."


def _run_like(where: typer.Typer) -> None:
    for name, help_text, command in (("run", SUMMARY, containers.run_cmd), ("create", _CREATE_HELP,
                                                                          containers.create_cmd)):
        where.command(name, cls=completion.run_command_class(), help=help_text, add_help_option=False,
                      context_settings=_RUN_SETTINGS)(command)


_run_like(app)


# Docker's management commands: the same commands under `container` and `image`.
_Verbs = tuple[tuple[str, Callable[..., None]], ...]
container_app = typer.Typer(help="Manage containers.", invoke_without_command=True, callback=_help_without_command)
app.add_typer(container_app, name="container")
_container_verbs: _Verbs = (
    ("ls", containers.ps_cmd), ("ps", containers.ps_cmd), ("list", containers.ps_cmd), ("rm", containers.rm_cmd),
    ("logs", containers.logs_cmd), ("port", containers.port_cmd), ("stop", containers.stop_cmd),
    ("kill", containers.kill_cmd), ("wait", containers.wait_cmd), ("inspect", containers.inspect_cmd),
    ("start", containers.start_cmd), ("restart", containers.restart_cmd), ("export", transfer.export_cmd),
    ("cp", transfer.cp_cmd), ("prune", system.container_prune_cmd))
for _verb, _cmd in _container_verbs:
    container_app.command(_verb)(_cmd)
container_app.command("top", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})(
    containers.top_cmd)
container_app.command("exec", context_settings={"allow_interspersed_args": False})(containers.exec_cmd)
_run_like(container_app)
image_app = typer.Typer(help="Manage images.", invoke_without_command=True, callback=_help_without_command)
app.add_typer(image_app, name="image")
_image_verbs: _Verbs = (
    ("ls", images.images_cmd), ("list", images.images_cmd), ("rm", images.rmi_cmd),
    ("inspect", containers.inspect_cmd), ("pull", images.pull_cmd), ("push", images.push_cmd),
    ("tag", images.tag_cmd), ("save", transfer.save_cmd), ("load", transfer.load_cmd),
    ("history", images.history_cmd), ("prune", system.image_prune_cmd))
for _verb, _cmd in _image_verbs:
    image_app.command(_verb)(_cmd)


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
