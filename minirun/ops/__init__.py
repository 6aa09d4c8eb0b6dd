"""The operations under the CLI: each takes one ``Context`` and reports by return values and
events, never by printing (``images``: pull, rmi, prune; ``run``; ``containers``: ps, rm;
``gc``: what no image or container uses)."""
