"""Start Debian's ``docker-registry`` (the CNCF distribution registry) on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY_BINARY = "docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    name: str
    port: int
    scheme: str
    process: subprocess.Popen[bytes]
    directory: Path
    ca: Path | None = None
    users: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class PortBusy(RuntimeError):
    """The port asked for is taken by another program."""


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening_pid_owns(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port``: a listening socket's inode
    in /proc/net/tcp{,6} among the process's descriptors (as root, or as the registry's owner)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[1].endswith(f":{port:04X}"):  # LISTEN, on that port
                    inodes.add(f"socket:[{fields[9]}]")
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return True
    return False


def _wait_ready(url: str, ca: Path | None, proc: subprocess.Popen[bytes], log: Path, port: int,
                client: tuple[Path, Path] | None = None) -> None:
    """Until the registry answers, and it is the process we started that answers (a registry
    that failed to bind would leave another program's answers to be taken for its own)."""
    ctx = ssl.create_default_context(cafile=str(ca)) if ca else None
    if ctx is not None and client is not None:
        ctx.load_cert_chain(str(client[0]), str(client[1]))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/v2/", timeout=2, context=ctx)
        except urllib.error.HTTPError:
            pass  # 401 means it is up
        except OSError:
            time.sleep(0.1)
            continue
        if listening_pid_owns(proc.pid, port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"docker-registry at {url} did not start (or another program answers there): "
                       f"{log.read_text()[-2000:]}")


def start_registry(name: str, directory: Path, *, tls: tuple[Path, Path] | None = None,
                   token: dict[str, str] | None = None, htpasswd: Path | None = None,
                   ca: Path | None = None, port: int | None = None,
                   client: tuple[Path, Path, Path] | None = None) -> Registry:
    """``token``: realm, service, issuer, rootcertbundle for token auth. ``client``: (CA,
    certificate, key): clients must present a certificate that CA signed (the readiness
    check presents the given one)."""
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        raise RuntimeError("docker-registry is not installed: run scripts/test, which installs it")
    directory.mkdir(parents=True, exist_ok=True)
    if port and not port_is_free(port):
        raise PortBusy(f"port {port} on 127.0.0.1 is in use by another program")
    port = port or free_port()
    lines = [
        "version: 0.1",
        "log:", "  level: error", "  accesslog:", "    disabled: true",
        "storage:", "  filesystem:", f"    rootdirectory: {directory / 'data'}",
        "  delete:", "    enabled: true",
        "http:", f"  addr: 127.0.0.1:{port}", "  secret: minirun-test-secret",
    ]
    if tls:
        lines += ["  tls:", f"    certificate: {tls[0]}", f"    key: {tls[1]}"]
        if client:  # a client certificate this CA signed is required
            lines += ["    clientcas:", f"      - {client[0]}"]
    if token:
        lines += ["auth:", "  token:"] + [f"    {k}: {v}" for k, v in token.items()]
    elif htpasswd:
        lines += ["auth:", "  htpasswd:", "    realm: minirun-basic", f"    path: {htpasswd}"]
    config = directory / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    log = directory / "registry.log"
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT)
    scheme = "https" if tls else "http"
    reg = Registry(name, port, scheme, proc, directory, ca if tls else None)
    try:
        _wait_ready(reg.url, reg.ca, proc, log, port, client[1:] if client else None)
    except Exception:
        reg.stop()
        raise
    return reg
