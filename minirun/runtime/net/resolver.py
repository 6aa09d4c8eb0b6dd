"""The name resolver of a container on a user network, as Docker's embedded DNS: it answers at
127.0.0.11:53 inside the container's network namespace, with the addresses of the containers
on the networks it shares (by name, alias or short ID), and passes every other name on to the
host's resolvers (or --dns), from the host's network namespace as Docker does.

One resolver per container, no daemon: it is started when the container's network is attached
(its sockets bound in the container's namespace first, so no query is lost), and it ends with
the container (it holds a pidfd of the container's PID 1). It reads who is where from
``names.json``, which every lease change rewrites under the network lock (see network.py):
a container started or removed is resolvable or gone for the others at once. It runs as
``nobody`` without capabilities, in a process of its own (exec'd: none of minirun's memory,
locks or descriptors), before it reads a single query.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import threading
from typing import TYPE_CHECKING

from ...records import Record

if TYPE_CHECKING:
    from collections.abc import Callable

    from dnslib import DNSRecord

ADDRESS = "127.0.0.11"
IP_FREEBIND = 15  # (linux/in.h; not in Python 3.11's socket module)
TTL = 600                   # Docker's
UPSTREAM_SECONDS = 2.0      # per upstream server, as resolv.conf's default timeout... halved
MAX_QUERIES = 64            # in flight at once; more are dropped (the client asks again)
NOBODY = 65534


class Entry(Record):
    net: str
    container: str
    names: tuple[str, ...]
    address: str


def parse_names(text: str) -> list[Entry]:
    """names.json (pure); entries of the wrong shape are passed over."""
    out = []
    for e in json.loads(text) if text else []:
        if isinstance(e, dict) and isinstance(e.get("names"), list):
            out.append(Entry(str(e.get("net")), str(e.get("container")), tuple(str(n).lower() for n in e["names"]),
                             str(e.get("address"))))
    return out


def lookup(entries: list[Entry], me: str, name: str) -> list[str] | None:
    """The addresses of ``name`` on the networks container ``me`` is on, None when no
    container there has that name (then it is asked upstream)."""
    name = name.rstrip(".").lower()
    mine = {e.net for e in entries if e.container == me}
    found = [e.address for e in entries if e.net in mine and name in e.names]
    return sorted(set(found), key=found.index) or None


def answer(query: DNSRecord, entries: list[Entry], me: str) -> DNSRecord | None:
    """The reply to a query for a container's name (A: its addresses; any other type: none,
    with NOERROR, as Docker's for an IPv4 network), None when it is not one."""
    from dnslib import QTYPE, RR, A
    q = query.q
    addresses = lookup(entries, me, str(q.qname))
    if addresses is None:
        return None
    reply = query.reply()
    if q.qtype == QTYPE.A:
        for address in addresses:
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(address), ttl=TTL))
    return reply


class _Names:
    """names.json, read again when it changed (by a descriptor of its directory: the path above
    it is root's alone)."""

    def __init__(self, dirfd: int) -> None:
        self.dirfd, self.seen, self.entries = dirfd, (0, 0), list[Entry]()

    def get(self) -> list[Entry]:
        try:
            fd = os.open("names.json", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dirfd)
        except FileNotFoundError:
            return []
        with os.fdopen(fd) as f:
            st = os.fstat(fd)
            if (st.st_ino, st.st_mtime_ns) != self.seen:
                try:
                    self.entries, self.seen = parse_names(f.read(1 << 20)), (st.st_ino, st.st_mtime_ns)
                except ValueError:
                    pass
        return self.entries


def _forward(data: bytes, upstream: list[str]) -> bytes | None:
    """The first upstream server's answer to the query as it came (its ID checked)."""
    for server in upstream:
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(UPSTREAM_SECONDS)
            try:
                s.connect((server, 53))
                s.send(data)
                reply = s.recv(65535)
            except OSError:
                continue
            if reply[:2] == data[:2]:
                return reply
    return None


class Server:
    def __init__(self, me: str, names: _Names, upstream: list[str]) -> None:
        self.me, self.names, self.upstream = me, names, upstream
        self.busy = threading.BoundedSemaphore(MAX_QUERIES)
        self.lock = threading.Lock()

    def reply(self, data: bytes) -> bytes | None:
        from dnslib import RCODE, DNSError, DNSRecord
        try:
            query = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError):
            return None
        if not query.questions:
            return None
        with self.lock:
            local = answer(query, self.names.get(), self.me)
        if local is not None:
            return bytes(local.pack())
        if self.upstream:
            forwarded = _forward(data, self.upstream)
            if forwarded is not None:
                return forwarded
            failed = query.reply()
            failed.header.rcode = RCODE.SERVFAIL
            return bytes(failed.pack())
        unknown = query.reply()  # an internal network: nothing goes out, as Docker's
        unknown.header.rcode = RCODE.NXDOMAIN
        return bytes(unknown.pack())

    def udp(self, sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
        try:
            out = self.reply(data)
            if out is not None:
                with self.lock:
                    sock.sendto(out, peer)
        except OSError:
            pass
        finally:
            self.busy.release()

    def tcp(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            with conn:
                size = int.from_bytes(_read(conn, 2), "big")
                out = self.reply(_read(conn, size))
                if out is not None:
                    conn.sendall(len(out).to_bytes(2, "big") + out)
        except OSError:
            pass
        finally:
            self.busy.release()

    def serve(self, udp: socket.socket, tcp: socket.socket, pidfd: int) -> None:
        """Until the container's PID 1 has ended."""
        poll = select.poll()
        for fd in (udp.fileno(), tcp.fileno(), pidfd):
            poll.register(fd, select.POLLIN)
        while True:
            for fd, _ in poll.poll():
                if fd == pidfd:
                    return
                if not self.busy.acquire(blocking=False):
                    if fd == udp.fileno():
                        udp.recvfrom(65535)  # dropped: the client asks again
                    else:
                        tcp.accept()[0].close()
                    continue
                if fd == udp.fileno():
                    data, peer = udp.recvfrom(65535)
                    threading.Thread(target=self.udp, args=(udp, data, peer), daemon=True).start()
                else:
                    threading.Thread(target=self.tcp, args=(tcp.accept()[0],), daemon=True).start()


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            raise OSError("closed")
        data += more
    return data


def spawn(pid: int, container: str, upstream: list[str], dns_dir: str, ready: Callable[[], object]) -> None:
    """The resolver of the container whose PID 1 is ``pid`` (its network attached): its
    sockets bound now in the container's namespace (then ``ready`` is called: the container
    may go on), then a process of its own exec'd to serve them (as root here; it drops to
    nobody first thing)."""
    from .netns import in_netns
    pidfd = os.pidfd_open(pid)
    with in_netns(pid):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for sock in (udp, tcp):
                # Bound whatever state the container's own setup has left its lo in so far (its
                # start does not wait for it): one EADDRNOTAVAIL in CI, 1 of 20 joining at once,
                # whose cause was not found (a bind to 127.0.0.11 before lo is up works here);
                # served once lo is up, which is before its program runs.
                sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
                sock.bind((ADDRESS, 53))
            tcp.listen(16)
        except OSError as e:
            raise OSError(e.errno, f"binding the resolver to {ADDRESS}:53 in the container: {e.strerror}") from None
    os.makedirs(dns_dir, mode=0o755, exist_ok=True)
    dirfd = os.open(dns_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fds = (udp.fileno(), tcp.fileno(), pidfd, dirfd)
    ready()
    try:
        child = os.fork()
        if child == 0:  # the middle process: the resolver is nobody's child but init's
            try:
                os.setsid()
                if os.fork() == 0:
                    _exec(container, upstream, fds)
            finally:
                os._exit(0)
        os.waitpid(child, 0)
    finally:
        for fd in (pidfd, dirfd):
            os.close(fd)
        udp.close()
        tcp.close()


def _exec(container: str, upstream: list[str], fds: tuple[int, ...]) -> None:
    """The resolver's process: its descriptors above the standard three (which a helper
    without stdio may have given them), stdio on /dev/null, nothing else open."""
    import fcntl

    from ..kernel import close_all_but
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]
    null = os.open("/dev/null", os.O_RDWR)
    for std in (0, 1, 2):
        os.dup2(null, std)
    close_all_but(high)
    for fd in high:
        os.set_inheritable(fd, True)
    os.execv(sys.executable, [sys.executable, "-I", "-m", "minirun.runtime.net.resolver", container,
                              ",".join(upstream), *map(str, high)])


def _drop_privileges() -> None:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)  # every capability goes with uid 0


def main(argv: list[str]) -> None:
    container, upstream, *fds = argv
    udp_fd, tcp_fd, pidfd, dirfd = map(int, fds)
    import dnslib  # noqa: F401 - every module it needs loaded now: nobody may not read them
    _drop_privileges()
    udp = socket.socket(fileno=udp_fd)
    tcp = socket.socket(fileno=tcp_fd)
    Server(container, _Names(dirfd), [s for s in upstream.split(",") if s]).serve(udp, tcp, pidfd)


if __name__ == "__main__":
    main(sys.argv[1:])
