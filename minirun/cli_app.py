"""The typer app: pull, images, rmi, system prune, login, logout (and ps, rm from
``cli_containers``). ``cli.main`` hands it every command line but ``run``'s.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import sys
from typing import Annotated, Any

import typer

from . import __version__, credentials
from .cli import _err, _registry_options, _store, do_pull, set_storage_driver
from .errors import ImageNotKnown, ReferenceFormatError, StoreError, UsageError

app = typer.Typer(
    name="minirun", add_completion=False,
    pretty_exceptions_enable=False, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Pull and run OCI container images, without a daemon.")

def _version(value: bool) -> None:
    if value:
        typer.echo(f"minirun version {__version__}")
        raise typer.Exit()


def _help_without_command(ctx: typer.Context) -> None:
    """``minirun`` or ``minirun system`` alone: the help on stdout and exit 0, as Docker does
    (typer's no_args_is_help makes it a usage error)."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main_options(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", "-v", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    storage_driver: Annotated[str | None, typer.Option(
        "--storage-driver", metavar="overlay|vfs",
        help="How layers become root filesystems (default: overlay where it works, else vfs; "
             "also MINIRUN_STORAGE_DRIVER).")] = None,
) -> None:
    """Pull and run OCI container images, without a daemon."""
    set_storage_driver(storage_driver)
    _help_without_command(ctx)


def _collect_snapshots(images: Any, records: list[Any]) -> list[str]:
    """Remove the snapshots (of every driver) that no remaining image uses; under the GC lock."""
    from .rootfs import DRIVERS, Snapshotter, chains_in_use
    from .runtime.container import list_all
    keep = chains_in_use(images, records)
    for _, state in list_all(images.root):
        keep.update(state.chains)  # a container's root filesystem stacks these
    removed: list[str] = []
    for driver in DRIVERS:
        if (images.root / "snapshots" / driver).is_dir():
            removed += Snapshotter(images.root, driver).remove_unused(keep)
    return removed


# -- pull ---------------------------------------------------------------------

MirrorOpt = Annotated[list[str], typer.Option(
    "--registry-mirror", metavar="URL",
    help="Mirror for docker.io images (also MINIRUN_REGISTRY_MIRROR, comma-separated).")]
InsecureOpt = Annotated[list[str], typer.Option(
    "--insecure-registry", metavar="HOST",
    help="Registry to reach without TLS verification (also MINIRUN_INSECURE_REGISTRIES).")]
PlatformOpt = Annotated[str | None, typer.Option(
    "--platform", metavar="OS/ARCH[/VARIANT]", help="Platform to pull (default: this host's).")]


@app.command("pull")
def pull_cmd(
    image: Annotated[str, typer.Argument(metavar="NAME[:TAG|@DIGEST]")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the image reference.")] = False,
    progress: Annotated[str, typer.Option(
        "--progress", help="auto, plain, tty or json.")] = "auto",
    platform: PlatformOpt = None,
    registry_mirror: MirrorOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    insecure_registry: InsecureOpt = [],  # noqa: B006
) -> None:
    """Download an image from a registry."""
    if progress not in ("auto", "plain", "tty", "json"):
        raise UsageError(f'invalid --progress "{progress}": expected auto, plain, tty or json')
    from . import reference
    if reference.parse(image).tag_defaulted and not quiet and progress != "json":
        typer.echo("Using default tag: latest")
    ref, _ = do_pull(image, platform, "quiet" if quiet else progress, registry_mirror,
                     insecure_registry, sys.stdout)
    typer.echo(str(ref))


def _check_format(format: str) -> None:
    if format not in ("table", "json"):
        raise UsageError(f'invalid --format "{format}": expected table or json')


def print_rows(rows: list[dict[str, Any]], quiet: bool, format: str, cols: list[tuple[str, str]]) -> None:
    """IDs only (-q), one JSON object per line (--format json), or Docker's table."""
    if quiet:
        for row in rows:
            typer.echo(row["ID"])
    elif format == "json":
        for row in rows:
            typer.echo(json.dumps(row))
    else:
        _table(cols, rows)


def _table(cols: list[tuple[str, str]], rows: list[dict[str, Any]]) -> None:
    widths = [max([len(h)] + [len(str(r[k])) for r in rows]) for h, k in cols]
    typer.echo("   ".join(h.ljust(w) for (h, _), w in zip(cols, widths, strict=True)).rstrip())
    for r in rows:
        typer.echo("   ".join(str(r[k]).ljust(w) for (_, k), w in zip(cols, widths, strict=True)).rstrip())


# -- images, rmi --------------------------------------------------------------

def _human_size(n: float) -> str:
    # Docker's units.HumanSize: decimal units, 3 significant digits.
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}TB"


def _since(created: str | None) -> str:
    if not created:
        return "N/A"
    try:
        when = _dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "N/A"
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    secs = (_dt.datetime.now(_dt.UTC) - when).total_seconds()
    for unit, size in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400),
                       ("day", 86400), ("hour", 3600), ("minute", 60)):
        if secs >= size:
            n = int(secs // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "Less than a second ago" if secs < 1 else f"{int(secs)} seconds ago"


def _image_rows() -> list[dict[str, Any]]:
    from . import reference
    from .oci import parse_config
    images = _store()
    rows = []
    for rec in sorted(images.records(), key=lambda r: r.pulled, reverse=True):
        ref = reference.parse(rec.reference)
        manifest = images.manifest_of(rec)
        config = parse_config(images.content.read(rec.config), rec.reference)
        size = sum(layer.size for layer in manifest.layers) + manifest.config.size
        rows.append({
            "Repository": ref.familiar_name, "Tag": ref.tag or "<none>",
            "ID": rec.config.split(":", 1)[1][:12], "Digest": rec.digest,
            "CreatedAt": config.created or "", "CreatedSince": _since(config.created),
            "Size": _human_size(size), "Platform": rec.platform, "Reference": rec.reference,
        })
    return rows


@app.command("images")
def images_cmd(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show image IDs.")] = False,
    format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List images in the local store."""
    _check_format(format)
    print_rows(_image_rows(), quiet, format, [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                                              ("CREATED", "CreatedSince"), ("SIZE", "Size")])


@app.command("rmi")
def rmi_cmd(
    images: Annotated[list[str], typer.Argument(metavar="IMAGE...")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Remove even if containers use it.")] = False,
) -> None:
    """Remove images; blobs no other image uses are deleted."""
    from . import reference
    from .runtime.container import list_all
    store = _store()
    records = store.records()
    targets: list[str] = []
    for name in images:
        # An image ID (or a unique prefix of it, as Docker allows) names every tag of it.
        hexid = name.removeprefix("sha256:")
        is_id = len(hexid) >= 4 and all(c in "0123456789abcdef" for c in hexid)
        matches = [r.reference for r in records
                   if is_id and r.config.split(":", 1)[1].startswith(hexid)]
        if not matches:
            try:
                key = str(reference.parse(name))
            except ReferenceFormatError:
                key = ""
            matches = [r.reference for r in records if r.reference == key]
        if not matches:
            raise ImageNotKnown(f"No such image: {name}")
        targets += [m for m in matches if m not in targets]
    if not force:
        for _, state in list_all(store.root):
            if state.reference in targets:
                raise StoreError(
                    f'conflict: unable to remove image "{state.image}": container {state.id[:12]} '
                    f"({state.status}) uses it; remove the container first (minirun rm) or use -f")
    removed, deleted, _ = store.remove(targets, lambda records: _collect_snapshots(store, records))
    for rec in removed:
        typer.echo(f"Untagged: {reference.parse(rec.reference).familiar()}")
    for digest in deleted:
        typer.echo(f"Deleted: {digest}")


system_app = typer.Typer(help="Manage minirun's store.", invoke_without_command=True,
                         callback=_help_without_command)
app.add_typer(system_app, name="system")


@system_app.command("prune")
def prune_cmd() -> None:
    """Remove blobs, snapshots and partial downloads that no image references."""
    store = _store()
    _, deleted, freed = store.remove([], lambda records: _collect_snapshots(store, records))
    for digest in deleted:
        typer.echo(f"Deleted: {digest}")
    typer.echo(f"Total reclaimed space: {_human_size(freed)}")


# -- login, logout ------------------------------------------------------------

def _registry_of(server: str | None) -> str:
    if not server:
        return "docker.io"
    host = credentials.hostname(server.strip())
    return "docker.io" if credentials.server_key(host) == credentials.DOCKER_HUB_KEY else host


@app.command("login")
def login_cmd(
    server: Annotated[str | None, typer.Argument(metavar="[SERVER]")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password: Annotated[str | None, typer.Option("--password", "-p")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="Read the password from stdin.")] = False,
    insecure_registry: InsecureOpt = [],  # noqa: B006
) -> None:
    """Log in to a registry (credentials go to Docker's config.json)."""
    from .registry import login_check
    registry = _registry_of(server)
    if password and password_stdin:
        raise UsageError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise UsageError("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        _err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
    if not username:
        if not sys.stdin.isatty():
            raise UsageError("cannot ask for a username: stdin is not a terminal (use --username)")
        username = input("Username: ").strip()
    if password is None:
        if not sys.stdin.isatty():
            raise UsageError("cannot ask for a password: stdin is not a terminal (use --password-stdin)")
        password = getpass.getpass("Password: ")
    if not username or not password:
        raise UsageError("username and password must not be empty")
    creds = credentials.Credentials(username, password)
    login_check(registry, _registry_options([], insecure_registry), creds)
    path = credentials.store(registry, creds)
    _err(f"credentials stored in {path}")
    typer.echo("Login Succeeded")


@app.command("logout")
def logout_cmd(server: Annotated[str | None, typer.Argument(metavar="[SERVER]")] = None) -> None:
    """Remove the stored credentials of a registry."""
    registry = _registry_of(server)
    key = credentials.server_key(registry)
    if credentials.remove(registry):
        typer.echo(f"Removing login credentials for {key}")
    else:
        typer.echo(f"Not logged in to {key}")


# The container commands (ps, rm; run's typer face) live in their own module, on the same app.
from . import cli_containers  # noqa: E402, F401


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
