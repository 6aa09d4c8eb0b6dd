"""Resource limits by the names the OCI runtime spec gives them (``process.rlimits[].type``)
and their numbers (getrlimit(2)): one table for the spec builder, the runtime and the trace."""

from __future__ import annotations

RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
           "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
           "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
           "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}


def short_name(number: int) -> str:
    """Docker's --ulimit name for a resource (``nofile``), or its number."""
    return next((n[7:].lower() for n, r in RLIMITS.items() if r == number), str(number))
