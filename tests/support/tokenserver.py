"""A small token server speaking Docker's registry token protocol, for the tests.

``GET /token?service=...&scope=repository:NAME:pull`` -> ``{"token": JWT, ...}``,
signed RS256 with an ``x5c`` header the registry checks against its
``rootcertbundle``. Anonymous callers get ``pull`` on public repositories; known
users (HTTP Basic) get what they ask for; wrong passwords get 401.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "minirun-test-token-server"
SERVICE = "minirun-test-registry"
# distribution accepts tokens up to 60 s past their expiry (its "leeway"); to make a
# token that the registry refuses after ``ttl`` seconds, we date it back by that much.
REGISTRY_LEEWAY = 60


@dataclass(frozen=True)
class TokenRequest:
    user: str | None
    scope: list[str]
    ok: bool


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    def __init__(self, signing_cert: Path, signing_key: Path, server_cert: Path, server_key: Path,
                 users: dict[str, str], private_repos: set[str]) -> None:
        self.users, self.private = users, private_repos
        cert = x509.load_pem_x509_certificate(signing_cert.read_bytes())
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        key = serialization.load_pem_private_key(signing_key.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self.ttl = 300.0   # seconds the registry accepts a token; tests shorten it
        self.issued = 0
        self.log: list[TokenRequest] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer._handle(self)

            do_POST = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(server_cert), str(server_key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.realm = f"https://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _user(self, header: str | None) -> tuple[str | None, bool]:
        """(username or None for anonymous, credentials valid)."""
        if not header or not header.lower().startswith("basic "):
            return None, True
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None, False
        return user, self.users.get(user) == password

    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlparse(req.path).query)
        user, ok = self._user(req.headers.get("Authorization"))
        self.log.append(TokenRequest(user, query.get("scope", []), ok))
        if not ok:
            body = json.dumps({"details": "incorrect username or password"}).encode()
            req.send_response(401)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body)
            return
        access = []
        for scope in query.get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            if user is None:
                granted = [] if name in self.private else [a for a in wanted if a == "pull"]
            else:
                granted = wanted
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        exp = now + int(self.ttl) - (REGISTRY_LEEWAY if self.ttl < REGISTRY_LEEWAY else 0)
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": exp,
                  "nbf": now - 10, "iat": now - 10, "jti": uuid.uuid4().hex, "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = f"{signing_input}.{_b64(signature)}"
        self.issued += 1
        # Docker Hub sends both names; the tests' clients must cope with either.
        body = json.dumps({"token": token, "access_token": token, "expires_in": int(self.ttl),
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
