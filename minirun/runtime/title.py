"""What ``ps`` shows of this process: its title alone.

The command line it was started with (``-e SECRET=...``) and its environment are overwritten
in place, in the memory the kernel reads /proc/PID/cmdline and /proc/PID/environ from (their
bounds: /proc/self/stat fields 48 to 51); /proc/PID/cmdline is readable by every local user.
Written through /proc/self/mem and /proc/self/comm (the name, 15 bytes), which needs no C
call: the lean monitor (keeper.py), which loads no cffi, titles itself too.

The last byte of the argument area is left non-zero, so the kernel reads the title up to its
first NUL (as it does for setproctitle(3)) instead of the whole area.
"""

from __future__ import annotations


def set_title(title: str) -> None:
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    # fields[0] is field 3 (state): field N is fields[N - 3].
    arg_start, arg_end, env_start, env_end = (int(x) for x in fields[45:49])
    size = arg_end - arg_start
    if size < 2:
        return
    text = title.encode()[:size - 2] + b"\0"
    with open("/proc/self/mem", "r+b", buffering=0) as mem:
        mem.seek(arg_start)
        mem.write(text + b"\0" * (size - 1 - len(text)) + b" ")
        if env_end > env_start:
            mem.seek(env_start)
            mem.write(b"\0" * (env_end - env_start))
    with open("/proc/self/comm", "wb", buffering=0) as comm:
        comm.write(title.encode()[:15])
