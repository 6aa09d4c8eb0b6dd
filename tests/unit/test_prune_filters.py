"""prune's --filter as Docker reads it: until= (a time, Unix seconds or a duration ago),
label=, label!=."""

from __future__ import annotations

import time

import pytest

from minirun.errors import UsageError
from minirun.ops.prune import parse_filters


def test_until_label_and_not_label() -> None:
    f = parse_filters(["until=2024-01-01T00:00:00Z", "label=tier", "label!=keep=yes"])
    assert f.keeps("2023-12-31T23:59:59.5+00:00", {"tier": "db"})
    assert not f.keeps("2024-01-01T00:00:00Z", {"tier": "db"})          # not before
    assert not f.keeps("2023-06-01T00:00:00Z", {})                      # no tier label
    assert not f.keeps("2023-06-01T00:00:00Z", {"tier": "db", "keep": "yes"})
    assert f.keeps("2023-06-01T00:00:00Z", {"tier": "db", "keep": "no"})
    ago = parse_filters(["until=1h"])
    assert ago.until is not None and abs(ago.until - (time.time() - 3600)) < 5
    assert parse_filters(["until=1700000000"]).until == 1700000000
    assert parse_filters([]).keeps("", {})


@pytest.mark.parametrize("bad", ["since=1h", "until", "label", "dangling=true", "until=tomorrow"])
def test_refused(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_filters([bad])
