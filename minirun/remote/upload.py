"""The distribution API's upload side for one repository: is a blob there, mount it from
another repository of the registry, upload it (POST, then one PATCH with its bytes and the
closing PUT with its digest, as Docker's client), put a manifest. Statuses and retries are
``transport``'s; what is pushed and in what order is ``push``'s."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import quote

import httpx

from .. import sha256
from ..errors import BadResponse, ConnectionFailed, NotFound, VerificationError
from . import credentials
from .endpoints import RegistryOptions
from .reference import Reference
from .transport import Transport

CHUNK = 1 << 16


class Uploads:
    """Pushing to one repository (``ref``), mounting from ``sources`` (paths on its registry)."""

    def __init__(self, ref: Reference, options: RegistryOptions, creds: credentials.Credentials | None,
                 sources: tuple[str, ...] = ()) -> None:
        # Never a mirror: a push goes to the registry the name says, as Docker's.
        self.ref = ref
        self.transport = Transport(ref, RegistryOptions([], options.insecure, options.timeout), creds, sources)

    def close(self) -> None:
        self.transport.close()

    def has_blob(self, digest: str) -> bool:
        what = f"pushing {digest} to {self.ref.name}"
        try:
            response = self.transport.open("HEAD", f"blobs/{digest}", {}, what)
        except NotFound:
            return False
        response.close()
        return True

    def mount(self, digest: str, source: str) -> bool:
        """Whether the registry mounted ``digest`` from repository ``source`` (201); a 202 is
        an upload it started instead (cancelled: the caller uploads)."""
        what = f"mounting {digest} from {source} into {self.ref.name}"
        response = self.transport.open(
            "POST", f"blobs/uploads/?mount={quote(digest)}&from={quote(source)}", {"Content-Length": "0"}, what)
        response.close()
        if response.status_code == 201:
            return True
        location = response.headers.get("location")
        if location:
            try:
                self.transport.open("DELETE", location, {}, what).close()
            except (BadResponse, NotFound, ConnectionFailed):
                pass  # an abandoned upload: the registry's own purge removes it
        return False

    def upload(self, digest: str, size: int, chunks: Callable[[], Iterator[bytes]]) -> None:
        """Upload a blob: ``chunks`` gives its bytes (a fresh stream each call)."""
        what = f"pushing {digest} to {self.ref.name}"
        response = self.transport.open("POST", "blobs/uploads/", {"Content-Length": "0"}, what)
        response.close()
        location = _location(response, what)
        response = self.transport.open("PATCH", location, {"Content-Type": "application/octet-stream",
                                                            "Content-Length": str(size)}, what, chunks)
        response.close()
        location = _location(response, what)
        joiner = "&" if "?" in location else "?"
        response = self.transport.open("PUT", f"{location}{joiner}digest={quote(digest)}",
                                       {"Content-Length": "0"}, what)
        response.close()
        stored = response.headers.get("docker-content-digest")
        if stored and stored != digest:
            raise VerificationError(f"{what}: the registry stored it as {stored}")

    def put_manifest(self, tag: str, body: bytes, media_type: str) -> str:
        """PUT the manifest under ``tag``; its digest (what the registry answers must agree)."""
        digest = "sha256:" + sha256.hexdigest(body)
        what = f"pushing manifest for {self.ref.familiar()}"
        response = self.transport.open("PUT", f"manifests/{tag}", {"Content-Type": media_type}, what, body)
        response.close()
        stored = response.headers.get("docker-content-digest")
        if stored and stored != digest:
            raise VerificationError(f"{what}: the registry stored it as {stored}, not {digest}")
        return digest


def _location(response: httpx.Response, what: str) -> str:
    location: str | None = response.headers.get("location")
    if not location:
        raise BadResponse(f"{what}: the registry answered {response.status_code} without a Location")
    return location
