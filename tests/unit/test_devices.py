"""The device policy (pure): Docker's rules as v1 lines and as a cgroup v2 BPF program.

The program is run here by a small interpreter of the few eBPF instructions it uses, on
every kind of access; the kernel itself runs it in the cgroup v2 VM test.
"""

from __future__ import annotations

import struct

import pytest

from minirun.runtime.devices import DeviceRule, program, v1_lines
from minirun.runtime.plan import _device_rules
from minirun.spec.defaults import ALL_DEVICES, DEVICE_RULES


def _docker_default() -> tuple[DeviceRule, ...]:
    """Docker's default rules, as the runtime reads them from a config.json the builder wrote."""
    rules = _device_rules(DEVICE_RULES)
    assert rules is not None
    return rules


DOCKER_DEFAULT = _docker_default()


def test_privileged_rules_mean_no_device_cgroup() -> None:
    assert _device_rules(ALL_DEVICES) is None


def run_program(code: bytes, kind: str, major: int, minor: int, access: str) -> int:
    """Execute ``code`` on struct bpf_cgroup_dev_ctx {access_type, major, minor}."""
    ctx = struct.pack("=III", {"b": 1, "c": 2}[kind] | (sum({"m": 1, "r": 2, "w": 4}[a] for a in access) << 16),
                      major, minor)
    regs = [0] * 11
    insns = [struct.unpack("=BBhi", code[i:i + 8]) for i in range(0, len(code), 8)]
    pc, steps = 0, 0
    while steps < 10_000:
        steps += 1
        op, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if op == 0x61:
            assert src == 1, "only the context is read"
            regs[dst] = struct.unpack_from("=I", ctx, off)[0]
        elif op == 0x54:
            regs[dst] = (regs[dst] & imm) & 0xFFFFFFFF
        elif op == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif op == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif op == 0xB7:
            regs[dst] = imm
        elif op == 0x55:
            if regs[dst] != imm:
                pc += off
        elif op == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
    raise AssertionError("the program does not end")


@pytest.mark.parametrize(("kind", "major", "minor", "access", "allowed"), [
    ("c", 1, 3, "rwm", 1), ("c", 1, 5, "r", 1), ("c", 1, 7, "w", 1), ("c", 1, 8, "r", 1), ("c", 1, 9, "rw", 1),
    ("c", 5, 0, "rw", 1), ("c", 5, 1, "rw", 1), ("c", 5, 2, "rw", 1), ("c", 136, 0, "rw", 1),
    ("c", 136, 4000, "rwm", 1),
    ("b", 7, 0, "m", 1), ("c", 10, 229, "m", 1), ("b", 259, 3, "m", 1),      # mknod of anything...
    ("b", 7, 0, "r", 0), ("b", 7, 0, "w", 0), ("b", 8, 0, "rw", 0),         # ...opening a disk: never
    ("c", 10, 229, "rw", 0), ("c", 1, 1, "r", 0), ("c", 4, 1, "w", 0), ("c", 1, 4, "rwm", 0),
    ("b", 1, 3, "r", 0),                                                   # null's numbers, but a block device
    ("c", 137, 0, "r", 0), ("c", 5, 3, "r", 0),
])
def test_docker_default_program(kind: str, major: int, minor: int, access: str, allowed: int) -> None:
    assert run_program(program(DOCKER_DEFAULT), kind, major, minor, access) == allowed


def test_partial_access_rules() -> None:
    code = program((DeviceRule("c", 10, None, "r"),))
    assert run_program(code, "c", 10, 1, "r") == 1
    assert run_program(code, "c", 10, 1, "rw") == 0  # every bit asked for must be allowed
    assert run_program(code, "c", 11, 1, "r") == 0
    assert run_program(program(()), "c", 1, 3, "r") == 0  # no rules: nothing


def test_v1_lines() -> None:
    assert v1_lines(DOCKER_DEFAULT) == [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"]
