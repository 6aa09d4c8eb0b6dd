"""Challenge parsing, endpoint choice, Retry-After and credential files (no network)."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from minirun import notices
from minirun.errors import AuthenticationFailed, CredentialsError, UsageError
from minirun.remote import credentials, tls
from minirun.remote.auth import RegistryAuth, parse_challenge
from minirun.remote.endpoints import RegistryOptions, endpoints_for, is_insecure, parse_mirror
from minirun.remote.reference import parse
from minirun.remote.transport import _retry_after


def test_docker_hub_challenge() -> None:
    c = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                        'scope="repository:library/hello-world:pull"')
    assert c is not None and c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/hello-world:pull"}


def test_challenge_with_comma_in_scope_and_unquoted_values() -> None:
    c = parse_challenge('Bearer realm="https://a/token", scope="repository:x:pull,push",error=invalid_token')
    assert c is not None
    assert c.params["scope"] == "repository:x:pull,push" and c.params["error"] == "invalid_token"
    b = parse_challenge('Basic realm="Registry Realm"')
    assert b is not None and b.scheme == "basic" and b.params["realm"] == "Registry Realm"


def _flow_401(auth: RegistryAuth, challenge: str) -> httpx.Request:
    """Drive the auth flow through a 401 and return the token request it makes."""
    flow = auth.auth_flow(httpx.Request("GET", "https://r.example/v2/x/manifests/latest"))
    request = next(flow)
    return flow.send(httpx.Response(401, headers={"WWW-Authenticate": challenge}, request=request))


def test_token_request_carries_scope_service_and_basic_credentials() -> None:
    auth = RegistryAuth(credentials.Credentials("u", "p"), ["repository:library/x:pull"])
    tr = _flow_401(auth, 'Bearer realm="https://auth.example/token",service="reg"')
    assert tr.url.host == "auth.example"
    assert tr.url.params.get_list("scope") == ["repository:library/x:pull"]
    assert tr.url.params["service"] == "reg" and tr.url.params["account"] == "u"
    assert tr.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()


@pytest.mark.parametrize("status,body,why", [
    (401, b"{}", "wrong username or password"),
    (500, b"", "token server answered 500"),
    (200, b"not json", "not JSON"),
    (200, b'{"nothing": 1}', "holds no token"),
])
def test_bad_token_answers(status: int, body: bytes, why: str) -> None:
    auth = RegistryAuth(None, [])
    flow = auth.auth_flow(httpx.Request("GET", "https://r.example/v2/"))
    req = next(flow)
    tr = flow.send(httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://a/t"'}, request=req))
    with pytest.raises(AuthenticationFailed, match=why):
        flow.send(httpx.Response(status, content=body, request=tr))


def test_access_token_field_is_accepted_and_sent() -> None:
    auth = RegistryAuth(None, [])
    flow = auth.auth_flow(httpx.Request("GET", "https://r.example/v2/"))
    req = next(flow)
    tr = flow.send(httpx.Response(401, headers={"WWW-Authenticate": 'Bearer realm="https://a/t"'}, request=req))
    retry = flow.send(httpx.Response(200, json={"access_token": "tok"}, request=tr))
    assert retry.headers["Authorization"] == "Bearer tok"


def test_realm_must_be_http() -> None:
    with pytest.raises(AuthenticationFailed, match="not an http"):
        _flow_401(RegistryAuth(None, []), 'Bearer realm="file:///etc/passwd"')


@pytest.mark.parametrize("host,extra,expect", [
    ("localhost:5000", [], True), ("127.0.0.1:5000", [], True), ("127.9.9.9", [], True),
    ("[::1]:5000", [], True), ("registry-1.docker.io", [], False), ("10.0.0.5:5000", [], False),
    ("10.0.0.5:5000", ["10.0.0.0/8"], True), ("reg.example:443", ["reg.example:443"], True),
    ("reg.example", ["reg.example"], True), ("other.example", ["reg.example"], False),
])
def test_insecure_rules(host: str, extra: list[str], expect: bool) -> None:
    assert is_insecure(host, extra) is expect


def test_endpoints_mirrors_then_origin_only_for_docker_hub() -> None:
    opts = RegistryOptions(mirrors=["https://mirror.example", "http://127.0.0.1:5000/"])
    eps = endpoints_for(parse("hello-world"), opts)
    assert [(e.base, e.verify, e.mirror) for e in eps] == [
        ("https://mirror.example", True, True), ("http://127.0.0.1:5000", False, True),
        ("https://registry-1.docker.io", True, False)]
    eps = endpoints_for(parse("127.0.0.1:5000/app"), opts)
    assert [e.base for e in eps] == ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]


@pytest.mark.parametrize("url", ["mirror.example", "ftp://m.example", "https://m.example/path", "https://"])
def test_bad_mirrors(url: str) -> None:
    with pytest.raises(UsageError, match="invalid registry mirror"):
        parse_mirror(url)


def test_retry_after_seconds_and_date() -> None:
    r = httpx.Response(429, headers={"Retry-After": "2"})
    assert _retry_after(r) == 2.0
    r = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert _retry_after(r) == 0.0
    assert _retry_after(httpx.Response(429)) is None


def test_credentials_round_trip_in_docker_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert credentials.lookup("docker.io") is None
    credentials.store("docker.io", credentials.Credentials("me", "pw:with:colons"))
    credentials.store("127.0.0.1:5000", credentials.Credentials("x", "y"))
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["auths"]["https://index.docker.io/v1/"]["auth"] == base64.b64encode(b"me:pw:with:colons").decode()
    assert credentials.lookup("index.docker.io") == credentials.Credentials("me", "pw:with:colons")
    assert credentials.lookup("127.0.0.1:5000") == credentials.Credentials("x", "y")
    assert credentials.remove("docker.io") and not credentials.remove("docker.io")
    assert credentials.lookup("docker.io") is None


def test_reads_what_docker_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({
        "auths": {"https://reg.example:5000/v1/": {"auth": base64.b64encode(b"a:b").decode()}},
        "HttpHeaders": {"User-Agent": "x"}}))
    assert credentials.lookup("reg.example:5000") == credentials.Credentials("a", "b")
    credentials.store("other.example", credentials.Credentials("c", "d"))
    assert json.loads((tmp_path / "config.json").read_text())["HttpHeaders"] == {"User-Agent": "x"}


def test_corrupt_config_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writing it stops on it; a lookup for a pull says it and goes on without (as Docker)."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CredentialsError, match=r"config\.json: not valid JSON"):
        credentials.store("docker.io", credentials.Credentials("u", "p"))
    heard: list[str] = []
    monkeypatch.setattr(notices, "hear", heard.append)
    assert credentials.lookup("docker.io") is None
    assert len(heard) == 1 and "config.json: not valid JSON" in heard[0] and heard[0].startswith("warning: ")


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, name: str) -> None:
    """A TLS handshake over a socket pair: the client verifies the server's chain and name."""
    ours, theirs = socket.socketpair()
    served: list[BaseException] = []

    def serve() -> None:
        try:
            with server.wrap_socket(theirs, server_side=True) as s:
                s.recv(1)
        except (OSError, ssl.SSLError) as e:
            served.append(e)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(ours, server_hostname=name) as s:
            s.sendall(b"x")
    finally:
        thread.join(10)


def test_the_system_store_is_read_from_its_hashed_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tls.context: the system's CAs by OpenSSL's hashed directory, read when a chain needs one
    (nothing parsed up front: the bundle took 20 ms of every pull), and still verified."""
    from tests.support.pki import make_pki
    pki = make_pki(tmp_path / "pki")
    store = tmp_path / "certs"
    store.mkdir()
    digest = subprocess.run(["openssl", "x509", "-subject_hash", "-noout", "-in", str(pki.ca_cert)],
                            capture_output=True, text=True, check=True).stdout.strip()
    (store / f"{digest}.0").symlink_to(pki.ca_cert)
    paths = ssl.get_default_verify_paths()._replace(capath=str(store))
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
    client = tls.context("127.0.0.1:5000", environ={"MINIRUN_CERTS_DIRS": str(tmp_path / "none")})
    assert client.cert_store_stats()["x509_ca"] == 0 and client.check_hostname
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    _handshake(client, server, "127.0.0.1")  # verified through the directory
    (store / f"{digest}.0").unlink()
    (store / "ffffffff.0").symlink_to(pki.signing_cert)  # another CA: the chain fails
    client = tls.context("127.0.0.1:5000", environ={"MINIRUN_CERTS_DIRS": str(tmp_path / "none")})
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(client, server, "127.0.0.1")
