"""The registry's 401 -> token (or basic) -> retry dance, as an ``httpx.Auth``.

Docker Hub answers an anonymous request with ``401`` and
``WWW-Authenticate: Bearer realm=...,service=...,scope=...``; the client fetches a
token from the realm and sends it as ``Authorization: Bearer``. Tokens live about
60 s, so a 401 in the middle of a pull means "fetch a new token", once per request.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Generator
from dataclasses import dataclass

import httpx

from .. import trace
from ..errors import AuthenticationFailed
from .credentials import Credentials

_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer" or "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """Parse one ``WWW-Authenticate`` value; None when it is not usable."""
    header = header.strip()
    scheme, _, rest = header.partition(" ")
    if not scheme:
        return None
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              .replace('\\"', '"') for m in _PARAM_RE.finditer(rest)}
    return Challenge(scheme.lower(), params)


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


class RegistryAuth(httpx.Auth):
    """Bearer tokens or basic auth, learned from the registry's challenges."""

    # Not True: that would make httpx read every blob body into memory. The one
    # body we need (the token answer) is read explicitly below.
    requires_response_body = False

    def __init__(self, credentials: Credentials | None, scopes: list[str]) -> None:
        self.credentials = credentials
        self.scopes = scopes
        self.token: str | None = None
        self.use_basic = False

    def _authorize(self, request: httpx.Request) -> None:
        if self.token:
            request.headers["Authorization"] = f"Bearer {self.token}"
        elif self.use_basic and self.credentials:
            request.headers["Authorization"] = _basic(self.credentials)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._authorize(request)
        response = yield request
        if response.status_code != 401:
            return
        challenge = None
        for value in response.headers.get_list("www-authenticate"):
            challenge = parse_challenge(value)
            if challenge and challenge.scheme in ("bearer", "basic"):
                break
        if challenge is None:
            return
        trace.event("auth", "challenge", f"401 challenge: WWW-Authenticate {challenge.scheme.capitalize()} "
                    + ", ".join(f'{k}="{v}"' for k, v in challenge.params.items()),
                    scheme=challenge.scheme, params=dict(challenge.params))
        if challenge.scheme == "basic":
            if not self.credentials or self.use_basic:
                return  # nothing new to try: the caller reports the 401
            self.use_basic = True
            trace.event("auth", "basic", f"basic auth as {self.credentials.username} (the password is never shown)")
        else:
            token_request = self._token_request(challenge)
            scopes = token_request.url.params.get_list("scope")
            who = f"as {self.credentials.username}" if self.credentials else "anonymously"
            trace.event("auth", "token-request", f"ask {token_request.url.host} for a token {who}, scope "
                        f"{' '.join(scopes)}", realm=str(token_request.url.copy_with(query=None)), scopes=scopes,
                        service=token_request.url.params.get("service"), anonymous=self.credentials is None)
            token_response = yield token_request
            token_response.read()
            self.token = self._read_token(token_request, token_response)
            trace.event("auth", "token", "token received (a JWT; never shown); the request is sent again "
                        "with Authorization: Bearer", length=len(self.token))
        self._authorize(request)
        yield request

    def _token_request(self, challenge: Challenge) -> httpx.Request:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationFailed("authenticating: the registry's Bearer challenge names no realm")
        try:
            url = httpx.URL(realm)
        except httpx.InvalidURL:
            raise AuthenticationFailed(f"authenticating: invalid token realm {realm!r}") from None
        if url.scheme not in ("http", "https"):
            raise AuthenticationFailed(f"authenticating: token realm {realm!r} is not an http(s) URL")
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.params.get("service"):
            params.append(("service", challenge.params["service"]))
        scopes = list(self.scopes)
        if challenge.params.get("scope") and challenge.params["scope"] not in scopes:
            scopes.append(challenge.params["scope"])
        params.extend(("scope", s) for s in scopes)
        headers = {}
        if self.credentials:
            params.append(("account", self.credentials.username))
            headers["Authorization"] = _basic(self.credentials)
        return httpx.Request("GET", url.copy_merge_params(params), headers=headers)

    @staticmethod
    def _read_token(request: httpx.Request, response: httpx.Response) -> str:
        realm = f"{request.url.scheme}://{request.url.host}{request.url.path}"
        if response.status_code in (401, 403):
            raise AuthenticationFailed(
                f"authenticating at {realm}: {response.status_code} {response.reason_phrase} "
                "(wrong username or password?)")
        if response.status_code != 200:
            raise AuthenticationFailed(
                f"authenticating at {realm}: token server answered {response.status_code} "
                f"{response.reason_phrase}")
        try:
            doc = response.json()
        except ValueError:
            raise AuthenticationFailed(f"authenticating at {realm}: token answer is not JSON") from None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed(f"authenticating at {realm}: token answer holds no token")
        return token
