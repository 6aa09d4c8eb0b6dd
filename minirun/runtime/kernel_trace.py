"""``Kernel`` with each call the container's setup makes reported to ``trace`` (--explain).

The child that sets up the container uses this class only when tracing is on; each call is
reported, then made by ``Kernel`` itself, so the trace is what the setup really did, in its
order. Its events go out on the trace's descriptor, which the child keeps open until exec
(it is close-on-exec: the program never sees it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import trace
from . import _libc
from .caps import NAMES as CAP_NAMES
from .kernel import Kernel
from .rlimit import short_name

if TYPE_CHECKING:
    from .cgroups import Cgroup
    from .mount import Mount
    from .mounts import Step

_NAMESPACES = {_libc.CLONE_NEWNS: "mount", _libc.CLONE_NEWUTS: "uts (hostname)", _libc.CLONE_NEWIPC: "ipc",
               _libc.CLONE_NEWCGROUP: "cgroup", _libc.CLONE_NEWNET: "network", _libc.CLONE_NEWPID: "pid"}
_MOUNT_FLAGS = {_libc.MS_RDONLY: "ro", _libc.MS_NOSUID: "nosuid", _libc.MS_NODEV: "nodev",
                _libc.MS_NOEXEC: "noexec", _libc.MS_REMOUNT: "remount", _libc.MS_BIND: "bind",
                _libc.MS_MOVE: "move", _libc.MS_REC: "rec", _libc.MS_PRIVATE: "private", _libc.MS_SLAVE: "slave"}
_PRCTL = {_libc.PR_SET_PDEATHSIG: ("parent-death signal", "killed if minirun dies"),
          _libc.PR_SET_DUMPABLE: ("not dumpable", "no ptrace or /proc reading of this copy of minirun"),
          _libc.PR_SET_KEEPCAPS: ("keep capabilities", "across setuid, until the seccomp filter is in"),
          _libc.PR_SET_NO_NEW_PRIVS: ("no_new_privs", "setuid binaries gain nothing")}


def names(value: int, table: dict[int, str]) -> list[str]:
    return [name for bit, name in table.items() if value & bit]


def cap_names(bits: int) -> list[str]:
    return [name for i, name in enumerate(CAP_NAMES) if bits >> i & 1]


class TracingKernel(Kernel):
    def __init__(self, step: Step, keep_fd: int, channel: int = -1) -> None:
        super().__init__(channel)
        self.step, self.keep_fd = step, keep_fd
        self.dropped: list[str] = []

    def _event(self, stage: str, name: str, msg: str, **fields: object) -> None:
        trace.event(stage, name, msg, step=self.step.name, **fields)

    # -- the process --------------------------------------------------------------------
    def join_cgroup(self, cgroup: Cgroup) -> None:
        dirs = [str(d) for d in cgroup.dirs.values()]
        self._event("namespaces", "cgroup", f"join the container's cgroup ({', '.join(dirs)})", dirs=dirs)
        super().join_cgroup(cgroup)

    def prctl(self, option: int, arg: int = 0) -> None:
        if option == _libc.PR_CAPBSET_DROP:
            self.dropped.append(CAP_NAMES[arg] if arg < len(CAP_NAMES) else str(arg))
        elif option in _PRCTL:
            what, why = _PRCTL[option]
            isolating = option in (_libc.PR_SET_PDEATHSIG, _libc.PR_SET_DUMPABLE)
            self._event("namespaces" if isolating else "security", "prctl",
                        f"prctl: {what} ({why})", option=what)
        super().prctl(option, arg)

    def setsid(self) -> None:
        self._event("namespaces", "setsid", "setsid: a session of its own, no controlling terminal")
        super().setsid()

    def join_session_keyring(self) -> None:
        self._event("namespaces", "keyring", "a new session keyring: none of the caller's keys")
        super().join_session_keyring()

    def unshare(self, flags: int) -> None:
        made = names(flags, _NAMESPACES)
        self._event("namespaces", "unshare", f"unshare: new {', '.join(made)} namespaces", namespaces=made)
        super().unshare(flags)

    def setns(self, fd: int, kind: int, what: str) -> None:
        self._event("namespaces", "setns", f"setns: join {what}", path=what)
        super().setns(fd, kind, what)

    def sethostname(self, name: str) -> None:
        self._event("namespaces", "hostname", f"sethostname {name} (in its own uts namespace)", hostname=name)
        super().sethostname(name)

    def loopback_up(self) -> None:
        self._event("namespaces", "loopback", "lo up in the container's network namespace")
        super().loopback_up()

    def disable_ipv6(self) -> None:
        self._event("namespaces", "ip-six-off", "IPv6 off in the container's network namespace (disable_ipv6)")
        super().disable_ipv6()

    def setgroups(self, groups: list[int]) -> None:
        self._event("security", "setgroups", f"setgroups {groups}", groups=groups)
        super().setgroups(groups)

    def setgid(self, gid: int) -> None:
        self._event("security", "setgid", f"setgid {gid}", gid=gid)
        super().setgid(gid)

    def setuid(self, uid: int) -> None:
        self._event("security", "setuid", f"setuid {uid}", uid=uid)
        super().setuid(uid)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        kept = cap_names(permitted)
        if self.dropped:
            self._event("security", "bounding", f"capability bounding set: {len(self.dropped)} dropped",
                        dropped=self.dropped)
            self.dropped = []
        self._event("security", "capset", f"capset: keeps {', '.join(kept) or 'none'}", capabilities=kept)
        super().capset(effective, permitted, inheritable)

    def setrlimit(self, which: int, soft: int, hard: int) -> None:
        name = short_name(which)
        self._event("security", "setrlimit", f"setrlimit {name} {soft}:{hard} (--ulimit)", resource=name,
                    soft=soft, hard=hard)
        super().setrlimit(which, soft, hard)

    def load_seccomp(self, program: bytes) -> None:
        self._event("security", "seccomp", f"seccomp: load a BPF filter of {len(program) // 8} instructions "
                    "(Docker's default profile)", instructions=len(program) // 8)
        super().load_seccomp(program)

    # -- mounts -------------------------------------------------------------------------
    def mount(self, source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
        opts = names(flags, _MOUNT_FLAGS) + ([data] if data else [])
        name, why = "mount", ""
        if self.step.name == "masking paths":  # Docker's masked paths, then its read-only ones
            hidden = fstype == "tmpfs" or source == "/dev/null"
            name, why = ("mask", " (masked: hidden)") if hidden else ("readonly", " (read-only)")
        self._event("mounts", name, f"mount {fstype or ''} {source} on {target} ({','.join(opts)}){why}"
                    .replace("  ", " "), source=source, target=target, fstype=fstype or "", options=opts)
        super().mount(source, target, fstype, flags, data)

    def mount_data(self, m: Mount) -> None:
        opts = [o if len(o) < 120 else o[:117] + "..." for o in m.options]
        self._event("mounts", "rootfs", f"mount the root filesystem: {m.type} on {m.target} ({', '.join(opts)})",
                    type=m.type, target=m.target, options=list(m.options))
        super().mount_data(m)

    def umount(self, target: str, flags: int = 0) -> None:
        self._event("mounts", "umount", f"umount {target} (detach: the host's old root is gone)", target=target)
        super().umount(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._event("mounts", "pivot_root", f"pivot_root({new_root!r}, {put_old!r}): the image is now /",
                    cwd=os.getcwd())
        super().pivot_root(new_root, put_old)

    def move_mount(self, fd: int, target: str) -> None:
        self._event("mounts", "bind", f"move_mount a host file opened before pivot_root onto {target}", target=target)
        super().move_mount(fd, target)

    def mknod(self, path: str, mode: int, device: int) -> None:
        self._event("mounts", "mknod", f"mknod {path} {os.major(device)}:{os.minor(device)}", path=path)
        super().mknod(path, mode, device)

    # -- the last steps -------------------------------------------------------------------
    def chdir(self, path: str) -> None:
        if path not in (".", "/"):
            workdir = self.step.name.startswith("working directory")
            self._event("exec" if workdir else "mounts", "chdir", f"chdir {path}"
                        + (" (the working directory)" if workdir else ""), path=path)
        super().chdir(path)

    def close_descriptors(self, *keep: int) -> None:
        super().close_descriptors(*keep, self.keep_fd)  # the trace's, close-on-exec, until exec

    def exec(self, path: str, argv: list[str], env: dict[str, str], search: bool) -> None:
        self._event("exec", "execve", f"execve {argv}", argv=argv, env=sorted(env))
        super().exec(path, argv, env, search)
