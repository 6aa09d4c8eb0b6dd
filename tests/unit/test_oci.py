"""Manifest parsing and platform selection (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from minirun.errors import ManifestError, PlatformNotFound, UsageError
from minirun.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageIndex,
    Manifest,
    Platform,
    parse_config,
    parse_manifest,
    select_manifest,
)


def dg(c: str) -> str:
    return "sha256:" + c * 64


def entry(arch: str, variant: str | None = None, os: str = "linux", c: str = "a",
          **extra: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"os": os, "architecture": arch}
    if variant:
        p["variant"] = variant
    return {"mediaType": OCI_MANIFEST, "digest": dg(c), "size": 10, "platform": p, **extra}


def index(*entries: dict[str, Any], media: str = OCI_INDEX) -> ImageIndex:
    doc = {"schemaVersion": 2, "mediaType": media, "manifests": list(entries)}
    parsed = parse_manifest(json.dumps(doc).encode(), None, "test")
    assert isinstance(parsed, ImageIndex)
    return parsed


def test_parses_docker_and_oci_manifests() -> None:
    for media in (DOCKER_MANIFEST, OCI_MANIFEST):
        doc = {"schemaVersion": 2, "mediaType": media,
               "config": {"mediaType": "x", "digest": dg("c"), "size": 5},
               "layers": [{"mediaType": "l", "digest": dg("1"), "size": 7}]}
        m = parse_manifest(json.dumps(doc).encode(), None, "t")
        assert isinstance(m, Manifest)
        assert m.config.digest == dg("c") and m.layers[0].size == 7 and m.layers[0].short_id == "1" * 12


def test_media_type_from_header_or_shape() -> None:
    doc = {"schemaVersion": 2, "manifests": []}
    assert isinstance(parse_manifest(json.dumps(doc).encode(), DOCKER_LIST + "; charset=x", "t"), ImageIndex)
    assert isinstance(parse_manifest(json.dumps(doc).encode(), None, "t"), ImageIndex)


@pytest.mark.parametrize("doc,why", [
    ({"schemaVersion": 1, "name": "x", "fsLayers": []}, "schema 1"),
    ({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, "schema 1"),
    ({"schemaVersion": 3}, "schemaVersion"),
    ({"schemaVersion": 2, "mediaType": "text/html"}, "unsupported manifest media type"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": "sha256:xyz", "size": 1},
      "layers": []}, "digest"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": dg("a"), "size": -1},
      "layers": []}, "size"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"digest": dg("a"), "size": 1}}, "layers"),
    ([1, 2], "not a JSON object"),
])
def test_bad_manifests(doc: Any, why: str) -> None:
    with pytest.raises(ManifestError, match=why):
        parse_manifest(json.dumps(doc).encode(), None, "docker.io/library/x:latest")


def test_not_json() -> None:
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest(b"<html>", None, "x")


def test_select_exact_platform_and_skip_attestations() -> None:
    idx = index(entry("unknown", os="unknown", c="0"), entry("amd64", c="1"), entry("arm64", "v8", c="2"),
                entry("arm", "v7", c="3"), entry("arm", "v6", c="4"))
    assert select_manifest(idx, Platform("linux", "amd64"), "t").digest == dg("1")
    assert select_manifest(idx, Platform.parse("linux/arm64"), "t").digest == dg("2")
    assert select_manifest(idx, Platform.parse("linux/arm/v6"), "t").digest == dg("4")
    assert select_manifest(idx, Platform.parse("linux/arm/v7"), "t").digest == dg("3")


def test_arm64_without_variant_matches_v8() -> None:
    idx = index(entry("arm64", c="5"))
    assert select_manifest(idx, Platform.parse("linux/arm64/v8"), "t").digest == dg("5")


def test_missing_platform_names_the_available_ones() -> None:
    idx = index(entry("unknown", os="unknown", c="0"), entry("amd64", c="1"), entry("arm64", "v8", c="2"))
    with pytest.raises(PlatformNotFound) as e:
        select_manifest(idx, Platform.parse("linux/s390x"), "docker.io/library/hello-world:latest")
    assert "linux/s390x" in str(e.value)
    assert "linux/amd64, linux/arm64/v8" in str(e.value)
    assert "unknown" not in str(e.value)


def test_attestation_by_annotation_is_skipped() -> None:
    idx = index(entry("amd64", c="9", annotations={"vnd.docker.reference.type": "attestation-manifest"}),
                entry("amd64", c="1"))
    assert select_manifest(idx, Platform("linux", "amd64"), "t").digest == dg("1")


@pytest.mark.parametrize("text,expect", [
    ("linux/amd64", "linux/amd64"), ("linux/x86_64", "linux/amd64"), ("linux/aarch64", "linux/arm64/v8"),
    ("LINUX/ARM/V7", "linux/arm/v7"),
])
def test_platform_parse(text: str, expect: str) -> None:
    assert str(Platform.parse(text)) == expect


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d"])
def test_platform_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError, match=text.replace("/", ".")):
        Platform.parse(text)


def test_config_diff_ids_and_platform() -> None:
    c = parse_config(json.dumps({"architecture": "arm", "os": "linux", "variant": "v7",
                                 "rootfs": {"type": "layers", "diff_ids": [dg("d")]}}).encode(), "t")
    assert c.diff_ids == (dg("d"),) and str(c.platform) == "linux/arm/v7"
    with pytest.raises(ManifestError):
        parse_config(b"[]", "t")
