"""The container's configuration, built once (pure): ``run``'s flags and the image's config
in, one OCI runtime spec (config.json) out. ``build`` composes one small option per part of
the document; ``flags`` reads the flags as Docker does; ``seccomp`` narrows a profile to the
container; ``settings`` is what the spec has no field for, kept in its annotations;
``defaults`` is what every container gets, as Docker gives it."""
