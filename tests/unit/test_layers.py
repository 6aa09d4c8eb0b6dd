"""The layers of README's "How it is built", checked on the import graph (every import,
at module level or in a function, but those under ``if TYPE_CHECKING:``)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "minirun"

# Pure rules: no network, disk or kernel (tested without root, without a registry).
PURE = {"minirun.remote.reference", "minirun.oci", "minirun.runargs", "minirun.errors", "minirun.spec",
        "minirun.spec.build", "minirun.spec.defaults", "minirun.spec.flags", "minirun.spec.seccomp",
        "minirun.spec.settings", "minirun.runtime.plan", "minirun.runtime.user", "minirun.runtime.rlimit",
        "minirun.runtime.seccomp", "minirun.runtime.caps", "minirun.runtime.devices", "minirun.runtime.net.netconf"}
IMPURE = ("httpx", "minirun.content", "minirun.remote.registry", "minirun.runtime._libc", "minirun.runtime.kernel",
          "minirun.snapshots", "subprocess", "socket", "fcntl", "pyroute2", "minirun.runtime.net.network")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path) -> set[str]:
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(up + ([base] if base else []))
                if child.module:  # ``from . import x`` imports x, not its package (already there)
                    found.add(base)
                found.update(f"{base}.{a.name}" for a in child.names)
            visit(child)
    visit(ast.parse(path.read_text()))
    return found


def graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py") if "_libc_ffi" not in p.name}
    return {m: {i for i in _imports(p) if i in files and i != m} for m, p in files.items()} | {
        f"{m}:all": _imports(p) for m, p in files.items()}


def test_no_import_cycles() -> None:
    g = {m: deps for m, deps in graph().items() if not m.endswith(":all")}
    state: dict[str, int] = {}
    path: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(g[m]):
            assert state.get(d) != 1, f"import cycle: {' -> '.join([*path[path.index(d):], d])}"
            if d not in state:
                walk(d)
        path.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            walk(m)


def test_imports_point_down() -> None:
    g = graph()
    for m, deps in g.items():
        if m.endswith(":all"):
            continue
        if not m.startswith(("minirun.cli", "minirun.__main__")):  # __main__: the entry, above all
            assert not any(d.startswith("minirun.cli") for d in deps), (m, "imports the CLI")
        if not m.startswith(("minirun.cli", "minirun.ops")):
            assert not any(d.startswith("minirun.ops") for d in deps), (m, "imports the operations")
        if m.startswith("minirun.runtime"):
            # (content.files: the atomic writes and locks every package borrows)
            assert not any(d.startswith(("minirun.snapshots", "minirun.pull", "minirun.remote", "minirun.containers",
                                         "minirun.content")) and d != "minirun.content.files"
                           for d in deps), (m, "imports upward")
            # The runtime carries out a config.json: it never reads flags or builds a spec.
            assert not any(d.startswith(("minirun.spec", "minirun.runargs")) for d in deps), (m, "imports upward")
        if m.startswith("minirun.spec"):  # the spec is built from data: no store, no runtime at work
            assert not any(d.startswith(("minirun.content", "minirun.snapshots", "minirun.pull", "minirun.ops"))
                           for d in deps), (m, "imports upward")
    for m in PURE:
        bad = [d for d in g[f"{m}:all"] if d.startswith(IMPURE)]
        assert bad == [], (m, "a pure module imports", bad)


def test_only_the_cli_prints() -> None:
    for path in PACKAGE.rglob("*.py"):
        if _module(path).startswith("minirun.cli") or "_libc_ffi" in path.name:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"{path}: print outside the CLI"
            if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr"):
                assert isinstance(node.value, ast.Name) and node.value.id != "sys", f"{path}: sys.{node.attr}"
