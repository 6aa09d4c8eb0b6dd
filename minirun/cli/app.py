"""The typer app: every command line but ``run``'s (which ``cli`` dispatches without typer).

The commands are plain functions in their verb modules (``images``, ``auth``,
``containers``, ``system``), registered here, so that no verb module needs this one.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from ..ops.context import Context
from ..runargs import SUMMARY
from . import auth, containers, events, images, networks, system, transfer, volumes

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
system_app = typer.Typer(help="Manage minirun's store.", invoke_without_command=True,
                         callback=_help_without_command)
app.add_typer(system_app, name="system")
system_app.command("prune")(system.prune_cmd)
system_app.command("boot")(system.boot_cmd)
app.command("info")(system.info_cmd)
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
# run is parsed and carried out by cli.run, without typer; listed here for help.
app.command("run", help=SUMMARY, add_help_option=False, context_settings={
    "ignore_unknown_options": True, "allow_extra_args": True,
    "allow_interspersed_args": False})(containers.run_cmd)
app.command("create", help="Create a new container (run's flags; start runs it).", add_help_option=False,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                              "allow_interspersed_args": False})(containers.create_cmd)


def run_app(argv: list[str]) -> int:
    """Parse and run one command line; errors propagate to ``cli.main``'s guard."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="minirun", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        raise KeyboardInterrupt from None
    return result if isinstance(result, int) else 0
