"""The kernel side of minirun: the container's process, mounts, cgroups and device policy,
capabilities, terminal; syscalls through cffi (``_libc``)."""
