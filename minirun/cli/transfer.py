"""save and load in the typer app."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from ..errors import InputError, OutputError, UsageError
from . import completion as complete
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
    images: Annotated[list[str], typer.Argument(metavar="IMAGE...", autocompletion=complete.images)],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to a file (stdout).")] = None,
) -> None:
    """Save images to a tar archive (docker-archive and OCI layout at once, as Docker 25)."""
    from ..ops.save import save
    ctx = context_of(tctx)
    _archive_to(output, "saving", lambda out, where: save(ctx, images, out, where))


def _archive_to(output: str | None, doing: str, write: Callable[[BinaryIO, str], None]) -> None:
    """A tar to stdout (never a terminal) or to the file ``output``, written whole or not at
    all; the store's and the archive's failures are said by ``write``, the file's here."""
    if output is None:
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal: use -o FILE or redirect stdout")
        sys.stdout.flush()
        write(sys.stdout.buffer, "stdout")
        return
    from ..content.files import replacing
    try:
        with replacing(output) as f:
            write(f, output)
    except OSError as e:
        raise OutputError(f"{doing} to {output}: {e.strerror}") from None


def export_cmd(
    tctx: typer.Context,
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write to a file (stdout).")] = None,
) -> None:
    """A container's root filesystem as a tar archive."""
    from ..ops.containers import export_container
    ctx = context_of(tctx)
    _archive_to(output, "exporting", lambda out, _: export_container(ctx, container, out.fileno()))


def cp_cmd(
    tctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SRC")],
    dest: Annotated[str, typer.Argument(metavar="DEST")],
    archive: Annotated[bool, typer.Option("--archive", "-a", help="Keep the owners (uid, gid) as they are.")]
    = False,
    follow: Annotated[bool, typer.Option("--follow-link", "-L", help="Copy what a symlink SRC points to.")]
    = False,
) -> None:
    """Copy between a container and the host: CONTAINER:SRC DEST, or SRC CONTAINER:DEST
    (``-`` for a tar stream on stdin or stdout)."""
    from ..ops.copy import Copy, copy_in, copy_out, split_end
    ctx, how = context_of(tctx), Copy(archive, follow)
    (src_name, src_path), (dest_name, dest_path) = split_end(source), split_end(dest)
    if (src_name is None) == (dest_name is None):
        raise UsageError("copying between containers, or within the host, is not supported: "
                         "one of SRC and DEST is CONTAINER:PATH")
    if src_name is not None:
        if dest_path == "-" and sys.stdout.isatty():
            raise UsageError("cowardly refusing to write a tar to a terminal: redirect stdout")
        copy_out(ctx, src_name, src_path, dest_path, how, sys.stdout.buffer if dest_path == "-" else None)
        return
    assert dest_name is not None
    copy_in(ctx, src_path, dest_name, dest_path, how, sys.stdin.buffer if src_path == "-" else None)
