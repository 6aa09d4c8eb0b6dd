"""Health checks as Docker defines them (pure): the image's ``Healthcheck`` with run's
``--health-*`` flags over it, and how a probe's result moves the status
(``starting`` -> ``healthy`` / ``unhealthy``)."""

from __future__ import annotations

import json
import re

from ..errors import UsageError
from ..records import Record

SECOND = 1_000_000_000
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "Retries": 3, "StartPeriod": 0}
LOG_KEPT = 5          # results kept, as Docker
OUTPUT_KEPT = 4096    # bytes of a probe's output kept, as Docker

_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": SECOND, "m": 60 * SECOND, "h": 3600 * SECOND}
_PART = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str, flag: str) -> int:
    """Go's duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds; 0 alone is 0."""
    if text == "0":
        return 0
    parts = list(_PART.finditer(text))
    if not parts or "".join(p.group(0) for p in parts) != text:
        raise UsageError(f'invalid {flag} "{text}": expected a duration such as 30s, 1m30s or 500ms')
    return int(sum(float(p.group(1)) * _UNITS[p.group(2)] for p in parts))


class Check(Record):
    test: tuple[str, ...]      # CMD or CMD-SHELL and its words
    interval: int              # nanoseconds
    timeout: int
    retries: int
    start_period: int

    def argv(self) -> list[str]:
        """What is executed in the container."""
        if self.test[0] == "CMD-SHELL":
            return ["/bin/sh", "-c", " ".join(self.test[1:])]
        return list(self.test[1:])


def merged(image: dict[str, object] | None, cmd: str | None, interval: str | None, timeout: str | None,
           retries: int | None, start_period: str | None, disabled: bool) -> str:
    """The container's health check as its settings keep it (JSON; "" for none), from the
    image's ``Healthcheck`` and the flags, each flag over the image's field."""
    if disabled:
        if cmd is not None:
            raise UsageError("--no-healthcheck conflicts with --health-* options")
        return ""
    doc = dict(image or {})
    if cmd is not None:
        doc["Test"] = ["CMD-SHELL", cmd]
    for key, text, flag in (("Interval", interval, "--health-interval"), ("Timeout", timeout, "--health-timeout"),
                            ("StartPeriod", start_period, "--health-start-period")):
        if text is not None:
            value = parse_duration(text, flag)
            if value and value < 1_000_000:
                raise UsageError(f"{flag} cannot be less than 1ms")
            doc[key] = value
    if retries is not None:
        if retries < 0:
            raise UsageError("--health-retries cannot be negative")
        doc["Retries"] = retries
    test = doc.get("Test")
    if not isinstance(test, list) or not test or test[0] == "NONE":
        return ""
    return json.dumps({k: doc.get(k) for k in ("Test", "Interval", "Timeout", "Retries", "StartPeriod")})


def check_of(setting: str) -> Check | None:
    """The settings' health check, with Docker's defaults for what is unset (0 = default)."""
    if not setting:
        return None
    doc = json.loads(setting)
    test = tuple(str(w) for w in doc.get("Test") or [])
    if not test or test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        return None

    def value(key: str) -> int:
        v = doc.get(key)
        return int(v) if isinstance(v, int) and v > 0 else DEFAULTS[key]

    return Check(test, value("Interval"), value("Timeout"), value("Retries"), value("StartPeriod"))


def next_status(status: str, streak: int, passed: bool, retries: int, in_start_period: bool) -> tuple[str, int]:
    """(status, failing streak) after a probe, as Docker's: a pass is healthy at once; a
    failure in the start period does not count (unless it was healthy already); ``retries``
    failures in a row are unhealthy."""
    if passed:
        return "healthy", 0
    if in_start_period and status == "starting":
        return status, streak
    streak += 1
    return ("unhealthy" if streak >= retries else status), streak
