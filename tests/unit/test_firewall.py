"""Which of the host's other firewalls need accept rules for the bridge (pure): the chains
found in `nft -j list ruleset` as Docker, ufw and firewalld leave them."""

from __future__ import annotations

from typing import Any

from minirun.runtime.net import firewall


def _chain(family: str, table: str, name: str, hook: str | None = None, policy: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"family": family, "table": table, "name": name}
    if hook:
        c.update(hook=hook, policy=policy or "accept", type="filter", prio=0)
    return {"chain": c}


def _rule(family: str, table: str, chain: str, *verdicts: str) -> dict[str, Any]:
    return {"rule": {"family": family, "table": table, "chain": chain, "expr": [{v: None} for v in verdicts]}}


def _plan(*items: dict[str, Any], iptables: bool = True) -> firewall.Plan:
    return firewall.plan({"nftables": list(items)}, "minirun0", "minirun", iptables)


def test_dockers_forward_policy_is_opened_in_docker_user() -> None:
    p = _plan(_chain("ip", "filter", "FORWARD", "forward", "drop"), _chain("ip", "filter", "DOCKER-USER"),
              _chain("ip", "minirun", "forward", "forward", "drop"))
    assert p == firewall.Plan(["ip filter FORWARD (policy drop)"], "DOCKER-USER", [])


def test_ufw_and_a_bare_drop_policy() -> None:
    ufw = _plan(_chain("ip", "filter", "FORWARD", "forward", "drop"), _chain("ip", "filter", "ufw-user-forward"))
    assert ufw.iptables == "ufw-user-forward"
    assert _plan(_chain("ip", "filter", "FORWARD", "forward", "drop")).iptables == "FORWARD"
    # Without the iptables command, its table is changed with nft like any other.
    assert _plan(_chain("ip", "filter", "FORWARD", "forward", "drop"), iptables=False).nft == [("ip", "filter",
                                                                                                "FORWARD")]


def test_firewalld_like_tables_that_reject_and_those_left_alone() -> None:
    p = _plan(_chain("inet", "firewalld", "filter_FORWARD", "forward"),
              _rule("inet", "firewalld", "filter_FORWARD", "accept"),
              _rule("inet", "firewalld", "filter_FORWARD", "reject"),
              _chain("ip", "filter", "FORWARD", "forward"),        # accepting: Docker's, when it left forwarding on
              _rule("ip", "filter", "FORWARD", "jump"),
              _chain("inet", "other", "in", "input", "drop"))     # not the forward hook
    assert p == firewall.Plan(["inet firewalld filter_FORWARD (drops or rejects)"], None,
                              [("inet", "firewalld", "filter_FORWARD")])
    assert _plan(_chain("ip", "filter", "FORWARD", "forward")) == firewall.Plan([], None, [])


def test_the_rules_accept_only_what_minirun_s_table_does() -> None:
    assert firewall.nft_rules("minirun0") == [
        'iifname "minirun0" accept comment "minirun"',
        'oifname "minirun0" ct state established,related accept comment "minirun"',
        'oifname "minirun0" ct status dnat accept comment "minirun"']
    assert [s[:4] for s in firewall.iptables_specs("minirun0")] == [
        ["-i", "minirun0", "-m", "comment"], ["-o", "minirun0", "-m", "conntrack"],
        ["-o", "minirun0", "-m", "conntrack"]]


def test_the_ruleset_generation_is_read_from_a_newgen_reply() -> None:
    """nftgen.parse_reply: NFTA_GEN_ID of NFT_MSG_NEWGEN (as the kernel sends it); nothing
    from an error or a cut message, so that a start surveys the firewalls again."""
    import struct

    from minirun.runtime.net.nftgen import parse_reply
    attrs = struct.pack("=HH", 8, 1) + struct.pack(">I", 3329) + struct.pack("=HH", 8, 2) + struct.pack(">I", 7)
    body = struct.pack("=BBH", 0, 0, 0) + attrs
    reply = struct.pack("=IHHII", 16 + len(body), (10 << 8) | 15, 0, 1, 0) + body
    assert parse_reply(reply) == 3329
    assert parse_reply(reply[:20]) is None
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -1) + reply[:16]
    assert parse_reply(error) is None
