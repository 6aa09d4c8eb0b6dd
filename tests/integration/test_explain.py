"""--explain (issue 16): the run's own story, from a cold run of hello-world through a registry
that plays Docker Hub (TLS, token auth, reached as registry-1.docker.io)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path

import jsonschema

from minirun.oci import chain_ids
from minirun.trace import STAGES
from tests.integration.conftest import PASSWORD, USER, Env, Minirun
from tests.support.explain_doc import collapse, steps, with_local_names
from tests.support.images import HELLO_MESSAGE
from tests.support.pki import HUB_HOSTNAME
from tests.support.tokenserver import SERVICE

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "explain.schema.json").read_text())


def _hub(minirun: Minirun, env: Env, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = with_local_names(minirun.argv(*args), tmp_path / "hosts", HUB_HOSTNAME)
    return subprocess.run(argv, env=minirun.env(SSL_CERT_FILE=str(env.pki.ca_cert)), capture_output=True,
                          text=True, timeout=120)


def _events(stderr: str) -> list[dict[str, object]]:
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    for e in events:
        jsonschema.validate(e, SCHEMA)
    return events


def _login(minirun: Minirun, password: str) -> None:
    minirun.docker_config.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (minirun.docker_config / "config.json").write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {
        "auth": auth}}}))


def test_a_cold_run_tells_each_step_with_its_digests(env: Env, minirun: Minirun, tmp_path: Path) -> None:
    mr = minirun  # no mirror: Docker Hub itself
    _login(mr, PASSWORD)
    plain = _hub(mr, env, tmp_path, "run", "--rm", "--pull", "always", "hello-world")
    assert plain.returncode == 0, plain.stderr
    assert mr("rmi", "hello-world").returncode == 0
    r = _hub(mr, env, tmp_path, "run", "--rm", "--explain=json", "hello-world")
    assert r.returncode == 0, r.stderr
    assert r.stdout == plain.stdout and HELLO_MESSAGE in r.stdout  # stdout: the program's, byte for byte
    events = _events(r.stderr)
    assert len(events) == len(r.stderr.splitlines())  # stderr: the trace alone
    assert [e["n"] for e in events] == list(range(1, len(events) + 1))
    order = list(dict.fromkeys(str(e["stage"]) for e in events))
    assert order == [s for s in STAGES if s in order] and set(STAGES) - set(order) == {"error"}, order
    by = {(e["stage"], e["event"]): e for e in events}
    image = env.images["hello-world"]
    assert by[("reference", "normalised")]["reference"] == "docker.io/library/hello-world:latest"
    assert by[("registry", "endpoint")]["url"] == "https://registry-1.docker.io"
    challenge = by[("auth", "challenge")]["params"]
    assert isinstance(challenge, dict) and challenge["realm"] == env.tokens.realm and challenge["service"] == SERVICE
    asked = by[("auth", "token-request")]
    assert asked["scopes"] == ["repository:library/hello-world:pull"] and asked["anonymous"] is False
    assert by[("index", "index")]["digest"] == image.digest
    assert by[("index", "picked")]["digest"] == image.platform_manifest
    skipped = [e["reason"] for e in events if e["event"] == "skipped"]
    assert skipped == ["skipped: another platform", "skipped: an attestation-manifest (not an image)"]
    assert by[("manifest", "manifest")]["digest"] == image.platform_manifest
    assert by[("config", "config")]["digest"] == image.config_digest
    assert f"{image.layer_digests[0][7:19]}: Download complete" in [e["msg"] for e in events]
    assert by[("layer", "verified")]["digest"] == image.layer_digests[0]
    diff_ids = by[("config", "config")]["diff_ids"]
    assert isinstance(diff_ids, list)
    assert by[("snapshot", "unpacked")]["chain_id"] == chain_ids(diff_ids)[-1]
    namespaces = by[("namespaces", "unshare")]["namespaces"]
    assert isinstance(namespaces, list) and {"mount", "network", "ipc"} <= set(namespaces)
    assert ("mounts", "pivot_root") in by and by[("exec", "execve")]["argv"] == ["/hello"]
    assert by[("exit", "exited")]["code"] == 0
    answers = [(e["stage"], e["status_code"]) for e in events if e["event"] == "response"]
    # The registry's challenge, the token server's answer, the manifest fetched with the token.
    assert answers[:3] == [("http", 401), ("auth", 200), ("http", 200)], answers
    # No secret: not the password, not the basic credentials, not the token (a JWT).
    for secret in (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(), "eyJ"):
        assert secret not in r.stderr
    # The walk-through's steps are still the ones a run takes.
    doc = (REPO / "docs" / "hello-world.md").read_text()
    assert steps(doc) == collapse([(str(e["stage"]), str(e["event"])) for e in events])


def test_the_text_form_and_a_second_run(env: Env, minirun: Minirun, tmp_path: Path) -> None:
    mr = minirun  # no mirror: Docker Hub itself
    assert _hub(mr, env, tmp_path, "pull", "-q", "busybox").returncode == 0
    r = _hub(mr, env, tmp_path, "run", "--rm", "--explain", "busybox-app", "echo", "app")
    assert (r.returncode, r.stdout) == (0, "app\n"), r.stderr
    base = env.images["busybox-app"].layer_digests[0][7:19]
    lines = r.stderr.splitlines()
    assert any(line.endswith(f"  {base}: Already exists") for line in lines), r.stderr
    assert "-- layer: in Docker, " + STAGES["layer"] in lines
    numbered = [line for line in lines if not line.startswith("-- ")]
    assert [int(line.split()[0]) for line in numbered] == list(range(1, len(numbered) + 1))
    again = _hub(mr, env, tmp_path, "run", "--rm", "--explain", "busybox-app", "echo", "app")
    assert (again.returncode, again.stdout) == (0, "app\n")
    assert "in the local store" in again.stderr and "-- http:" not in again.stderr  # no registry at all
    detached = _hub(mr, env, tmp_path, "run", "-d", "--rm", "--explain", "busybox-app", "true")
    assert detached.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}\n", detached.stdout), detached
    last = detached.stderr.splitlines()[-1]
    assert last.endswith("the program runs; its output is relayed (and logged) until it ends"), detached.stderr
    deadline = time.monotonic() + 20  # its monitor goes on without the trace: ends it and removes it
    while mr("ps", "-a", "-q").stdout and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mr("ps", "-a", "-q").stdout == ""


def test_a_failure_says_where_and_keeps_its_one_line(env: Env, minirun: Minirun, tmp_path: Path) -> None:
    r = _hub(minirun, env, tmp_path, "run", "--explain=json", "nosuch")
    assert r.returncode == 125 and r.stdout == ""
    *trace, last = r.stderr.splitlines()
    assert last.startswith("minirun: ") and "not found" in last, r.stderr
    failed = _events("\n".join(trace))[-1]
    assert (failed["stage"], failed["event"]) == ("error", "failed") and failed["exit_code"] == 125
    assert failed["stage_reached"] == "http", failed
    _login(minirun, "wrong-password")
    r = _hub(minirun, env, tmp_path, "pull", "--explain", "hello-world")
    *trace, last = r.stderr.splitlines()
    assert r.returncode == 1 and last.startswith("minirun: authenticating at ") and "401" in last, r.stderr
    assert trace[-1].endswith("(exit code 1)") and "failed during auth: authenticating at " in trace[-1]
    assert "wrong-password" not in r.stderr
