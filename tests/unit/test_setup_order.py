"""The container's setup in its order, without root: the real setup code (runtime.setup,
runtime.mounts and runtime.execute) driven through the Syscalls seam by a recorder that writes
down every call instead of making it.

What it proves beyond the root tests: no container path is touched before the host's root
is detached, and the steps come in the order that makes that so. The root integration
tests (test_run.py, test_confinement.py) prove the real calls do what they say.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minirun.runtime import _libc, channel, mounts, setup
from minirun.runtime.kernel import Kernel
from minirun.runtime.mount import Mount
from minirun.runtime.plan import plan
from minirun.runtime.syscalls import Syscalls
from minirun.spec.defaults import INIT_TARGET, MASKED_PATHS
from minirun.spec.flags import Bind
from tests.support.specs import spec as make_spec

# Calls that make or change something at a path (resolved in the container's root once it is there).
PATH_CALLS = {"makedirs", "mknod", "chmod", "symlink", "unlink", "create_file", "move_mount"}


class Exec(Exception):
    """Raised by the recorder's exec, which would not return."""


class Exit(BaseException):
    """Raised by the recorder's report and exit, which would end the process."""


CALLS = frozenset(n for n in dir(Syscalls) if not n.startswith("_"))
ANSWERS: dict[str, Any] = {"fork": 0, "pipe": (90, 91), "open_console": (80, 81), "parent_gone": False,
                           "read_table": "root:x:0:0:root:/root:/bin/sh\n", "hear": True,
                           "mount_flags": _libc.MS_NOSUID}


class Recorder:
    """The seam's every call written down instead of made (a descriptor's number where one is
    returned; ``fork`` answers as the child): a Syscalls, as mypy checks where it is passed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in CALLS:
            raise AttributeError(name)
        calls = self.calls

        def record(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, args + tuple(kwargs.values())))
            if name == "exec":
                raise Exec
            if name in ("report", "exit"):
                raise Exit(*args)
            return ANSWERS.get(name, 100 + len(calls))  # a descriptor, for open_tree and open_dir
        return record

    def index(self, name: str, *first: Any) -> int:
        """Where the first call ``name`` whose leading arguments are ``first`` stands."""
        return next(i for i, (n, a) in enumerate(self.calls) if n == name and a[:len(first)] == first)

    def masked(self) -> int:
        """Where the first of Docker's masked paths that this kernel has is covered."""
        return next(i for i, (n, a) in enumerate(self.calls) if n == "mount" and a[1] in MASKED_PATHS)

    def attached(self, target: str) -> int:
        """Where the detached mount for ``target`` is attached (move_mount's fd varies)."""
        return next(i for i, (n, a) in enumerate(self.calls) if n == "move_mount" and a[1] == target)


def run_setup(tmp_path: Path, attached: bool = False, joins: dict[str, int] | None = None,
              **spec: Any) -> Recorder:
    """The setup of a container whose config.json the spec builder made from ``spec`` (with a
    volume, a tmpfs and /etc/hosts), as the runtime reads it."""
    volume = tmp_path / "volume"
    volume.mkdir()
    etc = tmp_path / "hosts"
    etc.write_text("")
    doc = make_spec(binds=(Bind(str(volume), "/data"),), tmpfs=(("/scratch", "noexec,size=1m"),),
                    etc={"/etc/hosts": str(etc)}, **spec)
    rec = Recorder()
    s = setup.Setup(plan(doc, False, "0", "test"), b"", [Mount("overlay", "overlay", "/store/rootfs")],
                      "/store/rootfs", joins or {}, None, channel=3, attached=attached)
    with pytest.raises(Exec):
        setup.setup_and_exec(rec, s, mounts.Step())
    return rec


def test_steps_come_in_their_order(tmp_path: Path) -> None:
    rec = run_setup(tmp_path, read_only=True, env=("PATH=/bin",))
    order = [
        rec.index("prctl", _libc.PR_SET_PDEATHSIG), rec.index("prctl", _libc.PR_SET_DUMPABLE, 0),
        rec.index("setsid"), rec.index("join_session_keyring"), rec.index("unshare"),
        rec.index("mount", "none", "/"),                        # propagation private, first
        rec.index("mount_data"),                                # the root filesystem
        rec.index("open_tree", str(tmp_path / "hosts")),        # host paths taken, detached
        rec.index("open_tree", str(tmp_path / "volume")),
        rec.index("pivot_root", ".", "."), rec.index("umount", ".", _libc.MNT_DETACH),
        rec.index("mount", "proc", "/proc"), rec.index("mount", "tmpfs", "/dev"), rec.index("mount", "sysfs", "/sys"),
        rec.attached("/etc/hosts"), rec.attached("/data"),       # attached inside the new root
        rec.index("mount", "tmpfs", "/scratch"), rec.index("mknod", "/dev/null"),  # tmpfs, devices
        rec.masked(), rec.index("mount", "/", "/"),              # Docker's masked paths, read-only root
        rec.index("sethostname", "box"), rec.index("loopback_up"), rec.index("chdir", "/work"),
        rec.index("prctl", _libc.PR_CAPBSET_DROP), rec.index("setgroups"), rec.index("setgid"),
        rec.index("setuid", 0), rec.index("capset"), rec.index("stdin_from_null"), rec.index("close_descriptors"),
        rec.index("default_signals"), rec.index("exec"),
    ]
    assert order == sorted(order), [rec.calls[i][0] for i in order]
    assert rec.calls[-1] == ("exec", ("sh", ["sh", "-c", "true"], {"PATH": "/bin", "HOSTNAME": "box",
                                                                   "HOME": "/root"}, True))


def test_no_container_path_is_touched_before_the_host_root_is_gone(tmp_path: Path) -> None:
    rec = run_setup(tmp_path)
    detached = rec.index("umount", ".", _libc.MNT_DETACH)
    early = [(n, a) for n, a in rec.calls[:detached] if n in PATH_CALLS or (n == "mount" and a[1] != "/")]
    assert early == [], early  # before it: only the root filesystem's mount and the detached host paths
    assert rec.index("mount_data") < rec.index("pivot_root", ".", ".")


def test_init_is_bound_read_only_and_execd_with_the_program(tmp_path: Path) -> None:
    rec = run_setup(tmp_path, init="/usr/bin/true")  # any host file stands for tini here
    assert rec.index("open_tree", "/usr/bin/true") < rec.index("pivot_root", ".", ".")
    attached = rec.attached(INIT_TARGET)
    assert rec.calls[attached + 2] == ("mount_flags", (INIT_TARGET,))  # kept: nosuid, as the recorder says
    assert rec.calls[attached + 3] == ("mount", (INIT_TARGET, INIT_TARGET, None, _libc.MS_BIND | _libc.MS_REMOUNT |
                                                 _libc.MS_RDONLY | _libc.MS_NOSUID))
    assert rec.calls[-1][1][:2] == (INIT_TARGET, [INIT_TARGET, "--", "sh", "-c", "true"])


def test_errors_name_the_call_and_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match=rf"^\[Errno 17\] mknod {tmp_path}/file: File exists$"):
        Kernel().mknod(str(tmp_path / "file"), 0o600 | 0o010000, 0)
    with pytest.raises(OSError, match=rf"mkdir {tmp_path}/file/sub: Not a directory"):
        Kernel().makedirs(str(tmp_path / "file" / "sub"))


def test_bridge_network_is_attached_while_the_root_is_made(tmp_path: Path) -> None:
    """The child says its namespace exists right after unshare, makes its root filesystem
    meanwhile, and waits for the parent's attach before it gives up anything (capabilities)."""
    rec = run_setup(tmp_path, attached=True)
    unshare = rec.index("unshare")
    assert rec.calls[unshare][1][0] & _libc.CLONE_NEWNET
    assert rec.calls[unshare + 1] == ("disable_ipv6", ())  # its own namespace's, before eth0 exists
    assert rec.calls[unshare + 2] == ("tell", (channel.NAMESPACE,))
    order = [rec.index("tell", channel.NAMESPACE), rec.index("pivot_root", ".", "."), rec.index("loopback_up"),
             rec.index("hear", channel.ATTACHED), rec.index("prctl", _libc.PR_CAPBSET_DROP), rec.index("exec")]
    assert order == sorted(order)


def test_container_network_joins_before_the_other_namespaces(tmp_path: Path) -> None:
    rec = run_setup(tmp_path, network_path="/proc/7/ns/net", joins={"network": 42})
    join, unshare = rec.index("setns"), rec.index("unshare")
    assert join < unshare and rec.calls[join][1] == (42, _libc.CLONE_NEWNET, "/proc/7/ns/net")
    assert not rec.calls[unshare][1][0] & _libc.CLONE_NEWNET
    assert not [n for n, _ in rec.calls if n in ("loopback_up", "tell", "hear")]


def test_exec_is_down_to_the_containers_privilege_first() -> None:
    """exec's child, before it touches a container path: limits, the bounding set up to the
    host's last capability (read on the host, never the container's /proc), no_new_privs, the
    filter, then effective and permitted lowered to the container's set and what becoming the
    user takes (SETUID, SETGID, CHOWN)."""
    from minirun.runtime import caps, execute
    from minirun.runtime.setup import HostCaps
    rec = Recorder()
    spec = execute.ExecSpec(("sh",), (), "/", "root", caps.DEFAULT, seccomp=b"\0" * 8, no_new_privileges=True,
                            rlimits=((7, 10, 20),))
    allowed = execute._confine(rec, spec, HostCaps(last_cap=40, held=(1 << 41) - 1))
    names = [n for n, _ in rec.calls]
    assert names == ["setrlimit"] + ["prctl"] * (41 - len(caps.DEFAULT)) + ["prctl", "load_seccomp", "capset"]
    dropped = {a[1] for n, a in rec.calls if n == "prctl" and a[0] == _libc.PR_CAPBSET_DROP}
    assert dropped == set(range(41)) - caps.DEFAULT
    assert rec.calls[-3] == ("prctl", (_libc.PR_SET_NO_NEW_PRIVS, 1))
    setup = caps.mask(caps.DEFAULT) | 1 << 0 | 1 << 6 | 1 << 7
    assert allowed == caps.mask(caps.DEFAULT) and rec.calls[-1] == ("capset", (setup, setup, 0))


def test_exec_joins_then_confines_before_any_container_path() -> None:
    """exec's joining process and its child, through the same seam: the caller's traces gone,
    the cgroup and namespaces joined (mount last), then in the child the confinement before
    the image's /etc/passwd is read, the user set, the working directory entered, exec."""
    from minirun.runtime import caps, execute
    from minirun.runtime.cgroups import Cgroup, Limits
    from minirun.runtime.setup import HostCaps
    rec = Recorder()
    spec = execute.ExecSpec(("ls",), ("PATH=/bin",), "/work", "", caps.DEFAULT, seccomp=b"\0" * 8)
    joining = execute._Joining([(11, _libc.CLONE_NEWNET, "net"), (12, _libc.CLONE_NEWNS, "mnt")],
                               HostCaps(40, (1 << 41) - 1), {0: 5, 1: 6, 2: 6}, channel=3, tty=False)
    with pytest.raises(Exit):
        execute._join(rec, joining, Cgroup("c" * 64, Limits(), None), spec)
    order = [rec.index("set_title"), rec.index("clear_environment"), rec.index("prctl", _libc.PR_SET_DUMPABLE, 0),
             rec.index("keep_only"), rec.index("join_cgroup_of"), rec.index("setns", 11), rec.index("setns", 12),
             rec.index("fork"), rec.index("prctl", _libc.PR_SET_PDEATHSIG), rec.index("parent_gone"),
             rec.index("setsid"), rec.index("prctl", _libc.PR_CAPBSET_DROP), rec.index("load_seccomp"),
             rec.index("capset"), rec.index("read_table", "/etc/passwd"), rec.index("setuid", 0),
             rec.index("chdir", "/work"), rec.index("default_signals"), rec.index("exec")]
    assert order == sorted(order), [rec.calls[i][0] for i in order]
    assert rec.calls[rec.index("exec")][1][:2] == ("ls", ["ls"])
