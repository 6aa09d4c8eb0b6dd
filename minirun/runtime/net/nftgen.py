"""The nftables ruleset's generation: a number the kernel raises with every change to any
table of this network namespace (iptables-nft's too).

Why: the accept rules minirun keeps in the host's other firewalls (firewall.py) were checked by
``nft -j list ruleset`` at each start that found the bridge empty, 5-20 ms of a start (more
where Docker's firewall made it add and remove rules each time). The generation says, in one
netlink round trip of ~0.1 ms, whether anything changed since minirun last looked: unchanged,
the survey and the rules it left are still right (see leases.Locked).
"""

from __future__ import annotations

import socket
import struct

_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_NFTABLES = 10
_NFT_MSG_GETGEN, _NFT_MSG_NEWGEN = 16, 15
_NFTA_GEN_ID = 1
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2


def generation() -> int | None:
    """This namespace's nftables generation; None where it cannot be read (no nf_tables, not
    root): then nothing is taken as unchanged."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, _NETLINK_NETFILTER)
    except OSError:
        return None
    try:
        sock.settimeout(1.0)
        kind = (_NFNL_SUBSYS_NFTABLES << 8) | _NFT_MSG_GETGEN
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)  # nfgenmsg
        sock.send(struct.pack("=IHHII", 16 + len(body), kind, _NLM_F_REQUEST, 1, 0) + body)
        return parse_reply(sock.recv(4096))
    except OSError:
        return None
    finally:
        sock.close()


def parse_reply(data: bytes) -> int | None:
    """NFTA_GEN_ID of a NEWGEN reply (None for an error or anything else)."""
    if len(data) < 20:
        return None
    length, kind = struct.unpack_from("=IH", data)
    if kind == _NLMSG_ERROR or kind & 0xFF != _NFT_MSG_NEWGEN or length > len(data):
        return None
    offset = 20  # nlmsghdr, nfgenmsg
    while offset + 4 <= length:
        size, attr = struct.unpack_from("=HH", data, offset)
        if size < 4:
            return None
        if attr & 0x3FFF == _NFTA_GEN_ID and size >= 8:
            return int(struct.unpack_from(">I", data, offset + 4)[0])
        offset += (size + 3) & ~3
    return None

