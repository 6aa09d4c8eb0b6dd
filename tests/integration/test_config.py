"""The configuration file (issue 23): what sudo's cleared environment loses, kept in
/etc/minirun/config.toml (here: files the tests write, named by --config or MINIRUN_CONFIG),
under `env -i` as sudo leaves it; the environment and flags still win; Docker's certs.d
layout for a registry's CA. As root, against the suite's registries."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import CGROUP_PARENT, Env
from tests.support.explain_doc import with_local_names
from tests.support.pki import TEST_HOSTNAME

MINIRUN = [sys.executable, "-m", "minirun"]


def _cleared(*args: str, hosts: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """minirun as `sudo` starts it: no variable of the caller's (PATH and HOME only). With
    ``hosts``: where registry.minirun.test resolves to 127.0.0.1 (a name TLS is checked for;
    127.0.0.1 itself is an insecure registry by Docker's rule)."""
    base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "MINIRUN_CGROUP_PARENT": CGROUP_PARENT,
            "MINIRUN_NETWORK": "none"}
    argv = [*MINIRUN, *args] if hosts is None else with_local_names([*MINIRUN, *args], hosts, TEST_HOSTNAME)
    return subprocess.run(argv, env={**base, **env}, capture_output=True, text=True, timeout=120)


def test_a_cleared_environment_takes_root_mirror_and_log_options_from_the_file(env: Env, tmp_path: Path) -> None:
    store = tmp_path / "store"
    config = tmp_path / "config.toml"
    config.write_text(f'root = "{store}"\nregistry-mirrors = ["{env.plain.url}"]\n'
                      '[log-opts]\nmax-size = "1k"\nmax-file = "2"\n')
    r = _cleared("--config", str(config), "run", "--name", "cfg", "busybox", "sh", "-c", "seq 1 2000")
    assert r.returncode == 0, r.stderr
    assert (store / "containers").is_dir()  # the file's root, with the file's mirror
    logs = sorted(p.name for p in next((store / "containers").iterdir()).glob("*-json.log*"))
    assert len(logs) == 2, logs  # the file's log options: rotated at 1k, two files kept
    r = _cleared("info", MINIRUN_CONFIG=str(config))
    assert f" Config File: {config}\n" in r.stdout and f"  MINIRUN_ROOT={store} (from {config})\n" in r.stdout, r
    # The environment wins over the file, and a flag over both.
    other = tmp_path / "other"
    r = _cleared("--config", str(config), "info", MINIRUN_ROOT=str(other))
    assert f"  MINIRUN_ROOT={other} (from environment)\n" in r.stdout and f" Root Dir: {other}\n" in r.stdout
    r = _cleared("--config", str(config), "pull", "--registry-mirror", "http://127.0.0.1:1", "busybox")
    assert r.returncode == 1, r  # the flag's (dead) mirror, not the file's, which has busybox
    assert _cleared("--config", str(config), "rm", "cfg").returncode == 0


def test_a_bad_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    for text, said in (("root = 3\n", "root must be a string, not 3"), ("bogus = 1\n", "unknown setting 'bogus'"),
                       ("root = [\n", "not valid TOML"), ('root = "relative"\n', "root must be an absolute path")):
        bad.write_text(text)
        r = _cleared("--config", str(bad), "run", "--rm", "busybox", "true")
        assert r.returncode == 125 and r.stderr.startswith(f"minirun: reading {bad}: ") and said in r.stderr, r
        assert r.stderr.count("\n") == 1 and r.stdout == ""
    r = _cleared("images", MINIRUN_CONFIG=str(tmp_path / "missing.toml"))
    assert (r.returncode, r.stderr) == (1, f"minirun: reading {tmp_path / 'missing.toml'}: no such file\n")


def test_a_registrys_ca_from_certs_d_or_the_file(env: Env, tmp_path: Path) -> None:
    """A TLS registry with the test CA: refused without it, trusted through Docker's
    certs.d/HOST:PORT/ca.crt layout, or through the file's ca-files."""
    host = f"{TEST_HOSTNAME}:{env.token.port}"
    ref, hosts = f"{host}/library/hello-world", tmp_path / "hosts"
    base = {"MINIRUN_ROOT": str(tmp_path / "store")}
    r = _cleared("pull", "-q", ref, hosts=hosts, **base, MINIRUN_CERTS_DIRS=str(tmp_path / "none"))
    assert r.returncode == 1 and "certificate" in r.stderr.lower(), r
    certs = tmp_path / "certs.d"
    (certs / host).mkdir(parents=True)
    shutil.copy(env.pki.ca_cert, certs / host / "ca.crt")
    r = _cleared("pull", "-q", ref, hosts=hosts, **base, MINIRUN_CERTS_DIRS=str(certs))
    assert r.returncode == 0, r.stderr
    assert _cleared("rmi", ref, hosts=None, MINIRUN_ROOT=base["MINIRUN_ROOT"]).returncode == 0
    config = tmp_path / "config.toml"
    config.write_text(f'ca-files = ["{env.pki.ca_cert}"]\ncerts-dirs = ["{tmp_path / "none"}"]\n')
    r = _cleared("--config", str(config), "pull", "-q", ref, hosts=hosts, **base)
    assert r.returncode == 0, r.stderr


def test_a_client_certificate_from_certs_d(env: Env, tmp_path: Path) -> None:
    """A registry that asks for a client certificate: refused without one; with Docker's
    certs.d/HOST:PORT/client.cert and client.key (and its ca.crt), pulled."""
    from tests.support import images as test_images
    from tests.support.registry import start_registry
    pki = env.pki
    filling = start_registry("mtls-fill", tmp_path / "mtls")  # the same storage, filled over plain HTTP
    try:
        test_images.push(env.images["hello-world"], filling.host)
    finally:
        filling.stop()
    registry = start_registry("mtls", tmp_path / "mtls", tls=(pki.server_cert, pki.server_key), ca=pki.ca_cert,
                              client=(pki.ca_cert, pki.client_cert, pki.client_key))
    try:
        host = f"{TEST_HOSTNAME}:{registry.port}"
        certs = tmp_path / "certs.d"
        (certs / host).mkdir(parents=True)
        shutil.copy(pki.ca_cert, certs / host / "ca.crt")
        ref, hosts = f"{host}/library/hello-world", tmp_path / "hosts"
        base = {"MINIRUN_ROOT": str(tmp_path / "store"), "MINIRUN_CERTS_DIRS": str(certs)}
        r = _cleared("pull", "-q", ref, hosts=hosts, **base)
        assert r.returncode == 1, r  # no client certificate: the handshake fails
        shutil.copy(pki.client_cert, certs / host / "client.cert")
        shutil.copy(pki.client_key, certs / host / "client.key")
        r = _cleared("pull", "-q", ref, hosts=hosts, **base)
        assert r.returncode == 0, r.stderr
    finally:
        registry.stop()
