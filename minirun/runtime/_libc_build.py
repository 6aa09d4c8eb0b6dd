"""Generates cffi's out-of-line ABI modules: _libc_ffi.py for _libc.py, _seccomp_ffi.py for
seccomp_bpf.py (libseccomp). Out of line, no run parses C declarations: cffi's parser
(pycparser) costs a first compile of a seccomp filter about 70 ms of imports.

Run ``python -m minirun.runtime._libc_build`` after changing a CDEF; a test checks that
the committed modules are what this produces.
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

SECCOMP_CDEF = """
typedef void *scmp_filter_ctx;
struct scmp_arg_cmp { unsigned int arg; int op; uint64_t datum_a; uint64_t datum_b; };
struct scmp_version { unsigned int major; unsigned int minor; unsigned int micro; };
const struct scmp_version *seccomp_version(void);
scmp_filter_ctx seccomp_init(uint32_t def_action);
void seccomp_release(scmp_filter_ctx ctx);
uint32_t seccomp_arch_resolve_name(const char *arch_name);
int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
int seccomp_syscall_resolve_name(const char *name);
int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name);
int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt,
                           const struct scmp_arg_cmp *arg_array);
int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd);
"""

TARGET = Path(__file__).with_name("_libc_ffi.py")
TARGETS = {TARGET: CDEF, TARGET.with_name("_seccomp_ffi.py"): SECCOMP_CDEF}


def generate(target: Path = TARGET) -> str:
    import tempfile

    import cffi
    builder = cffi.FFI()
    builder.cdef(TARGETS[target])
    builder.set_source(f"minirun.runtime.{target.stem}", None)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / target.name
        builder.emit_python_code(str(out))
        return out.read_text()


if __name__ == "__main__":
    for path in TARGETS:
        path.write_text(generate(path))
    sys.exit(0)
