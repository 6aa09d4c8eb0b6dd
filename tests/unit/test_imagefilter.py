"""images' filters and REPOSITORY[:TAG] argument as Docker 20.10 reads them."""

from __future__ import annotations

import pytest

from minirun.cli import imagefilter
from minirun.errors import UsageError


def _row(repo: str, tag: str, image_id: str, created: str, labels: str = "") -> dict[str, object]:
    return {"Repository": repo, "Tag": tag, "ID": image_id, "CreatedAt": created, "Labels": labels}


ROWS = [
    _row("busybox", "latest", "aaa111", "2024-05-01T00:00:00.123456789Z", "tier=base"),
    _row("busybox", "1.36", "aaa111", "2024-05-01T00:00:00.123456789Z", "tier=base"),
    _row("localhost:5000/team/app", "v2", "bbb222", "2024-06-01T00:00:00Z", "tier=app,owner=me"),
    _row("<none>", "<none>", "ccc333", "2024-07-01T00:00:00Z"),
]


def _names(wanted: dict[str, list[str]]) -> list[str]:
    return [f"{r['Repository']}:{r['Tag']}" for r in imagefilter.select(ROWS, wanted)]


def test_repository_argument_and_reference_patterns() -> None:
    assert _names(imagefilter.parse([], "busybox")) == ["busybox:latest", "busybox:1.36"]
    assert _names(imagefilter.parse([], "busybox:1.36")) == ["busybox:1.36"]
    assert _names(imagefilter.parse(["reference=bus*"], None)) == ["busybox:latest", "busybox:1.36"]
    # Go's path.Match: * stops at a slash
    assert _names(imagefilter.parse(["reference=localhost:5000/*"], None)) == []
    assert _names(imagefilter.parse(["reference=localhost:5000/*/*"], None)) == ["localhost:5000/team/app:v2"]
    assert _names(imagefilter.parse(["reference=*:1.3?"], None)) == ["busybox:1.36"]
    assert _names(imagefilter.parse(["reference=busybox:[^l]*"], None)) == ["busybox:1.36"]
    # the same key twice: either
    assert len(_names(imagefilter.parse(["reference=busybox:1.36", "reference=*/*/app"], None))) == 2
    with pytest.raises(UsageError, match="syntax error in pattern"):
        imagefilter.parse(["reference=busy[box"], None)


def test_dangling_label_before_since() -> None:
    assert _names(imagefilter.parse(["dangling=true"], None)) == ["<none>:<none>"]
    assert len(_names(imagefilter.parse(["dangling=false"], None))) == 3
    assert _names(imagefilter.parse(["label=owner=me"], None)) == ["localhost:5000/team/app:v2"]
    assert _names(imagefilter.parse(["label=tier", "label=owner"], None)) == ["localhost:5000/team/app:v2"]
    assert _names(imagefilter.parse(["before=localhost:5000/team/app:v2"], None)) == ["busybox:latest", "busybox:1.36"]
    assert _names(imagefilter.parse(["since=busybox"], None)) == ["localhost:5000/team/app:v2", "<none>:<none>"]
    assert _names(imagefilter.parse(["since=bbb"], None)) == ["<none>:<none>"]  # by ID prefix
    with pytest.raises(UsageError, match="No such image: nosuch"):
        imagefilter.select(ROWS, imagefilter.parse(["before=nosuch"], None))
    for bad in ("dangling=maybe", "size=1", "reference"):
        with pytest.raises(UsageError):
            imagefilter.parse([bad], None)
