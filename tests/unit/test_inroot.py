"""Paths resolved inside a root, without root: symlinks, "..", and names that would leave it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from minirun.errors import LayerError
from minirun.snapshots.inroot import Root, remove_tree, split_name


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, Root]]:
    """root/ holds: usr/lib/, lib -> usr/lib, abs -> /usr, up -> ../../.., loop -> loop, file;
    next to root/ (outside it) a marker that nothing may reach."""
    (tmp_path / "outside").write_text("host")
    root = tmp_path / "root"
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "file").write_text("")
    os.symlink("usr/lib", root / "lib")
    os.symlink("/usr", root / "abs")
    os.symlink("../../..", root / "up")
    os.symlink("loop", root / "loop")
    r = Root(os.open(root, os.O_RDONLY | os.O_DIRECTORY))
    yield root, r
    r.close()
    assert (tmp_path / "outside").read_text() == "host"


@pytest.mark.parametrize(("name", "parts"), [
    ("a/b", ["a", "b"]), ("./a//b/.", ["a", "b"]), ("a/../b", ["b"]), ("/abs/name", ["abs", "name"])])
def test_split_name(name: str, parts: list[str]) -> None:
    assert split_name(name) == parts


@pytest.mark.parametrize("name", ["..", "../x", "a/../../x"])
def test_split_name_refuses_leaving_the_root(name: str) -> None:
    with pytest.raises(LayerError, match="outside the root"):
        split_name(name)


@pytest.mark.parametrize(("path", "follow_last", "real"), [
    ("lib/x", True, ("usr", "lib", "x")),           # a relative link, followed
    ("abs/lib", True, ("usr", "lib")),              # an absolute link starts from the root
    ("up/outside", True, ("outside",)),             # ".." stops at the root: never the host's file
    ("up/up/usr", True, ("usr",)),
    ("lib", False, ("lib",)),                       # the last component itself, not followed
    ("missing/a/b", True, ("missing", "a", "b")),   # what does not exist yet is kept as named
])
def test_resolve_stays_inside(tree: tuple[Path, Root], path: str, follow_last: bool,
                              real: tuple[str, ...]) -> None:
    _, r = tree
    assert r.resolve(path.split("/"), follow_last) == real


def test_resolve_refuses_loops_and_files_as_directories(tree: tuple[Path, Root]) -> None:
    _, r = tree
    with pytest.raises(LayerError, match="too many levels of symbolic links"):
        r.resolve(["loop", "x"], True)
    with pytest.raises(LayerError, match="'file' is not a directory"):
        r.resolve(["file", "x"], True)


def test_dir_fd_creates_inside_and_remove_tree_never_follows(tree: tuple[Path, Root], tmp_path: Path) -> None:
    root, r = tree
    fd = r.dir_fd(r.resolve(["up", "made", "here"], True))   # through "up": inside the root
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    assert (root / "made" / "here" / "f").exists() and not (tmp_path / "made").exists()
    os.symlink(str(tmp_path), root / "made" / "host")         # a link to outside, inside the tree
    r.forget()
    remove_tree(r.fd, "made")
    assert not (root / "made").exists() and (tmp_path / "outside").exists()
