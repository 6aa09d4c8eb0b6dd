"""Container networking: the rules as data (``netconf``: modes, -p, resolv.conf, hosts,
addresses, the nftables ruleset), the bridge and its leases (``network``), netlink messages
(``netlink``), the host's other firewalls (``firewall``), the helper that attaches a
container to the bridge (``attacher``)."""
