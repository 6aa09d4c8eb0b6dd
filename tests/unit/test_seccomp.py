"""seccomp profiles (Docker's format) read, narrowed and compiled; --security-opt; --ulimit.

Narrowing is pure; compiling uses the host's real libseccomp (no root needed). What the
filter does to a container's calls is proven in tests/integration/test_seccomp.py.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from minirun.errors import UsageError
from minirun.runtime import caps, seccomp, seccomp_bpf
from minirun.spec import flags as spec
from minirun.spec import seccomp as profiles

DEFAULT = seccomp.load(Path(profiles.DEFAULT_PROFILE).read_text(), "default")
ALLOW, EPERM, ENOSYS = seccomp.ACTIONS["SCMP_ACT_ALLOW"], seccomp.ACTIONS["SCMP_ACT_ERRNO"] | 1, \
    seccomp.ACTIONS["SCMP_ACT_ERRNO"] | 38


def narrow(doc: dict[str, Any], arch: str, capabilities: frozenset[int], kernel: tuple[int, int]) -> seccomp.Filter:
    """As Docker narrows a profile into config.json, then as the runtime reads it from there."""
    return seccomp.to_filter(profiles.oci_section(doc, arch, capabilities, kernel))


def _allowed(f: seccomp.Filter) -> set[str]:
    """Calls allowed whatever their arguments."""
    return {n for r in f.rules if r.action == ALLOW and not r.args for n in r.names}


def test_the_default_profile_as_docker_narrows_it() -> None:
    f = narrow(DEFAULT, "amd64", caps.DEFAULT, (6, 1))
    assert f.default_action == EPERM and f.arches == ("x86_64", "x86", "x32")
    allowed = _allowed(f)
    assert {"read", "write", "execve", "fork", "arch_prctl", "modify_ldt", "ptrace",
            "socketcall", "capset", "setuid", "chroot"} <= allowed  # chroot: SYS_CHROOT is a default
    blocked = {"keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load",
               "open_by_handle_at", "mount", "umount2", "unshare", "setns", "pivot_root", "reboot", "init_module",
               "swapon", "acct", "clock_settime", "iopl", "clone3", "clone", "personality",
               "socket", "set_tls"}
    assert not blocked & allowed, blocked & allowed
    # clone without namespace flags, socket but AF_VSOCK, personality's five values; clone3: ENOSYS
    conditional = {(r.names, r.action, r.args) for r in f.rules if r.args}
    assert (("clone",), ALLOW, (seccomp.Arg(0, 7, 0x7E020000, 0),)) in conditional
    assert (("socket",), ALLOW, (seccomp.Arg(0, 1, 40, 0),)) in conditional
    assert sorted(a[0].value for n, _, a in conditional if n == ("personality",)) == [0, 8, 0x20000, 0x20008,
                                                                                      0xFFFFFFFF]
    assert seccomp.Rule(("clone3",), ENOSYS) in f.rules
    # Before 4.8 ptrace could get around seccomp: Docker allows it only since.
    assert "ptrace" not in _allowed(narrow(DEFAULT, "amd64", caps.DEFAULT, (4, 4)))


def test_added_capabilities_allow_their_calls_again() -> None:
    admin = narrow(DEFAULT, "amd64", caps.DEFAULT | {caps.NUMBER["SYS_ADMIN"]}, (6, 1))
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf", "perf_event_open"} <= _allowed(admin)
    assert not any(r.names == ("clone3",) for r in admin.rules)  # its ENOSYS rule excludes SYS_ADMIN
    assert not any(r.names == ("clone",) and r.args for r in admin.rules)
    time = narrow(DEFAULT, "amd64", caps.DEFAULT | {caps.NUMBER["SYS_TIME"]}, (6, 1))
    assert {"settimeofday", "clock_settime"} <= _allowed(time) and "mount" not in _allowed(time)
    arm = narrow(DEFAULT, "arm64", caps.DEFAULT, (6, 1))
    assert arm.arches == ("aarch64", "arm") and "set_tls" in _allowed(arm) and "arch_prctl" not in _allowed(arm)


def test_rules_of_the_default_action_and_repeated_arguments() -> None:
    doc = seccomp.load(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
                     {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                     {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"},
                               {"index": 1, "value": 19, "op": "SCMP_CMP_EQ"}]}]}), "p.json")
    f = narrow(doc, "amd64", frozenset(), (6, 1))
    assert f.arches == ("x86_64",) and f.default_action == ALLOW
    mkdir = seccomp.ACTIONS["SCMP_ACT_ERRNO"] | 13
    assert f.rules == (seccomp.Rule(("mkdir",), mkdir),  # getpid's rule is the default: left out
                       seccomp.Rule(("kill",), EPERM, (seccomp.Arg(1, 4, 9, 0),)),  # either signal
                       seccomp.Rule(("kill",), EPERM, (seccomp.Arg(1, 4, 19, 0),)))


@pytest.mark.parametrize(("text", "said"), [
    ("{not json", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"defaultAction": "SCMP_ACT_BOOM"}', "defaultAction: unknown action 'SCMP_ACT_BOOM'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}',
     "syscalls[0].action: unknown action 'ALLOW'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}',
     "syscalls[0]: names must be a list"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", '
     '"args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "syscalls[0].args[0]: index must be"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", '
     '"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]}', "unknown op 'SCMP_CMP_ALMOST'"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", '
     '"args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}', "64-bit unsigned"),
    ('{"defaultAction": "SCMP_ACT_ERRNO", "errnoRet": 1, "architectures": ["SCMP_ARCH_Z80"]}',
     "unknown architecture 'SCMP_ARCH_Z80'"),
])
def test_bad_profiles_are_one_line_naming_the_file(text: str, said: str) -> None:
    with pytest.raises(UsageError) as e:
        seccomp.load(text, "/etc/p.json")
    assert str(e.value).startswith("seccomp profile /etc/p.json: ") and said in str(e.value)
    assert "\n" not in str(e.value)


def test_compiled_once_then_read_from_the_store(tmp_path: Path) -> None:
    def section(capabilities: frozenset[int]) -> dict[str, Any]:
        return profiles.oci_section(DEFAULT, "amd64", capabilities, (6, 1))
    code = seccomp_bpf.program_for(tmp_path, section(caps.DEFAULT))
    # classic BPF: the first instruction loads the architecture (seccomp_data.arch, offset 4)
    first = struct.unpack("=HBBI", code[:8])
    assert len(code) % 8 == 0 and len(code) > 800 and first == (0x20, 0, 0, 4)
    cached = list((tmp_path / "seccomp").iterdir())
    assert len(cached) == 1 and cached[0].read_bytes() == code
    cached[0].write_bytes(b"\0" * 8)  # what is cached is what is loaded
    assert seccomp_bpf.program_for(tmp_path, section(caps.DEFAULT)) == b"\0" * 8
    other = seccomp_bpf.program_for(tmp_path, section(caps.DEFAULT | {caps.NUMBER["SYS_ADMIN"]}))
    assert other != code and len(list((tmp_path / "seccomp").iterdir())) == 2  # keyed by the filter


def test_security_opts_and_ulimits() -> None:
    parse = profiles.parse_security_opts
    assert parse([]) == profiles.Options("", False)
    assert parse(["seccomp=unconfined", "no-new-privileges"]) == profiles.Options(None, True)
    assert parse(["seccomp:/p.json", "no-new-privileges=false"]) == profiles.Options("/p.json", False)
    assert parse(["no-new-privileges:true"]).no_new_privileges
    with pytest.raises(UsageError, match="no AppArmor or SELinux support"):
        parse(["apparmor=docker-default"])
    with pytest.raises(UsageError, match="no AppArmor or SELinux support"):
        parse(["label=type:svirt_t"])
    with pytest.raises(UsageError, match='invalid --security-opt "seccomp"'):
        parse(["seccomp"])
    assert spec.parse_ulimit("nofile=1024:2048") == ("RLIMIT_NOFILE", 1024, 2048)
    assert spec.parse_ulimit("core=-1") == ("RLIMIT_CORE", -1, -1)
    assert spec.parse_ulimit("nproc=10:-1") == ("RLIMIT_NPROC", 10, -1)
    for bad in ("nofile", "files=1", "nofile=a", "nofile=10:5", "nofile=-1:5", "nofile=-2"):
        with pytest.raises(UsageError, match="--ulimit"):
            spec.parse_ulimit(bad)


def _run_cbpf(code: bytes, nr: int, arch: int, args: tuple[int, ...] = (0,) * 6) -> int:
    """A classic BPF interpreter for the instructions libseccomp's programs and the ENOSYS stub
    use, over a struct seccomp_data (nr, arch, ip, args): the action returned."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    insns = [struct.unpack_from("=HBBI", code, i) for i in range(0, len(code), 8)]
    a = x = pc = 0
    mem = [0] * 16
    while True:
        op, jt, jf, k = insns[pc]
        pc += 1
        if op == 0x20:
            a = struct.unpack_from("=I", data, k)[0]
        elif op in (0x00, 0x60, 0x61, 0x02, 0x07, 0x87, 0x54, 0x44):
            if op == 0x00:
                a = k
            elif op == 0x60:
                a = mem[k]
            elif op == 0x61:
                x = mem[k]
            elif op == 0x02:
                mem[k] = a
            elif op == 0x07:
                x = a
            elif op == 0x87:
                a = x
            else:
                a = a & k if op == 0x54 else a | k
        elif op == 0x05:
            pc += k
        elif op in (0x15, 0x25, 0x35, 0x45):
            taken = {0x15: a == k, 0x25: a > k, 0x35: a >= k, 0x45: bool(a & k)}[op]
            pc += jt if taken else jf
        elif op == 0x06:
            return int(k)
        else:
            raise AssertionError(f"instruction {op:#x} not interpreted")


X86_64, I386, X32 = 0xC000003E, 0x40000003, 0x40000000


def test_calls_newer_than_the_profile_get_enosys_as_runc_gives() -> None:
    f = narrow(DEFAULT, "amd64", caps.DEFAULT, (6, 1))
    program = seccomp_bpf.compile_filter(f, "default")
    verdicts = {
        (X86_64, 39): ALLOW,            # getpid
        (X86_64, 250): EPERM,           # keyctl: not allowed, older than the profile: its default
        (X86_64, 449): ALLOW,           # futex_waitv: the newest call it names for this container
        (X86_64, 450): ENOSYS,          # set_mempolicy_home_node: named only with CAP_SYS_NICE (as
        (X86_64, 451): ENOSYS,          # Docker narrows before runc); cachestat, fchmodat2, futex_wait,
        (X86_64, 452): ENOSYS,          # statmount, listmount, mseal, setxattrat, ...
        (X86_64, 457): ENOSYS, (X86_64, 462): ENOSYS, (X86_64, 463): ENOSYS, (X86_64, 0xFFFF): ENOSYS,
        (X86_64, 435): ENOSYS,          # clone3: the profile's own ENOSYS rule
        (I386, 20): ALLOW, (I386, 288): EPERM, (I386, 452): ENOSYS,   # i386: getpid, keyctl, fchmodat2
        (X86_64, X32 | 39): ALLOW, (X86_64, X32 | 250): EPERM, (X86_64, X32 | 600): ENOSYS,  # x32
    }
    got = {key: _run_cbpf(program, key[1], key[0]) for key in verdicts}
    assert got == verdicts
    assert _run_cbpf(program, 39, 0xC00000B7) != ALLOW  # another architecture: never allowed
    # A profile whose default is to allow has no stub: nothing is refused for being new.
    allow_all = narrow(seccomp.load(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}), "p"), "amd64", caps.DEFAULT, (6, 1))
    assert _run_cbpf(seccomp_bpf.compile_filter(allow_all, "p"), 452, X86_64) == ALLOW
