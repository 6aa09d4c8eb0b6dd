"""Issue 26, the smaller verbs and flags a smoke test uses: create then start, --cidfile,
labels (and ps's label filter), --shm-size, --mount's forms; bad input in one line with
Docker's exit code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.integration.conftest import Env, Minirun
from tests.support import images as test_images
from tests.support.layers import E, tar_bytes


def test_create_then_start(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    cidfile = tmp_path / "cid"
    r = mr("create", "--name", "made", "--cidfile", str(cidfile), "-e", "WHO=made", "busybox",
           "sh", "-c", "echo hello $WHO; exit 3")
    assert r.returncode == 0 and re.fullmatch(r"[0-9a-f]{64}\n", r.stdout), r
    cid = r.stdout.strip()
    assert cidfile.read_text() == cid
    assert mr("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout == "made Created\n"
    assert mr("inspect", "-f", "{{.State.Status}} {{.State.StartedAt}}", "made").stdout == \
        "created 0001-01-01T00:00:00Z\n"
    r = mr("start", "-a", "made")
    assert (r.returncode, r.stdout) == (3, "hello made\n"), r
    r = mr("run", "--cidfile", str(cidfile), "--rm", "busybox", "true")  # it exists: refused, as Docker
    assert r.returncode == 125 and "Container ID file found" in r.stderr and r.stderr.count("\n") == 1, r
    assert mr("ps", "-a", "-q").stdout.split() == [cid[:12]]  # nothing made
    r = mr("create", "--rm", "--name", "gone", "busybox", "true")  # --rm: removed once it has run
    assert r.returncode == 0, r
    assert mr("start", "-a", "gone").returncode == 0
    assert "gone" not in mr("ps", "-a").stdout
    r = mr("create", "-d", "busybox", "true")
    assert r.returncode == 125 and "--detach" in r.stderr, r
    assert mr("rm", "made").returncode == 0


def test_labels_filters_and_shm_size(env: Env, mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    labelled = test_images.crafted("library/labelled", tar_bytes([E("x.txt")]), True, {"Labels": {"tier": "web"}})
    test_images.push(labelled, env.plain.host)
    assert mr("pull", "-q", "labelled").returncode == 0
    r = mr("images", "--filter", "label=tier=web", "--format", "{{.Repository}}")
    assert (r.returncode, r.stdout) == (0, "labelled\n"), r
    assert mr("images", "--filter", "label=tier", "-q").stdout.count("\n") == 1
    assert mr("images", "--filter", "label=tier=db", "-q").stdout == ""
    r = mr("run", "--name", "from-image", "-l", "extra=1", "labelled", "true")
    assert r.returncode == 0, r
    got = json.loads(mr("inspect", "-f", "{{json .Config.Labels}}", "from-image").stdout)
    assert got == {"tier": "web", "extra": "1"}, got  # the image's, merged with those given
    assert mr("rm", "from-image").returncode == 0
    labels = tmp_path / "labels"
    labels.write_text("# the team's\ntier=db\nowner=file\n")
    r = mr("run", "--name", "labelled", "-l", "owner=flag", "--label", "smoke", "--label-file", str(labels),
           "--shm-size", "128m", "busybox", "sh", "-c", "df -k /dev/shm | tail -1")
    assert r.returncode == 0 and r.stdout.split()[1] == str(128 * 1024), r  # its size in KiB
    got = json.loads(mr("inspect", "-f", "{{json .Config.Labels}}", "labelled").stdout)
    assert got == {"tier": "db", "owner": "flag", "smoke": ""}, got
    assert mr("run", "--name", "plain", "busybox", "sh", "-c", "df -k /dev/shm | tail -1").stdout.split()[1] == \
        str(64 * 1024)  # Docker's default
    names = mr("ps", "-a", "--filter", "label=tier=db", "--format", "{{.Names}}").stdout
    assert names == "labelled\n" and mr("ps", "-a", "--filter", "label=smoke", "-q").stdout.count("\n") == 1
    assert mr("ps", "-a", "--filter", "label=tier=web", "-q").stdout == ""
    for bad, said in ((["--shm-size", "0"], "invalid size"), (["-l", "=x"], "invalid label"),
                      (["--label-file", str(tmp_path / "none")], "reading label file")):
        r = mr("run", "--rm", *bad, "busybox", "true")
        assert r.returncode == 125 and said in r.stderr and r.stderr.count("\n") == 1, r
    assert mr("rm", "labelled", "plain").returncode == 0


def test_mount_forms(mr: Minirun, tmp_path: Path) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in.txt").write_text("from the host\n")
    script = ("cat /h/in.txt; echo kept > /v/f; touch /h/ro 2>/dev/null || echo ro; "
              "grep ' /t ' /proc/mounts | cut -d' ' -f4")
    r = mr("run", "--name", "mounted", "--mount", f"type=bind,source={host},target=/h,readonly",
           "--mount", "type=volume,source=mvol,target=/v",
           "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770", "busybox", "sh", "-c", script)
    assert r.returncode == 0, r
    lines = r.stdout.splitlines()
    assert lines[:2] == ["from the host", "ro"], r.stdout
    assert "size=1024k" in lines[2] and "mode=1770" in lines[2], lines
    assert (mr.root / "volumes" / "mvol" / "_data" / "f").read_text() == "kept\n"
    mounts = json.loads(mr("inspect", "-f", "{{json .Mounts}}", "mounted").stdout)
    assert sorted((m["Type"], m["Destination"], m["RW"]) for m in mounts) == [("bind", "/h", False),
                                                                          ("volume", "/v", True)], mounts
    assert mr("rm", "mounted").returncode == 0
    r = mr("run", "--rm", "--mount", "type=bind,source=/nonexistent-dir,target=/h", "busybox", "true")
    assert r.returncode == 125 and "bind source path does not exist" in r.stderr and r.stderr.count("\n") == 1, r
    r = mr("run", "--rm", "--mount", "type=bind,source=/tmp,target=/x,bogus=1", "busybox", "true")
    assert r.returncode == 125 and "unexpected key 'bogus'" in r.stderr, r
    r = mr("run", "--rm", "-v", f"{host}:/x", "--mount", "type=tmpfs,target=/x", "busybox", "true")
    assert r.returncode == 125 and "Duplicate mount point: /x" in r.stderr, r
    assert mr("volume", "rm", "mvol").returncode == 0


def test_top_shows_the_containers_processes_only(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    r = mr("run", "-d", "--name", "busy", "busybox", "sh", "-c", "sleep 41 & sleep 42")
    assert r.returncode == 0, r
    try:
        rows = mr("top", "busy").stdout.splitlines()
        assert rows[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], rows
        commands = sorted(row.split(None, 7)[7] for row in rows[1:])
        assert commands == ["sleep 41", "sleep 42"], rows  # (sh became its last command) and no host process
        r = mr("top", "busy", "-o", "pid,comm")
        assert r.stdout.splitlines()[0].split() == ["PID", "COMMAND"] and len(r.stdout.splitlines()) == 3, r
        r = mr("top", "busy", "-o", "comm")
        assert r.returncode == 1 and "no PID column" in r.stderr, r
    finally:
        assert mr("rm", "-f", "busy").returncode == 0
    assert mr("run", "--name", "ended", "busybox", "true").returncode == 0
    r = mr("top", "ended")
    assert r.returncode == 1 and "is not running" in r.stderr, r
    assert mr("rm", "ended").returncode == 0


def test_export_is_the_containers_files_and_never_the_hosts(mr: Minirun, tmp_path: Path) -> None:
    """export: the image's files and the container's changes (a deletion too), links kept as
    links: a container's symlink to a host path exports as that link, never the host's file."""
    import subprocess
    import tarfile
    assert mr("pull", "-q", "busybox").returncode == 0
    secret = tmp_path / "host-secret"
    secret.write_text("host only\n")
    script = (f"echo made > /made.txt; rm /bin/true; ln -s {secret} /escape; ln -s ../../../../{secret} /up; "
              "mkdir -p /d/e; echo deep > /d/e/f; ln /made.txt /hard")
    assert mr("run", "--name", "ex", "busybox", "sh", "-c", script).returncode == 0
    out = tmp_path / "ex.tar"
    r = mr("export", "-o", str(out), "ex")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
    with tarfile.open(out) as tf:
        members = {m.name: m for m in tf.getmembers()}
        made = tf.extractfile("made.txt")
        assert made is not None and made.read() == b"made\n"
    assert "bin/busybox" in members and "bin/true" not in members and "d/e/f" in members
    assert members["escape"].issym() and members["escape"].linkname == str(secret)
    assert members["up"].issym() and (members["hard"].islnk() or members["made.txt"].islnk())  # one inode
    assert not any(m.size and m.name.endswith("secret") for m in members.values())
    assert b"host only" not in out.read_bytes()
    r = subprocess.run(["bash", "-c", f"{' '.join(mr.argv('export', 'ex'))} | tar -t | grep -c ."],
                       env=mr.env(), capture_output=True, text=True)
    assert r.returncode == 0 and int(r.stdout) == len(members), r
    assert mr("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo on > /live.txt; sleep 30").returncode == 0
    import time
    time.sleep(0.5)
    with subprocess.Popen(mr.argv("export", "live"), env=mr.env(), stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        with tarfile.open(fileobj=p.stdout, mode="r|") as tf:
            assert "live.txt" in [m.name for m in tf]
    assert p.returncode == 0
    r = mr("export", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr, r
    assert mr("rm", "-f", "ex", "live").returncode == 0


# Docker 20.10.24's answers for the same containers and volumes, recorded once here (issue 29:
# `table` formats, aligned as Go's tabwriter with Docker's minimum width of 10 and 3 apart).
DOCKER_PS_TABLE = "NAMES                STATE\na-much-longer-name   created\nalpha                created\n"
DOCKER_VOLUME_LS = "DRIVER    VOLUME NAME\nlocal     some-longer-volume\nlocal     v1\n"
DOCKER_VOLUME_TABLE = "VOLUME NAME          DRIVER\nsome-longer-volume   local\nv1                   local\n"


def test_table_formats_as_dockers(mr: Minirun) -> None:
    assert mr("pull", "-q", "busybox").returncode == 0
    for name in ("alpha", "a-much-longer-name"):
        assert mr("create", "--name", name, "busybox", "true").returncode == 0
    for name in ("v1", "some-longer-volume"):
        assert mr("volume", "create", name).returncode == 0
    assert mr("ps", "-a", "--format", "table {{.Names}}\\t{{.State}}").stdout == DOCKER_PS_TABLE
    assert mr("volume", "ls").stdout == DOCKER_VOLUME_LS
    assert mr("volume", "ls", "--format", "table {{.Name}}\\t{{.Driver}}").stdout == DOCKER_VOLUME_TABLE
    assert mr("rm", "alpha", "a-much-longer-name").returncode == 0
    assert mr("volume", "rm", "v1", "some-longer-volume").returncode == 0
