"""--restart as Docker reads it, and when a policy restarts a container (pure)."""

from __future__ import annotations

from ..errors import UsageError

POLICIES = ("no", "always", "unless-stopped", "on-failure")
FIRST_DELAY = 0.1      # seconds: Docker's backoff starts at 100 ms and doubles...
RESET_AFTER = 10.0     # ...until a run lasts this long, then starts again
MAX_DELAY = 60.0       # (Docker's own bound)


def parse(text: str) -> str:
    """``no``, ``always``, ``unless-stopped``, ``on-failure[:MAX]``; as given (checked)."""
    name, colon, count = text.partition(":")
    if name not in POLICIES or (colon and (name != "on-failure" or not count.isdigit())):
        raise UsageError(f'invalid restart policy "{text}": expected no, always, unless-stopped or '
                         "on-failure[:MAX-RETRIES]")
    if name == "on-failure" and colon and int(count) < 0:
        raise UsageError(f'invalid restart policy "{text}": the maximum retry count cannot be negative')
    return text


def name_and_max(policy: str) -> tuple[str, int]:
    """inspect's HostConfig.RestartPolicy: its Name and MaximumRetryCount."""
    name, _, count = (policy or "no").partition(":")
    return name, int(count) if count.isdigit() else 0


def restarts(policy: str, code: int, count: int, stopped_by_user: bool) -> bool:
    """Whether the container is started again after it exited with ``code`` (``count``
    restarts so far): never once the user stopped or killed it; on-failure only for a non-zero
    code, at most MAX times."""
    name, limit = name_and_max(policy)
    if stopped_by_user or name == "no":
        return False
    if name == "on-failure":
        return code != 0 and (limit == 0 or count < limit)
    return True


def next_delay(delay: float, ran_for: float) -> float:
    """The wait before the next restart, after one that ran ``ran_for`` seconds."""
    if ran_for >= RESET_AFTER:
        return FIRST_DELAY
    return min(delay * 2, MAX_DELAY)
