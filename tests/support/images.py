"""Build the test images from real programs and publish them with python-dxf.

python-dxf is an independent registry client, so minirun is never checked against
itself. The images:

- ``library/hello-world``: OCI index with the host's platform (a static C program),
  one other platform and a BuildKit-style attestation entry (``unknown/unknown``);
- ``library/busybox``: Docker schema 2 manifest, Debian's busybox-static with applets;
- ``library/busybox-app``: busybox's base layer plus a layer of its own (shared base);
- ``library/zstd``: one ``tar+zstd`` layer; ``library/plain-tar``: one uncompressed layer;
- ``library/probe``: busybox and ``/probe`` (PROBE_C: terminals and keyrings);
- ``library/big``: a 4 MiB incompressible layer, for slow and interrupted downloads.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"

BUSYBOX = "/bin/busybox"
HELLO_MESSAGE = "Hello from minirun!"
HELLO_C = r"""
#include <stdio.h>
int main(void) {
    puts("\n" "%s" "\n\nThis message shows that your installation appears to be working correctly.");
    return 0;
}
"""
_EPOCH = 1700000000
APPLETS = ["sh", "ls", "cat", "echo", "id", "env", "pwd", "sleep", "true", "false", "mkdir",
           "rm", "hostname", "ps", "mount", "uname", "wc", "head", "yes", "sha256sum", "touch", "dd", "seq",
           "grep", "cut", "tail", "kill"]


# A static probe for what busybox cannot show: terminals (TIOCSTI) and keyrings.
#   probe tty                    each of fds 0-2 and /dev/tty: a terminal? TIOCSTI accepted?
#   probe keyadd DESC DATA CMD.. a new session keyring holding a "user" key DESC, then exec CMD
#   probe keyfind DESC           "found" / "not found" in the session keyring
#   probe udpecho PORT           answers each UDP datagram on PORT with "echo:" and it (busybox
#                                nc has no UDP)
PROBE_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/uio.h>
#define KEY_SPEC_SESSION_KEYRING -3
#define KEYCTL_JOIN_SESSION_KEYRING 1
#define KEYCTL_SEARCH 10
static void tty_report(const char *name, int fd) {
    char c = 'X';
    printf("%s: %s; ", name, isatty(fd) ? "tty" : "not a tty");
    if (ioctl(fd, TIOCSTI, &c) == 0) printf("TIOCSTI accepted\n");
    else printf("TIOCSTI refused: %s\n", strerror(errno));
}
static long i386_call(long nr, long a, long b) {  /* the 32-bit ABI: int 0x80 */
#if defined(__x86_64__)
    long ret;
    __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
    return ret;
#else
    (void)nr; (void)a; (void)b; return -ENOSYS;
#endif
}
static void report(const char *name, long rc) { printf("%s=%d\n", name, rc < 0 ? errno : 0); fflush(stdout); }
static void child_call(const char *name, int op) {  /* in a child: it may change the caller */
    pid_t p = fork();
    if (p == 0) {
        long rc = op == 0 ? unshare(CLONE_NEWUSER) : syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (op == 1 && rc == 0) _exit(0);  /* the clone's own child */
        if (op == 1 && rc > 0) { waitpid(rc, NULL, 0); rc = 0; }
        _exit(rc < 0 ? errno : 0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    printf("%s=%d\n", name, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fflush(stdout);
}
static void syscalls(void) {  /* name=errno (0: it worked) for the calls a seccomp filter decides */
    report("keyctl", syscall(SYS_keyctl, 0, KEY_SPEC_SESSION_KEYRING, 0));
    report("add_key", syscall(SYS_add_key, "user", "minirun-probe", "x", 1, KEY_SPEC_SESSION_KEYRING));
    report("bpf", syscall(SYS_bpf, 5, NULL, 0));
    report("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 0));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, -100, NULL, 0));
    child_call("unshare-user", 0);
    child_call("clone-newuser", 1);
    report("clone3", syscall(SYS_clone3, NULL, 0));
    report("mount", syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, NULL));
    report("personality-query", syscall(SYS_personality, 0xffffffffUL));
    report("personality-other", syscall(SYS_personality, 0x0400000UL));
    syscall(SYS_personality, 0UL);
    report("socket-vsock", syscall(SYS_socket, 40, SOCK_STREAM, 0));
    report("mkdir", syscall(SYS_mkdir, "/tmp/probe-dir", 0755));
    long r = i386_call(288, 0, KEY_SPEC_SESSION_KEYRING);  /* i386's keyctl (x86-64's 288 is accept4) */
    printf("i386-keyctl=%ld\n", r < 0 ? -r : 0);
    r = i386_call(20, 0, 0);  /* i386's getpid */
    printf("i386-getpid=%ld\n", r < 0 ? -r : 0);
    report("x32-keyctl", syscall(0x40000000 | SYS_keyctl, 0, KEY_SPEC_SESSION_KEYRING, 0));
    report("getpid", syscall(SYS_getpid));
    /* Docker's profile allows these (the first three whatever the capabilities, on kernels since 4.8) */
    report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0));
    char here = 'x', there = 0;
    struct iovec local = {&there, 1}, remote = {&here, 1};
    report("process_vm_readv", syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));
    report("pkey_alloc", syscall(SYS_pkey_alloc, 0, 0));
    /* ... and predates these (the same numbers on every architecture since 424): runc's ENOSYS */
    report("cachestat", syscall(451, -1, NULL, NULL, 0));
    report("fchmodat2", syscall(452, AT_FDCWD, "/nonexistent", 0755, 0));
    report("futex_wake", syscall(454, NULL, 0, 0, 0));
    report("statmount", syscall(457, NULL, NULL, 0, 0));
    report("listmount", syscall(458, NULL, NULL, 0, 0));
    report("lsm_list_modules", syscall(461, NULL, NULL, 0));
    report("mseal", syscall(462, 0, 0, 1));
    report("setxattrat", syscall(463, -1, NULL, 0, NULL, NULL, 0));
}
int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "syscalls")) { syscalls(); return 0; }
    if (argc >= 2 && !strcmp(argv[1], "tty")) {
        char name[16];
        for (int fd = 0; fd < 3; fd++) { snprintf(name, sizeof name, "fd %d", fd); tty_report(name, fd); }
        int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
        if (fd < 0) printf("/dev/tty: %s\n", strerror(errno)); else tty_report("/dev/tty", fd);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "keyadd")) {
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "minirun-test") < 0) { perror("join"); return 2; }
        if (syscall(SYS_add_key, "user", argv[2], argv[3], strlen(argv[3]), KEY_SPEC_SESSION_KEYRING) < 0) {
            perror("add_key"); return 2;
        }
        execvp(argv[4], argv + 4);
        perror("exec"); return 2;
    }
    if (argc == 3 && !strcmp(argv[1], "keyfind")) {
        long id = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, "user", argv[2], 0);
        if (id >= 0) { printf("found\n"); return 0; }
        printf("not found: %s\n", strerror(errno)); return 1;
    }
    if (argc == 3 && !strcmp(argv[1], "udpecho")) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[2])); a.sin_addr.s_addr = htonl(INADDR_ANY);
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("udp"); return 2; }
        printf("listening\n"); fflush(stdout);
        for (;;) {
            char buf[512] = "echo:"; struct sockaddr_in from; socklen_t len = sizeof from;
            ssize_t n = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&from, &len);
            if (n >= 0) sendto(s, buf, n + 5, 0, (struct sockaddr *)&from, len);
        }
    }
    fprintf(stderr, "usage: probe tty | keyadd DESC DATA CMD... | keyfind DESC | udpecho PORT | syscalls\n");
    return 2;
}
"""


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class TestImage:
    repo: str
    tag: str
    top: bytes                       # what the tag points to (index or manifest)
    top_type: str
    manifests: list[tuple[bytes, str]] = field(default_factory=list)  # children, pushed by digest
    blobs: dict[str, bytes] = field(default_factory=dict)
    config_digest: str = ""
    layer_digests: list[str] = field(default_factory=list)    # of the host's manifest
    platform_manifest: str = ""

    @property
    def digest(self) -> str:
        return sha256(self.top)


def _tar(entries: list[tuple[str, bytes | None, int, str | None]]) -> bytes:
    """entries: (name, content or None for a directory, mode, symlink target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, content, mode, link in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uid, info.gid = _EPOCH, mode, 0, 0
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tf.addfile(info)
            elif content is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _config(diff_ids: list[str], cmd: list[str], arch: str, variant: str | None,
            extra: dict[str, Any] | None = None) -> bytes:
    doc: dict[str, Any] = {
        "created": "2024-01-01T00:00:00Z", "architecture": arch, "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   **(extra or {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "minirun tests"}],
    }
    if variant:
        doc["variant"] = variant
    return json.dumps(doc, sort_keys=True).encode()


def _manifest(media_type: str, config_type: str, config: bytes,
              layers: list[tuple[str, bytes]]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": t, "digest": sha256(b), "size": len(b)} for t, b in layers],
    }, indent=3).encode()


def host_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def _single(repo: str, layers: list[tuple[str, bytes, bytes]], cmd: list[str],
            media: str = OCI_MANIFEST, config_type: str = OCI_CONFIG, extra: dict[str, Any] | None = None) -> TestImage:
    """layers: (media type, blob, uncompressed tar); ``extra``: more of the config's config."""
    config = _config([sha256(raw) for _, _, raw in layers], cmd, host_arch(), None, extra)
    manifest = _manifest(media, config_type, config, [(t, b) for t, b, _ in layers])
    img = TestImage(repo, "latest", manifest, media, config_digest=sha256(config),
                    layer_digests=[sha256(b) for _, b, _ in layers], platform_manifest=sha256(manifest))
    img.blobs[sha256(config)] = config
    for _, blob, _ in layers:
        img.blobs[sha256(blob)] = blob
    return img


def build_hello(workdir: Path) -> bytes:
    src = workdir / "hello.c"
    src.write_text(HELLO_C.replace("%s", HELLO_MESSAGE))
    out = workdir / "hello"
    subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def build_probe(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    src, out = workdir / "probe.c", workdir / "probe"
    src.write_text(PROBE_C)
    subprocess.run(["gcc", "-static", "-Os", "-s", "-o", str(out), str(src)], check=True)
    return out


def busybox_layer(with_etc: bool = True) -> bytes:
    if not Path(BUSYBOX).exists():
        raise RuntimeError(f"{BUSYBOX} is missing: install Debian's busybox-static (scripts/test does)")
    entries: list[tuple[str, bytes | None, int, str | None]] = [
        ("bin", None, 0o755, None), ("bin/busybox", Path(BUSYBOX).read_bytes(), 0o755, None),
        ("root", None, 0o700, None), ("tmp", None, 0o1777, None),
    ]
    if with_etc:
        entries += [
            ("etc", None, 0o755, None),
            ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                           b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644, None),
            ("etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644, None)]
    entries += [(f"bin/{a}", None, 0o777, "busybox") for a in APPLETS]
    return _tar(entries)


def crafted(repo: str, extra_tar: bytes, with_etc: bool = True, config: dict[str, Any] | None = None) -> TestImage:
    """busybox (with or without its /etc) and one more layer, for the escape tests;
    ``config``: more of the image config's config (Volumes, User)."""
    base = busybox_layer(with_etc)
    return _single(repo, [(DOCKER_LAYER, _gzip(base), base), (OCI_TAR, extra_tar, extra_tar)], ["sh"],
                   DOCKER_MANIFEST, DOCKER_CONFIG, config)


def build_hello_world(workdir: Path) -> TestImage:
    """hello-world: an OCI index, like Docker Hub's (the host's platform, another one, and an
    attestation manifest)."""
    workdir.mkdir(parents=True, exist_ok=True)
    hello_tar = _tar([("hello", build_hello(workdir), 0o755, None)])
    other_arch, other_variant = ("arm64", "v8") if host_arch() != "arm64" else ("amd64", None)
    other_tar = _tar([("hello", f"#!/bin/sh\necho {HELLO_MESSAGE} on {other_arch}\n".encode(), 0o755, None)])
    children, blobs = [], {}
    descs: list[dict[str, Any]] = []
    for tar, arch, variant in ((hello_tar, host_arch(), None), (other_tar, other_arch, other_variant)):
        layer = _gzip(tar)
        config = _config([sha256(tar)], ["/hello"], arch, variant)
        manifest = _manifest(OCI_MANIFEST, OCI_CONFIG, config, [(OCI_GZIP, layer)])
        blobs[sha256(layer)], blobs[sha256(config)] = layer, config
        children.append((manifest, OCI_MANIFEST))
        plat = {"architecture": arch, "os": "linux"} | ({"variant": variant} if variant else {})
        descs.append({"mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest),
                      "platform": plat})
    attest_layer = json.dumps({"_type": "https://in-toto.io/Statement/v0.1"}).encode()
    attest_config = b"{}"
    attest = _manifest(OCI_MANIFEST, OCI_CONFIG, attest_config, [("application/vnd.in-toto+json", attest_layer)])
    blobs[sha256(attest_layer)], blobs[sha256(attest_config)] = attest_layer, attest_config
    children.append((attest, OCI_MANIFEST))
    descs.append({"mediaType": OCI_MANIFEST, "digest": sha256(attest), "size": len(attest),
                  "platform": {"architecture": "unknown", "os": "unknown"},
                  "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                  "vnd.docker.reference.digest": descs[0]["digest"]}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}, indent=3).encode()
    host_manifest = json.loads(children[0][0])
    return TestImage(
        "library/hello-world", "latest", index, OCI_INDEX, children, blobs,
        config_digest=host_manifest["config"]["digest"],
        layer_digests=[x["digest"] for x in host_manifest["layers"]],
        platform_manifest=descs[0]["digest"])


def build_busybox() -> TestImage:
    bb_tar = busybox_layer()
    return _single("library/busybox", [(DOCKER_LAYER, _gzip(bb_tar), bb_tar)], ["sh"], DOCKER_MANIFEST,
                   DOCKER_CONFIG)


def build_images(workdir: Path) -> dict[str, TestImage]:
    import zstandard  # (only here: scripts/local-registry runs without it)
    workdir.mkdir(parents=True, exist_ok=True)
    images: dict[str, TestImage] = {"hello-world": build_hello_world(workdir), "busybox": build_busybox()}
    bb_tar = busybox_layer()
    bb_layer = (DOCKER_LAYER, _gzip(bb_tar), bb_tar)  # the same blob as busybox's (gzip without a time)
    app_tar = _tar([("app", None, 0o755, None), ("app/hello.txt", b"hello from the app layer\n", 0o644, None)])
    images["busybox-app"] = _single("library/busybox-app", [bb_layer, (DOCKER_LAYER, _gzip(app_tar), app_tar)],
                                    ["cat", "/app/hello.txt"], DOCKER_MANIFEST, DOCKER_CONFIG)
    z_tar = _tar([("zstd.txt", b"compressed with zstd\n", 0o644, None)])
    images["zstd"] = _single("library/zstd", [(OCI_ZSTD, zstandard.ZstdCompressor().compress(z_tar), z_tar)],
                             ["cat", "/zstd.txt"])
    p_tar = _tar([("plain.txt", b"an uncompressed layer\n", 0o644, None)])
    images["plain-tar"] = _single("library/plain-tar", [(OCI_TAR, p_tar, p_tar)], ["cat", "/plain.txt"])
    four = []
    for i in range(4):
        t = _tar([(f"layer{i}.bin", os.urandom(256 << 10), 0o644, None)])
        four.append((OCI_GZIP, _gzip(t), t))
    images["four-layers"] = _single("library/four-layers", four, ["true"])
    # Slow to unpack (many small files), on top of busybox so it unpacks through an overlay mount.
    many_tar = _tar([("many", None, 0o755, None)] +
                    [(f"many/f{i:05d}", f"file {i}\n".encode(), 0o644, None) for i in range(20000)])
    images["many-files"] = _single("library/many-files", [bb_layer, (DOCKER_LAYER, _gzip(many_tar), many_tar)],
                                   ["true"], DOCKER_MANIFEST, DOCKER_CONFIG)
    probe_tar = _tar([("probe", build_probe(workdir).read_bytes(), 0o755, None)])
    images["probe"] = _single("library/probe", [bb_layer, (DOCKER_LAYER, _gzip(probe_tar), probe_tar)],
                              ["/probe"], DOCKER_MANIFEST, DOCKER_CONFIG)
    big_tar = _tar([("big.bin", os.urandom(4 << 20), 0o644, None)])
    images["big"] = _single("library/big", [(OCI_TAR, big_tar, big_tar)], ["true"])
    return images


def push_plain(image: TestImage, host: str) -> None:
    """Push to a registry without TLS or auth through the distribution API with the standard
    library alone (scripts/local-registry runs where python-dxf is not installed; the tests
    push with python-dxf, a client independent of minirun)."""
    import urllib.request

    def call(method: str, url: str, body: bytes = b"", media: str = "application/octet-stream") -> str:
        req = urllib.request.Request(url, data=body if method != "POST" else b"", method=method,
                                     headers={"Content-Type": media})
        with urllib.request.urlopen(req, timeout=60) as r:
            return str(r.headers.get("Location", ""))

    base = f"http://{host}/v2/{image.repo}"
    for digest, blob in image.blobs.items():
        location = call("POST", f"{base}/blobs/uploads/")
        if location.startswith("/"):
            location = f"http://{host}{location}"
        call("PUT", f"{location}{'&' if '?' in location else '?'}digest={digest}", blob)
    for body, media in image.manifests:
        call("PUT", f"{base}/manifests/{sha256(body)}", body, media)
    call("PUT", f"{base}/manifests/{image.tag}", image.top, image.top_type)


def push(image: TestImage, host: str, *, scheme: str = "http", ca: Path | None = None,
         user: str | None = None, password: str | None = None) -> None:
    from dxf import DXF

    def auth(dxf: Any, response: Any) -> None:
        dxf.authenticate(user, password, response=response)

    registry = DXF(host, image.repo, auth=auth if user else None, insecure=scheme == "http",
                   tlsverify=str(ca) if ca else True)
    for digest, blob in image.blobs.items():
        assert registry.push_blob(data=iter([blob]), digest=digest) == digest
    for body, _ in image.manifests:
        registry.set_manifest(sha256(body), body.decode())
    registry.set_manifest(image.tag, image.top.decode())

