"""The distribution API of one repository: ping, manifests, blobs (which hosts to ask is
``endpoints``'s; retries, fallbacks and status codes are ``transport``'s; the 401 dance
is ``auth``'s).

Everything that can go wrong on the wire is turned into a ``RegistryError``
naming the operation, the object and the cause. Content is checked against the
digest we asked for, never against a response header.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Protocol

import httpx

from ..errors import BadResponse, ConnectionFailed, VerificationError
from ..oci import ACCEPT, Descriptor
from . import credentials
from .endpoints import RegistryOptions
from .reference import Reference
from .transport import BACKOFF_BASE, MAX_ATTEMPTS, Transport

MAX_MANIFEST_BYTES = 4 << 20
CHUNK = 1 << 16


class BlobSink(Protocol):
    """Where a blob's bytes go (the store's ``Ingest``): resumable from ``offset``, checked
    against the digest asked for at ``commit`` (VerificationError when it does not match).
    The registry knows nothing of the store; ``pull`` hands one to ``fetch_blob``."""

    offset: int

    def reset(self) -> None: ...

    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> None: ...


def login_check(registry: str, options: RegistryOptions, creds: credentials.Credentials) -> None:
    """Raise AuthenticationFailed unless ``creds`` are accepted by ``registry``."""
    repo = Repository(Reference(registry, ""), RegistryOptions([], options.insecure, options.timeout), creds)
    try:
        repo.ping()
    finally:
        repo.close()


class Repository:
    """One repository on one registry (with its mirrors and fallbacks): the distribution API."""

    def __init__(self, ref: Reference, options: RegistryOptions,
                 creds: credentials.Credentials | None = None) -> None:
        self.ref = ref
        self.transport = Transport(ref, options, creds)
        self._open = self.transport.open

    def close(self) -> None:
        self.transport.close()

    # -- the API --------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/ with the credentials: what ``login`` uses to check them."""
        self._open("GET", "", {}, f"logging in to {self.ref.domain}").close()

    def head_manifest(self) -> str | None:
        """The digest the tag points to now, from a HEAD (free of Docker Hub's quota)."""
        what = f"checking {self.ref}"
        response = self._open("HEAD", f"manifests/{self.ref.identifier}", {"Accept": ACCEPT}, what)
        response.close()
        digest = response.headers.get("docker-content-digest")
        return digest if digest and digest.startswith("sha256:") else None

    def get_manifest(self, identifier: str) -> tuple[bytes, str, str]:
        """Fetch a manifest by tag or digest; returns (body, media type, digest of body)."""
        if identifier.startswith("sha256:"):
            what = f"pulling manifest {identifier} of {self.ref.name}"
        else:
            what = f"pulling manifest for {self.ref.familiar()}"
        response = self._open("GET", f"manifests/{identifier}", {"Accept": ACCEPT}, what)
        body = bytearray()
        try:
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_MANIFEST_BYTES:
                    raise BadResponse(f"{what}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
        except httpx.TransportError as e:
            raise ConnectionFailed(f"{what}: connection lost: {e}") from None
        finally:
            response.close()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if identifier.startswith("sha256:") and digest != identifier:
            raise VerificationError(f"{what}: content has digest {digest}")
        return bytes(body), response.headers.get("content-type", ""), digest

    def fetch_blob(self, desc: Descriptor, ingest: BlobSink,
                   progress: Callable[[int], None] | None = None) -> None:
        """Download ``desc`` into ``ingest`` (maybe partly there already), verified.

        An interrupted body is resumed with a Range request; content that does not
        verify is fetched once more from zero before the error is reported.
        """
        what = f"pulling blob {desc.digest} of {self.ref.name}"
        failures, restarts = 0, 0
        while True:
            headers = {"Range": f"bytes={ingest.offset}-"} if ingest.offset else {}
            response = self._open("GET", f"blobs/{desc.digest}", headers, what)
            try:
                resumed = response.status_code == 206 and response.headers.get(
                    "content-range", "").startswith(f"bytes {ingest.offset}-")
                if not resumed:
                    ingest.reset()
                if progress:
                    progress(ingest.offset)
                for chunk in response.iter_raw(CHUNK):
                    ingest.write(chunk)
                    if progress:
                        progress(ingest.offset)
            except httpx.TransportError as e:
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise ConnectionFailed(f"{what}: connection lost after {ingest.offset} bytes: {e}") from None
                time.sleep(BACKOFF_BASE * failures)
                continue  # resume from ingest.offset
            except VerificationError:
                restarts += 1
                ingest.reset()
                if restarts > 1:
                    raise
                continue
            finally:
                response.close()
            if ingest.offset < desc.size:
                # The body ended early without an error: resume, bounded like a failure.
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise ConnectionFailed(f"{what}: body ended after {ingest.offset} of {desc.size} bytes")
                continue
            try:
                ingest.commit()
                return
            except VerificationError:
                restarts += 1
                if restarts > 1:
                    raise
