"""OCI and Docker image data: media types, descriptors, manifests, platforms (pure).

Parsing is strict about what minirun relies on (digests, sizes, media types) and
lenient about the rest, as registries in the wild add fields freely.
"""

from __future__ import annotations

import json
import os
import re

from . import sha256
from .errors import ManifestError, PlatformNotFound, UsageError
from .records import TYPE_CHECKING, Record

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# Asking for all four is what makes registries answer with the index rather than
# a single manifest they pick for us (or MANIFEST_UNKNOWN).
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)

LAYER_GZIP = ("application/vnd.oci.image.layer.v1.tar+gzip",
              "application/vnd.docker.image.rootfs.diff.tar.gzip")
LAYER_ZSTD = ("application/vnd.oci.image.layer.v1.tar+zstd",)
LAYER_TAR = ("application/vnd.oci.image.layer.v1.tar",)

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

# Python's machine names -> the GOARCH names images use (and the variant implied).
_ARCH = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"), "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
    "i386": ("386", None), "i686": ("386", None),
    "ppc64le": ("ppc64le", None), "s390x": ("s390x", None), "riscv64": ("riscv64", None),
}


class Platform(Record):
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @staticmethod
    def parse(text: str) -> Platform:
        parts = text.lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(f'invalid platform "{text}": expected os/arch[/variant]')
        arch, variant = parts[1], parts[2] if len(parts) == 3 else None
        # Docker normalises the common aliases.
        arch = {"x86_64": "amd64", "aarch64": "arm64", "x86-64": "amd64"}.get(arch, arch)
        if arch == "arm64" and variant is None:
            variant = "v8"
        return Platform(parts[0], arch, variant)

    @staticmethod
    def host() -> Platform:
        machine = os.uname().machine.lower()  # what platform.machine() reads, without its import
        arch, variant = _ARCH.get(machine, (machine, None))
        return Platform("linux", arch, variant)


class Descriptor(Record):
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = {}  # noqa: RUF012 - read only, never mutated

    @property
    def short_id(self) -> str:
        """The 12 hex digits Docker shows for a layer."""
        return self.digest.split(":", 1)[1][:12]


class Manifest(Record):
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


class ImageIndex(Record):
    media_type: str
    manifests: tuple[Descriptor, ...]


def validate_digest(digest: str, what: str) -> str:
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise ManifestError(f"{what}: digest {digest!r} is not sha256 with 64 lower-case hex digits")
    return digest


def _descriptor(raw: Any, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestError(f"{what}: descriptor is not a JSON object")
    digest = validate_digest(raw.get("digest", ""), what)
    size = raw.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{what}: descriptor {digest} has no valid size")
    media_type = raw.get("mediaType", "")
    if not isinstance(media_type, str):
        raise ManifestError(f"{what}: descriptor {digest} has an invalid mediaType")
    plat = None
    p = raw.get("platform")
    if isinstance(p, dict) and isinstance(p.get("os"), str) and isinstance(p.get("architecture"), str):
        variant = p.get("variant") if isinstance(p.get("variant"), str) else None
        plat = Platform(p["os"], p["architecture"], variant or None)
    annotations = raw.get("annotations") if isinstance(raw.get("annotations"), dict) else {}
    return Descriptor(media_type, digest, size, plat, dict(annotations or {}))


def parse_manifest(data: bytes, content_type: str | None, what: str) -> Manifest | ImageIndex:
    """Parse a manifest or an index; ``what`` names it in errors."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"{what}: manifest is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{what}: manifest is not a JSON object")
    media_type = doc.get("mediaType") or (content_type or "").split(";")[0].strip()
    if doc.get("schemaVersion") == 1 or media_type in (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED):
        raise ManifestError(
            f"{what}: image uses Docker's schema 1 manifest format, which is deprecated "
            "and not supported; push it again with a current client")
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"{what}: unsupported schemaVersion {doc.get('schemaVersion')!r}")
    if not media_type:
        # OCI allows omitting mediaType; the shape tells which document it is.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError(f"{what}: index has no manifests list")
        return ImageIndex(media_type, tuple(_descriptor(m, what) for m in entries))
    if media_type in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestError(f"{what}: manifest has no layers list")
        return Manifest(media_type, _descriptor(doc.get("config"), what),
                        tuple(_descriptor(m, what) for m in layers))
    raise ManifestError(f"{what}: unsupported manifest media type {media_type!r}")


def _is_attestation(d: Descriptor) -> bool:
    p = d.platform
    return (p is not None and p.os == "unknown" and p.architecture == "unknown") or (
        "vnd.docker.reference.type" in d.annotations)


def select_manifest(index: ImageIndex, want: Platform, what: str) -> Descriptor:
    """Pick the entry for ``want``: exact variant first, then one without a variant."""
    candidates = [d for d in index.manifests
                  if d.platform is not None and not _is_attestation(d)
                  and d.media_type in (*MANIFEST_TYPES, "")]
    same = [d for d in candidates if d.platform is not None
            and d.platform.os == want.os and d.platform.architecture == want.architecture]

    def variant_of(d: Descriptor) -> str | None:
        assert d.platform is not None
        v = d.platform.variant
        # arm64 images often omit the variant; v8 is the only one there is.
        return "v8" if v is None and d.platform.architecture == "arm64" else v

    for d in same:
        if variant_of(d) == want.variant:
            return d
    for d in same:
        if want.variant is None or variant_of(d) is None:
            return d
    available = sorted({str(d.platform) for d in candidates if d.platform})
    raise PlatformNotFound(
        f"{what}: no matching manifest for {want} in the manifest list entries "  # Docker's words
        f"(available: {', '.join(available) if available else 'none'})")


if TYPE_CHECKING:
    from typing import Any, TypedDict

    class RunConfig(TypedDict, total=False):
        """The image config's ``config``: what a container of it runs, as the image spec names it."""
        User: str
        Env: list[str]
        Entrypoint: list[str]
        Cmd: list[str]
        WorkingDir: str
        StopSignal: str
        ExposedPorts: dict[str, object]
        Volumes: dict[str, object]
        Labels: dict[str, str]
        Healthcheck: dict[str, object]   # Docker's extension: Test, Interval, Timeout, Retries, StartPeriod
else:
    RunConfig = dict  # (a TypedDict is a dict at run time; typing costs a start its import)


_STRINGS = ("User", "WorkingDir", "StopSignal")
_LISTS = ("Env", "Entrypoint", "Cmd")
_MAPS = ("ExposedPorts", "Volumes", "Labels", "Healthcheck")


class ImageConfig(Record):
    created: str | None
    diff_ids: tuple[str, ...]
    platform: Platform | None
    raw: dict[str, Any]

    @property
    def run_config(self) -> RunConfig:
        """Its ``config``, each field of the kind the spec gives it (a field of another kind, as
        a hand-made image may have, is left out rather than misread)."""
        doc = self.raw.get("config")
        out: dict[str, object] = {}
        if isinstance(doc, dict):
            out.update((k, doc[k]) for k in _STRINGS if isinstance(doc.get(k), str))
            out.update((k, [str(x) for x in doc[k]]) for k in _LISTS if isinstance(doc.get(k), list))
            out.update((k, doc[k]) for k in _MAPS if isinstance(doc.get(k), dict))
        return RunConfig(**out)  # type: ignore[typeddict-item,no-any-return]


def parse_config(data: bytes, what: str) -> ImageConfig:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"{what}: image config is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{what}: image config is not a JSON object")
    rootfs = doc.get("rootfs") if isinstance(doc.get("rootfs"), dict) else {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        diff_ids = []
    plat = None
    if isinstance(doc.get("os"), str) and isinstance(doc.get("architecture"), str):
        plat = Platform(doc["os"], doc["architecture"], doc.get("variant") or None)
    created = doc.get("created") if isinstance(doc.get("created"), str) else None
    return ImageConfig(created, tuple(str(d) for d in diff_ids), plat, doc)


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """ChainID(L1) = DiffID(L1); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else "sha256:" + sha256.hexdigest(f"{out[-1]} {d}".encode()))
    return out
