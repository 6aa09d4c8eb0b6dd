"""pull, images, rmi: the image commands of the typer app."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import Interrupted, MiniRunError, ReferenceFormatError, UsageError
from ..ops import images as ops
from ..ops.context import Context
from . import completion as complete
from . import imagefilter
from .options import FormatOpt, InsecureOpt, MirrorOpt, PlatformOpt, context_of
from .output import err, human_size, line, print_rows, since

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..pull import PullEvent
    from ..remote.reference import Reference


class _Traced:
    """--explain: each pull event in the trace as well as on stdout."""

    def __init__(self, render: Callable[[PullEvent], None]) -> None:
        self.render = render

    def __call__(self, event: PullEvent) -> None:
        from .explain import pull_event
        pull_event(event, progress=False)
        self.render(event)


def pull_cmd(
    tctx: typer.Context,
    image: Annotated[str, typer.Argument(metavar="NAME[:TAG|@DIGEST]")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the image reference.")] = False,
    progress: Annotated[str, typer.Option("--progress", help="auto, plain, tty or json.")] = "auto",
    platform: PlatformOpt = None,
    registry_mirror: MirrorOpt = [],  # noqa: B006 - typer reads the default, never mutates it
    insecure_registry: InsecureOpt = [],  # noqa: B006
    explain: Annotated[str | None, typer.Option(  # a bare --explain is made --explain=text in cli.main
        "--explain", metavar="[=json]",
        help="Narrate each step on stderr (=json: JSON lines), with Docker's part in it.")] = None,
) -> None:
    """Download an image from a registry."""
    from ..remote import reference
    from .progress import renderer
    if progress not in ("auto", "plain", "tty", "json"):
        raise UsageError(f'invalid --progress "{progress}": expected auto, plain, tty or json')
    if explain not in (None, "text", "json"):
        raise UsageError(f"invalid --explain={explain}: expected --explain or --explain=json")
    ref = reference.parse(image)
    if explain is not None:
        from .explain import start
        start(explain)
        ops.explain_reference(image, ref)
    if ref.tag_defaulted and not quiet and progress != "json":
        line("Using default tag: latest")
    ctx = context_of(tctx).with_registry(tuple(registry_mirror), tuple(insecure_registry))
    render = renderer("quiet" if quiet else progress, sys.stdout)
    try:
        ref, _ = ops.pull_image(ctx, image, platform, render if explain is None else _Traced(render))
    except Interrupted:
        raise Interrupted("pull interrupted: what was downloaded is kept, a pull again resumes it") from None
    finally:
        render.close()
    if progress != "json" or quiet:  # JSON lines only: a script reads them with jq
        line(str(ref))


def _repo_tag(ref: Reference) -> tuple[str, str]:
    return ref.familiar_name, ref.tag or "<none>"


def _image_rows(ctx: Context) -> list[dict[str, object]]:
    """One row per sound image; each damaged one is named on stderr and left out."""
    from ..errors import ManifestError, ReferenceFormatError, StoreError
    from ..oci import parse_config
    from ..remote import reference
    images = ctx.images
    rows: list[dict[str, object]] = []
    records = sorted(images.records(), key=lambda r: r.reference)
    for key, why in images.damaged().items():
        err(f"image {key}: its record in {images.records_dir} is damaged ({why}); "
            "minirun rmi or system prune removes it")
    named = {r.config for r in records if not r.untagged}
    for rec in records:
        if rec.untagged and rec.config in named:
            continue  # an entry written before its image was named
        try:
            repo, tag = ("<none>", "<none>") if rec.untagged else _repo_tag(reference.parse(rec.reference))
            manifest = images.manifest_of(rec)
            config = parse_config(images.content.read(rec.config), rec.reference)
        except (StoreError, ManifestError, ReferenceFormatError) as e:
            err(f"image {rec.reference}: {e}; pull it again or remove it (minirun rmi)")
            continue
        size = ops.image_size(ctx, manifest, config.diff_ids)
        rows.append({
            "Repository": repo, "Tag": tag,
            "ID": rec.config.split(":", 1)[1][:12], "FullID": rec.config, "Digest": rec.digest,
            "CreatedAt": config.created or "", "CreatedSince": since(config.created),
            "Size": human_size(size), "Platform": rec.platform, "Reference": rec.reference,
            "Labels": ",".join(f"{k}={v}" for k, v in (config.run_config.get("Labels") or {}).items()),
        })
    # Docker's order: newest image first (by its config's creation), ties by name
    rows.sort(key=lambda row: imagefilter.created(row), reverse=True)
    return rows


def images_cmd(
    tctx: typer.Context,
    repository: Annotated[str | None, typer.Argument(metavar="[REPOSITORY[:TAG]]")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show image IDs.")] = False,
    all_: Annotated[bool, typer.Option(  # Docker's flag: minirun keeps no intermediate images
        "--all", "-a", help="Show all images (there are no intermediate ones).")] = False,
    digests: Annotated[bool, typer.Option("--digests", help="Show digests.")] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
    format: FormatOpt = "table",
    filter: Annotated[list[str], typer.Option(
        "--filter", "-f", help="dangling=true|false, label=KEY[=VALUE], before=IMAGE, since=IMAGE, "
                               "reference=PATTERN (repeatable).")]
    = [],  # noqa: B006 - typer reads the default, never mutates it
) -> None:
    """List images in the local store."""
    wanted = imagefilter.parse(filter, repository)
    rows = _image_rows(context_of(tctx))
    for row in rows:  # the full ID is for --no-trunc only (not a field of Docker's rows)
        full = row.pop("FullID")
        if no_trunc:
            row["ID"] = full
    cols = [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"), ("CREATED", "CreatedSince"),
            ("SIZE", "Size")]
    if digests:
        cols.insert(2, ("DIGEST", "Digest"))
    print_rows(imagefilter.select(rows, wanted), quiet, format, cols,
               headers={"CreatedAt": "CREATED AT", "Digest": "DIGEST"})


def rmi_cmd(
    tctx: typer.Context,
    images: Annotated[list[str], typer.Argument(metavar="IMAGE...", autocompletion=complete.images)],
    force: Annotated[bool, typer.Option("--force", "-f", help="Remove even if containers use it.")] = False,
) -> None:
    """Remove images; blobs no other image uses are deleted."""
    from ..content.images import is_image_id
    from ..remote import reference
    ctx, failed = context_of(tctx), False
    for image in images:  # as Docker: each one, the failures said, then exit 1
        try:
            removed = ops.remove_images(ctx, [image], force)
        except Interrupted:
            raise
        except MiniRunError as e:
            err(str(e))
            failed = True
            continue
        for key in removed.untagged:
            if is_image_id(key):
                continue  # an image without a name: Docker says only "Deleted"
            try:
                name = reference.parse(key).familiar()
            except ReferenceFormatError:
                name = key  # a damaged entry, removed under the name it had
            line(f"Untagged: {name}")
        for digest in removed.deleted:
            line(f"Deleted: {digest}")
    if failed:
        raise typer.Exit(1)


def tag_cmd(
    tctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SOURCE_IMAGE[:TAG]", autocompletion=complete.images)],
    target: Annotated[str, typer.Argument(metavar="TARGET_IMAGE[:TAG]")],
) -> None:
    """Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE."""
    ops.tag_image(context_of(tctx), source, target)


def push_cmd(
    tctx: typer.Context,
    image: Annotated[str, typer.Argument(metavar="NAME[:TAG]", autocompletion=complete.images)],
    all_tags: Annotated[bool, typer.Option("--all-tags", "-a", help="Push all tagged images in the repository.")]
    = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Suppress verbose output.")] = False,
    progress: Annotated[str, typer.Option("--progress", help="auto, plain, tty or json.")] = "auto",
    insecure_registry: InsecureOpt = [],  # noqa: B006 - typer reads the default, never mutates it
) -> None:
    """Push an image to a registry (the credentials of minirun login or docker login)."""
    from .progress import renderer
    if progress not in ("auto", "plain", "tty", "json"):
        raise UsageError(f'invalid --progress "{progress}": expected auto, plain, tty or json')
    ctx = context_of(tctx).with_registry((), tuple(insecure_registry))
    targets = ops.push_targets(ctx, image, all_tags)
    if targets[0].tag_defaulted and not all_tags and not quiet and progress != "json":
        line("Using default tag: latest")
    if not quiet and progress != "json":
        line(f"The push refers to repository [{targets[0].name}]")
    render = renderer("quiet" if quiet else progress, sys.stdout)
    try:
        for ref in targets:
            ops.push_image(ctx, ref, render)
    finally:
        render.close()
    if quiet:
        line(str(targets[0].familiar()))


def history_cmd(
    tctx: typer.Context,
    image: Annotated[str, typer.Argument(metavar="IMAGE", autocompletion=complete.images)],
    human: Annotated[bool, typer.Option("--human", "-H", help="Sizes and dates in human readable format.")]
    = True,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Don't truncate output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only show image IDs.")] = False,
    format: FormatOpt = "table",
) -> None:
    """Show the history of an image."""
    rows = []
    for step in ops.history(context_of(tctx), image):
        created_by = step.created_by if no_trunc or len(step.created_by) <= 45 else step.created_by[:44] + "…"
        image_id = step.image_id if no_trunc or step.image_id == "<missing>" else step.image_id[7:19]
        rows.append({"ID": image_id, "CreatedAt": step.created, "CreatedSince": since(step.created) if human
                     else step.created, "CreatedBy": created_by, "Size": human_size(step.size) if human
                     else str(step.size), "Comment": step.comment})
    print_rows(rows, quiet, format, [("IMAGE", "ID"), ("CREATED", "CreatedSince"), ("CREATED BY", "CreatedBy"),
                                     ("SIZE", "Size"), ("COMMENT", "Comment")],
               headers={"CreatedAt": "CREATED AT"})
