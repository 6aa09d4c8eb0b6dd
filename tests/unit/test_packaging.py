"""The wheel users install holds every module (an editable install would hide a gap)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_every_module(tmp_path: Path) -> None:
    # From a clean copy: an in-tree build/ directory would carry an earlier build's files. No build
    # isolation: it would fetch setuptools from PyPI, which a machine without internet cannot.
    src = tmp_path / "src"
    shutil.copytree(REPO / "minirun", src / "minirun", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("minirun-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    ours = {str(p.relative_to(REPO)) for p in (REPO / "minirun").rglob("*.py")}
    assert ours and ours <= shipped, sorted(ours - shipped)
    entry = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("entry_points.txt")]
    assert "minirun = minirun.cli:entry" in zipfile.ZipFile(wheel).read(entry[0]).decode()


def test_generated_cffi_module_is_current() -> None:
    from minirun.runtime import _libc_build
    for target in _libc_build.TARGETS:
        assert target.read_text() == _libc_build.generate(target), "run: python -m minirun.runtime._libc_build"


def test_a_seccomp_compile_parses_no_c() -> None:
    """Issue 30: libseccomp through the out-of-line module; pycparser is never imported."""
    code = ("import sys; from minirun.runtime.seccomp_bpf import compile_filter; "
            "from minirun.runtime.seccomp import to_filter; "
            "compile_filter(to_filter({'defaultAction': 'SCMP_ACT_ERRNO', 'architectures': ['SCMP_ARCH_X86_64'], "
            "'syscalls': [{'names': ['read', 'write'], 'action': 'SCMP_ACT_ALLOW'}]}), 'a test'); "
            "print(sorted(m for m in sys.modules if m.startswith(('pycparser', 'cffi.')))); "
            "from minirun.runtime.seccomp_bpf import library; import gc; "
            "v = library()[1].seccomp_version(); gc.collect(); print(v.major >= 2)")  # info's way: no dangling
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout == "[]\nTrue\n", r.stdout


def test_run_path_imports_only_what_it_needs() -> None:
    """The modules a cached `run` loads (-d's and --restart's too): no CLI framework, HTTP
    client, netlink library, tar or pycparser, and none of the standard modules that cost a
    start milliseconds to import."""
    code = ("import sys, minirun.cli, minirun.cli.run, minirun.ops.run, minirun.snapshots.rootfs, "
            "minirun.runtime.process, minirun.containers.state, minirun.runtime.cgroups, minirun.runtime.caps, "
            "minirun.runtime.mounts, minirun.ops.detach, minirun.ops.monitor, minirun.ops.restart; "
            "print(' '.join(sorted(sys.modules)))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=REPO).stdout.split())
    assert {"minirun.cli.run", "minirun.ops.run", "minirun.runtime.process", "_cffi_backend"} <= loaded
    for heavy in ("typer", "click", "rich", "pydantic", "httpx", "pyroute2", "tarfile", "pycparser", "zstandard",
                  "minirun.pull", "minirun.remote.registry", "minirun.cli.app", "minirun.cli.progress",
                  "dataclasses", "subprocess", "traceback",
                  "secrets", "socket", "platform", "datetime",
                  "typing", "shutil", "tempfile", "bz2", "lzma"):  # (records.Record, remove_tree: issue 30)
        assert heavy not in loaded, heavy


def test_the_lean_monitor_loads_no_more_than_it_needs() -> None:
    """runtime/keeper.py, as the detached container's monitor execs it (python3 -I -S): the
    relay and the log writer on the interpreter's own modules; nothing of the CLI's, no cffi,
    none of the modules whose import takes memory (enum, typing, json, pathlib, re)."""
    from minirun.runtime.keeper import command
    argv = command("minirun.runtime.keeper", lean=True)
    code = argv[-2].replace("from minirun.runtime.keeper import main; main(sys.argv[2:])",
                            "import minirun.runtime.keeper; print(' '.join(sorted(sys.modules)))")
    r = subprocess.run([*argv[:-2], code, argv[-1]], capture_output=True, text=True, check=True)
    loaded = set(r.stdout.split())
    assert {"minirun.runtime.keeper", "minirun.runtime.relay", "minirun.runtime.logwriter"} <= loaded
    ours = {m for m in loaded if m.startswith("minirun")}
    assert ours == {"minirun", "minirun.records", "minirun.runtime", "minirun.runtime.keeper",
                    "minirun.runtime.relay", "minirun.runtime.logwriter"}, ours
    for heavy in ("enum", "typing", "json", "pathlib", "re", "signal", "_cffi_backend", "collections", "site"):
        assert heavy not in loaded, heavy
