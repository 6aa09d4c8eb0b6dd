"""Restart policies, health checks and event filters as logic (pure)."""

from __future__ import annotations

import json

import pytest

from minirun.containers import events
from minirun.errors import UsageError
from minirun.spec import health, restart


def test_restart_policies_as_docker_reads_and_applies_them() -> None:
    for good in ("no", "always", "unless-stopped", "on-failure", "on-failure:3"):
        assert restart.parse(good) == good
    for bad in ("sometimes", "always:2", "on-failure:x", "on-failure:-1", ""):
        with pytest.raises(UsageError, match="invalid restart policy"):
            restart.parse(bad)
    assert restart.name_and_max("on-failure:3") == ("on-failure", 3) and restart.name_and_max("") == ("no", 0)
    assert restart.restarts("always", 0, 99, False) and not restart.restarts("always", 1, 0, True)
    assert restart.restarts("on-failure:2", 1, 1, False) and not restart.restarts("on-failure:2", 1, 2, False)
    assert not restart.restarts("on-failure", 0, 0, False) and restart.restarts("on-failure", 9, 100, False)
    assert not restart.restarts("no", 1, 0, False)
    assert restart.next_delay(0.1, 0.5) == 0.2 and restart.next_delay(0.8, 10.0) == 0.1
    assert restart.next_delay(40.0, 1.0) == 60.0


def test_health_checks_merge_the_image_s_and_the_flags() -> None:
    image = {"Test": ["CMD", "/bin/check", "--quick"], "Interval": 5 * health.SECOND, "Retries": 7}
    check = health.check_of(health.merged(image, None, None, "2s", None, None, False))
    assert check is not None and check.argv() == ["/bin/check", "--quick"]
    assert (check.interval, check.timeout, check.retries, check.start_period) == (5e9, 2e9, 7, 0)
    shell = health.check_of(health.merged(image, "curl -f localhost", "1m30s", None, 2, "500ms", False))
    assert shell is not None and shell.argv() == ["/bin/sh", "-c", "curl -f localhost"]
    assert (shell.interval, shell.retries, shell.start_period) == (90e9, 2, 5e8)
    assert health.merged(image, None, None, None, None, None, True) == ""           # --no-healthcheck
    assert health.merged({"Test": ["NONE"]}, None, None, None, None, None, False) == ""
    assert health.check_of(health.merged(None, "true", None, None, None, None, False)).interval == 30e9  # type: ignore[union-attr]
    assert json.loads(health.merged(None, "true", None, None, None, None, False))["Test"] == ["CMD-SHELL", "true"]
    with pytest.raises(UsageError, match="conflicts"):
        health.merged(None, "true", None, None, None, None, True)
    with pytest.raises(UsageError, match="invalid --health-timeout"):
        health.merged(None, "true", None, "1x", None, None, False)


def test_health_status_moves_as_docker_s() -> None:
    assert health.next_status("starting", 0, True, 3, True) == ("healthy", 0)
    assert health.next_status("starting", 0, False, 1, True) == ("starting", 0)     # start period: not counted
    assert health.next_status("starting", 0, False, 2, False) == ("starting", 1)
    assert health.next_status("starting", 1, False, 2, False) == ("unhealthy", 2)
    assert health.next_status("healthy", 0, False, 1, True) == ("unhealthy", 1)     # counted once healthy


def test_event_filters_and_lines() -> None:
    doc = events.event("container", "health_status: healthy", "c" * 64, {"name": "web", "image": "busybox",
                                                                        "team": "a"}, now_ns=1_700_000_000_123456789)
    assert doc["time"] == 1_700_000_000 and doc["status"] == "health_status: healthy"
    assert events.matches(doc, {"event": ["health_status"]}) and events.matches(doc, {"container": ["web"]})
    assert events.matches(doc, {"container": ["ccc"], "label": ["team=a"], "type": ["container"]})
    assert not events.matches(doc, {"event": ["die"]}) and not events.matches(doc, {"label": ["team=b"]})
    assert not events.matches(doc, {"network": ["web"]}) and events.matches(doc, {"image": ["busybox"]})
    assert events.text(doc, "T") == f"T container health_status: healthy {'c' * 64} (image=busybox, name=web, team=a)"
    assert events.go_fields(doc)["Status"] == "health_status: healthy"


def test_the_journal_rotates_and_keeps_its_order(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path
    root = Path(str(tmp_path))
    monkeypatch.setattr(events, "LIMIT", 600)
    for i in range(12):
        events.record(root, "volume", "create", f"v{i}", {"driver": "local"})
    monkeypatch.setattr(events, "LIMIT", 10**6)
    events.record(root, "volume", "create", "v12", {"driver": "local"})  # in the current file, surely
    kept = [str(e["Actor"]["ID"]) for e in events.past(root)]  # type: ignore[index]
    assert (root / events.OLDER).exists() and kept == [f"v{i}" for i in range(13 - len(kept), 13)] and len(kept) >= 4
    (root / events.JOURNAL).open("a").write('{"torn": ')  # a torn last line (a full disk) is passed over
    assert [str(e["Actor"]["ID"]) for e in events.past(root)] == kept  # type: ignore[index]
    # The clock is past until_ns: the rotated file's events, oldest first, then the end.
    older = [str(e["Actor"]["ID"]) for e in events.follow(root, until_ns=0)]  # type: ignore[index]
    assert older and older == kept[: len(older)] and len(older) < len(kept)
