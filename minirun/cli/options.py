"""Options shared by several typer commands, and the operations' context of a command."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import UsageError
from ..ops.context import Context

MirrorOpt = Annotated[list[str], typer.Option(
    "--registry-mirror", metavar="URL",
    help="Mirror for docker.io images (also MINIRUN_REGISTRY_MIRROR, comma-separated).")]
InsecureOpt = Annotated[list[str], typer.Option(
    "--insecure-registry", metavar="HOST",
    help="Registry to reach without TLS verification (also MINIRUN_INSECURE_REGISTRIES).")]
PlatformOpt = Annotated[str | None, typer.Option(
    "--platform", metavar="OS/ARCH[/VARIANT]", help="Platform to pull (default: this host's).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only show IDs.")]
FormatOpt = Annotated[str, typer.Option("--format", help="table, json, or a template: {{.Repository}}:{{.Tag}}")]


def context_of(tctx: typer.Context) -> Context:
    """The Context the app's callback made for this command line (global flags applied)."""
    obj = tctx.find_root().obj
    return obj if isinstance(obj, Context) else Context.from_environment()


def filters(given: list[str], keys: tuple[str, ...], expected: str, flag: str = "filter") -> dict[str, list[str]]:
    """--filter KEY=VALUE, as Docker groups them: the values of each key (one key twice is
    either, different keys are all); a key not in ``keys`` is a usage error saying
    ``expected``."""
    out: dict[str, list[str]] = {}
    for text in given:
        key, eq, value = text.partition("=")
        if not eq or key not in keys:
            raise UsageError(f'invalid {flag} "{text}": expected {expected}')
        out.setdefault(key, []).append(value)
    return out
