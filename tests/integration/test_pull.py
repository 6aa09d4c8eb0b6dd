"""`minirun pull`, `images` and `rmi` against real registries (as a user runs them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Env, Minirun, verify_store
from tests.support.explain_doc import with_local_names
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.images import sha256
from tests.support.pki import HUB_HOSTNAME, TEST_HOSTNAME


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_hello_world_through_token_auth_mirror_prints_dockers_lines(env: Env, minirun: Minirun) -> None:
    img = env.images["hello-world"]
    issued = env.tokens.issued
    r = minirun("pull", "hello-world", MINIRUN_REGISTRY_MIRROR=env.token.url)
    assert r.returncode == 0, r.stderr
    layer = img.layer_digests[0].split(":")[1][:12]
    assert lines(r.stdout) == [
        "Using default tag: latest",
        "latest: Pulling from library/hello-world",
        f"{layer}: Pulling fs layer",
        f"{layer}: Verifying Checksum",
        f"{layer}: Download complete",
        f"{layer}: Pull complete",
        f"Digest: {img.digest}",
        "Status: Downloaded newer image for hello-world:latest",
        "docker.io/library/hello-world:latest",
    ]
    assert r.stderr == ""
    # The index, the host's manifest, its config and its layer; no other platform, no attestation.
    assert verify_store(minirun.root) == {img.digest, img.platform_manifest, img.config_digest,
                                          *img.layer_digests}
    assert env.tokens.issued > issued
    assert any("repository:library/hello-world:pull" in e.scope for e in env.tokens.log)


def test_platform_override_and_missing_platform(env: Env, minirun: Minirun) -> None:
    host = env.plain.host
    other = "linux/arm64/v8" if os.uname().machine != "aarch64" else "linux/amd64"
    r = minirun("pull", "--platform", other, f"{host}/library/hello-world")
    assert r.returncode == 0, r.stderr
    rec = json.loads(minirun("images", "--format", "json").stdout.splitlines()[0])
    assert rec["Platform"] == other
    r = minirun("pull", "--platform", "linux/s390x", f"{host}/library/hello-world:latest")
    assert r.returncode == 1
    assert lines(r.stderr) == [lines(r.stderr)[-1]]
    assert "no matching manifest for linux/s390x in the manifest list entries" in r.stderr, r.stderr
    assert "linux/arm64/v8" in r.stderr
    assert "unknown/unknown" not in r.stderr
    r = minirun("pull", "--platform", "linux", f"{host}/library/hello-world")
    assert r.returncode == 1 and 'invalid platform "linux"' in r.stderr


# Docker 20.10.24's answers here (recorded once against this suite's registry): a single-platform
# manifest of another platform is pulled with a warning, and run refuses it (exit 125).
DOCKER_PLATFORM_MISMATCH = ("image with reference {ref} was found but does not match the specified platform: "
                            "wanted linux/s390x, actual: {actual}")


def test_a_single_platform_image_of_another_platform(env: Env, mr: Minirun) -> None:
    from tests.support.images import host_arch
    ref, actual = f"{env.plain.host}/library/busybox:latest", f"linux/{host_arch()}"
    said = DOCKER_PLATFORM_MISMATCH.format(ref=ref, actual=actual)
    r = mr("pull", "--platform", "linux/s390x", ref)
    assert r.returncode == 0 and r.stderr == f"minirun: WARNING: {said}\n", r
    r = mr("run", "--rm", "--platform", "linux/s390x", ref, "true")
    assert r.returncode == 125 and r.stderr.endswith(f"minirun: {said}\n"), r
    assert mr("run", "--rm", ref, "true").returncode == 0  # for this host, as it is


def test_repull_of_cached_tag_costs_one_head(env: Env, minirun: Minirun, proxy: FaultProxy) -> None:
    ref = f"{proxy.host}/library/busybox"
    assert minirun("pull", ref).returncode == 0
    proxy.clear()
    r = minirun("pull", ref)
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[-2:] == [f"Status: Image is up to date for {ref}:latest", f"{ref}:latest"]
    registry_calls = [(q.method, q.path) for q in proxy.log]
    assert registry_calls == [("HEAD", "/v2/library/busybox/manifests/latest")]


def test_shared_layer_is_not_fetched_again(env: Env, minirun: Minirun, proxy: FaultProxy) -> None:
    base = env.images["busybox"].layer_digests[0]
    assert minirun("pull", f"{proxy.host}/library/busybox").returncode == 0
    proxy.clear()
    r = minirun("pull", f"{proxy.host}/library/busybox-app")
    assert r.returncode == 0, r.stderr
    assert f"{base.split(':')[1][:12]}: Already exists" in r.stdout
    assert not proxy.requests("GET", f"/blobs/{base}")
    verify_store(minirun.root)


def test_zstd_uncompressed_and_digest_references(env: Env, minirun: Minirun, proxy: FaultProxy) -> None:
    for name in ("zstd", "plain-tar"):
        img = env.images[name]
        r = minirun("pull", f"{env.plain.host}/library/{name}")
        assert r.returncode == 0, r.stderr
        assert set(img.layer_digests) <= verify_store(minirun.root)
    img = env.images["busybox"]
    ref = f"{proxy.host}/library/busybox@{img.digest}"
    r = minirun("pull", ref)
    assert r.returncode == 0, r.stderr
    assert "Using default tag" not in r.stdout
    assert lines(r.stdout)[0] == f"{img.digest}: Pulling from library/busybox"
    assert f"Status: Downloaded newer image for {ref}" in r.stdout
    proxy.clear()
    r = minirun("pull", ref)
    assert f"Status: Image is up to date for {ref}" in r.stdout
    assert proxy.log == []  # content-addressed: nothing to ask


def test_quiet_and_json_progress(env: Env, minirun: Minirun) -> None:
    ref = f"{env.plain.host}/library/busybox-app"
    r = minirun("pull", "-q", ref)
    assert (r.returncode, r.stdout) == (0, f"{ref}:latest\n")
    minirun("rmi", ref)
    r = minirun("pull", "--progress", "json", ref)
    events = [json.loads(line) for line in r.stdout.splitlines()]  # every line JSON: `| jq` reads it all
    assert events and r.returncode == 0
    layer = env.images["busybox-app"].layer_digests[0][7:19]
    shown = [{k: v for k, v in e.items() if k not in ("t", "n")} for e in events]
    assert {"status": "Pulling fs layer", "id": layer, "stage": "layer", "event": "status",
            "msg": f"{layer}: Pulling fs layer"} in shown
    assert [e["n"] for e in events] == list(range(1, len(events) + 1))  # the --explain=json schema
    downloading = [e for e in events if e["status"] == "Downloading"]
    assert downloading and all(e["progressDetail"]["total"] > 0 for e in downloading)


def test_tty_progress_bars(env: Env, minirun: Minirun) -> None:
    """On a terminal the layers get live lines with bars (run under a real pty)."""
    import pty
    ref = f"{env.plain.host}/library/big"
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(minirun.argv("pull", ref)[0], minirun.argv("pull", ref), minirun.env(COLUMNS="100"))
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "\x1b[" in text  # redrawn in place
    assert "Pull complete" in text and "4.2/4.2 MB" in text
    assert f"Status: Downloaded newer image for {ref}:latest" in text


def test_failures_are_one_line(env: Env, minirun: Minirun, tmp_path: Path) -> None:
    cases = [
        (("pull", f"{env.plain.host}/library/nope"), 1, "not found"),
        (("pull", f"{env.plain.host}/library/busybox:nope"), 1, "manifest for"),
        (("pull", "127.0.0.1:1/library/busybox"), 1, "127.0.0.1:1"),
        (("pull", "Busybox"), 1, 'invalid reference format "Busybox"'),
        (("pull", "--bogus", "busybox"), 125, "No such option: --bogus"),  # a flag: Docker's 125
        (("pull", "--registry-mirror", "mirror.example", "busybox"), 1, "invalid registry mirror"),
        (("rmi", "not-there"), 1, "No such image: not-there"),
    ]
    for args, code, text in cases:
        r = minirun(*args)
        assert r.returncode == code, (args, r.stderr)
        assert len(lines(r.stderr)) == 1 and text in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout in ("", "Using default tag: latest\n"), args


@pytest.mark.parametrize(("args", "first"), [
    ((), "Usage:  minirun [OPTIONS] COMMAND [ARGS]..."),   # (Docker's shape: two spaces)
    (("system",), "Usage:  minirun system [OPTIONS] COMMAND [ARGS]..."),
    (("run", "--help"), "Usage:  minirun run [OPTIONS] IMAGE [COMMAND] [ARG...]")])
def test_a_command_alone_shows_its_help(minirun: Minirun, args: tuple[str, ...], first: str) -> None:
    """On stdout, exit 0, as Docker."""
    r = minirun(*args)
    assert (r.returncode, r.stderr, lines(r.stdout)[0]) == (0, "", first), args


def test_help_and_unknown_commands(minirun: Minirun) -> None:
    """The help lists the commands; an unknown one is one line."""
    assert "  run " in minirun().stdout and "  prune " in minirun("system").stdout
    r = minirun("xyzzy")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "minirun: No such command 'xyzzy'. (see 'minirun --help')\n")


def test_rmi_keeps_shared_blobs(env: Env, minirun: Minirun) -> None:
    host = env.plain.host
    base = env.images["busybox"].layer_digests[0]
    app = env.images["busybox-app"]
    for name in ("busybox", "busybox-app"):
        assert minirun("pull", "-q", f"{host}/library/{name}").returncode == 0
    r = minirun("rmi", f"{host}/library/busybox-app")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0] == f"Untagged: {host}/library/busybox-app:latest"
    assert f"Deleted: {app.layer_digests[1]}" in r.stdout
    blobs = verify_store(minirun.root)
    assert base in blobs and app.layer_digests[1] not in blobs
    table = minirun("images").stdout
    assert "busybox-app" not in table and f"{host}/library/busybox" in table
    image_id = env.images["busybox"].config_digest[7:19]
    assert image_id in table
    r = minirun("rmi", image_id)
    assert r.returncode == 0, r.stderr
    assert verify_store(minirun.root) == set()
    assert lines(minirun("images").stdout) == ["REPOSITORY   TAG       IMAGE ID   CREATED   SIZE"]  # Docker's spacing


def test_schema1_manifest_is_refused(env: Env, minirun: Minirun, proxy: FaultProxy) -> None:
    body = json.dumps({"schemaVersion": 1, "name": "library/old", "tag": "latest", "fsLayers": []}).encode()
    proxy.add(Fault("status", r"/manifests/latest$", status=200, body=body, headers={
        "Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}))
    r = minirun("pull", f"{proxy.host}/library/old")
    assert r.returncode == 1
    assert "schema 1" in r.stderr and len(lines(r.stderr)) == 1


def test_disk_full_is_a_clear_error_and_loses_nothing(env: Env, minirun: Minirun, tmp_path: Path) -> None:
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(root)], check=True)
    try:
        small = Minirun(root, minirun.docker_config, {})
        assert small("pull", "-q", f"{env.plain.host}/library/busybox").returncode == 0
        r = small("pull", f"{env.plain.host}/library/big")
        assert r.returncode == 1
        assert "No space left on device" in r.stderr and len(lines(r.stderr)) == 1
        assert env.images["busybox"].layer_digests[0] in verify_store(root)
        assert f"{env.plain.host}/library/busybox" in small("images").stdout
    finally:
        subprocess.run(["umount", str(root)], check=True)


def _with_test_hostname(minirun: Minirun, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run minirun where registry.minirun.test and registry-1.docker.io resolve to 127.0.0.1."""
    argv = with_local_names(minirun.argv(*args), tmp_path / "hosts", TEST_HOSTNAME, HUB_HOSTNAME)
    return subprocess.run(argv, env=minirun.env(**env), capture_output=True, text=True, timeout=120)


def test_tls_is_verified_against_ssl_cert_file(env: Env, minirun: Minirun, tmp_path: Path) -> None:
    ref = f"{TEST_HOSTNAME}:{env.token.port}/library/busybox"
    r = _with_test_hostname(minirun, tmp_path, "pull", ref)
    assert r.returncode == 1 and "certificate" in r.stderr.lower() and len(lines(r.stderr)) == 1
    r = _with_test_hostname(minirun, tmp_path, "pull", ref, SSL_CERT_FILE=str(env.pki.ca_cert))
    assert r.returncode == 0, r.stderr
    r = _with_test_hostname(minirun, tmp_path, "pull", "--insecure-registry", TEST_HOSTNAME,
                            f"{TEST_HOSTNAME}:{env.token.port}/library/busybox-app")
    assert r.returncode == 0, r.stderr
    # A CA directory (c_rehash layout) works as well.
    certdir = tmp_path / "certs"
    certdir.mkdir()
    shutil.copy(env.pki.ca_cert, certdir / "ca.pem")
    subprocess.run(["openssl", "rehash", str(certdir)], check=True)
    minirun("rmi", ref)
    r = _with_test_hostname(minirun, tmp_path, "pull", ref, SSL_CERT_DIR=str(certdir))
    assert r.returncode == 0, r.stderr


def test_mirror_failure_falls_back(env: Env, minirun: Minirun, proxy: FaultProxy) -> None:
    """A dead mirror, then a mirror that answers 500, then a working one (never the real Hub)."""
    proxy.add(Fault("status", r"/manifests/", method="GET", status=503, times=-1))
    proxy.add(Fault("status", r"/manifests/", method="HEAD", status=503, times=-1))
    mirrors = ["http://127.0.0.1:1", proxy.url, env.token.url]
    args = [a for m in mirrors for a in ("--registry-mirror", m)]
    r = minirun("pull", *args, "busybox")
    assert r.returncode == 0, r.stderr
    assert "Status: Downloaded newer image for busybox:latest" in r.stdout
    assert sha256(env.images["busybox"].top) in verify_store(minirun.root)


def test_local_registry_script_serves_the_offline_demo(minirun: Minirun) -> None:
    """scripts/local-registry, as the README tells a newcomer to use it."""
    from tests.support.registry import free_port
    script = Path(__file__).resolve().parents[2] / "scripts" / "local-registry"
    port = free_port()
    p = subprocess.Popen([sys.executable, str(script), "--port", str(port)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line == f"export MINIRUN_REGISTRY_MIRROR=http://127.0.0.1:{port}\n", p.stderr.read() if p.stderr else ""
        r = minirun("pull", "hello-world", MINIRUN_REGISTRY_MIRROR=line.strip().split("=", 1)[1])
        assert r.returncode == 0, r.stderr
        assert lines(r.stdout)[-2:] == ["Status: Downloaded newer image for hello-world:latest",
                                        "docker.io/library/hello-world:latest"]
    finally:
        p.terminate()
        p.wait(20)


def test_local_registry_script_never_pushes_into_another_registry(env: Env, tmp_path: Path) -> None:
    """On a port another registry holds (the suite's plain one), the script refuses before it
    starts anything: that registry's tags stay as they were. Its starter checks too that the
    process answering is the one it started."""
    import urllib.request

    from tests.support.registry import PortBusy, start_registry
    script = Path(__file__).resolve().parents[2] / "scripts" / "local-registry"
    port = env.plain.port

    def tag_digest() -> str:
        req = urllib.request.Request(f"{env.plain.url}/v2/library/hello-world/manifests/latest", method="HEAD",
                                     headers={"Accept": "application/vnd.oci.image.index.v1+json, "
                                              "application/vnd.docker.distribution.manifest.list.v2+json"})
        with urllib.request.urlopen(req, timeout=10) as answer:
            return str(answer.headers["Docker-Content-Digest"])

    before = tag_digest()
    r = subprocess.run([sys.executable, str(script), "--port", str(port), "--dir", str(tmp_path / "reg")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == (f"local-registry: port {port} on 127.0.0.1 is in use by another program: stop it, or "
                        "choose another with --port N (--port 0: a free one)\n")
    assert tag_digest() == before and not (tmp_path / "reg").exists()
    with pytest.raises(PortBusy):
        start_registry("second", tmp_path / "second", port=port)


def test_docker_hub_origin_after_a_dead_mirror(env: Env, minirun: Minirun, tmp_path: Path) -> None:
    """`minirun pull hello-world` as users type it: registry-1.docker.io, verified TLS, token
    auth; the mirror that fails first is left for the origin, as dockerd does."""
    assert env.hub.port == 443
    r = _with_test_hostname(minirun, tmp_path, "pull", "hello-world", SSL_CERT_FILE=str(env.pki.ca_cert),
                            MINIRUN_REGISTRY_MIRROR="http://127.0.0.1:1")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[-3:] == [f"Digest: {env.images['hello-world'].digest}",
                                    "Status: Downloaded newer image for hello-world:latest",
                                    "docker.io/library/hello-world:latest"]
    assert env.images["hello-world"].layer_digests[0] in verify_store(minirun.root)
    # Without the CA, Docker Hub's name with a certificate we cannot verify is refused.
    minirun("rmi", "hello-world")
    r = _with_test_hostname(minirun, tmp_path, "pull", "hello-world")
    assert r.returncode == 1 and HUB_HOSTNAME in r.stderr and "certificate" in r.stderr.lower()


def snapshots(root: Path) -> set[str]:
    d = root / "snapshots" / "overlay"
    return {"sha256:" + p.name for p in d.iterdir() if len(p.name) == 64} if d.exists() else set()


def test_pull_unpacks_shared_snapshots_and_rmi_prune_collect_them(env: Env, minirun: Minirun) -> None:
    from minirun.oci import chain_ids
    host = env.plain.host
    assert minirun("pull", "-q", f"{host}/library/busybox").returncode == 0
    base = snapshots(minirun.root)
    assert len(base) == 1
    r = minirun("pull", f"{host}/library/busybox-app")
    assert r.returncode == 0, r.stderr
    app = env.images["busybox-app"]
    cfg = json.loads(app.blobs[app.config_digest])
    chains = chain_ids(cfg["rootfs"]["diff_ids"])
    assert snapshots(minirun.root) == set(chains) and base == {chains[0]}
    fs = minirun.root / "snapshots" / "overlay" / chains[1][7:] / "fs"
    assert (fs / "app" / "hello.txt").read_text() == "hello from the app layer\n"
    # Docker's order: a layer's "Pull complete" comes after it was extracted.
    layer = app.layer_digests[1][7:19]
    assert lines(r.stdout).index(f"{layer}: Pull complete") > lines(r.stdout).index(f"{layer}: Download complete")

    r = minirun("rmi", f"{host}/library/busybox-app")
    assert f"Deleted: {chains[1]}" in r.stdout
    assert snapshots(minirun.root) == {chains[0]}
    # Prune removes what no image references (here: nothing is left unreferenced but stale files).
    (minirun.root / "ingest" / ("0" * 64 + ".partial")).write_bytes(b"stale")
    # a manifest's writer killed between writing and renaming (CI's random kills left one)
    (minirun.root / "blobs" / "sha256" / f".{'1' * 64}.99999.tmp").write_bytes(b"torn")
    r = minirun("system", "prune")
    assert r.returncode == 0 and r.stdout.endswith("Total reclaimed space: 9B\n")
    assert snapshots(minirun.root) == {chains[0]}
    minirun("rmi", f"{host}/library/busybox")
    assert snapshots(minirun.root) == set() and verify_store(minirun.root) == set()


def test_pull_killed_during_unpack_leaves_nothing_taken_for_complete(env: Env, minirun: Minirun) -> None:
    import signal
    import time

    from minirun.oci import chain_ids
    img = env.images["many-files"]
    chains = chain_ids(json.loads(img.blobs[img.config_digest])["rootfs"]["diff_ids"])
    work = minirun.root / "snapshots" / "overlay" / "tmp"
    for _ in range(3):
        p = minirun.popen("pull", "-q", f"{env.plain.host}/library/many-files")
        # This pull's own work directory (named <chain>.<pid>), once files are being written.
        many = work / f"{chains[1][7:]}.{p.pid}" / "fs" / "many"
        deadline = time.monotonic() + 60
        while not (many.is_dir() and len(os.listdir(many)) > 100):
            assert time.monotonic() < deadline and p.poll() is None, "the unpack never started"
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)  # well inside the unpack of 20000 files
        p.wait()
        assert chains[1] not in snapshots(minirun.root)
    stale = [d for d in work.iterdir() if d.is_dir()]
    assert stale and 100 < len(os.listdir(stale[0] / "fs" / "many")) < 20000  # killed half way
    r = minirun("pull", f"{env.plain.host}/library/many-files")
    assert r.returncode == 0, r.stderr
    fs = minirun.root / "snapshots" / "overlay" / chains[1][7:] / "fs"
    assert len(os.listdir(fs / "many")) == 20000
    assert not [d for d in work.iterdir() if d.is_dir()]


def test_pull_into_a_store_on_overlayfs_uses_vfs(env: Env, tmp_path: Path, on_overlayfs: Path) -> None:
    m = Minirun(on_overlayfs / "store", tmp_path / "cfg", {})
    r = m("pull", "-q", f"{env.plain.host}/library/busybox-app")
    assert r.returncode == 0, r.stderr
    vfs = m.root / "snapshots" / "vfs"
    top = [p for p in vfs.iterdir() if len(p.name) == 64]
    assert len(top) == 2 and not (m.root / "snapshots" / "overlay").exists()
    # vfs snapshots are whole trees: the top one holds the base layer's files too.
    assert any((p / "fs" / "bin" / "busybox").exists() and (p / "fs" / "app" / "hello.txt").exists()
               for p in top)


def test_images_size_is_docker_s(env: Env, minirun: Minirun) -> None:
    """As Docker's SIZE and inspect .Size: the layers' files as overlay2 measures a layer (the
    bytes of its files and symlinks, a hardlink's once), not the tars, nor what was downloaded."""
    import gzip
    import io
    import tarfile

    from minirun.cli.output import human_size
    img = env.images["busybox"]
    assert minirun("pull", "-q", f"{env.plain.host}/library/busybox").returncode == 0
    files = 0
    for d in img.layer_digests:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(img.blobs[d]))) as tar:
            files += sum(m.size if m.isreg() else len(m.linkname.encode()) if m.issym() else 0 for m in tar)
    tars = sum(len(gzip.decompress(img.blobs[d])) for d in img.layer_digests)
    size = json.loads(minirun("images", "--format", "json").stdout.splitlines()[0])["Size"]
    assert size == human_size(files) != human_size(tars), (size, files, tars)
    r = minirun("inspect", "-f", "{{.Size}} {{.VirtualSize}}", f"{env.plain.host}/library/busybox")
    assert r.stdout == f"{files} {files}\n", r
