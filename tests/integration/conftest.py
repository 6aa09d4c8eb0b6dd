"""Real registries on 127.0.0.1, test images pushed with python-dxf, fault proxies.

Three registries run for the whole session:
- ``plain``: HTTP, anonymous;
- ``token``: TLS (test CA) with token auth from tests/support/tokenserver.py, like Docker Hub;
- ``basic``: TLS with htpasswd basic auth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import images as test_images
from tests.support.faultproxy import FaultProxy
from tests.support.pki import Pki, make_pki
from tests.support.registry import Registry, start_registry
from tests.support.tokenserver import ISSUER, SERVICE, TokenServer

USER, PASSWORD = "tester", "s3cret-pass"
PUSHER, PUSHER_PASSWORD = "pusher", "push-pass"
PRIVATE_REPO = "private/app"
# This suite's containers go under a cgroup parent of their own: its checks look only at what
# it made, while other minirun users' containers (under "minirun") run beside it.
CGROUP_PARENT = f"minirun-tests-{os.getpid()}"


def cgroup_parents(name: str = CGROUP_PARENT) -> list[Path]:
    """Where containers under the cgroup parent ``name`` have their directories (v2: one;
    v1: one per controller)."""
    from minirun.runtime.cgroups import ROOT, version
    return [ROOT / name] if version() == 2 else [d / name for d in ROOT.iterdir() if (d / "tasks").exists()]


@pytest.fixture(scope="session", autouse=True)
def _own_cgroup_parent() -> Iterator[None]:
    yield
    for d in cgroup_parents():
        if d.is_dir():
            try:
                d.rmdir()
            except OSError:
                pass  # a container left behind: its test has said so


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        # The tests start real services, namespaces, mounts and cgroups: CI runs as root.
        raise pytest.UsageError("the integration tests run as root (sudo scripts/test)")


@dataclass
class Env:
    pki: Pki
    tokens: TokenServer
    plain: Registry
    token: Registry
    basic: Registry
    hub: Registry        # TLS + token on 127.0.0.1:443, reached as registry-1.docker.io
    images: dict[str, test_images.TestImage]


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("registries")
    pki = make_pki(base / "pki")
    tokens = TokenServer(pki.signing_cert, pki.signing_key, pki.server_cert, pki.server_key,
                         {USER: PASSWORD, PUSHER: PUSHER_PASSWORD}, {PRIVATE_REPO})
    htpasswd = base / "htpasswd"
    out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True)
    htpasswd.write_bytes(out.stdout)
    tls = (pki.server_cert, pki.server_key)
    started: list[Registry] = []
    try:
        plain = start_registry("plain", base / "plain")
        started.append(plain)
        token = start_registry("token", base / "token", tls=tls, ca=pki.ca_cert, token={
            "realm": tokens.realm, "service": SERVICE, "issuer": ISSUER,
            "rootcertbundle": str(pki.signing_cert)})
        started.append(token)
        basic = start_registry("basic", base / "basic", tls=tls, ca=pki.ca_cert, htpasswd=htpasswd)
        started.append(basic)

        hub = start_registry("hub", base / "hub", tls=tls, ca=pki.ca_cert, port=443, token={
            "realm": tokens.realm, "service": SERVICE, "issuer": ISSUER,
            "rootcertbundle": str(pki.signing_cert)})
        started.append(hub)

        imgs = test_images.build_images(base / "images")
        for img in imgs.values():
            test_images.push(img, plain.host)
        for name in ("hello-world", "busybox", "busybox-app", "big"):
            test_images.push(imgs[name], hub.host, scheme="https", ca=pki.ca_cert,
                             user=PUSHER, password=PUSHER_PASSWORD)
            test_images.push(imgs[name], token.host, scheme="https", ca=pki.ca_cert,
                             user=PUSHER, password=PUSHER_PASSWORD)
        private = test_images.TestImage(PRIVATE_REPO, "latest", imgs["busybox"].top, imgs["busybox"].top_type,
                                        [], imgs["busybox"].blobs)
        test_images.push(private, token.host, scheme="https", ca=pki.ca_cert,
                         user=PUSHER, password=PUSHER_PASSWORD)
        test_images.push(imgs["busybox"], basic.host, scheme="https", ca=pki.ca_cert,
                         user=USER, password=PASSWORD)
        yield Env(pki, tokens, plain, token, basic, hub, imgs)
    finally:
        for r in started:
            r.stop()
        tokens.close()


@pytest.fixture
def proxy(env: Env) -> Iterator[FaultProxy]:
    """A fault proxy in front of the plain registry."""
    p = FaultProxy(env.plain.url)
    yield p
    p.close()


@pytest.fixture
def token_proxy(env: Env) -> Iterator[FaultProxy]:
    """A fault proxy in front of the TLS + token registry (speaks HTTP to minirun)."""
    p = FaultProxy(env.token.url, ca=env.pki.ca_cert)
    yield p
    p.close()


@dataclass
class Minirun:
    root: Path
    docker_config: Path
    extra_env: dict[str, str]

    def env(self, **more: str) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith(("MINIRUN_", "DOCKER_"))}
        # Containers of tests other than test_network's get no network: the bridge and its
        # NAT rules are only ever made in a network namespace a test made for them.
        e.update(MINIRUN_ROOT=str(self.root), DOCKER_CONFIG=str(self.docker_config), MINIRUN_NETWORK="none",
                 MINIRUN_CGROUP_PARENT=CGROUP_PARENT)
        e.update(self.extra_env)
        e.update(more)
        return e

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "minirun", *args]

    def __call__(self, *args: str, input: bytes | None = None, timeout: float = 120,
                 **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), env=self.env(**env), capture_output=True, text=True,
                              input=input.decode() if input is not None else None, timeout=timeout)

    def popen(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), env=self.env(**env), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def blobs(self) -> set[str]:
        d = self.root / "blobs" / "sha256"
        return {"sha256:" + p.name for p in d.iterdir()} if d.exists() else set()


@pytest.fixture
def minirun(tmp_path: Path) -> Minirun:
    return Minirun(tmp_path / "store", tmp_path / "docker-config", {})


def _minirun_cgroups() -> set[Path]:
    """The container cgroups of this suite (never another user's)."""
    return {d for parent in cgroup_parents() if parent.is_dir() for d in parent.iterdir() if d.is_dir()}


@pytest.fixture
def mr(env: Env, minirun: Minirun) -> Iterator[Minirun]:
    """minirun with the plain test registry as its Docker Hub mirror.

    After each test: no container cgroup and no mount under the store is left behind."""
    minirun.extra_env["MINIRUN_REGISTRY_MIRROR"] = env.plain.url
    before = _minirun_cgroups()
    yield minirun
    assert _minirun_cgroups() - before == set(), "container cgroups left behind"
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    assert [m for m in mounts if m.startswith(str(minirun.root))] == [], "mounts left behind"


def verify_store(root: Path) -> set[str]:
    """Every blob's content hashes to its name; returns the digests. No stray temp files."""
    import hashlib
    out = set()
    for p in (root / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name, f"corrupt blob {p}"
        out.add("sha256:" + p.name)
    return out


@pytest.fixture
def on_overlayfs(tmp_path: Path) -> Iterator[Path]:
    """A directory on an overlayfs mount (where overlayfs cannot stack again)."""
    for d in ("lower", "upper", "work", "merged"):
        (tmp_path / d).mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={tmp_path}/lower,upperdir={tmp_path}/upper,workdir={tmp_path}/work",
                    str(tmp_path / "merged")], check=True)
    yield tmp_path / "merged"
    subprocess.run(["umount", "-l", str(tmp_path / "merged")], check=True)


@pytest.fixture
def small_store(mr: Minirun, tmp_path: Path) -> Iterator[Minirun]:
    """``mr`` with its store on a 24 MiB tmpfs, which a test can fill."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], check=True)
    mr.root = mount / "store"
    try:
        yield mr
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill_disk(directory: Path, leave: int) -> Path:
    """Take all the space of ``directory``'s filesystem but ``leave`` bytes."""
    st = os.statvfs(directory)
    filler = directory / "filler"
    with open(filler, "wb") as f:
        f.truncate(0)
        os.posix_fallocate(f.fileno(), 0, max(st.f_bavail * st.f_frsize - leave, 1))
    return filler


def until(what: str, check: Callable[[], bool], seconds: float = 30) -> None:
    """Wait (bounded) until ``check`` holds; ``what`` names it when it never does."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def created(mr: Minirun, name: str, seconds: float = 20) -> Path:
    """The directory of container ``name`` as soon as its state exists (polled every 0.5 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for d in (mr.root / "containers").glob("*/state.json") if (mr.root / "containers").is_dir() else ():
            try:
                if json.loads(d.read_text())["name"] == name:
                    return d.parent
            except (OSError, ValueError):
                continue
        time.sleep(0.0005)
    raise AssertionError(f"container {name} was never created")
