"""pull, images, rmi: the image commands of the typer app."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import UsageError
from ..ops import images as ops
from ..ops.context import Context
from .options import FormatOpt, InsecureOpt, MirrorOpt, PlatformOpt, context_of
from .output import check_format, human_size, line, print_rows, since


def pull_cmd(
    tctx: typer.Context,
    image: Annotated[str, typer.Argument(metavar="NAME[:TAG|@DIGEST]")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the image reference.")] = False,
    progress: Annotated[str, typer.Option("--progress", help="auto, plain, tty or json.")] = "auto",
    platform: PlatformOpt = None,
    registry_mirror: MirrorOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    insecure_registry: InsecureOpt = [],  # noqa: B006
) -> None:
    """Download an image from a registry."""
    from .. import reference
    from .progress import renderer
    if progress not in ("auto", "plain", "tty", "json"):
        raise UsageError(f'invalid --progress "{progress}": expected auto, plain, tty or json')
    if reference.parse(image).tag_defaulted and not quiet and progress != "json":
        line("Using default tag: latest")
    ctx = context_of(tctx).with_registry(tuple(registry_mirror), tuple(insecure_registry))
    render = renderer("quiet" if quiet else progress, sys.stdout)
    try:
        ref, _ = ops.pull_image(ctx, image, platform, render)
    finally:
        render.close()
    line(str(ref))


def _image_rows(ctx: Context) -> list[dict[str, object]]:
    from .. import reference
    from ..oci import parse_config
    images = ctx.images
    rows: list[dict[str, object]] = []
    for rec in sorted(images.records(), key=lambda r: r.pulled, reverse=True):
        ref = reference.parse(rec.reference)
        manifest = images.manifest_of(rec)
        config = parse_config(images.content.read(rec.config), rec.reference)
        size = sum(layer.size for layer in manifest.layers) + manifest.config.size
        rows.append({
            "Repository": ref.familiar_name, "Tag": ref.tag or "<none>",
            "ID": rec.config.split(":", 1)[1][:12], "Digest": rec.digest,
            "CreatedAt": config.created or "", "CreatedSince": since(config.created),
            "Size": human_size(size), "Platform": rec.platform, "Reference": rec.reference,
        })
    return rows


def images_cmd(
    tctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show image IDs.")] = False,
    format: FormatOpt = "table",
) -> None:
    """List images in the local store."""
    check_format(format)
    print_rows(_image_rows(context_of(tctx)), quiet, format,
               [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"), ("CREATED", "CreatedSince"),
                ("SIZE", "Size")])


def rmi_cmd(
    tctx: typer.Context,
    images: Annotated[list[str], typer.Argument(metavar="IMAGE...")],
    force: Annotated[bool, typer.Option("--force", "-f", help="Remove even if containers use it.")] = False,
) -> None:
    """Remove images; blobs no other image uses are deleted."""
    from .. import reference
    removed = ops.remove_images(context_of(tctx), images, force)
    for rec in removed.untagged:
        line(f"Untagged: {reference.parse(rec.reference).familiar()}")
    for digest in removed.deleted:
        line(f"Deleted: {digest}")
