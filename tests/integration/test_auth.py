"""Token and basic auth, login/logout, re-authentication and CDN redirects."""

from __future__ import annotations

import base64
import json
import time

from tests.integration.conftest import PASSWORD, PRIVATE_REPO, USER, Env, Minirun, verify_store
from tests.support.faultproxy import Fault, FaultProxy


def test_private_repository_needs_login(env: Env, minirun: Minirun) -> None:
    ref = f"{env.token.host}/{PRIVATE_REPO}"
    r = minirun("pull", ref)
    assert r.returncode == 1
    assert r.stderr.startswith(f"minirun: pull access denied for {ref}") and "minirun login" in r.stderr

    r = minirun("login", "-u", USER, "--password-stdin", env.token.host, input=b"wrong\n")
    assert r.returncode == 1 and "wrong username or password" in r.stderr
    assert not (minirun.docker_config / "config.json").exists()

    r = minirun("login", "-u", USER, "--password-stdin", env.token.host, input=PASSWORD.encode() + b"\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Login Succeeded\n"
    doc = json.loads((minirun.docker_config / "config.json").read_text())
    assert doc["auths"][env.token.host]["auth"] == base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    r = minirun("pull", ref)
    assert r.returncode == 0, r.stderr
    assert any(e.user == USER and f"repository:{PRIVATE_REPO}:pull" in e.scope for e in env.tokens.log)

    r = minirun("logout", env.token.host)
    assert (r.returncode, r.stdout) == (0, f"Removing login credentials for {env.token.host}\n")
    assert env.token.host not in json.loads((minirun.docker_config / "config.json").read_text())["auths"]
    minirun("rmi", ref)
    assert minirun("pull", ref).returncode == 1


def test_basic_auth_registry_with_credentials_docker_wrote(env: Env, minirun: Minirun) -> None:
    ref = f"{env.basic.host}/library/busybox"
    r = minirun("pull", ref)
    assert r.returncode == 1 and "pull access denied" in r.stderr
    # What `docker login` writes, read as it is.
    minirun.docker_config.mkdir(parents=True)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    doc = {"auths": {f"https://{env.basic.host}": {"auth": auth}}}
    (minirun.docker_config / "config.json").write_text(json.dumps(doc))
    r = minirun("pull", ref)
    assert r.returncode == 0, r.stderr
    verify_store(minirun.root)


def test_login_flags(env: Env, minirun: Minirun) -> None:
    r = minirun("login", "-u", USER, "-p", "bad", env.basic.host)
    assert r.returncode == 1
    assert "Using --password via the CLI is insecure" in r.stderr
    assert "incorrect username or password" in r.stderr
    r = minirun("login", "-u", USER, "-p", PASSWORD, env.basic.host)
    assert r.returncode == 0 and r.stdout == "Login Succeeded\n"
    r = minirun("login", "-p", "x", "--password-stdin", env.basic.host, input=b"")
    assert r.returncode == 1 and "mutually exclusive" in r.stderr
    r = minirun("login", env.basic.host, input=b"")
    assert r.returncode == 1 and "stdin is not a terminal" in r.stderr
    r = minirun("logout", "127.0.0.1:9")
    assert (r.returncode, r.stdout) == (0, "Not logged in to 127.0.0.1:9\n")


def test_expired_token_is_renewed_mid_pull(env: Env, minirun: Minirun, token_proxy: FaultProxy) -> None:
    """Tokens the registry refuses after 1-2 s; slow manifest answers make the pull outlive them.

    The registry checks a token when a request arrives, so the manifest request itself
    passes; the config request, 3 s later, meets an expired token.
    """
    big = env.images["big"]
    token_proxy.add(Fault("slow", "/manifests/latest", times=-1, rate=len(big.top) // 3))  # about 3 s
    env.tokens.ttl = 2
    issued = env.tokens.issued
    try:
        start = time.monotonic()
        r = minirun("pull", f"{token_proxy.host}/library/big")
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - start > 2.5
        # The config came after the first token expired: the registry said 401, minirun
        # fetched a new token and went on.
        blob_requests = token_proxy.requests("GET", "/blobs/")
        assert [q.status for q in blob_requests].count(401) >= 1
        assert env.tokens.issued - issued >= 2
        assert set(big.layer_digests) <= verify_store(minirun.root)
    finally:
        env.tokens.ttl = 300


def test_redirect_to_cdn_drops_authorization(env: Env, minirun: Minirun, token_proxy: FaultProxy) -> None:
    img = env.images["busybox"]
    token_proxy.add(Fault("redirect", f"/blobs/{img.layer_digests[0]}"))
    r = minirun("pull", f"{token_proxy.host}/library/busybox")
    assert r.returncode == 0, r.stderr
    to_registry = [q for q in token_proxy.requests("GET", "/blobs/") if q.listener == "main" and q.status != 401]
    assert to_registry and all("Authorization" in q.headers for q in to_registry)
    cdn = [q for q in token_proxy.log if q.listener == "cdn"]
    assert len(cdn) == 1 and "Authorization" not in cdn[0].headers
    assert img.layer_digests[0] in verify_store(minirun.root)


def test_login_through_a_credential_helper(env: Env, minirun: Minirun, tmp_path: object) -> None:
    """config.json naming credsStore: login hands the secret to docker-credential-NAME (store),
    keeps none in config.json, pulls get it back (get), logout erases it (erase)."""
    from pathlib import Path
    bin_dir, vault = Path(str(tmp_path)) / "bin", Path(str(tmp_path)) / "vault"
    bin_dir.mkdir()
    vault.mkdir()
    helper = bin_dir / "docker-credential-minirun-test"
    helper.write_text(f"""#!/bin/sh
# A credential helper as Docker's protocol has them: the action in $1, its input on stdin.
key=$(printf %s "$(cat)")
case "$1" in
store) printf %s "$key" > {vault}/last-store ;;
get) [ -f {vault}/last-store ] && cat {vault}/last-store || {{ echo "credentials not found"; exit 1; }} ;;
erase) echo "$key" > {vault}/erased; rm -f {vault}/last-store ;;
esac
""")
    helper.chmod(0o755)
    minirun.docker_config.mkdir(parents=True, exist_ok=True)
    (minirun.docker_config / "config.json").write_text(json.dumps({"credsStore": "minirun-test"}))
    path = f"{bin_dir}:{__import__('os').environ['PATH']}"
    r = minirun("login", "-u", USER, "--password-stdin", env.basic.host, input=PASSWORD.encode(), PATH=path)
    assert (r.returncode, r.stdout) == (0, "Login Succeeded\n"), r
    assert "stored by the credential helper docker-credential-minirun-test" in r.stderr
    stored = json.loads((vault / "last-store").read_text())
    assert stored == {"ServerURL": env.basic.host, "Username": USER, "Secret": PASSWORD}
    config = json.loads((minirun.docker_config / "config.json").read_text())
    assert config["auths"] == {env.basic.host: {}} and PASSWORD not in json.dumps(config)
    r = minirun("pull", "-q", f"{env.basic.host}/library/busybox", PATH=path)  # the helper's get answers
    assert r.returncode == 0, r.stderr
    r = minirun("logout", env.basic.host, PATH=path)
    assert r.returncode == 0 and (vault / "erased").read_text().strip() == env.basic.host
    assert not (vault / "last-store").exists()
