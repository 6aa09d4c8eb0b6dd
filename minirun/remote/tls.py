"""Whom a registry's TLS is checked against: the system's trust store, the configuration's
extra CA files (``ca-files``, MINIRUN_CA_FILES), and Docker's per-registry directories
(``certs-dirs``, MINIRUN_CERTS_DIRS; by default ``/etc/minirun/certs.d`` and Docker's own
``/etc/docker/certs.d``): in ``DIR/HOST[:PORT]/``, each ``*.crt`` is a CA for that registry
and each ``NAME.cert`` with its ``NAME.key`` a client certificate to present, as Docker reads
them. ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` still replace the system's store (OpenSSL's
rule)."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from ..errors import UsageError

DEFAULT_CERTS_DIRS = ("/etc/minirun/certs.d", "/etc/docker/certs.d")


def _list(environ: Mapping[str, str], var: str) -> list[str]:
    return [v for v in environ.get(var, "").split(",") if v]


def registry_files(host: str, environ: Mapping[str, str]) -> tuple[list[Path], list[tuple[Path, Path]]]:
    """For ``host`` (``name[:port]``): its CA files and (certificate, key) pairs."""
    cas: list[Path] = [Path(p) for p in _list(environ, "MINIRUN_CA_FILES")]
    pairs: list[tuple[Path, Path]] = []
    for base in _list(environ, "MINIRUN_CERTS_DIRS") or DEFAULT_CERTS_DIRS:
        d = Path(base) / host  # Docker's name for it: host, or host:port
        if not d.is_dir():
            continue
        cas += sorted(d.glob("*.crt"))
        for cert in sorted(d.glob("*.cert")):
            key = cert.with_suffix(".key")
            if not key.is_file():
                raise UsageError(f"client certificate {cert}: no key {key.name} beside it")
            pairs.append((cert, key))
    return cas, pairs


def _system_trust(ctx: ssl.SSLContext, environ: Mapping[str, str]) -> None:
    """The system's trust store, as ``ssl.create_default_context`` loads it, but from its
    hashed directory where there is one (Debian's /etc/ssl/certs): OpenSSL then reads a CA when
    a chain asks for it, where the bundle file is parsed whole first, 20 ms of every pull here.
    SSL_CERT_FILE or SSL_CERT_DIR set: OpenSSL's default paths, which honour them."""
    capath = ssl.get_default_verify_paths().capath
    if not environ.get("SSL_CERT_FILE") and not environ.get("SSL_CERT_DIR") and capath and _hashed(capath):
        ctx.load_verify_locations(capath=capath)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)


def _hashed(directory: str) -> bool:
    """Whether ``directory`` holds OpenSSL's subject-hash links (``c_rehash``: 8 hex, a dot, a digit)."""
    try:
        with os.scandir(directory) as entries:
            return any(len(e.name) >= 10 and e.name[8] == "." and e.name[9:].isdigit()
                       and all(c in "0123456789abcdef" for c in e.name[:8]) for e in entries)
    except OSError:
        return False


def context(host: str, environ: Mapping[str, str] = os.environ) -> ssl.SSLContext:
    """The TLS context for a registry at ``host``: verified (hostname and chain), as
    ``ssl.create_default_context``'s."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _system_trust(ctx, environ)
    cas, pairs = registry_files(host, environ)
    for path in cas:
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as e:
            raise UsageError(f"loading CA file {path} for {host}: {getattr(e, 'strerror', None) or e}") from None
    for cert, key in pairs:
        try:
            ctx.load_cert_chain(str(cert), str(key))
        except (OSError, ssl.SSLError) as e:
            raise UsageError(f"loading client certificate {cert} for {host}: {getattr(e, 'strerror', None) or e}") \
                from None
    return ctx
