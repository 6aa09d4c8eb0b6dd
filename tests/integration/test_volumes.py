"""Issue 26, volumes: named volumes made on first use and kept across containers, Docker's
copy-up of the image's content (owner and mode kept), the image's Volumes as anonymous
volumes (rm -v, --rm), the volume verbs and their refusals, and a copy-up that never leaves
the image for the host. The image is postgres's shape from what the tests have: busybox whose
config declares a Volume with seed content owned by a non-root user, who runs it."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Env, Minirun
from tests.support import images as test_images
from tests.support.layers import E, tar_bytes

PG_UID = 999
SEED = [E("data", "dir", mode=0o750, uid=PG_UID, gid=PG_UID),
        E("data/seed.txt", data=b"seed\n", mode=0o640, uid=PG_UID, gid=PG_UID),
        E("data/link", "sym", target="seed.txt")]


def _push(env: Env, repo: str, entries: list[E], config: dict[str, object]) -> str:
    test_images.push(test_images.crafted(f"library/{repo}", tar_bytes(entries), True, config), env.plain.host)
    return repo


@pytest.fixture
def pgish(env: Env, mr: Minirun) -> Iterator[str]:
    """An image whose /data is a declared Volume with seed content, run as its owner."""
    yield _push(env, "pgish", SEED, {"Volumes": {"/data": {}}, "User": str(PG_UID)})
    for name in mr("ps", "-a", "-q").stdout.split():
        mr("rm", "-f", "-v", name)


def _volumes(mr: Minirun, *filters: str) -> list[str]:
    r = mr("volume", "ls", "-q", *[f"--filter={f}" for f in filters])
    assert r.returncode == 0, r
    return r.stdout.split()


def test_a_named_volume_is_filled_from_the_image_and_outlives_its_containers(mr: Minirun, pgish: str) -> None:
    r = mr("run", "--rm", "-v", "pgdata:/data", pgish, "sh", "-c", "cat /data/seed.txt; echo new > /data/added; id -u")
    assert (r.returncode, r.stdout) == (0, f"seed\n{PG_UID}\n"), r  # its owner could write: copy-up kept it
    data = mr.root / "volumes" / "pgdata" / "_data"
    st = data.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (PG_UID, 0o750)
    seed = (data / "seed.txt").stat()
    assert (seed.st_uid, stat.S_IMODE(seed.st_mode)) == (PG_UID, 0o640)
    assert os.readlink(data / "link") == "seed.txt"
    r = mr("run", "--rm", "-v", "pgdata:/data", pgish, "cat", "/data/added")  # a new container, the same data
    assert (r.returncode, r.stdout) == (0, "new\n"), r
    assert _volumes(mr) == ["pgdata"]  # the named volume covers the image's: no anonymous one
    doc = json.loads(mr("volume", "inspect", "pgdata").stdout)[0]
    assert (doc["Name"], doc["Driver"], doc["Mountpoint"]) == ("pgdata", "local", str(data)), doc
    assert mr("run", "--name", "user", "-v", "pgdata:/data", pgish, "true").returncode == 0
    r = mr("volume", "rm", "pgdata")
    assert r.returncode == 1 and "volume is in use" in r.stderr and r.stderr.count("\n") == 1, r
    mounts = json.loads(mr("inspect", "-f", "{{json .Mounts}}", "user").stdout)
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", "pgdata", "/data")], mounts
    assert mr("rm", "-v", "user").returncode == 0  # -v: anonymous volumes only; pgdata is named
    assert _volumes(mr) == ["pgdata"]
    r = mr("volume", "rm", "pgdata", "nosuch")
    assert (r.returncode, r.stdout) == (1, "pgdata\n") and "no such volume" in r.stderr, r
    assert _volumes(mr) == [] and mr("volume", "rm", "-f", "nosuch").returncode == 0


def test_the_images_volumes_are_anonymous_and_go_with_rm_v_or_rm(mr: Minirun, pgish: str) -> None:
    r = mr("run", "--name", "anon", pgish, "ls", "/data")
    assert (r.returncode, r.stdout) == (0, "link\nseed.txt\n"), r
    [first] = _volumes(mr)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    mounts = json.loads(mr("inspect", "-f", "{{json .Mounts}}", "anon").stdout)
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", first, "/data")], mounts
    assert mr("run", "--name", "anon2", pgish, "true").returncode == 0
    second = next(v for v in _volumes(mr) if v != first)
    assert mr("rm", "-v", "anon2").returncode == 0 and _volumes(mr) == [first]  # rm -v: its own only
    assert mr("rm", "anon").returncode == 0 and _volumes(mr, "dangling=true") == [first]  # rm: kept, dangling
    assert second not in _volumes(mr)
    r = mr("volume", "prune", "-f")
    assert r.returncode == 0 and r.stdout.startswith(f"Deleted Volumes:\n{first}\n\nTotal reclaimed space: "), r
    assert mr("run", "--rm", pgish, "true").returncode == 0 and _volumes(mr) == []  # --rm takes it along
    r = mr("run", "--rm", "-v", "/scratch", "busybox", "sh", "-c", "echo x > /scratch/f; cat /scratch/f")
    assert (r.returncode, r.stdout) == (0, "x\n") and _volumes(mr) == [], r
    r = mr("run", "--rm", "-v", "bare:/data:nocopy", pgish, "ls", "-A", "/data")  # nocopy: nothing copied
    assert (r.returncode, r.stdout) == (0, ""), r
    assert mr("volume", "rm", "bare").returncode == 0


def test_volume_verbs_labels_filters_and_bad_names(mr: Minirun, pgish: str) -> None:
    for _ in range(2):  # a name in use is that volume (as Docker's create)
        r = mr("volume", "create", "--label", "tier=db", "named")
        assert (r.returncode, r.stdout) == (0, "named\n"), r
    anonymous = mr("volume", "create").stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", anonymous)
    assert _volumes(mr, "label=tier=db") == ["named"] and _volumes(mr, "label=tier") == ["named"]
    assert _volumes(mr, "name=nam") == ["named"] and sorted(_volumes(mr)) == sorted(["named", anonymous])
    doc = json.loads(mr("volume", "inspect", "named").stdout)[0]
    assert doc["Labels"] == {"tier": "db"} and doc["CreatedAt"].endswith("Z"), doc
    for bad in ("../x", "a/b", "x", ".hidden"):
        r = mr("volume", "create", bad)
        assert r.returncode != 0 and "invalid characters" in r.stderr and r.stderr.count("\n") == 1, r
        r = mr("run", "--rm", "-v", f"{bad}:/data", "busybox", "true")
        assert r.returncode == 125 and r.stderr.count("\n") == 1, r
    assert not (mr.root / "x").exists() and not (mr.root / "volumes" / "a").exists()
    r = mr("run", "--rm", "-v", "named:/data:bogus", "busybox", "true")  # an unknown option: Docker's words
    assert r.returncode == 125 and "invalid mode: bogus" in r.stderr and r.stderr.count("\n") == 1, r
    r = mr("volume", "inspect", "named", "nosuch")
    assert r.returncode == 1 and json.loads(r.stdout)[0]["Name"] == "named" and "no such volume" in r.stderr, r
    r = mr("volume", "ls", "--filter", "bogus=1")
    assert r.returncode == 1 and "invalid filter" in r.stderr, r
    assert mr("system", "prune").returncode == 0 and len(_volumes(mr)) == 2  # volumes survive a prune
    r = mr("system", "prune", "--volumes")
    assert r.returncode == 0 and "Deleted Volumes:\n" in r.stdout and "\nnamed\n" in r.stdout and _volumes(mr) == [], r


def test_copy_up_follows_the_images_links_only_inside_the_image(env: Env, mr: Minirun, tmp_path: Path) -> None:
    """An image whose volume paths are symlinks out (absolute to a host directory, ``..``
    past its root, to /etc): copy-up resolves them inside the image, as the unpacker does,
    and never copies the host's files."""
    host = tmp_path / "host-victim"
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    depth = "../" * 12
    repo = _push(env, "linky", [E("abs", "sym", target=str(host)), E("up", "sym", target=f"{depth}{host}"),
                                E("etc-link", "sym", target="/etc")],
                 {"Volumes": {"/abs": {}, "/up": {}, "/etc-link": {}}})
    for path in ("abs", "up"):
        r = mr("run", "--rm", "-v", f"v-{path}:/{path}", repo, "ls", "-A", f"/{path}/")
        assert (r.returncode, r.stdout) == (0, ""), r  # nothing at that path inside the image: nothing copied
        assert os.listdir(mr.root / "volumes" / f"v-{path}" / "_data") == []
    r = mr("run", "--rm", "-v", "v-etc:/etc-link", repo, "cat", "/etc-link/passwd")
    image_passwd = r.stdout
    assert r.returncode == 0 and image_passwd and image_passwd != Path("/etc/passwd").read_text(), r
    assert (mr.root / "volumes" / "v-etc" / "_data" / "passwd").read_text() == image_passwd  # the image's own
    assert sorted(os.listdir(host)) == ["secret"] and (host / "secret").read_text() == "host secret\n"
    for name in ("v-abs", "v-up", "v-etc"):
        assert mr("volume", "rm", name).returncode == 0
