"""The ``minirun`` command line: where it starts, what it prints on failure, its exit codes.

Exit codes, as Docker's CLI gives them: 0 success; 1 an operation failed, or bad usage (a
value refused, arguments missing or extra); 125 a flag that does not parse; and 3 the
registry's rate limit (Docker Hub's 429), so scripts can wait and retry.
``run`` exits with its program's code, 125 for any failure of its own and 126/127 when
the command cannot be run or is not found (as docker run).

The CLI is the only layer that prints: this module (errors, exit codes), ``app`` (the typer
app) with the verb modules ``images``, ``auth``, ``containers`` and ``system``, and ``run``, which is
dispatched here without typer: its start time is the product's (see ``runargs``). Under it,
``minirun.ops`` does the work and never prints. This module imports nothing heavy at load time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable

from ..errors import (
    EXIT_RUN_FAILED,
    ArgumentsError,
    ContainerStartError,
    Interrupted,
    MiniRunError,
    RateLimited,
)
from ..records import TYPE_CHECKING
from .output import ensure_stdio, err

if TYPE_CHECKING:
    from ..ops.context import Context

EXIT_FAILURE = 1
EXIT_FLAG = 125   # a flag that does not parse, for every command (Docker's CLI)
EXIT_RATE_LIMITED = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


# -- entry point --------------------------------------------------------------

def _exit_code(e: MiniRunError) -> int:
    if isinstance(e, Interrupted):
        return EXIT_INTERRUPTED
    if isinstance(e, RateLimited):
        return EXIT_RATE_LIMITED
    return EXIT_FAILURE  # bad usage too (a value refused, a reference, an argument missing): Docker's 1


def _run_words(argv: list[str]) -> tuple[str | None, list[str], str] | None:
    """``[--storage-driver X] [container] run|create WORDS...``: (X, WORDS, the verb); None for
    anything else (typer's). ``create`` takes run's flags: it is run's first half."""
    driver = None
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--storage-driver" and i + 1 < len(argv):
            driver, i = argv[i + 1], i + 2
        elif word.startswith("--storage-driver="):
            driver, i = word.partition("=")[2], i + 1
        elif word in ("run", "create"):
            return driver, argv[i + 1:], word
        elif word == "container" and argv[i + 1:i + 2] in (["run"], ["create"]):  # Docker's long form
            return driver, argv[i + 2:], argv[i + 1]
        else:
            return None
    return None


def _hear_notices() -> None:
    """What operations say on the side (a lock waited for) goes to stderr; Ctrl-C is an
    Interrupted error (one line, exit 130), which click would otherwise turn into an Abort."""
    from .. import notices
    notices.hear = err
    signal.signal(signal.SIGINT, _interrupt)


def _interrupt(_signum: int, _frame: object) -> None:
    raise Interrupted("interrupted")


def _run(driver: str | None, words: list[str], verb: str = "run") -> int:
    from .run import run
    _hear_notices()

    def context() -> Context:
        from ..ops.context import Context
        from ..snapshots.rootfs import check_driver
        if driver is not None:
            check_driver(driver)
        return Context.from_environment(driver)
    return run(words, context, create=verb == "create")


def _app(argv: list[str]) -> int:
    from .app import run_app
    from .completion import asked
    asked()  # a shell asking for completions: typer's shells answer it
    _hear_notices()
    if "pull" in argv[:3]:
        # A bare --explain would take the image name as its value (click's optional values).
        argv = ["--explain=text" if a == "--explain" else a for a in argv]
    return run_app(argv)


def _config_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--config FILE`` among the options before the command: (FILE, the rest)."""
    out, flag, i = [], None, 0
    while i < len(argv) and argv[i].startswith("-"):
        if argv[i] == "--config" and i + 1 < len(argv):
            flag, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith("--config="):
            flag = argv[i].partition("=")[2]
        else:
            out.append(argv[i])
        i += 1
    return flag, out + argv[i:]


def main(argv: list[str] | None = None) -> int:
    flag, args = _config_flag(sys.argv[1:] if argv is None else argv)
    return _main(args, _run_words(args), flag)


def _main(args: list[str], split: tuple[str | None, list[str], str] | None, config_flag: str | None = None) -> int:
    """``split``: ``run``'s words (see _run_words). A run returns its program's code as it
    is; a failure of minirun's own exits 125 there, as docker run's do. The configuration
    file is read first (its errors are the command's: 125 for run)."""
    from .. import config

    def configured(call: Callable[[], int]) -> Callable[[], int]:
        def go() -> int:
            config.install(config_flag)
            return call()
        return go

    if split is not None:
        return _guarded(configured(lambda: _run(*split)), EXIT_RUN_FAILED)
    return _guarded(configured(lambda: _app(args)), None)


def _guarded(call: Callable[[], int], failed: int | None) -> int:
    """Every failure becomes one line on stderr and an exit code (``failed`` for any failure
    of minirun's, else by its kind); never a traceback."""
    debug = bool(os.environ.get("MINIRUN_DEBUG"))
    try:
        return call()
    except ContainerStartError as e:
        return _failed(str(e), e.code)
    except RateLimited as e:
        code = _failed(str(e), failed or EXIT_RATE_LIMITED)
        if e.remaining is not None:
            err(f"ratelimit-remaining: {e.remaining}")
        return code
    except ArgumentsError as e:  # (run and create too: Docker's CLI checks their arguments first)
        return _failed(str(e), EXIT_FAILURE)
    except MiniRunError as e:
        if debug:
            _print_traceback()
        return _failed(str(e), EXIT_INTERRUPTED if isinstance(e, Interrupted) else failed or _exit_code(e))
    except KeyboardInterrupt:
        err("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``minirun images | head``): not our failure.
        sys.stderr.close()
        return 141
    except OSError as e:  # what could not be written or read (a full disk, /dev/full): said plainly
        if debug:
            _print_traceback()
        err(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        return failed or EXIT_FAILURE
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            # A usage error from the (vendored) click parser. Docker's CLI: a flag it does not
            # know or cannot parse is 125 for every command; arguments missing, extra or not
            # a command, 1.
            ctx = getattr(e, "ctx", None)
            where = ctx.command_path if ctx is not None else "minirun"
            err(f"{e.format_message()} (see '{where} --help')")
            flag = type(e).__name__ in ("NoSuchOption", "BadOptionUsage", "BadParameter")
            return EXIT_FLAG if flag else EXIT_FAILURE
        if debug:
            _print_traceback()
        err(f"internal error: {type(e).__name__}: {e} (set MINIRUN_DEBUG=1 for details)")
        return failed or EXIT_FAILURE


def _failed(message: str, code: int) -> int:
    """The one line on stderr (after the trace's account of where, under --explain)."""
    from .. import trace
    if trace.active():
        from .explain import explain_error
        explain_error(message, code)
    err(message)
    return code


def _print_traceback() -> None:
    import traceback  # only with MINIRUN_DEBUG: it costs a start 2 ms to import
    traceback.print_exc()


def entry() -> None:
    ensure_stdio()
    flag, args = _config_flag(sys.argv[1:])
    split = _run_words(args)
    code = _main(args, split, flag)
    if split is not None:
        # A finished run skips the interpreter's teardown (5 ms, a tenth of a warm start):
        # nothing of minirun's is pending then (files closed, locks go with the process).
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    try:
        sys.stdout.flush()
    except OSError:
        # What could not be written (and was reported) still sits in the buffer: exit without
        # the interpreter's own last flush, which would fail again and exit 120.
        os._exit(code or EXIT_FAILURE)
    sys.exit(code)


if __name__ == "__main__":
    entry()
