"""The flags of ``minirun run``: one table, parsed as Docker parses them (pure).

``run`` is the command whose start time counts, and the CLI framework (typer, with
click and pydantic) costs more to import, build and parse than the whole container
start, so ``run`` does not go through it. Docker's rules (its flag library, pflag):
flags only before the image, everything after it is the command; ``-it`` bundles
short flags; ``--name=x`` or ``--name x``; ``-eK=V``, ``-e=K=V`` or ``-e K=V``;
``--rm=false`` for booleans; ``--`` ends the flags.
"""

from __future__ import annotations

from .errors import ArgumentsError, UsageError
from .records import TYPE_CHECKING, Record

if TYPE_CHECKING:
    from typing import Any, Literal

    Kind = Literal["bool", "str", "list", "int", "opt"]  # opt: a value only after "=" (--explain=json)


class Flag(Record):
    names: tuple[str, ...]      # as shown in help: the short name first
    dest: str                   # the RunArgs field
    kind: Kind
    metavar: str = ""
    help: str = ""


FLAGS: tuple[Flag, ...] = (
    Flag(("--rm",), "rm", "bool", help="Remove the container when it exits."),
    Flag(("--explain",), "explain", "opt", "[=json]",
         "Narrate each step on stderr as it happens (=json: JSON lines), with Docker's part in it."),
    Flag(("-d", "--detach"), "detach", "bool", help="Run in the background; print the container ID."),
    Flag(("--log-driver",), "log_driver", "str", "json-file|none",
         "Log the container's output (json-file, default) or not (none: its output is passed as it is)."),
    Flag(("--log-opt",), "log_opt", "list", "max-size=SIZE|max-file=N", "Bound the container's log (json-file)."),
    Flag(("--name",), "name", "str", "NAME", "Name the container (default: a generated one)."),
    Flag(("--health-cmd",), "health_cmd", "str", "COMMAND", "Command to run to check health (in a shell)."),
    Flag(("--health-interval",), "health_interval", "str", "DURATION", "Time between checks (default 30s)."),
    Flag(("--health-timeout",), "health_timeout", "str", "DURATION", "Longest a check may run (default 30s)."),
    Flag(("--health-retries",), "health_retries", "int", "N", "Failures in a row to be unhealthy (default 3)."),
    Flag(("--health-start-period",), "health_start_period", "str", "DURATION",
         "Time to start in, when failures do not count (default 0s)."),
    Flag(("--no-healthcheck",), "no_healthcheck", "bool", help="Disable the image's health check."),
    Flag(("--restart",), "restart", "str", "no|always|unless-stopped|on-failure[:N]",
         "Restart the container when it exits (its monitor does, with Docker's backoff)."),
    Flag(("--stop-signal",), "stop_signal", "str", "SIGNAL",
         "Signal stop sends first (default: the image's, or SIGTERM)."),
    Flag(("--stop-timeout",), "stop_timeout", "int", "SECONDS", "Seconds stop waits before SIGKILL (default 10)."),
    Flag(("-e", "--env"), "env", "list", "K=V|K", "Set an environment variable (K alone: the caller's)."),
    Flag(("--env-file",), "env_file", "list", "FILE", "Read environment variables from a file."),
    Flag(("-w", "--workdir"), "workdir", "str", "DIR", "Working directory inside the container."),
    Flag(("-u", "--user"), "user", "str", "NAME|UID[:GROUP|GID]", "User to run the program as."),
    Flag(("--entrypoint",), "entrypoint", "str", "CMD", "Override the image's Entrypoint."),
    Flag(("-h", "--hostname"), "hostname", "str", "NAME", "Container host name."),
    Flag(("-i", "--interactive"), "interactive", "bool", help="Keep stdin open."),
    Flag(("-t", "--tty"), "tty", "bool", help="Allocate a pseudo-terminal."),
    Flag(("--network", "--net"), "network", "str", "bridge|none|host|container:NAME|NETWORK",
         "Network: the minirun0 bridge (default; MINIRUN_NETWORK sets another), only lo, the host's, "
         "another container's, a user network (network create)."),
    Flag(("--network-alias", "--net-alias"), "network_alias", "list", "NAME",
         "Another name the container has on its user network."),
    Flag(("--ip",), "ip", "str", "IPv4", "Its address on its user network."),
    Flag(("-p", "--publish"), "publish", "list", "[IP:][HOST_PORT:]PORT[/PROTO]",
         "Publish a container port on the host."),
    Flag(("-P", "--publish-all"), "publish_all", "bool", help="Publish the image's exposed ports on free host ports."),
    Flag(("--dns",), "dns", "list", "IP", "Nameserver for the container's resolv.conf."),
    Flag(("--dns-search",), "dns_search", "list", "DOMAIN", "Search domain for its resolv.conf."),
    Flag(("--dns-option",), "dns_option", "list", "OPTION", "Option for its resolv.conf."),
    Flag(("--add-host",), "add_host", "list", "NAME:IP", "Add a line to its /etc/hosts (IP host-gateway: the bridge)."),
    Flag(("-v", "--volume"), "volume", "list", "/HOST:/CONTAINER[:ro]|NAME:/CONTAINER|/CONTAINER",
         "Bind mount a host path, or mount a volume (named, made on first use; or anonymous)."),
    Flag(("--mount",), "mount", "list", "type=bind|volume|tmpfs,source=...,target=...[,readonly]",
         "Mount a bind, a volume or a tmpfs (Docker's --mount form)."),
    Flag(("--tmpfs",), "tmpfs", "list", "/PATH[:OPTIONS]", "Mount a tmpfs."),
    Flag(("--read-only",), "read_only", "bool", help="Mount the root filesystem read-only."),
    Flag(("--shm-size",), "shm_size", "str", "SIZE", "Size of /dev/shm (default 64m)."),
    Flag(("-l", "--label"), "label", "list", "KEY=VALUE", "Set a label on the container."),
    Flag(("--label-file",), "label_file", "list", "FILE", "Read labels from a file (KEY=VALUE lines)."),
    Flag(("--cidfile",), "cidfile", "str", "FILE", "Write the container's ID to FILE (which must not exist)."),
    Flag(("--privileged",), "privileged", "bool", help="All capabilities, no masked paths."),
    Flag(("--cap-add",), "cap_add", "list", "CAP", "Add a Linux capability."),
    Flag(("--cap-drop",), "cap_drop", "list", "CAP", "Drop a Linux capability (ALL for all)."),
    Flag(("--security-opt",), "security_opt", "list", "seccomp=PROFILE.json|seccomp=unconfined|no-new-privileges",
         "Security options: a seccomp profile in Docker's format (default: Docker's), none, no_new_privs."),
    Flag(("--ulimit",), "ulimit", "list", "NAME=SOFT[:HARD]", "Resource limit, e.g. nofile=1024:2048 "
         "(default: the host's, as minirun has them)."),
    Flag(("-m", "--memory"), "memory", "str", "SIZE", "Memory limit, e.g. 512m."),
    Flag(("--cpus",), "cpus", "str", "N", "CPU limit, e.g. 0.5."),
    Flag(("--pids-limit",), "pids_limit", "int", "N", "Limit the number of processes."),
    Flag(("--init",), "init", "bool", help="Run a reaper as PID 1 for the program."),
    Flag(("--pull",), "pull", "str", "missing|always|never", "Pull the image: if missing (default), always, never."),
    Flag(("--platform",), "platform", "str", "OS/ARCH[/VARIANT]", "Platform to pull (default: this host's)."),
    Flag(("--registry-mirror",), "registry_mirror", "list", "URL",
         "Mirror for docker.io images (also MINIRUN_REGISTRY_MIRROR, comma-separated)."),
    Flag(("--insecure-registry",), "insecure_registry", "list", "HOST",
         "Registry to reach without TLS verification (also MINIRUN_INSECURE_REGISTRIES)."),
    Flag(("--help",), "help", "bool", help="Show this message and exit."),
)

_BY_NAME = {name: flag for flag in FLAGS for name in flag.names}
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")

SUMMARY = "Run a command in a new container (pulling the image if it is not here)."
USAGE = "Usage:  minirun run [OPTIONS] IMAGE [COMMAND] [ARG...]"  # (Docker's two spaces)


class RunArgs(Record):
    image: str = ""
    command: tuple[str, ...] = ()
    rm: bool = False
    detach: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    security_opt: tuple[str, ...] = ()
    ulimit: tuple[str, ...] = ()
    log_driver: str = "json-file"
    log_opt: tuple[str, ...] = ()
    name: str | None = None
    restart: str = "no"
    health_cmd: str | None = None
    health_interval: str | None = None
    health_timeout: str | None = None
    health_retries: int | None = None
    health_start_period: str | None = None
    no_healthcheck: bool = False
    env: tuple[str, ...] = ()
    env_file: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    hostname: str | None = None
    interactive: bool = False
    tty: bool = False
    network: str = ""                # "": MINIRUN_NETWORK, else bridge
    network_alias: tuple[str, ...] = ()
    ip: str | None = None
    publish: tuple[str, ...] = ()
    publish_all: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_option: tuple[str, ...] = ()
    add_host: tuple[str, ...] = ()
    volume: tuple[str, ...] = ()
    mount: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    read_only: bool = False
    shm_size: str | None = None
    label: tuple[str, ...] = ()
    label_file: tuple[str, ...] = ()
    cidfile: str | None = None
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    memory: str | None = None
    cpus: str | None = None
    pids_limit: int | None = None
    init: bool = False
    pull: str = "missing"
    platform: str | None = None
    registry_mirror: tuple[str, ...] = ()
    insecure_registry: tuple[str, ...] = ()
    explain: str | None = None       # "text" or "json"
    help: bool = False


def _usage(message: str, kind: type[UsageError] = UsageError) -> UsageError:
    return kind(f"{message} (see 'minirun run --help')")


def _set(values: dict[str, Any], flag: Flag, name: str, value: str | None) -> None:
    """``value`` None: a boolean flag given bare."""
    if flag.kind == "bool":
        if value is not None and value not in _TRUE + _FALSE:
            raise _usage(f"Invalid value for '{name}': '{value}' is not a valid boolean.")
        values[flag.dest] = value is None or value in _TRUE
    elif flag.kind == "list":
        values.setdefault(flag.dest, []).append(value)
    elif flag.kind == "opt":
        if value not in (None, "text", "json"):
            raise _usage(f"Invalid value for '{name}': '{value}' (expected {name} or {name}=json)")
        values[flag.dest] = value or "text"
    elif flag.kind == "int":
        try:
            values[flag.dest] = int(value or "")
        except ValueError:
            raise _usage(f"Invalid value for '{name}': '{value}' is not a valid integer.") from None
    else:
        values[flag.dest] = value


def parse(argv: list[str]) -> RunArgs:
    """The words after ``run``. Raises UsageError naming the flag and the problem."""
    values: dict[str, Any] = {}
    words = list(argv)
    i = 0

    def next_value(name: str) -> str:
        nonlocal i
        if i >= len(words):
            raise _usage(f"Option '{name}' requires an argument.")
        i += 1
        return words[i - 1]

    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":
            break
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            flag = _BY_NAME.get(name)
            if flag is None:
                raise _usage(f"No such option: {name}")
            if flag.kind in ("bool", "opt"):
                _set(values, flag, name, value if eq else None)
            else:
                _set(values, flag, name, value if eq else next_value(name))
        elif word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):   # a bundle of short flags: -it, -ti, -eK=V
                name = "-" + word[j]
                flag = _BY_NAME.get(name)
                if flag is None:
                    raise _usage(f"No such option: {name}")
                j += 1
                if flag.kind == "bool":
                    _set(values, flag, name, None)
                    continue
                rest = word[j:].removeprefix("=")
                _set(values, flag, name, rest if rest else next_value(name))
                break
        else:
            i -= 1
            break
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    if values.get("help"):
        return RunArgs(**values)
    if i >= len(words):
        raise _usage("Missing argument 'IMAGE'.", ArgumentsError)
    return RunArgs(image=words[i], command=tuple(words[i + 1:]), **values)


def help_text(create: bool = False) -> str:
    rows = []
    for flag in FLAGS:
        if create and flag.dest == "detach":
            continue
        indent = "    " if flag.names[0].startswith("--") else ""  # long names in one column
        shown = indent + ", ".join(flag.names) + (f" {flag.metavar}" if flag.metavar else "")
        rows.append((shown, flag.help))
    usage, summary = (USAGE.replace(" run ", " create "), "Create a new container (run's flags; start runs it).") \
        if create else (USAGE, SUMMARY)
    return "\n".join([usage, "", summary, "", "Options:", *option_lines(rows, 40)]) + "\n"


def option_lines(rows: list[tuple[str, str]], widest: int | None = None) -> list[str]:
    """Options as Docker's help aligns them: each (flags shown, help) in two columns, three
    spaces past the widest flags (at most ``widest``: a longer one has its help on the next line)."""
    width = max((len(s) for s, _ in rows), default=0)
    width = (width if widest is None else min(width, widest)) + 3
    lines = []
    for shown, text in rows:
        lines += [f"  {shown.ljust(width)}{text}".rstrip()] if len(shown) < width else \
            [f"  {shown}", f"  {' ' * width}{text}".rstrip()]
    return lines


def network_mode(a: RunArgs, default: str | None) -> str:
    """--network, else ``default`` (MINIRUN_NETWORK's), else Docker's: the bridge."""
    return a.network or default or "bridge"
