"""A user network's resolver as logic: who is found where, and the answers it builds (dnslib
parses them back here, as a client would)."""

from __future__ import annotations

import json

from dnslib import QTYPE, DNSRecord

from minirun.runtime.net import resolver

NAMES = json.dumps([
    {"net": "n1", "container": "a" * 64, "names": ["db", "database", "aaaaaaaaaaaa"], "address": "10.78.0.2"},
    {"net": "n1", "container": "b" * 64, "names": ["web", "bbbbbbbbbbbb"], "address": "10.78.0.3"},
    {"net": "n2", "container": "b" * 64, "names": ["web", "bbbbbbbbbbbb"], "address": "10.78.1.2"},
    {"net": "n2", "container": "c" * 64, "names": ["cache", "DB"], "address": "10.78.1.3"},
    {"net": "n3", "container": "d" * 64, "names": ["lonely"], "address": "10.78.2.2"},
    "not an entry", {"names": "not a list"},
])


def test_names_are_found_on_the_networks_a_container_shares() -> None:
    entries = resolver.parse_names(NAMES)
    assert len(entries) == 5
    assert resolver.lookup(entries, "a" * 64, "db") == ["10.78.0.2"]
    assert resolver.lookup(entries, "a" * 64, "DataBase.") == ["10.78.0.2"]
    assert resolver.lookup(entries, "a" * 64, "cache") is None           # n2 only: a is not there
    assert resolver.lookup(entries, "b" * 64, "db") == ["10.78.0.2", "10.78.1.3"]  # on both of b's networks
    assert resolver.lookup(entries, "c" * 64, "web") == ["10.78.1.2"]    # its address on the shared network
    assert resolver.lookup(entries, "d" * 64, "db") is None
    assert resolver.lookup(entries, "e" * 64, "db") is None              # on no network: nothing


def test_answers_as_docker_s_embedded_dns() -> None:
    entries = resolver.parse_names(NAMES)
    reply = resolver.answer(DNSRecord.question("db"), entries, "a" * 64)
    assert reply is not None
    parsed = DNSRecord.parse(reply.pack())
    assert parsed.header.rcode == 0 and [str(r.rdata) for r in parsed.rr] == ["10.78.0.2"]
    assert parsed.rr[0].ttl == 600 and parsed.rr[0].rtype == QTYPE.A
    aaaa = resolver.answer(DNSRecord.question("db", "AAAA"), entries, "a" * 64)
    assert aaaa is not None and aaaa.header.rcode == 0 and aaaa.rr == []
    assert resolver.answer(DNSRecord.question("example.org"), entries, "a" * 64) is None  # asked upstream


def test_a_query_that_does_not_parse_is_dropped_and_others_without_upstream_are_nxdomain() -> None:
    class Names:
        def get(self) -> list[resolver.Entry]:
            return resolver.parse_names(NAMES)

    server = resolver.Server("a" * 64, Names(), [])  # type: ignore[arg-type]
    assert server.reply(b"\x00\x01garbage") is None
    out = server.reply(DNSRecord.question("example.org").pack())
    assert out is not None and DNSRecord.parse(out).header.rcode == 3
    out = server.reply(DNSRecord.question("db").pack())
    assert out is not None and [str(r.rdata) for r in DNSRecord.parse(out).rr] == ["10.78.0.2"]
