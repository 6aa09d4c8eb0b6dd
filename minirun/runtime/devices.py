"""Which device nodes a container may open (pure): Docker's allow-list, as cgroup rules.

Namespaces do not confine devices: a node made with ``mknod`` (or shipped in an image
layer) for a host disk opens that disk. The device cgroup does: everything is denied,
then the few devices a container needs are allowed, as Docker (moby's default spec
plus runc's built-in list) allows them:

- ``mknod`` of any node (``c *:* m``, ``b *:* m``): the node is made, but opening it is
  refused unless a rule below allows read or write;
- null 1:3, zero 1:5, full 1:7, random 1:8, urandom 1:9, tty 5:0, console 5:1,
  ptmx 5:2 and the container's pseudo-terminals 136:*, all ``rwm``;
- fuse (10:229) stays denied, as Docker denies it; so does every block device.

cgroup v1 takes the rules as lines written to ``devices.deny``/``devices.allow``;
cgroup v2 has no files for it: a BPF program of type ``BPF_PROG_TYPE_CGROUP_DEVICE``,
attached to the cgroup, answers each access. ``program`` assembles it here.
"""

from __future__ import annotations

import struct

from ..records import Record


class DeviceRule(Record):
    kind: str            # "c" (character) or "b" (block)
    major: int | None    # None: any
    minor: int | None
    access: str          # letters of "rwm": read, write, mknod


def v1_lines(rules: tuple[DeviceRule, ...]) -> list[str]:
    """One ``devices.allow`` line each (the kernel takes one rule per write)."""
    def number(n: int | None) -> str:
        return "*" if n is None else str(n)
    return [f"{r.kind} {number(r.major)}:{number(r.minor)} {r.access}" for r in rules]


# The program's input, struct bpf_cgroup_dev_ctx: access_type (device type in the low 16
# bits, BPF_DEVCG_DEV_*; access in the high 16, BPF_DEVCG_ACC_*), major, minor; all u32.
_DEV_TYPE = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}

# eBPF opcodes (linux/bpf.h): class | operation | source.
_LDX_W = 0x61        # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_AND32_K = 0x54      # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74      # BPF_ALU | BPF_RSH | BPF_K
_MOV32_X = 0xBC      # BPF_ALU | BPF_MOV | BPF_X
_MOV64_K = 0xB7      # BPF_ALU64 | BPF_MOV | BPF_K
_JNE_K = 0x55        # BPF_JMP | BPF_JNE | BPF_K: if dst != imm, pc += off
_EXIT = 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("=BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(rule: DeviceRule) -> list[tuple[int, int, int]]:
    """(opcode, dst, imm) of the checks for one rule: each jumps past the block when it fails."""
    denied = 7 & ~sum(_ACCESS[a] for a in rule.access)
    checks = [(_JNE_K, 2, _DEV_TYPE[rule.kind])]
    if denied:
        checks += [(_MOV32_X, 1, 3), (_AND32_K, 1, denied), (_JNE_K, 1, 0)]
    if rule.major is not None:
        checks.append((_JNE_K, 4, rule.major))
    if rule.minor is not None:
        checks.append((_JNE_K, 5, rule.minor))
    return checks


def program(rules: tuple[DeviceRule, ...]) -> bytes:
    """A cgroup device program that allows an access when one of ``rules`` allows all of it.

    r2 = device type, r3 = access bits, r4 = major, r5 = minor; then, per rule, checks that
    jump to the next rule on mismatch, and ``return 1`` when all pass; ``return 0`` at the end.
    """
    out = [_insn(_LDX_W, 2, 1, 0), _insn(_AND32_K, 2, imm=0xFFFF),
           _insn(_LDX_W, 3, 1, 0), _insn(_RSH32_K, 3, imm=16),
           _insn(_LDX_W, 4, 1, 4), _insn(_LDX_W, 5, 1, 8)]
    for rule in rules:
        checks = _rule_block(rule)
        size = len(checks) + 2  # the checks, then r0 = 1 and exit
        for i, (code, dst, imm) in enumerate(checks):
            if code == _MOV32_X:
                out.append(_insn(code, dst, src=imm))  # r1 = r3: the access bits, to mask
            elif code == _JNE_K:
                out.append(_insn(code, dst, off=size - i - 1, imm=imm))
            else:
                out.append(_insn(code, dst, imm=imm))
        out += [_insn(_MOV64_K, 0, imm=1), _insn(_EXIT)]
    out += [_insn(_MOV64_K, 0, imm=0), _insn(_EXIT)]
    return b"".join(out)
