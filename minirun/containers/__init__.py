"""Containers on disk: their directory, config.json and lifecycle state (``state``), and
their json-file logs (``logs``)."""
