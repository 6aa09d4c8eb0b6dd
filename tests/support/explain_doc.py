"""docs/hello-world.md from a real ``--explain=json`` trace, and the steps read back from it.

``scripts/explain-doc`` writes the document; the test suite reads its steps back (``steps``)
and compares them with a fresh trace, so the walk-through cannot drift from what minirun does.
Steps are compared as (stage, event) pairs with repeats in a row collapsed: how many paths
a kernel has to mask may differ, the order of what happens may not.
"""

from __future__ import annotations

import re
from pathlib import Path

from minirun.trace import STAGES

# What each stage is about, for a reader who knows neither Docker's insides nor minirun's.
PROSE = {
    "reference": "What you typed is a short form. Docker's rules (the `distribution/reference` "
                 "library) turn it into a full reference: registry host, repository path, tag.",
    "registry": "Which server to ask. Docker Hub's API is served at `registry-1.docker.io`; a "
                "configured mirror would be tried first.",
    "http": "Every request and its answer, as the OCI distribution API defines them "
            "(`/v2/<name>/manifests/<reference>`, `/v2/<name>/blobs/<digest>`).",
    "auth": "Docker Hub answers the first request with `401` and a `WWW-Authenticate: Bearer` "
            "challenge naming a token server, a service and a scope. The client asks that server for a "
            "token for that scope and sends the request again with it. Tokens and passwords are never "
            "shown.",
    "pull": "The lines `docker pull` prints, here as events.",
    "index": "The tag points to an image index: one manifest per platform, and attestations "
             "(build provenance) that are not images. The host's platform is picked.",
    "manifest": "The platform's manifest names the image config and the layers, each by its "
                "sha256 digest: whatever is fetched is checked against it.",
    "config": "The config blob is the image: its digest is the image ID. It lists each layer's "
              "DiffID (the digest of the uncompressed tar).",
    "layer": "Each layer blob is downloaded unless the store has it (`Already exists`), and "
             "verified against its digest before it is kept.",
    "snapshot": "Each layer is unpacked once into a snapshot named by its ChainID (its DiffID and "
                "those below it), shared by every image and container that has the same layers.",
    "container": "A container: an ID, a directory, a writable layer over the read-only snapshots "
                 "(overlayfs), a cgroup, and a process forked into a new PID namespace.",
    "namespaces": "The process leaves the host's namespaces (mount, UTS, IPC, cgroup, network) and "
                  "its session, keyring and cgroup.",
    "mounts": "The image becomes `/`: its root filesystem is mounted, `pivot_root` makes it the root, "
              "the host's root is detached, and `/proc`, `/dev`, `/sys` are mounted as Docker mounts "
              "them, with the same paths masked or read-only.",
    "security": "The user, then the capabilities (Docker's default set), then the seccomp filter "
                "(Docker's default profile), the last step before exec.",
    "exec": "The program replaces the setup process: from here on it is the container's PID 1, and "
            "its output is relayed to the terminal.",
    "exit": "When PID 1 ends, its wait status becomes the exit code of `minirun run` (128+N for a "
            "signal N), as with `docker run`.",
    "cleanup": "`--rm`: the cgroup, the container's directory and its writable layer are removed.",
    "error": "Where the run stopped, and why.",
}

_STEP = re.compile(r"^- \*\*(\d+)\*\* `\+[\d.]+s` `([a-z]+)/([a-z_-]+)` ", re.M)


def render(events: list[dict[str, object]], argv: str) -> str:
    """The walk-through: a section per run of events of one stage, each event one list item."""
    out = [
        "# `minirun run hello-world`, step by step",
        "",
        f"This is the trace of a real, cold `{argv}`, as "
        "`scripts/explain-doc` recorded it against a registry that plays Docker Hub (TLS, token "
        "auth, `registry-1.docker.io`, an index with two platforms and an attestation) on this "
        "project's test machine (cgroup v1). Do not edit it by hand: run `sudo .venv/bin/python scripts/explain-doc`. "
        "The test suite checks that its steps are still the ones minirun takes.",
        "",
        "Each step: its number, the time since the command started, `stage/event`, and what "
        "happened. Each stage says which part of Docker does that step there: the CLI, dockerd, "
        "containerd, the shim, runc.",
    ]
    seen: set[str] = set()
    current = ""
    for e in events:
        stage = str(e["stage"])
        if stage != current:
            current = stage
            out += ["", f"## {stage}" + ("" if stage not in seen else " (continued)"), ""]
            if stage not in seen:
                out += [f"*In Docker:* {STAGES[stage]}.", "", PROSE[stage], ""]
            seen.add(stage)
        msg = str(e["msg"]).replace("`", "'")
        out.append(f"- **{e['n']}** `+{float(str(e['t'])):.3f}s` `{stage}/{e['event']}` {msg}")
    return "\n".join(out) + "\n"


def steps(markdown: str) -> list[tuple[str, str]]:
    return collapse([(m.group(2), m.group(3)) for m in _STEP.finditer(markdown)])


def collapse(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [p for i, p in enumerate(pairs) if i == 0 or pairs[i - 1] != p]


def with_local_names(argv: list[str], hosts: Path, *names: str) -> list[str]:
    """``argv`` run where ``names`` (e.g. registry-1.docker.io) resolve to 127.0.0.1: a private
    copy of /etc/hosts bind-mounted in a private mount namespace. If the bind mount fails,
    ``argv`` is not run (no request leaves the machine)."""
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n127.0.0.1 {' '.join(names)}\n")
    script = f'mount --bind "{hosts}" /etc/hosts && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
