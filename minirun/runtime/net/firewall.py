"""Other firewalls on the host: accept rules for the bridge where they would drop its traffic.

A packet must pass every base chain on its hook, so minirun's own table cannot undo another's
drop: Docker sets iptables' ``filter FORWARD`` policy to DROP (and loads ``br_netfilter``, so
even traffic between two containers on one bridge meets it), ufw does the same, firewalld has
an ``inet firewalld`` table whose forward chain rejects. As Docker, Podman's netavark and
libvirt do for their bridges, minirun adds accept rules for its bridge where such a chain is
found, exactly and reversibly:

- iptables' ``filter`` table (iptables-nft, managed with the ``iptables`` command so its own
  tools keep reading it): in ``DOCKER-USER`` where Docker made it (the chain Docker documents
  for others' rules), else ufw's ``ufw-user-forward``, else ``FORWARD`` itself;
- any other table's forward chain that drops or rejects (firewalld's, a hand-made one): rules
  inserted at its top with ``nft``.

The rules: from the bridge (its containers' own traffic, outbound and between them), and into
it only replies and published ports (``ct status dnat``), as minirun's table allows; each
marked with the comment ``minirun``. What was added is kept in the network's state directory
with the ruleset's generation it was surveyed at, and stays while the bridge does (removed with
it: ``system prune``, ``network rm``); a start surveys again when the ruleset changed since (a
firewall reloaded, Docker started), not otherwise; ``info`` shows it.
The planning is pure (``plan``, tested without root); ``open_for`` and ``close`` run the tools.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ...records import Record

COMMENT = "minirun"
IPTABLES_CHAINS = ("DOCKER-USER", "ufw-user-forward", "FORWARD")  # where to add, first found


class Plan(Record):
    found: list[str]                        # what would drop the bridge's traffic, as said by info
    iptables: str | None = None             # the filter table's chain to add to (iptables)
    nft: list[tuple[str, str, str]] = []    # noqa: RUF012 - (family, table, chain) to insert into


def _drops(chain: dict[str, Any], rules: list[dict[str, Any]]) -> bool:
    if chain.get("policy") == "drop":
        return True
    return any(any("drop" in e or "reject" in e for e in r.get("expr", [])) for r in rules)


def plan(ruleset: dict[str, Any], bridge: str, own_table: str, have_iptables: bool) -> Plan:
    """What to open, from ``nft -j list ruleset``: the forward base chains of other tables
    that drop or reject."""
    items = ruleset.get("nftables", [])
    chains = [i["chain"] for i in items if "chain" in i]
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for i in items:
        if "rule" in i:
            r = i["rule"]
            rules.setdefault((r["family"], r["table"], r["chain"]), []).append(r)
    found, nft, iptables = [], [], None
    names = {(c["family"], c["table"], c["name"]) for c in chains}
    for c in chains:
        key = (c["family"], c["table"], c["name"])
        if c.get("hook") != "forward" or c["table"] == own_table or c["family"] not in ("ip", "inet"):
            continue
        if not _drops(c, rules.get(key, [])):
            continue
        found.append(f"{c['family']} {c['table']} {c['name']}" + (" (policy drop)" if c.get("policy") == "drop" else
                                                                  " (drops or rejects)"))
        if have_iptables and key == ("ip", "filter", "FORWARD"):
            iptables = next(ch for ch in IPTABLES_CHAINS if ("ip", "filter", ch) in names or ch == "FORWARD")
        else:
            nft.append(key)
    return Plan(found, iptables, nft)


def iptables_specs(bridge: str) -> list[list[str]]:
    """The rules for iptables, in the order they end up in (each inserted at the top)."""
    mark = ["-m", "comment", "--comment", COMMENT, "-j", "ACCEPT"]
    return [["-i", bridge, *mark],
            ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", *mark],
            ["-o", bridge, "-m", "conntrack", "--ctstate", "DNAT", *mark]]


def nft_rules(bridge: str) -> list[str]:
    return [f'iifname "{bridge}" accept comment "{COMMENT}"',
            f'oifname "{bridge}" ct state established,related accept comment "{COMMENT}"',
            f'oifname "{bridge}" ct status dnat accept comment "{COMMENT}"']


def open_for(bridge: str, own_table: str, record: Path, generation: int | None = None) -> list[str]:
    """Add the accept rules the host's firewalls need; ``record`` keeps what was added (for
    ``close``) and the ruleset's ``generation`` the survey was made at (see nftgen). Returns what
    was found. Without nft there is nothing to look at."""
    nft = shutil.which("nft")
    if nft is None:
        return []
    listed = subprocess.run([nft, "-j", "list", "ruleset"], capture_output=True, text=True)
    if listed.returncode != 0:
        return []
    iptables = shutil.which("iptables")
    p = plan(json.loads(listed.stdout), bridge, own_table, iptables is not None)
    added: dict[str, Any] = {"found": p.found, "iptables": [], "nft": [], "generation": generation}
    if p.iptables and iptables:
        for spec in reversed(iptables_specs(bridge)):
            if subprocess.run([iptables, "-w", "-I", p.iptables, "1", *spec], capture_output=True).returncode == 0:
                added["iptables"].append([p.iptables, spec])
    for family, table, chain in p.nft:
        for rule in reversed(nft_rules(bridge)):
            r = subprocess.run([nft, "--echo", "--handle", "insert", "rule", family, table, chain, *rule.split()],
                               capture_output=True, text=True)
            handle = re.search(r"# handle (\d+)", r.stdout)  # (a "# new generation" line follows)
            if r.returncode == 0 and handle:
                added["nft"].append([family, table, chain, int(handle.group(1))])
    record.write_text(json.dumps(added))
    return p.found


def close(record: Path) -> None:
    """Remove what ``open_for`` added (rules already gone, with a firewall's reload, are
    passed over)."""
    try:
        added = json.loads(record.read_text())
    except (OSError, ValueError):
        return
    iptables, nft = shutil.which("iptables"), shutil.which("nft")
    if iptables is not None:
        for chain, spec in added.get("iptables", []):
            subprocess.run([iptables, "-w", "-D", chain, *spec], capture_output=True)
    if nft is not None:
        for family, table, chain, handle in added.get("nft", []):
            subprocess.run([nft, "delete", "rule", family, table, chain, "handle", str(handle)], capture_output=True)
    record.unlink(missing_ok=True)


def described(record: Path) -> dict[str, list[str]]:
    """For info: the chains found dropping, and the rules minirun holds in them now."""
    try:
        added = json.loads(record.read_text())
    except (OSError, ValueError):
        return {"found": [], "added": []}
    rules = [f"iptables {chain}: {' '.join(spec)}" for chain, spec in added.get("iptables", [])]
    rules += [f"nft {family} {table} {chain} handle {handle}" for family, table, chain, handle in added.get("nft", [])]
    return {"found": list(added.get("found", [])), "added": rules}
