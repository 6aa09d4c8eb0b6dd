"""rtnetlink requests (links, addresses, routes) encoded by pyroute2's message classes and
sent on a plain netlink socket.

pyroute2's package ``__init__`` imports all of pyroute2 (its asyncio core, NDB, IPDB,
conntrack): 110 to 290 ms here, more than a whole container start. The three message
classes a container's network needs, with the netlink base they stand on, import in about
20 ms, so they are loaded without running the package's ``__init__``: a bare package module
stands in for it while they are imported, then is dropped again, so that a later
``import pyroute2`` anywhere still gets the whole package.
"""

import errno
import importlib.util
import os
import socket
import struct
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyroute2.netlink import nlmsg

IFF_UP = 1
AF_INET = socket.AF_INET
_NLMSG_ERROR = 2
_FLAGS = {"request": 1, "ack": 4, "excl": 0x200, "create": 0x400}


def _message_classes() -> tuple[Any, Any, Any]:
    """pyroute2's ifinfmsg, ifaddrmsg and rtmsg, without the package's __init__."""
    if "pyroute2.netlink.rtnl.rtmsg" not in sys.modules and "pyroute2" not in sys.modules:
        spec = importlib.util.find_spec("pyroute2")
        if spec is None or spec.submodule_search_locations is None:
            raise OSError(errno.ENOENT, "pyroute2 is not installed")
        bare = types.ModuleType("pyroute2")
        bare.__path__ = list(spec.submodule_search_locations)
        sys.modules["pyroute2"] = bare
        try:
            import pyroute2.netlink.rtnl.ifaddrmsg
            import pyroute2.netlink.rtnl.ifinfmsg
            import pyroute2.netlink.rtnl.rtmsg  # noqa: F401 - loaded for the lines below
        finally:
            del sys.modules["pyroute2"]
    base = "pyroute2.netlink.rtnl."
    return (sys.modules[base + "ifinfmsg"].ifinfmsg, sys.modules[base + "ifaddrmsg"].ifaddrmsg,
            sys.modules[base + "rtmsg"].rtmsg)


def preload() -> None:
    """Import the message classes now (see ``attacher``)."""
    _message_classes()


RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR, RTM_NEWROUTE = 16, 17, 20, 24


class Netlink:
    """One NETLINK_ROUTE socket, in the network namespace of the thread that made it."""

    def __init__(self) -> None:
        self.ifinfmsg, self.ifaddrmsg, self.rtmsg = _message_classes()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, msg: "nlmsg", kind: int, *flags: str, what: str) -> None:
        """Send and wait for the kernel's acknowledgement; an error is an OSError naming
        ``what`` was being done."""
        self.seq += 1
        msg["header"]["type"] = kind
        msg["header"]["flags"] = _FLAGS["request"] | _FLAGS["ack"] | sum(_FLAGS[f] for f in flags)
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
                if mtype == _NLMSG_ERROR and seq == self.seq:
                    (code,) = struct.unpack_from("=i", data, offset + 16)
                    if code:
                        raise OSError(-code, f"{what}: {os.strerror(-code)}")
                    return
                offset += max(length, 16)

    def new_link(self, attrs: list[Any], what: str, index: int = 0, up: bool = False,
                 create: bool = True) -> None:
        msg = self.ifinfmsg()
        msg["index"] = index
        if up:
            msg["flags"] = msg["change"] = IFF_UP
        msg["attrs"] = attrs
        self.request(msg, RTM_NEWLINK, *(("create", "excl") if create else ()), what=what)

    def set_up(self, index: int, what: str) -> None:
        self.new_link([], what, index=index, up=True, create=False)

    def delete_link(self, index: int, what: str) -> None:
        msg = self.ifinfmsg()
        msg["index"] = index
        self.request(msg, RTM_DELLINK, what=what)

    def add_address(self, index: int, address: str, prefix: int, what: str) -> None:
        msg = self.ifaddrmsg()
        msg["family"], msg["prefixlen"], msg["index"] = AF_INET, prefix, index
        msg["attrs"] = [["IFA_LOCAL", address], ["IFA_ADDRESS", address]]
        self.request(msg, RTM_NEWADDR, "create", "excl", what=what)

    def add_default_route(self, gateway: str, what: str) -> None:
        msg = self.rtmsg()
        msg["family"], msg["dst_len"], msg["table"] = AF_INET, 0, 254   # RT_TABLE_MAIN
        msg["proto"], msg["scope"], msg["type"] = 3, 0, 1              # boot, universe, unicast
        msg["attrs"] = [["RTA_GATEWAY", gateway]]
        self.request(msg, RTM_NEWROUTE, "create", "excl", what=what)
