"""login, logout: credentials in Docker's config.json."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from ..errors import UsageError
from ..remote import credentials
from .options import InsecureOpt, context_of
from .output import err, line


def _registry_of(server: str | None) -> str:
    if not server:
        return "docker.io"
    host = credentials.hostname(server.strip())
    return "docker.io" if credentials.server_key(host) == credentials.DOCKER_HUB_KEY else host


def _ask(username: str | None, password: str | None, password_stdin: bool) -> credentials.Credentials:
    """The credentials from the flags, stdin or the terminal, as docker login takes them."""
    if password and password_stdin:
        raise UsageError("--password and --password-stdin are mutually exclusive")
    if password_stdin:
        if not username:
            raise UsageError("must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
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
    return credentials.Credentials(username, password)


def login_cmd(
    tctx: typer.Context,
    server: Annotated[str | None, typer.Argument(metavar="[SERVER]")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password: Annotated[str | None, typer.Option("--password", "-p")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    insecure_registry: InsecureOpt = [],  # noqa: B006 - typer reads the default, never mutates it
) -> None:
    """Log in to a registry (credentials go to Docker's config.json)."""
    from ..remote.registry import login_check
    registry = _registry_of(server)
    creds = _ask(username, password, password_stdin)
    login_check(registry, context_of(tctx).with_registry((), tuple(insecure_registry)).registry_options(), creds)
    where = credentials.store(registry, creds)
    err(f"credentials stored {where}")
    line("Login Succeeded")


def logout_cmd(server: Annotated[str | None, typer.Argument(metavar="[SERVER]")] = None) -> None:
    """Remove the stored credentials of a registry."""
    registry = _registry_of(server)
    key = credentials.server_key(registry)
    line(f"Removing login credentials for {key}" if credentials.remove(registry) else f"Not logged in to {key}")
