"""How the registry client talks HTTP: clients per endpoint, retries with backoff, the
mapping of status codes to errors, and the fallback from a mirror to the origin. The
distribution API itself (manifests, blobs) is ``registry``'s."""

from __future__ import annotations

import email.utils
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator

import httpx

from .. import trace
from ..errors import AuthenticationFailed, BadResponse, ConnectionFailed, NotFound, RateLimited, RegistryError
from . import credentials, tls
from .auth import RegistryAuth
from .endpoints import Endpoint, RegistryOptions, endpoints_for
from .reference import Reference

MAX_ATTEMPTS = 5            # per request, for connection errors, 5xx and 429
MAX_RETRY_AFTER = 60.0      # seconds; a longer Retry-After is reported, not waited for
BACKOFF_BASE = 0.25

# A request's body: bytes, or a function giving a fresh stream of it for each try.
Body = bytes | Callable[[], Iterator[bytes]] | None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    when = email.utils.parsedate_to_datetime(value) if value else None
    return max(0.0, when.timestamp() - time.time()) if when else None


def _reason(e: Exception) -> str:
    """``[Errno 111] Connection refused`` -> ``Connection refused``."""
    text = str(e) or type(e).__name__
    return re.sub(r"^\[Errno -?\d+\] ", "", text)


def _error_detail(response: httpx.Response) -> str:
    """The registry's own words: ``CODE: message`` from its JSON error body."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        code = str(first.get("code", "")).lower().replace("_", " ")
        return f"{code}: {first.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, IndexError, TypeError, KeyError):
        return f"{response.status_code} {response.reason_phrase}"


def _trace_endpoints(ref: Reference, endpoints: list[Endpoint]) -> None:
    for i, ep in enumerate(endpoints):
        why = ("a registry mirror for Docker Hub (--registry-mirror / MINIRUN_REGISTRY_MIRROR): tried first"
               if ep.mirror else f"the origin: {ref.domain} is served at {ep.host}" + (
                   " (Docker Hub's API host)" if ref.domain == "docker.io" else ""))
        trace.event("registry", "endpoint", f"endpoint {i + 1}: {ep.base} - {why}"
                    + ("" if ep.verify else " (TLS not verified: an insecure registry)"),
                    url=ep.base, mirror=ep.mirror, verify=ep.verify)


def _trace_hooks() -> dict[str, list[Callable[..., object]]]:
    """httpx hooks that report each request and its answer (never a header's value: the
    Authorization header holds a token or a password)."""
    def on_request(request: httpx.Request) -> None:
        request.extensions["minirun_t0"] = time.monotonic()

    def on_response(response: httpx.Response) -> None:
        request = response.request
        ms = (time.monotonic() - request.extensions.get("minirun_t0", time.monotonic())) * 1000
        size = response.headers.get("content-length")
        authorized = "Authorization" in request.headers
        # The token server's answers belong to the auth flow; the registry's are under /v2/.
        stage = "http" if request.url.path.startswith("/v2/") else "auth"
        trace.event(stage, "response", f"{request.method} {request.url} -> {response.status_code} "
                    f"{response.reason_phrase} ({size or '?'} bytes, {ms:.0f} ms"
                    f"{', with credentials' if authorized else ''})",
                    method=request.method, url=str(request.url), status_code=response.status_code,
                    bytes=int(size) if size and size.isdigit() else None, ms=round(ms, 1), authorized=authorized)
    return {"request": [on_request], "response": [on_response]}


class Transport:
    """HTTP to one repository: a client per endpoint (TLS, credentials, the token dance),
    bounded retries with backoff on connection errors, 5xx and 429 (Retry-After), status
    codes turned into RegistryErrors, and falling back from a mirror to the origin."""

    def __init__(self, ref: Reference, options: RegistryOptions,
                 creds: credentials.Credentials | None = None, push_from: tuple[str, ...] | None = None) -> None:
        """``push_from``: this repository is pushed to (its token asks for pull and push),
        mounting blobs from these repositories of the same registry (pull on each)."""
        self.ref = ref
        self.options = options
        self.push_from = push_from
        self.endpoints = endpoints_for(ref, options)
        if trace.active():
            _trace_endpoints(ref, self.endpoints)
        self._active = 0
        self._creds = creds
        self._clients: dict[Endpoint, httpx.Client] = {}

    def _client(self, ep: Endpoint) -> httpx.Client:
        client = self._clients.get(ep)
        if client is None:
            # The system trust store (OpenSSL's default paths honour SSL_CERT_FILE and
            # SSL_CERT_DIR), the configuration's CA files and the registry's certs.d.
            verify: ssl.SSLContext | bool = tls.context(ep.host) if ep.verify else False
            creds = self._creds if not ep.mirror else None
            if creds is None and ep.mirror:
                creds = credentials.lookup(ep.host)
            auth = RegistryAuth(creds, self._scopes())
            client = httpx.Client(
                verify=verify, auth=auth, follow_redirects=True, trust_env=False,
                timeout=httpx.Timeout(self.options.timeout, connect=10.0),
                headers={"User-Agent": "minirun/0.1"}, event_hooks=_trace_hooks() if trace.active() else None)
            self._clients[ep] = client
        return client

    def _scopes(self) -> list[str]:
        if not self.ref.path:
            return []
        if self.push_from is None:
            return [f"repository:{self.ref.path}:pull"]
        return [f"repository:{self.ref.path}:pull,push", *(f"repository:{p}:pull" for p in self.push_from)]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()

    def _send_once(self, ep: Endpoint, method: str, path: str, headers: dict[str, str],
                   what: str, fast_fail: bool = False, body: Body = None) -> httpx.Response:
        """Send with bounded retries on connection errors, 5xx and 429. ``path``: under the
        repository's /v2/ path, or an upload's Location (a URL, or a path from the host's root)."""
        client = self._client(ep)
        if path.startswith(("http://", "https://")):
            url = path
        elif path.startswith("/"):
            url = f"{ep.base}{path}"
        else:
            url = f"{ep.base}/v2/{self.ref.path}/{path}" if path else f"{ep.base}/v2/"
        last = ""
        for attempt in range(MAX_ATTEMPTS):
            delay = BACKOFF_BASE * (2 ** attempt) * (0.75 + random.random() / 2)
            try:
                content = body() if callable(body) else body  # a stream is made anew for each try
                request = client.build_request(method, url, headers=headers, content=content)
                response = client.send(request, stream=True)
            except httpx.TransportError as e:
                last = _reason(e)
                if isinstance(e, httpx.ConnectError) and (
                        fast_fail or "SSL" in str(e) or "certificate" in last.lower()
                        or "Name or service not known" in last or "Temporary failure in name" in last):
                    # Permanent (TLS, DNS), or an https try that plain http may answer:
                    # retrying the same thing cannot help.
                    raise ConnectionFailed(f"{what}: cannot reach {ep.host}: {last}") from None
                if attempt + 1 < MAX_ATTEMPTS:
                    time.sleep(delay)
                continue
            if response.status_code == 429 or response.status_code >= 500:
                response.read()
                response.close()
                wait = _retry_after(response)
                detail = _error_detail(response)
                if response.status_code == 429 and (wait is None or wait > MAX_RETRY_AFTER):
                    remaining = response.headers.get("ratelimit-remaining")
                    raise RateLimited(f"{what}: {detail}", remaining)
                last = f"{response.status_code} {response.reason_phrase} ({detail})"
                if attempt + 1 < MAX_ATTEMPTS:
                    time.sleep(min(wait, MAX_RETRY_AFTER) if wait is not None else delay)
                continue
            return response
        if last[:1].isdigit():
            raise BadResponse(f"{what}: {ep.host} answered {last} (after {MAX_ATTEMPTS} attempts)")
        raise ConnectionFailed(f"{what}: cannot reach {ep.host}: {last} (after {MAX_ATTEMPTS} attempts)")

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code < 300:
            return
        response.read()
        response.close()
        detail = _error_detail(response)
        if response.status_code == 401 and not self.ref.path:
            raise AuthenticationFailed(f"{what}: unauthorized: incorrect username or password")
        if self.push_from is not None and response.status_code in (401, 403):
            raise AuthenticationFailed(f"{what}: {detail or 'denied: requested access to the resource is denied'}"
                                       f" (log in first: minirun login {self.ref.domain})")
        if response.status_code == 401 or (response.status_code == 403 and "denied" in detail):
            raise AuthenticationFailed(
                f"pull access denied for {self.ref.familiar_name}, repository does not exist "
                f"or may require 'minirun login': {detail}")
        if response.status_code == 404:
            raise NotFound(f"{what.removeprefix('pulling ')} not found: {detail}")
        raise BadResponse(f"{what}: {response.status_code} {response.reason_phrase} ({detail})")

    def open(self, method: str, path: str, headers: dict[str, str], what: str, body: Body = None) -> httpx.Response:
        """Send on the first endpoint that works; a failing mirror falls back to the origin."""
        error: RegistryError | None = None
        for i in range(self._active, len(self.endpoints)):
            ep = self.endpoints[i]
            try:
                # Where another endpoint follows (a mirror before the origin, https before
                # plain http for an insecure registry), a refused connection moves on at once.
                fast = i + 1 < len(self.endpoints) and (ep.mirror or (
                    not ep.verify and ep.base.startswith("https://")))
                response = self._send_once(ep, method, path, headers, what, fast_fail=fast, body=body)
                self._check(response, what)
            except RateLimited:
                raise
            except RegistryError as e:
                fallback = ep.mirror or (isinstance(e, ConnectionFailed) and ep.base.startswith("https://")
                                         and not ep.verify)
                if not fallback or i + 1 == len(self.endpoints):
                    raise
                error = e
                continue
            self._active = i
            return response
        assert error is not None
        raise error
