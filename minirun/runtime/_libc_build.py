"""Generates _libc_ffi.py, cffi's out-of-line ABI module for _libc.py.

Run ``python -m minirun.runtime._libc_build`` after changing CDEF; a test checks that
the committed _libc_ffi.py is what this produces.
"""

from __future__ import annotations

import sys
from pathlib import Path

CDEF = """
int mount(const char *source, const char *target, const char *filesystemtype,
          unsigned long mountflags, const void *data);
int umount2(const char *target, int flags);
int unshare(int flags);
int setns(int fd, int nstype);
int sethostname(const char *name, size_t len);
int socket(int domain, int type, int protocol);
long syscall(long number, ...);
int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5);
typedef struct { uint32_t version; int pid; } cap_header;
typedef struct { uint32_t effective; uint32_t permitted; uint32_t inheritable; } cap_data;
int capset(cap_header *hdrp, const cap_data *datap);
"""

TARGET = Path(__file__).with_name("_libc_ffi.py")


def generate() -> str:
    import tempfile

    import cffi
    builder = cffi.FFI()
    builder.cdef(CDEF)
    builder.set_source("minirun.runtime._libc_ffi", None)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "_libc_ffi.py"
        builder.emit_python_code(str(out))
        return out.read_text()


if __name__ == "__main__":
    TARGET.write_text(generate())
    sys.exit(0)
