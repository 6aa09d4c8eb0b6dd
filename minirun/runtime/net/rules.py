"""minirun's nftables table as text (pure): every network's bridge in one ``table ip minirun``,
replaced whole in one transaction (``nft -f``).

Per network, as Docker's iptables rules do it: outbound masquerade (not for ``--internal``
ones), a DNAT per published port, nothing from a bridge to or from the host's loopback range,
and in ``forward``: a network's containers reach each other and the outside, nothing from
another network reaches them (Docker's isolation chains) but replies and published ports,
and an internal network's traffic stays on its bridge.
"""

from .netconf import TABLE, Net, PortMapping


def _raw(nets: list[Net]) -> list[str]:
    # Before routing and NAT: nothing from a bridge to or from the host's loopback range
    # (route_localnet is on for -p 127.0.0.1; a container's raw frame must not use it).
    out = ["\tchain raw {", "\t\ttype filter hook prerouting priority raw; policy accept;"]
    for n in nets:
        out += [f'\t\tiifname "{n.bridge}" ip daddr 127.0.0.0/8 drop',
                f'\t\tiifname "{n.bridge}" ip saddr 127.0.0.0/8 drop']
    return [*out, "\t}"]


def _postrouting(nets: list[Net]) -> list[str]:
    subnets = ", ".join(str(n.subnet) for n in nets)
    out = ["\tchain postrouting {", "\t\ttype nat hook postrouting priority srcnat; policy accept;"]
    for n in nets:
        if not n.internal:
            out.append(f'\t\tip saddr {n.subnet} oifname != "{n.bridge}" masquerade')
    for n in nets:
        # 127.0.0.1 -> container (route_localnet on the bridge), and a container reaching
        # another through a published port: answered through the bridge's address.
        out += [f'\t\toifname "{n.bridge}" ip saddr 127.0.0.0/8 masquerade',
                f'\t\toifname "{n.bridge}" ip saddr {{ {subnets} }} ct status dnat masquerade']
    return [*out, "\t}"]


def _forward(nets: list[Net]) -> list[str]:
    out = ["\tchain forward {", "\t\ttype filter hook forward priority filter; policy accept;"]
    if len(nets) > 1:  # a reply across networks (to a published port's client) passes
        out.append("\t\tct state established,related accept")
    for n in nets:
        out.append(f'\t\tiifname "{n.bridge}" oifname "{n.bridge}" accept')
    for n in nets:
        if n.internal:
            out += [f'\t\tiifname "{n.bridge}" drop', f'\t\toifname "{n.bridge}" drop']
    # Published ports first, whatever the networks' order: reached from every network, as
    # from outside (the isolation below would drop one network's container reaching another's).
    shared = [n for n in nets if not n.internal]
    out += [f'\t\toifname "{n.bridge}" ct status dnat accept' for n in shared]
    for n in shared:
        b = n.bridge
        others = [o.bridge for o in nets if o is not n]
        if others:
            listed = ", ".join(f'"{o}"' for o in others)
            out.append(f'\t\tiifname "{b}" oifname {{ {listed} }} drop')
        out += [f'\t\tiifname "{b}" accept',
                f'\t\toifname "{b}" ct state established,related accept',
                # Into the bridge from elsewhere (a neighbour routing to the subnet through this
                # host, another network): only published ports and replies, as Docker.
                f'\t\toifname "{b}" drop']
    return [*out, "\t}"]


def ruleset(nets: list[Net], published: list[tuple[str, PortMapping]]) -> str:
    """The whole table: ``nets`` (the default bridge and the user networks in use), the
    published ports as (container address, mapping), DNAT'd from the host's own addresses,
    127.0.0.1 included, and from containers through them."""
    dnat = []
    for address, m in published:
        match = f"ip daddr {m.host_ip} " if m.host_ip else ""
        dnat.append(f"\t\t{match}{m.proto} dport {m.host_port} dnat to {address}:{m.container_port}")
    return "\n".join([
        f"table ip {TABLE} {{}}",
        f"delete table ip {TABLE}",
        f"table ip {TABLE} {{",
        *_raw(nets),
        "\tchain prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        "\t\tfib daddr type local jump publish",
        "\t}",
        "\tchain output {",
        "\t\ttype nat hook output priority -100; policy accept;",
        "\t\tfib daddr type local jump publish",
        "\t}",
        "\tchain publish {",
        *dnat,
        "\t}",
        *_postrouting(nets),
        *_forward(nets),
        "}",
    ]) + "\n"
