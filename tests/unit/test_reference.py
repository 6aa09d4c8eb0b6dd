"""Docker's reference normalisation, table-driven (distribution/reference's cases)."""

from __future__ import annotations

import pytest

from minirun.errors import ReferenceFormatError
from minirun.remote.reference import parse

D = "sha256:" + "a" * 64

VALID = [
    # input, full string, familiar string, api host
    ("hello-world", "docker.io/library/hello-world:latest", "hello-world:latest", "registry-1.docker.io"),
    ("hello-world:linux", "docker.io/library/hello-world:linux", "hello-world:linux", "registry-1.docker.io"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest", "registry-1.docker.io"),
    ("user/app/sub", "docker.io/user/app/sub:latest", "user/app/sub:latest", "registry-1.docker.io"),
    ("docker.io/hello-world", "docker.io/library/hello-world:latest", "hello-world:latest", "registry-1.docker.io"),
    ("index.docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36",
     "registry-1.docker.io"),
    ("host:5000/app", "host:5000/app:latest", "host:5000/app:latest", "host:5000"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest", "localhost"),
    ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "localhost:5000"),
    ("127.0.0.1:5000/library/busybox", "127.0.0.1:5000/library/busybox:latest",
     "127.0.0.1:5000/library/busybox:latest", "127.0.0.1:5000"),
    ("Registry.Example/app", "Registry.Example/app:latest", "Registry.Example/app:latest", "Registry.Example"),
    (f"app@{D}", f"docker.io/library/app@{D}", f"app@{D}", "registry-1.docker.io"),
    (f"app:tag@{D}", f"docker.io/library/app:tag@{D}", f"app:tag@{D}", "registry-1.docker.io"),
    ("a-b.c/e_f.g-h__i", "a-b.c/e_f.g-h__i:latest", "a-b.c/e_f.g-h__i:latest", "a-b.c"),
    ("x/a__b", "docker.io/x/a__b:latest", "x/a__b:latest", "registry-1.docker.io"),
    ("my-app:1.0_rc-2", "docker.io/library/my-app:1.0_rc-2", "my-app:1.0_rc-2", "registry-1.docker.io"),
    ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest", "[::1]:5000"),
]


@pytest.mark.parametrize("text,full,familiar,api", VALID)
def test_valid(text: str, full: str, familiar: str, api: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert ref.api_host == api


def test_default_tag_is_marked() -> None:
    assert parse("busybox").tag_defaulted
    assert not parse("busybox:latest").tag_defaulted
    assert not parse(f"busybox@{D}").tag_defaulted
    assert parse(f"busybox@{D}").tag is None
    assert parse(f"busybox@{D}").identifier == D
    assert parse("busybox:1").identifier == "1"


INVALID = [
    ("", "empty"),
    ("Foo", "must be lowercase"),
    ("user/Foo", "must be lowercase"),
    ("app:", "tag"),
    ("app:-bad", "tag"),
    ("app:" + "t" * 129, "tag"),
    ("app@sha256:abc", "digest"),
    ("app@md5:" + "a" * 64, "digest"),
    ("app@sha256:" + "A" * 64, "digest"),
    ("app@", "digest"),
    ("a" * 64, "64-character"),
    ("-app", "repository name"),
    ("app-", "repository name"),
    ("a//b", "repository name"),
    ("app name", "white space"),
    ("host:port/app", "registry host"),
    ("-host.com/app", "registry host"),
    ("user/" + "a" * 260, "255"),
    (":tag", "empty"),
]


@pytest.mark.parametrize("text,why", INVALID)
def test_invalid_quotes_input(text: str, why: str) -> None:
    with pytest.raises(ReferenceFormatError) as e:
        parse(text)
    assert f'"{text}"' in str(e.value)
    assert why in str(e.value)
