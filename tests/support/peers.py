"""What the benchmarks need of the other tools they time (Docker, Podman)."""

from __future__ import annotations

import subprocess


def remove_image(tool: list[str], ref: str) -> None:
    """The tool's copy of ``ref`` gone, layers and all: removed by its ID, so that no other tag
    of it (an earlier run's registry port) keeps its layers and makes the next cold pull or
    run a manifest's fetch."""
    found = subprocess.run([*tool, "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True, text=True)
    subprocess.run([*tool, "rmi", "-f", found.stdout.strip() if found.returncode == 0 else ref], capture_output=True)
