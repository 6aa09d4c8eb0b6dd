"""The ``minirun`` command line: where it starts, what it prints on failure, its exit codes.

Exit codes: 0 success; 1 an operation failed; 2 bad usage (flags, references);
3 the registry's rate limit (Docker Hub's 429), so scripts can wait and retry.
``run`` exits with its program's code, and 125 for any failure of its own (as docker run).

The CLI modules are the only ones that print: this one (errors), ``cli_app`` (the typer
app: pull, images, rmi, system, login, logout), ``cli_containers`` (ps, rm) and
``cli_run`` (run). ``run`` is dispatched here without typer: its start time is the
product's (see ``runargs``). This module imports nothing heavy at load time.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import MiniRunError, RateLimited, ReferenceFormatError, UsageError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_RATE_LIMITED = 3
EXIT_RUN_FAILED = 125   # `run`: minirun failed before the program started

# Global options, set by the typer app's callback or by the run dispatch below.
settings: dict[str, str | None] = {"storage_driver": None}


def _err(message: str) -> None:
    sys.stderr.write(f"minirun: {message}\n")
    sys.stderr.flush()


class ProgramExited(Exception):
    """The container's program ended with ``code``: passed through as it is, never remapped."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# -- shared by the commands ---------------------------------------------------

def set_storage_driver(name: str | None) -> None:
    if name is not None:
        from .rootfs import check_driver
        check_driver(name)  # now, even where no snapshot is made (not root)
    settings["storage_driver"] = name


def _store() -> Any:
    from .store import ContentStore, ImageStore, default_root
    root = default_root()
    return ImageStore(root, ContentStore(root))


def _snapshotter(images: Any) -> Any:
    """Snapshots need root (devices, ownership, mounts); others only download."""
    if os.geteuid() != 0:
        return None
    from .rootfs import Snapshotter, choose_driver
    return Snapshotter(images.root, choose_driver(images.root, settings["storage_driver"]))


def _registry_options(mirrors: Sequence[str], insecure: Sequence[str]) -> Any:
    from .registry import RegistryOptions, parse_mirror
    env_mirrors = [m for m in os.environ.get("MINIRUN_REGISTRY_MIRROR", "").split(",") if m.strip()]
    env_insecure = [h.strip() for h in os.environ.get("MINIRUN_INSECURE_REGISTRIES", "").split(",") if h.strip()]
    all_mirrors = [parse_mirror(m) for m in (mirrors or env_mirrors)]
    return RegistryOptions(all_mirrors, list(insecure) + env_insecure)


def wanted_platform(flag: str | None) -> Any:
    """--platform, else DOCKER_DEFAULT_PLATFORM, else this host's (as Docker)."""
    from .oci import Platform
    text = flag or os.environ.get("DOCKER_DEFAULT_PLATFORM")
    return Platform.parse(text) if text else Platform.host()


def do_pull(image: str, platform: str | None, progress_mode: str, mirrors: Sequence[str],
            insecure: Sequence[str], out: Any) -> Any:
    """Pull ``image``; shared by ``pull`` and ``run``. Returns (Reference, PullResult)."""
    from . import credentials, reference
    from .progress import renderer
    from .pull import pull

    ref = reference.parse(image)
    plat = wanted_platform(platform)
    options = _registry_options(mirrors, insecure)
    images = _store()
    creds = credentials.lookup(ref.domain)
    snapshots = _snapshotter(images)
    render = renderer(progress_mode, out)
    try:
        return ref, pull(ref, images, options, plat, render, creds, snapshots)
    finally:
        render.close()


# -- entry point --------------------------------------------------------------

def _exit_code(e: MiniRunError) -> int:
    if isinstance(e, RateLimited):
        return EXIT_RATE_LIMITED
    if isinstance(e, UsageError | ReferenceFormatError):
        return EXIT_USAGE
    return EXIT_FAILURE


def _run_words(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """``[--storage-driver X] run WORDS...``: (X, WORDS); None for anything else (typer's)."""
    driver = None
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--storage-driver" and i + 1 < len(argv):
            driver, i = argv[i + 1], i + 2
        elif word.startswith("--storage-driver="):
            driver, i = word.partition("=")[2], i + 1
        elif word == "run":
            return driver, argv[i + 1:]
        else:
            return None
    return None


def _run(driver: str | None, words: list[str]) -> int:
    from . import cli_run
    set_storage_driver(driver)
    return cli_run.run(words)


def _app(argv: list[str]) -> int:
    from . import cli_app
    return cli_app.run_app(argv)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return _main(args, _run_words(args))


def _main(args: list[str], split: tuple[str | None, list[str]] | None) -> int:
    """``split``: ``run``'s words (see _run_words); its own failures exit 125, as docker run's do."""
    try:
        if split is not None:
            code = _guarded(lambda: _run(*split))
        else:
            code = _guarded(lambda: _app(args))
    except ProgramExited as e:
        return e.code
    return EXIT_RUN_FAILED if split is not None and code in (EXIT_FAILURE, EXIT_USAGE, EXIT_RATE_LIMITED) else code


def _guarded(call: Callable[[], int]) -> int:
    """Every failure becomes one line on stderr and an exit code; never a traceback."""
    debug = bool(os.environ.get("MINIRUN_DEBUG"))
    try:
        return call()
    except RateLimited as e:
        _err(str(e))
        if e.remaining is not None:
            _err(f"ratelimit-remaining: {e.remaining}")
        return EXIT_RATE_LIMITED
    except MiniRunError as e:
        if debug:
            _print_traceback()
        _err(str(e))
        return _exit_code(e)
    except ProgramExited:
        raise
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``minirun images | head``): not our failure.
        sys.stderr.close()
        return 141
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):
            # A usage error from the (vendored) click parser: bad flag, missing argument.
            ctx = getattr(e, "ctx", None)
            where = ctx.command_path if ctx is not None else "minirun"
            _err(f"{e.format_message()} (see '{where} --help')")
            return EXIT_USAGE
        if debug:
            _print_traceback()
        _err(f"internal error: {type(e).__name__}: {e} (set MINIRUN_DEBUG=1 for details)")
        return EXIT_FAILURE


def _print_traceback() -> None:
    import traceback  # only with MINIRUN_DEBUG: it costs a start 2 ms to import
    traceback.print_exc()


def entry() -> None:
    args = sys.argv[1:]
    split = _run_words(args)
    code = _main(args, split)
    if split is not None:
        # A finished run skips the interpreter's teardown (5 ms, a tenth of a warm start):
        # nothing of minirun's is pending then (files closed, locks go with the process).
        with contextlib.suppress(OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
