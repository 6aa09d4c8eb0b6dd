"""Property: any stack of layers gives the same tree through overlayfs as through the vfs copy."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minirun.errors import LayerError
from minirun.snapshots.rootfs import Snapshotter, mounted
from tests.support.layers import E, listing, make_layer, unpack_stack

NAMES = ["a", "b", "d", "d/e", "d/f", "g", "g/h", "g/h/i"]


@st.composite
def entry(draw: st.DrawFn) -> E:
    name = draw(st.sampled_from(NAMES))
    kind = draw(st.sampled_from(["file", "file", "dir", "sym", "link", "wh", "opq"]))
    mode = draw(st.sampled_from([0o644, 0o755, 0o600, 0o4755, 0o1777]))
    uid = draw(st.sampled_from([0, 1000]))
    if kind == "file":
        return E(name, data=draw(st.binary(max_size=8)), mode=mode, uid=uid)
    if kind == "dir":
        return E(name, "dir", mode=mode, uid=uid)
    if kind == "sym":
        return E(name, "sym", target=draw(st.sampled_from(["a", "/d", "../g", "h/i", "/nowhere"])))
    if kind == "link":
        return E(name, "link", target=draw(st.sampled_from(["a", "b", "d/e"])))
    parent, _, base = name.rpartition("/")
    prefix = parent + "/" if parent else ""
    return E(f"{prefix}.wh.{base}") if kind == "wh" else E(f"{name}/.wh..wh..opq")


def valid_stack(stack: list[list[E]]) -> list[list[E]]:
    """Keep mostly entries a real layer could hold, so most examples build a tree.

    Dropped: entries below a name made a non-directory, hardlinks to anything but a
    file made earlier, opaque markers of what is not known to be a directory.
    (Deletions are not tracked: some examples still fail, and must fail alike.)
    """
    files: set[str] = set()
    dirs: set[str] = set()
    out: list[list[E]] = []
    for entries in stack:
        layer: list[E] = []
        for e in entries:
            parts = e.name.split("/")
            if any("/".join(parts[:i]) in files for i in range(1, len(parts))):
                continue
            base = parts[-1]
            if e.kind == "link" and e.target not in files:
                continue
            if base == ".wh..wh..opq" and "/".join(parts[:-1]) not in dirs:
                continue
            if base.startswith(".wh."):
                layer.append(e)
                continue
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
            (dirs if e.kind == "dir" else files).add(e.name)
            (files if e.kind == "dir" else dirs).discard(e.name)
            layer.append(e)
        out.append(layer)
    return out


def outcome(driver: str, stack: list[list[E]], work: Path) -> object:
    snap = Snapshotter(work / driver, driver)
    layers = [make_layer(work / "blobs", entries) for entries in valid_stack(stack)]
    try:
        chains = unpack_stack(snap, layers)
    except LayerError as e:
        # The same refusal (the entry and the reason), whichever driver.
        return ("error", str(e).split(": ", 1)[1])
    with mounted(snap.prepare(chains, work / f"ctr-{driver}")) as root:
        return listing(Path(root))


# derandomize: the same 150 examples on every run, so CI is repeatable; a random run found
# the hardlink case below (see test_unpack.py), kept as its own test. MINIRUN_PROPERTY_EXAMPLES
# runs more (3000 passed when layers began to be applied without a mount).
EXAMPLES = int(os.environ.get("MINIRUN_PROPERTY_EXAMPLES", "150"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None,
          derandomize=True)
@given(st.lists(st.lists(entry(), min_size=1, max_size=8), min_size=1, max_size=4))
def test_overlay_and_vfs_agree(stack: list[list[E]]) -> None:
    work = Path(tempfile.mkdtemp(prefix="minirun-prop-"))
    try:
        assert outcome("overlay", stack, work) == outcome("vfs", stack, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
