"""save and load in the typer app."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError, OutputError, UsageError
from .options import context_of
from .output import line


def load_cmd(
    tctx: typer.Context,
    input: Annotated[str | None, typer.Option("--input", "-i", help="Archive or OCI layout directory (stdin).")]
    = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing.")] = False,
) -> None:
    """Load images from a docker-archive or OCI archive (gzip or not), or an OCI layout directory."""
    from ..content.images import is_image_id
    from ..ops.load import load
    from ..remote import reference
    ctx = context_of(tctx)
    if input is not None and Path(input).is_dir():
        loaded = load(ctx, None, Path(input), input)
    elif input is not None:
        try:
            f = open(input, "rb")  # closed below: only its opening is the user's error
        except OSError as e:
            raise InputError(f"loading {input}: {e.strerror}") from None
        with f:
            loaded = load(ctx, f, None, input)
    else:
        if sys.stdin.isatty():
            raise UsageError("requested load from stdin, but stdin is a terminal: use -i FILE or a pipe")
        loaded = load(ctx, sys.stdin.buffer, None, "stdin")
    if not quiet:
        for name in loaded:
            named = not is_image_id(name)
            line(f"Loaded image: {reference.parse(name).familiar()}" if named else f"Loaded image ID: {name}")


def save_cmd(
    tctx: typer.Context,
    images: Annotated[list[str], typer.Argument(metavar="IMAGE...")],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to a file (stdout).")] = None,
) -> None:
    """Save images to a tar archive (docker-archive and OCI layout at once, as Docker 25)."""
    from ..ops.save import save
    ctx = context_of(tctx)
    if output is None:
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal: use -o FILE or redirect stdout")
        save(ctx, images, sys.stdout.buffer, "stdout")
        return
    from ..content.files import replacing
    try:  # the store's and the archive's failures are said by save; what is left is the file's
        with replacing(output) as f:  # whole or not at all
            save(ctx, images, f, output)
    except OSError as e:
        raise OutputError(f"saving to {output}: {e.strerror}") from None
