"""The wheel users install holds every module (an editable install would hide a gap)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contains_every_module(tmp_path: Path) -> None:
    # From a clean copy: an in-tree build/ directory would carry an earlier build's files.
    src = tmp_path / "src"
    shutil.copytree(REPO / "minirun", src / "minirun", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("minirun-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    ours = {str(p.relative_to(REPO)) for p in (REPO / "minirun").rglob("*.py")}
    assert ours and ours <= shipped, sorted(ours - shipped)
    entry = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("entry_points.txt")]
    assert "minirun = minirun.cli:entry" in zipfile.ZipFile(wheel).read(entry[0]).decode()
