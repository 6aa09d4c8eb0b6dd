"""Paths inside a root directory, resolved as the kernel's openat2(RESOLVE_IN_ROOT) would:
component by component from a directory fd with ``O_NOFOLLOW``; a symlink met on the way is
followed *inside the root* (``..`` stops at the root, an absolute target starts from it), so
no name in a layer can lead outside the tree it is applied to. Needs no root to run or test.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import LayerError

MAX_SYMLINKS = 40


def split_name(name: str) -> list[str]:
    """A tar name as components inside the root; refuses ``..`` that leaves it."""
    parts: list[str] = []
    for c in name.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if not parts:
                raise LayerError("the name points outside the root")
            parts.pop()
            continue
        parts.append(c)
    return parts


@dataclass
class Root:
    """A directory fd and in-root resolution relative to it."""

    fd: int
    _cache: dict[tuple[str, ...], int] = field(default_factory=dict)
    # Directories already resolved (symlinks followed) -> their real components. Valid while
    # nothing is removed or replaced: ``forget`` empties it, and every removal calls it.
    _resolved: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)

    def close(self) -> None:
        self.trim()
        os.close(self.fd)

    def trim(self) -> None:
        """Close the cached directory fds (to bound how many are open)."""
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def forget(self) -> None:
        """Drop what is cached (after something was removed or replaced)."""
        self.trim()
        self._resolved.clear()

    def forget_paths(self) -> None:
        """Drop the resolved paths only (a symlink was made: a path may now lead through it);
        the open directory fds stay valid."""
        self._resolved.clear()

    def resolve_dir(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        """``resolve(parts, follow_last=True)`` for a parent directory, remembered."""
        known = self._resolved.get(parts)
        if known is None:
            known = self._resolved[parts] = self.resolve(list(parts), follow_last=True)
        return known

    def dir_fd(self, parts: tuple[str, ...], create: bool = True) -> int:
        """fd of the real (already resolved, symlink-free) directory ``parts``."""
        if not parts:
            return self.fd
        cached = self._cache.get(parts)
        if cached is not None:
            return cached
        parent = self.dir_fd(parts[:-1], create)
        name = parts[-1]
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(name, 0o755, dir_fd=parent)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        self._cache[parts] = fd
        return fd

    def resolve(self, parts: list[str], follow_last: bool) -> tuple[str, ...]:
        """Follow symlinks inside the root; returns real components (the last may not exist)."""
        return walk(parts, follow_last, self._lookup)

    def _lookup(self, path: tuple[str, ...]) -> Found | None:
        try:
            fd = self.dir_fd(path[:-1], create=False)
            st = os.stat(path[-1], dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st, lambda: os.readlink(path[-1], dir_fd=fd)


# What a name is (its lstat) and how to read it as a symlink; None when there is nothing.
Found = tuple[os.stat_result, Callable[[], str]]


def walk(parts: Sequence[str], follow_last: bool, lookup: Callable[[tuple[str, ...]], Found | None]) -> tuple[str, ...]:
    """Resolve ``parts`` one component at a time, ``lookup`` saying what each is: symlinks
    are followed inside the root (``..`` stops at it, an absolute target starts from it);
    from the first name that does not exist on, the rest is taken as it is."""
    done: list[str] = []
    todo = list(reversed(parts))
    links = 0
    while todo:
        c = todo.pop()
        if c in ("", "."):
            continue
        if c == "..":
            if done:
                done.pop()
            continue
        found = lookup((*done, c))
        if found is None:
            return tuple(_clean([*done, c, *reversed(todo)]))
        st, read_link = found
        if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
            links += 1
            if links > MAX_SYMLINKS:
                raise LayerError(f"too many levels of symbolic links resolving {'/'.join(parts)!r}")
            target = read_link()
            if target.startswith("/"):
                done = []
            todo.extend(reversed(target.split("/")))
            continue
        if todo and not stat.S_ISDIR(st.st_mode):
            raise LayerError(f"{'/'.join([*done, c])!r} is not a directory")
        done.append(c)
    return tuple(done)


def _clean(parts: list[str]) -> list[str]:
    out: list[str] = []
    for c in parts:
        if c == "..":
            if out:
                out.pop()
        elif c not in ("", "."):
            out.append(c)
    return out


def lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_tree(fd: int, name: str) -> None:
    """Remove ``name`` in directory ``fd``, recursively, never following symlinks."""
    st = lstat_at(fd, name)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=fd)
        return
    sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
    try:
        for child in os.listdir(sub):
            remove_tree(sub, child)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=fd)
