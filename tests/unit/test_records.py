"""``minirun.records``: a Record behaves as typing.NamedTuple's classes do (it replaces them
on the start path), and ``remove_tree`` as shutil.rmtree's safe variant (it replaces it there)."""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from typing import NamedTuple

import pytest

from minirun.content.files import remove_tree
from minirun.records import Record


class Theirs(NamedTuple):
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()


class Ours(Record):
    """A record with a method."""
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()

    def double(self) -> int:
        return self.size * 2


@pytest.mark.parametrize("args, kwargs", [(("a",), {}), (("a", 3), {}), (("a",), {"tags": ("x",)}),
                                          ((), {"size": 2, "name": "b"}), (("a", 1, ("t",)), {})])
def test_construction_and_tuple_behaviour_match(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    theirs, ours = Theirs(*args, **kwargs), Ours(*args, **kwargs)  # type: ignore[arg-type]
    assert tuple(ours) == tuple(theirs) and hash(ours) == hash(theirs)
    assert (ours.name, ours.size, ours.tags) == (theirs.name, theirs.size, theirs.tags)
    assert ours._asdict() == theirs._asdict()
    assert tuple(ours._replace(size=9)) == tuple(theirs._replace(size=9))
    assert type(ours._replace(size=9)) is Ours
    assert repr(ours) == repr(theirs).replace("Theirs", "Ours")
    assert pickle.loads(pickle.dumps(ours)) == ours and copy.deepcopy(ours) == ours
    assert Ours._make(tuple(theirs)) == ours


def test_class_attributes_match() -> None:
    assert Ours._fields == Theirs._fields and Ours._field_defaults == Theirs._field_defaults
    assert Ours.__match_args__ == Theirs.__match_args__
    assert Ours("a", 2).double() == 4 and Ours.__doc__ == "A record with a method."
    match Ours("n", 5):
        case Ours(name, size):
            assert (name, size) == ("n", 5)


@pytest.mark.parametrize("args, kwargs", [((), {}), (("a", 1, (), 4), {}), (("a",), {"nope": 1}),
                                          (("a",), {"name": "b"})])
def test_bad_calls_fail_as_typing_s(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError) as theirs:
        Theirs(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError) as ours:
        Ours(*args, **kwargs)  # type: ignore[arg-type]
    assert str(ours.value).replace("Ours", "Theirs") == str(theirs.value)


def test_immutable_and_without_a_dict() -> None:
    ours = Ours("a")
    with pytest.raises(AttributeError):
        ours.size = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ours.other = 1  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unexpected field names"):
        ours._replace(other=1)  # type: ignore[call-arg]


def test_fields_in_a_wrong_order_are_refused() -> None:
    with pytest.raises(TypeError, match="Non-default"):
        class Bad(Record):
            a: int = 0
            b: int  # type: ignore[misc]


def test_remove_tree_never_follows_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("host file")
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("x")
    (top / "a" / "link").symlink_to(outside)
    (top / "dirlink").symlink_to(outside / "keep")
    os.mkfifo(top / "a" / "fifo")
    remove_tree(top)
    assert not top.exists() and (outside / "keep").read_text() == "host file"


def test_remove_tree_reports_or_raises(tmp_path: Path) -> None:
    failures: list[str] = []
    remove_tree(tmp_path / "missing", lambda path, e: failures.append(f"{path}: {e.strerror}"))
    assert failures == [f"{tmp_path / 'missing'}: No such file or directory"]
    with pytest.raises(FileNotFoundError):
        remove_tree(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError):
        remove_tree(tmp_path / "file")


def test_a_container_removed_while_its_monitor_writes_its_end_is_gone(tmp_path: Path) -> None:
    """release_container against a late monitor: its state written as a temporary file renamed
    onto state.json while the removal runs. The removal takes the files that come and go in
    another pass, and the container is gone (CI saw `rm -f` leave it listed, once)."""
    import threading

    from minirun.snapshots.rootfs import release_container
    for _ in range(20):
        directory = tmp_path / "c"
        (directory / "upper" / "etc").mkdir(parents=True)
        (directory / "state.json").write_text("{}")
        (directory / "config.json").write_text("{}")
        writes = 0

        def monitor(d: Path = directory) -> None:
            nonlocal writes
            for _ in range(200):
                tmp = d / f".state.json.{writes}.tmp"
                try:
                    tmp.write_text("{}")
                    os.replace(tmp, d / "state.json")
                except OSError:
                    return  # the directory is gone: its end goes unrecorded, as it should
                writes += 1

        writer = threading.Thread(target=monitor)
        writer.start()
        release_container(directory)
        writer.join()
        assert not directory.exists()
