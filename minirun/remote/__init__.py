"""Registries over HTTP (pure of disk and kernel): references and where they are served
(``reference``, ``endpoints``), the 401 dance and credentials (``auth``, ``credentials``,
``tls``), requests with their retries and errors (``transport``), the distribution API
(``registry``)."""
