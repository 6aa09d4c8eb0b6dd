"""Parse and normalise image references the way Docker does (pure).

Follows distribution/reference's grammar and ``ParseNormalizedNamed``:
``hello-world`` -> ``docker.io/library/hello-world:latest``. The first path
component is a registry host only when it contains ``.`` or ``:``, is
``localhost``, or has upper-case letters; otherwise the image lives on Docker Hub.
"""

from __future__ import annotations

import re

from ..errors import ReferenceFormatError
from ..records import Record

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")


class Reference(Record):
    """A fully normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None
    tag_defaulted: bool = False

    @property
    def name(self) -> str:
        """Repository name with its domain: ``docker.io/library/hello-world``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short name Docker shows: ``hello-world``, ``user/app``, ``host:5000/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_REPO_PREFIX) and self.path.count("/") == 1:
            return self.path[len(OFFICIAL_REPO_PREFIX):]
        return self.path

    @property
    def api_host(self) -> str:
        """Host that serves the registry API for this domain."""
        return DOCKER_HUB_API_HOST if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def identifier(self) -> str:
        """What the manifest is requested by: the digest if there is one, else the tag."""
        if self.digest:
            return self.digest
        return self.tag or DEFAULT_TAG

    def _suffix(self) -> str:
        out = f":{self.tag}" if self.tag else ""
        return out + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar(self) -> str:
        return self.familiar_name + self._suffix()


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def parse(text: str) -> Reference:
    """Parse ``text`` like ``docker pull`` does; raise ReferenceFormatError quoting it."""

    def bad(why: str) -> ReferenceFormatError:
        return ReferenceFormatError(f'invalid reference format "{text}": {why}')

    if not text:
        raise bad("the reference is empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise bad("it contains white space")
    if _IDENTIFIER_RE.match(text):
        raise bad("a repository name cannot be a 64-character hexadecimal string")

    rest, at, digest = text.partition("@")
    if at:
        if not _DIGEST_RE.match(digest):
            raise bad(f"digest {digest!r} is not of the form algorithm:hex")
        if not _SHA256_RE.match(digest):
            raise bad(f"digest {digest!r} is not sha256 with 64 lower-case hex digits")
    # A tag follows the last ':' that comes after the last '/' (a port comes before it).
    tag: str | None = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise bad(f"tag {tag!r} must be 1-128 of letters, digits, '_', '.', '-' "
                      "and must not start with '.' or '-'")
    if not rest:
        raise bad("the repository name is empty")

    domain, path = _split_domain(rest)
    if domain != DEFAULT_DOMAIN and not _DOMAIN_RE.match(domain):
        raise bad(f"registry host {domain!r} is not a valid host[:port]")
    if path.lower() != path:
        raise bad(f"repository name ({path}) must be lowercase")
    if not _PATH_RE.match(path):
        raise bad(f"repository name ({path}) may only hold lower-case letters, digits "
                  "and separators ('.', '_', '__', '-') between path components")
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise bad(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")

    defaulted = tag is None and not at
    return Reference(domain, path, DEFAULT_TAG if defaulted else tag, digest or None, defaulted)


def normalisation(text: str, ref: Reference) -> list[str]:
    """Why ``text`` became ``ref``, one reason per rule that applied (--explain)."""
    first = text.split("@")[0]
    reasons = []
    if ref.domain == DEFAULT_DOMAIN and not first.startswith(("docker.io/", "index.docker.io/")):
        reasons.append("no registry host in the name (its first part has no '.' or ':' and is not "
                       "localhost): Docker Hub, docker.io")
    if ref.domain == DEFAULT_DOMAIN and "/" not in first.split(":")[0].removeprefix("docker.io/"):
        reasons.append("a one-word name on Docker Hub is an official image: library/ is added")
    if ref.tag_defaulted:
        reasons.append("no tag and no digest: the tag latest")
    return reasons
