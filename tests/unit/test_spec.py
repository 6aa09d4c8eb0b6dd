"""Docker's rules for command, environment and user (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from minirun.errors import UsageError
from minirun.oci import RunConfig
from minirun.runtime.user import DEFAULT_PATH, resolve_user, with_home
from minirun.spec.flags import Bind, command, environment, parse_env_file, parse_tmpfs, parse_volume, working_dir


@pytest.mark.parametrize("config,args,entrypoint,argv", [
    ({"Cmd": ["/hello"]}, [], None, ("/hello",)),
    ({"Cmd": ["sh"]}, ["ls", "-l"], None, ("ls", "-l")),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, [], None, ("/ep", "a")),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["b"], None, ("/ep", "b")),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, [], "/other", ("/other",)),      # --entrypoint clears Cmd
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["x"], "/other", ("/other", "x")),
    ({"Entrypoint": ["/ep"], "Cmd": ["a"]}, ["x"], "", ("x",)),             # --entrypoint "" resets it
    ({"Entrypoint": None, "Cmd": None}, ["true"], None, ("true",)),
])
def test_command(config: RunConfig, args: list[str], entrypoint: str | None, argv: tuple[str, ...]) -> None:
    assert command(config, args, entrypoint) == argv


def test_no_command_is_an_error() -> None:
    with pytest.raises(UsageError, match="no command specified"):
        command({}, [], None)


def test_environment_merge() -> None:
    env = environment({"Env": ["A=1", "PATH=/x", "B=2"]}, ["A=override", "C", "D", "B"], {"C": "from-caller"}, "h")
    assert env == ("A=override", "PATH=/x", "HOSTNAME=h", "C=from-caller")
    assert "PATH=" + DEFAULT_PATH in environment({}, [], {}, "h")
    assert with_home(("A=1",), "/root") == ("A=1", "HOME=/root")
    assert with_home(("HOME=/mine",), "/root") == ("HOME=/mine",)
    with pytest.raises(UsageError):
        environment({}, ["=x"], {}, "h")


def test_env_file_as_docker_20_10_reads_it() -> None:
    # (Docker's opts.ParseEnvFile: values byte for byte after the first "=", quotes and trailing
    # spaces kept; leading whitespace of a line trimmed; CRLF and a BOM taken off; K alone: the
    # caller's value, or nothing)
    data = "\ufeff# c\n\n  A=1 \nB\r\nUNSET\nQ=\"quoted\" # not a comment\nE=\nS==x=\n\tT=a\tb\n".encode()
    assert parse_env_file(data, "f", {"B": "2"}) == [
        "A=1 ", "B=2", 'Q="quoted" # not a comment', "E=", "S==x=", "T=a\tb"]
    with pytest.raises(UsageError, match=r"^poorly formatted environment: variable 'BAD NAME' contains whitespaces$"):
        parse_env_file(b"BAD NAME=1", "f", {})
    with pytest.raises(UsageError, match="no variable name on line '=1'"):
        parse_env_file(b"=1", "f", {})
    with pytest.raises(UsageError, match=r"^env file f contains invalid utf8 bytes at line 2$"):
        parse_env_file(b"A=1\nB=\xff\n", "f", {})
    assert parse_env_file(b"A=\x0bx\x0cy", "f", {}) == ["A=\x0bx\x0cy"]  # only \n ends a line


PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
GROUP = "root:x:0:\nwheel:x:10:app,other\napp:x:1000:\nstaff:x:50:\n"


# The groups as Docker 20.10.24 (runc) sets them, recorded here with an image of the same
# /etc/group (/proc/self/status's Groups): the group asked for alone; else the primary group
# and the groups listing the user.
@pytest.mark.parametrize("spec,uid,gid,groups,home", [
    ("", 0, 0, (0,), "/root"),
    ("app", 1000, 1000, (10, 1000), "/home/app"),
    ("1000", 1000, 1000, (10, 1000), "/home/app"),
    ("app:staff", 1000, 50, (50,), "/home/app"),
    ("4242", 4242, 0, (0,), "/"),
    ("4242:77", 4242, 77, (77,), "/"),
    ("root:wheel", 0, 10, (10,), "/root"),
])
def test_users(spec: str, uid: int, gid: int, groups: tuple[int, ...], home: str) -> None:
    u = resolve_user(spec, PASSWD, GROUP)
    assert (u.uid, u.gid, u.groups, u.home) == (uid, gid, groups, home)


@pytest.mark.parametrize("spec,why", [("ghost", "unable to find user ghost"), ("app:nogroup", "unable to find group")])
def test_unknown_users(spec: str, why: str) -> None:
    with pytest.raises(UsageError, match=why):
        resolve_user(spec, PASSWD, GROUP)


# With Docker 20.10's answers for the options (recorded here: z, Z, ro,z, z,ro, rw,Z and cached
# accepted; ro,rw, z,Z and bogus refused with "invalid mode").
@pytest.mark.parametrize("text,bind", [
    ("/h:/c", Bind("/h", "/c", False)), ("/h/:/c/d/../e:ro", Bind("/h", "/c/e", True)), ("/h:/c:rw", Bind("/h", "/c")),
    ("/h:/c:z", Bind("/h", "/c")), ("/h:/c:Z", Bind("/h", "/c")), ("/h:/c:ro,z", Bind("/h", "/c", True)),
    ("/h:/c:z,ro", Bind("/h", "/c", True)), ("/h:/c:rw,Z", Bind("/h", "/c")), ("/h:/c:cached", Bind("/h", "/c")),
    # volumes (issue 26): named, anonymous, nocopy
    ("pgdata:/var/lib/pg", Bind("pgdata", "/var/lib/pg", False, True)), ("/data", Bind("", "/data", False, True)),
    ("db.1:/d:ro,nocopy", Bind("db.1", "/d", True, True, True))])
def test_volumes(text: str, bind: Bind) -> None:
    assert parse_volume(text) == bind


@pytest.mark.parametrize("text", ["h:c", "/h:c", "/h:/", "/", "/h:/c:rx", ":/c", "/h:/c:ro,rw", "/h:/c:z,Z",
                                  "/h:/c:bogus", "/h:/c:", "/h:/c:nocopy", "x:/c", "../etc:/c", "a/b:/c", ".v:/c",
                                  "v:/c:nocopy,nocopy", "relative"])
def test_bad_volumes(text: str) -> None:
    with pytest.raises(UsageError, match="invalid volume"):
        parse_volume(text)


def test_tmpfs_and_mount_options() -> None:
    from minirun.runtime._libc import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY
    from minirun.runtime.plan import mount_flags
    assert parse_tmpfs("/run") == ("/run", "noexec,nosuid,nodev,size=65536k")
    assert parse_tmpfs("/x:size=1m,ro") == ("/x", "noexec,nosuid,nodev,size=1m,ro")
    sealed = MS_NOEXEC | MS_NOSUID | MS_NODEV
    assert mount_flags(["noexec", "nosuid", "nodev", "size=65536k"]) == (sealed, "size=65536k")
    assert mount_flags("ro,rw,exec,mode=1777".split(",")) == (0, "mode=1777")
    assert mount_flags(["ro"]) == (MS_RDONLY, None)
    with pytest.raises(UsageError):
        parse_tmpfs("relative")


def test_capability_rules() -> None:
    from minirun.runtime.caps import DEFAULT, NUMBER, capability_set
    assert capability_set(False, [], [], 40) == DEFAULT
    assert capability_set(True, [], ["ALL"], 40) == frozenset(range(41))
    assert capability_set(False, ["ALL"], ["chown"], 40) == frozenset(range(41)) - {NUMBER["CHOWN"]}
    assert capability_set(False, ["NET_ADMIN"], ["ALL"], 40) == {NUMBER["NET_ADMIN"]}
    assert capability_set(False, ["cap_sys_admin"], ["CAP_KILL"], 40) == DEFAULT - {5} | {21}
    assert capability_set(False, ["BPF"], [], 38) == DEFAULT  # a kernel without it
    with pytest.raises(UsageError, match='unknown capability: "FLY"'):
        capability_set(False, ["FLY"], [], 40)


def test_working_dir_as_docker() -> None:
    assert working_dir({}, None) == "/"
    assert working_dir({"WorkingDir": "/srv"}, None) == "/srv"
    assert working_dir({"WorkingDir": "/srv"}, "") == "/srv"   # -w "" keeps the image's
    assert working_dir({"WorkingDir": "/srv"}, "/tmp") == "/tmp"
    with pytest.raises(UsageError, match='invalid working directory "relative": it must be an absolute path'):
        working_dir({}, "relative")


def test_the_containers_cgroup_view() -> None:
    """/sys/fs/cgroup inside: on v1 one mount per controller the container has, with the host
    hierarchy's options (cpu and cpuacct mounted together must be mounted together)."""
    from minirun.runtime import cgroups
    mountinfo = ("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
                 "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
                 "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
                 "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
                 "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
                 "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
    cg = cgroups.Cgroup.__new__(cgroups.Cgroup)
    cg.v2, cg.dirs = False, {"devices": Path("d"), "memory": Path("m"), "pids": Path("p"), "cpu": Path("c")}
    assert cgroups.container_view(cg, mountinfo) == [
        ("/sys/fs/cgroup", "tmpfs", "mode=755"), ("/sys/fs/cgroup/devices", "cgroup", "devices"),
        ("/sys/fs/cgroup/memory", "cgroup", "memory"), ("/sys/fs/cgroup/cpu,cpuacct", "cgroup", "cpu,cpuacct")]
    cg.v2 = True
    assert cgroups.container_view(cg, mountinfo) == [("/sys/fs/cgroup", "cgroup2", None)]
    assert cgroups.container_view(None, mountinfo) == []


# --mount (issue 26), with Docker 20.10's readings of each form.
@pytest.mark.parametrize("text,want", [
    ("type=bind,source=/h,target=/c", Bind("/h", "/c")),
    ("type=bind,src=/h/,dst=/c/d/..,readonly", Bind("/h", "/c", True)),
    ("type=bind,source=/h,destination=/c,ro=true,bind-propagation=rslave", Bind("/h", "/c", True)),
    ("type=volume,source=db,target=/var/lib/db", Bind("db", "/var/lib/db", False, True)),
    ("source=db,target=/d,volume-nocopy", Bind("db", "/d", False, True, True)),  # volume by default
    ("type=volume,target=/anon", Bind("", "/anon", False, True)),
    ("type=tmpfs,target=/t", ("/t", "noexec,nosuid,nodev")),
    ("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", ("/t", "noexec,nosuid,nodev,size=1048576,mode=1770")),
])
def test_mounts(text: str, want: object) -> None:
    from minirun.spec.flags import parse_mount
    assert parse_mount(text) == want


@pytest.mark.parametrize("text", [
    "type=bind,source=rel,target=/c", "type=bind,target=/c", "type=nfs,target=/c", "type=bind,source=/h,target=c",
    "type=volume,source=../x,target=/c", "type=tmpfs,source=x,target=/t", "type=bind,source=/h,target=/c,bogus=1",
    "type=bind,source=/h,target=/c,readonly=maybe", "type=tmpfs,target=/t,tmpfs-mode=999",
    "type=tmpfs,target=/t,tmpfs-size=x",
    "type=volume,target=/c,bind-propagation=shared", "type=bind,source=/h,target=/"])
def test_bad_mounts(text: str) -> None:
    from minirun.spec.flags import parse_mount
    with pytest.raises(UsageError, match='for "--mount" flag'):
        parse_mount(text)


def test_labels_and_sizes() -> None:
    from minirun.spec.flags import parse_labels, parse_size
    assert parse_labels(["a=1", "b", "c=x=y"], {"f": "# note\n\nc=file\nd=2\n"}) == ("c=x=y", "d=2", "a=1", "b=")
    with pytest.raises(UsageError, match="invalid label"):
        parse_labels(["=v"], {})
    assert (parse_size("64m", "x"), parse_size("1g", "x"), parse_size("4096", "x")) == (64 << 20, 1 << 30, 4096)
    for bad in ("0", "-1", "1x", ""):
        with pytest.raises(UsageError, match="invalid size"):
            parse_size(bad, "--shm-size")
