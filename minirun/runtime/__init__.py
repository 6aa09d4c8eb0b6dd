"""The kernel side of minirun: syscalls, mounts, namespaces (issue 4 fills this in)."""
