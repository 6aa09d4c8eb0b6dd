"""Registry credentials in Docker's own ``config.json`` format.

minirun reads what ``docker login`` wrote (``auths`` entries, ``credHelpers`` and
``credsStore`` helper programs) and writes the same way, in ``$DOCKER_CONFIG/config.json``
or ``~/.docker/config.json``: through the helper config.json names (``store``/``erase``,
the secret never in the file), else as an ``auths`` entry.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import notices
from ..errors import CredentialsError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def server_key(registry: str) -> str:
    """The key Docker files a registry's credentials under."""
    host = hostname(registry)
    return DOCKER_HUB_KEY if host in _HUB_ALIASES else host


def hostname(entry: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000`` (Docker's ConvertToHostname)."""
    for prefix in ("http://", "https://"):
        if entry.startswith(prefix):
            entry = entry[len(prefix):]
    return entry.split("/", 1)[0]


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise CredentialsError(f"reading {path}: {e.strerror}") from None
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise CredentialsError(f"reading {path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise CredentialsError(f"reading {path}: not a JSON object")
    return doc


def _save(path: Path, doc: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.json.")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise CredentialsError(f"writing {path}: {e.strerror}") from None


def _from_helper(helper: str, key: str) -> Credentials | None:
    program = f"docker-credential-{helper}"
    try:
        out = subprocess.run([program, "get"], input=key.encode(), capture_output=True,
                             timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CredentialsError(f"running credential helper {program}: {e}") from None
    if out.returncode != 0:
        return None  # helpers exit non-zero for "credentials not found"
    try:
        doc = json.loads(out.stdout)
        return Credentials(str(doc["Username"]), str(doc["Secret"]))
    except (ValueError, KeyError, TypeError):
        raise CredentialsError(f"credential helper {program} gave an unreadable answer") from None


def lookup(registry: str) -> Credentials | None:
    """Credentials for ``registry`` (a domain such as ``docker.io`` or ``host:5000``). A
    config.json that cannot be read is said and ignored, as Docker does: a pull goes on
    anonymously (login and logout, which write it, stop on it)."""
    path = config_path()
    try:
        doc = _load(path)
    except CredentialsError as e:
        notices.say(f"warning: {e}: going on without its credentials")
        return None
    key = server_key(registry)
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(hostname(key)), str):
        return _from_helper(helpers[hostname(key)], key)
    auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
    for entry, value in (auths or {}).items():
        if server_key(entry) != key or not isinstance(value, dict):
            continue
        if isinstance(value.get("auth"), str) and value["auth"]:
            try:
                user, _, password = base64.b64decode(value["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise CredentialsError(f"reading {path}: auth for {entry} is not base64 user:password") from None
            return Credentials(user, password)
        if isinstance(value.get("username"), str):
            return Credentials(value["username"], str(value.get("password", "")))
    store = doc.get("credsStore")
    if isinstance(store, str) and store:
        return _from_helper(store, key)
    return None


def _helper_for(doc: dict[str, Any], key: str) -> str | None:
    """The credential helper config.json names for ``key`` (credHelpers, else credsStore)."""
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(hostname(key)), str):
        return str(helpers[hostname(key)])
    store = doc.get("credsStore")
    return store if isinstance(store, str) and store else None


def _run_helper(helper: str, action: str, data: bytes) -> None:
    program = f"docker-credential-{helper}"
    try:
        out = subprocess.run([program, action], input=data, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CredentialsError(f"running credential helper {program}: {e}") from None
    if out.returncode != 0:
        said = (out.stdout or out.stderr).decode(errors="replace").strip().splitlines()
        raise CredentialsError(f"credential helper {program} {action} failed: {said[-1] if said else 'no reason'}")


def store(registry: str, creds: Credentials) -> str:
    """Keep the credentials as Docker does: with the credential helper config.json names
    (credHelpers or credsStore; config.json then holds an empty entry only), else base64 in
    ``auths``. Returns where they went ("in PATH", "by the credential helper ...")."""
    path = config_path()
    doc = _load(path)
    auths = doc.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise CredentialsError(f"writing {path}: 'auths' is not a JSON object")
    key = server_key(registry)
    helper = _helper_for(doc, key)
    if helper is not None:
        secret = {"ServerURL": key, "Username": creds.username, "Secret": creds.password}
        _run_helper(helper, "store", json.dumps(secret).encode())
        auths[key] = {}
        _save(path, doc)
        return f"by the credential helper docker-credential-{helper}"
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths[key] = {"auth": token}
    _save(path, doc)
    return f"in {path}"


def remove(registry: str) -> bool:
    """Forget the credentials for ``registry``; False when there were none."""
    path = config_path()
    doc = _load(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return False
    key = server_key(registry)
    keys = [k for k in auths if server_key(k) == key]
    helper = _helper_for(doc, key)
    if keys and helper is not None:
        _run_helper(helper, "erase", key.encode())
    for k in keys:
        del auths[k]
    if keys:
        _save(path, doc)
    return bool(keys)
