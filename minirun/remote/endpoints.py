"""Which hosts a reference is pulled from, and how: mirrors for docker.io, TLS or not
(Docker's insecure-registry rules). Pure apart from parsing URLs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import httpx

from ..errors import UsageError
from .reference import DEFAULT_DOMAIN, Reference


@dataclass
class RegistryOptions:
    mirrors: list[str] = field(default_factory=list)
    insecure: list[str] = field(default_factory=list)
    timeout: float = 30.0


@dataclass(frozen=True)
class Endpoint:
    base: str            # scheme://host[:port]
    verify: bool
    mirror: bool = False

    @property
    def host(self) -> str:
        return httpx.URL(self.base).netloc.decode()


def is_insecure(host: str, insecure: list[str]) -> bool:
    """Docker's rule: localhost, 127.0.0.0/8 and the configured hosts or CIDRs."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost" or host in insecure or name in insecure:
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    for entry in insecure:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def parse_mirror(url: str) -> str:
    u = url.strip().rstrip("/")
    if "://" not in u:
        raise UsageError(f'invalid registry mirror "{url}": it must start with http:// or https://')
    try:
        parsed = httpx.URL(u)
    except httpx.InvalidURL:
        raise UsageError(f'invalid registry mirror "{url}": not a URL') from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageError(f'invalid registry mirror "{url}": it must be an http(s) URL with a host')
    if parsed.path not in ("", "/"):
        raise UsageError(f'invalid registry mirror "{url}": it must not contain a path')
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def endpoints_for(ref: Reference, options: RegistryOptions) -> list[Endpoint]:
    out: list[Endpoint] = []
    if ref.domain == DEFAULT_DOMAIN:
        for m in options.mirrors:
            base = parse_mirror(m)
            host = httpx.URL(base).netloc.decode()
            out.append(Endpoint(base, not is_insecure(host, options.insecure), mirror=True))
    host = ref.api_host
    if is_insecure(host, options.insecure):
        out += [Endpoint(f"https://{host}", False), Endpoint(f"http://{host}", False)]
    else:
        out.append(Endpoint(f"https://{host}", True))
    return out
