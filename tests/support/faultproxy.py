"""A fault-injecting HTTP proxy in front of a real registry.

Requests are forwarded to the registry unchanged; a fault, once armed, alters one
or more matching answers: a flipped byte, a truncated body, a 500, a 429 with
Retry-After, a slow body, or a redirect to a second listener on another loopback
address (standing in for Docker Hub's CDN). Every request is logged.
"""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate"}


@dataclass
class Fault:
    kind: str                 # flip | truncate | status | slow | redirect | rst
    path: str                 # regex matched against the request path
    times: int = 1            # how many matching requests it hits (-1: all)
    method: str = "GET"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    rate: int = 64 * 1024     # bytes per second for "slow"
    hits: int = 0


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    status: int
    listener: str


class FaultProxy:
    def __init__(self, upstream: str, ca: Path | None = None, cdn_address: str = "127.0.0.2") -> None:
        u = urlparse(upstream)
        self.upstream_host, self.upstream_port = u.hostname or "127.0.0.1", u.port or 80
        self.upstream_tls = u.scheme == "https"
        self.ctx = ssl.create_default_context(cafile=str(ca)) if ca else None
        self.faults: list[Fault] = []
        self.log: list[Logged] = []
        self.bytes_sent = 0
        self.inflight = 0        # blob GETs being answered right now
        self.max_inflight = 0
        self._lock = threading.Lock()
        self.servers = [self._serve("127.0.0.1", "main"), self._serve(cdn_address, "cdn")]
        self.port = self.servers[0].server_address[1]
        self.cdn_port = self.servers[1].server_address[1]
        self.cdn_address = cdn_address

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.log.clear()

    def requests(self, method: str | None = None, pattern: str = "") -> list[Logged]:
        return [r for r in list(self.log) if (method is None or r.method == method)
                and re.search(pattern, r.path)]

    def close(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()

    def _serve(self, address: str, listener: str) -> ThreadingHTTPServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer._handle(self, listener)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        server = ThreadingHTTPServer((address, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.method == method and re.search(f.path, path) and (f.times < 0 or f.hits < f.times):
                    f.hits += 1
                    return f
        return None

    def _handle(self, req: BaseHTTPRequestHandler, listener: str) -> None:
        counted = req.command == "GET" and "/blobs/" in req.path
        if counted:
            with self._lock:
                self.inflight += 1
                self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self._answer(req, listener)
        finally:
            if counted:
                with self._lock:
                    self.inflight -= 1

    def _answer(self, req: BaseHTTPRequestHandler, listener: str) -> None:
        method, path = req.command, req.path
        headers = {k: v for k, v in req.headers.items()}
        length = int(req.headers.get("Content-Length") or 0)
        body_in = req.rfile.read(length) if length else None
        fault = self._take(method, path) if listener == "main" else None
        if listener == "cdn":
            path = path.removeprefix("/cdn")

        if fault and fault.kind == "status":
            self._record(method, req.path, headers, fault.status, listener)
            return self._reply(req, fault.status, fault.headers, fault.body)
        if fault and fault.kind == "redirect":
            location = f"http://{self.cdn_address}:{self.cdn_port}/cdn{path}"
            self._record(method, req.path, headers, 307, listener)
            return self._reply(req, 307, {"Location": location}, b"")

        conn: http.client.HTTPConnection
        if self.upstream_tls:
            conn = http.client.HTTPSConnection(self.upstream_host, self.upstream_port, context=self.ctx, timeout=30)
        else:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        fwd = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        fwd["Host"] = f"{self.upstream_host}:{self.upstream_port}"
        try:
            conn.request(method, path, body=body_in, headers=fwd)
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        self._record(method, req.path, headers, resp.status, listener)
        out_headers = {k: v for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}}
        for k in list(out_headers):
            if k.lower() == "location" and self.upstream_tls is False:
                out_headers[k] = out_headers[k].replace(f"{self.upstream_host}:{self.upstream_port}", self.host)
        if fault and fault.kind == "flip" and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        if fault and fault.kind in ("truncate", "rst"):
            # Promise the whole body, send half, then drop the connection.
            req.send_response(resp.status)
            for k, v in out_headers.items():
                req.send_header(k, v)
            req.send_header("Content-Length", str(len(data)))
            req.send_header("Connection", "close")
            req.end_headers()
            req.wfile.write(data[: len(data) // 2])
            req.wfile.flush()
            req.close_connection = True
            return None
        if fault and fault.kind == "slow":
            req.send_response(resp.status)
            for k, v in out_headers.items():
                req.send_header(k, v)
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            step = max(1, fault.rate // 10)
            try:
                for i in range(0, len(data), step):
                    req.wfile.write(data[i:i + step])
                    req.wfile.flush()
                    with self._lock:
                        self.bytes_sent += len(data[i:i + step])
                    time.sleep(0.1)
            except (BrokenPipeError, ConnectionResetError):
                req.close_connection = True
            return None
        return self._reply(req, resp.status, out_headers, data, head=method == "HEAD",
                           length=resp.getheader("Content-Length"))

    def _record(self, method: str, path: str, headers: dict[str, str], status: int, listener: str) -> None:
        with self._lock:
            self.log.append(Logged(method, path, headers, status, listener))

    @staticmethod
    def _reply(req: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes,
               head: bool = False, length: str | None = None) -> None:
        req.send_response(status)
        for k, v in headers.items():
            req.send_header(k, v)
        req.send_header("Content-Length", length if head and length else str(len(body)))
        req.end_headers()
        if not head:
            try:
                req.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                req.close_connection = True
