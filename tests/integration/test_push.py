"""tag and push (issue 29) against the suite's registries (plain; TLS + token; TLS + basic),
with python-dxf, an independent client, reading what minirun pushed back."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.integration.conftest import PASSWORD, PUSHER, PUSHER_PASSWORD, USER, Env, Minirun, verify_store
from tests.support.registry import Registry


def _read_back(env: Env, registry: Registry, repo: str, tag: str, user: str | None = None,
               password: str | None = None) -> tuple[str, dict[str, object]]:
    """The manifest under ``tag`` as the registry serves it to another client (its digest and
    JSON), each blob it names fetched whole and checked against its digest."""
    from dxf import DXF, DXFBase
    from requests import Response

    def auth(dxf: DXFBase, response: Response) -> None:
        dxf.authenticate(user, password, response=response)

    https = registry is not env.plain
    client = DXF(registry.host, repo, auth=auth if user else None, insecure=not https,
                 tlsverify=str(env.pki.ca_cert) if https else True)
    body, _ = client.get_manifest_and_response(tag)
    manifest = json.loads(body)
    for desc in [manifest["config"], *manifest["layers"]]:
        chunks = client.pull_blob(desc["digest"])  # dxf checks the digest as it reads
        assert not isinstance(chunks, tuple)
        data = b"".join(chunks)
        assert len(data) == desc["size"] and "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest(), manifest


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_tag_then_push_to_a_plain_registry_as_docker_prints_it(env: Env, minirun: Minirun) -> None:
    host = env.plain.host
    assert minirun("pull", "-q", f"{host}/library/busybox").returncode == 0
    r = minirun("tag", f"{host}/library/busybox", f"{host}/pushed/bb:v1")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    diff_id = minirun("inspect", "-f", "{{index .RootFS.Layers 0}}", f"{host}/pushed/bb:v1").stdout.strip()
    short = diff_id[7:19]
    r = minirun("push", f"{host}/pushed/bb:v1")
    assert r.returncode == 0, r.stderr
    digest, _ = _read_back(env, env.plain, "pushed/bb", "v1")
    size = (minirun.root / "blobs" / "sha256" / digest[7:]).stat().st_size  # the stored manifest, as it was
    assert _lines(r.stdout) == [f"The push refers to repository [{host}/pushed/bb]", f"{short}: Preparing",
                                f"{short}: Mounted from library/busybox", f"v1: digest: {digest} size: {size}"]
    # Once there: said as Docker says it, nothing uploaded again.
    r = minirun("push", f"{host}/pushed/bb:v1")
    assert f"{short}: Layer already exists" in _lines(r.stdout), r
    # A tag without a tag: :latest, "Using default tag" first.
    minirun("tag", f"{host}/pushed/bb:v1", f"{host}/pushed/bb")
    r = minirun("push", f"{host}/pushed/bb")
    assert _lines(r.stdout)[0] == "Using default tag: latest" and _lines(r.stdout)[-1].startswith("latest: digest:")
    assert _read_back(env, env.plain, "pushed/bb", "latest")[0] == digest
    # -a: every tag of the repository held here.
    r = minirun("push", "-a", f"{host}/pushed/bb")
    assert [x.split(":")[0] for x in _lines(r.stdout) if "digest:" in x] == ["latest", "v1"], r
    # A fresh store pulls what was pushed, and runs it.
    other = Minirun(minirun.root.parent / "other", minirun.docker_config, {})
    r = other("run", "--rm", f"{host}/pushed/bb:v1", "echo", "pushed and pulled")
    assert (r.returncode, r.stdout) == (0, "pushed and pulled\n"), r.stderr


def test_push_with_token_and_basic_auth_moves_an_image_between_registries(env: Env, minirun: Minirun) -> None:
    source = f"{env.plain.host}/library/busybox"
    assert minirun("pull", "-q", source).returncode == 0
    target = f"{env.token.host}/moved/busybox:1"
    assert minirun("tag", source, target).returncode == 0
    # Anonymous: the token server grants pull only.
    r = minirun("push", target)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "minirun login" in r.stderr, r
    assert "unauthorized" in r.stderr or "denied" in r.stderr, r
    r = minirun("login", "-u", PUSHER, "--password-stdin", env.token.host, input=PUSHER_PASSWORD.encode())
    assert r.returncode == 0, r.stderr
    before = len(env.tokens.log)
    r = minirun("push", target)
    assert r.returncode == 0, r.stderr
    assert any("repository:moved/busybox:pull,push" in e.scope for e in env.tokens.log[before:])
    digest, _ = _read_back(env, env.token, "moved/busybox", "1", PUSHER, PUSHER_PASSWORD)
    assert _lines(r.stdout)[-1].startswith(f"1: digest: {digest} size: ")
    assert "Pushed" in r.stdout  # a new registry: uploaded, not mounted
    # Basic auth.
    basic = f"{env.basic.host}/moved/busybox:2"
    assert minirun("tag", source, basic).returncode == 0
    r = minirun("push", basic)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "minirun login" in r.stderr, r
    assert minirun("login", "-u", USER, "-p", PASSWORD, env.basic.host).returncode == 0
    r = minirun("push", basic)
    assert r.returncode == 0, r.stderr
    assert _read_back(env, env.basic, "moved/busybox", "2", USER, PASSWORD)[0] == digest
    assert verify_store(minirun.root)


def test_push_refuses_what_it_cannot_push(env: Env, minirun: Minirun) -> None:
    host = env.plain.host
    r = minirun("push", f"{host}/nothing/here:v1")
    assert (r.returncode, r.stdout) == (1, f"The push refers to repository [{host}/nothing/here]\n")  # Docker's
    assert r.stderr == f"minirun: An image does not exist locally with the tag: {host}/nothing/here\n"
    r = minirun("push", f"{host}/x@sha256:{'0' * 64}")
    assert r.returncode == 1 and "digest reference" in r.stderr
    r = minirun("tag", "nosuch", "other")
    assert (r.returncode, r.stderr) == (1, "minirun: No such image: nosuch\n")
    # A layer damaged in the store is never pushed: the push fails, the registry has no such blob
    # (a registry that has never seen it: nothing to mount it from).
    assert minirun("pull", "-q", f"{host}/library/many-files").returncode == 0
    target = f"{env.token.host}/damaged/mf"
    assert minirun("tag", f"{host}/library/many-files", target).returncode == 0
    stored = {p.stat().st_size: p for p in (minirun.root / "blobs" / "sha256").iterdir()}
    biggest = stored[max(stored)]
    data = bytearray(biggest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    biggest.write_bytes(bytes(data))
    assert minirun("login", "-u", PUSHER, "-p", PUSHER_PASSWORD, env.token.host).returncode == 0
    r = minirun("push", target)
    assert r.returncode == 1 and "damaged" in r.stderr and r.stderr.count("\n") == 1, r
    from dxf import DXF, DXFBase
    from requests import Response
    from requests.exceptions import HTTPError

    def auth(dxf: DXFBase, response: Response) -> None:
        dxf.authenticate(PUSHER, PUSHER_PASSWORD, response=response)

    client = DXF(env.token.host, "damaged/mf", auth=auth, tlsverify=str(env.pki.ca_cert))
    with pytest.raises(HTTPError, match="404"):
        client.blob_size("sha256:" + biggest.name)
