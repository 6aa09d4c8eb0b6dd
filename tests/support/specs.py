"""Requests for the spec builder as ``run`` would make them, for tests of the builder, the
runtime's plan and the setup order (pure: no image, no store)."""

from __future__ import annotations

from typing import Any

from minirun.oci import RunConfig
from minirun.runtime import caps
from minirun.runtime.cgroups import Limits
from minirun.spec.build import Request, build
from minirun.spec.settings import Settings

IMAGE = RunConfig(Cmd=["sh", "-c", "true"], Env=["PATH=/bin"], WorkingDir="/work")


def request(**changes: Any) -> Request:
    """A container of IMAGE with run's defaults (bridge, seccomp off), changed by ``changes``
    (``settings`` fields may be given by name too)."""
    settings = Settings(network="bridge")
    own = {k: changes.pop(k) for k in list(changes) if k in Settings._fields and k not in Request._fields}
    base = Request(image=IMAGE, command=(), entrypoint=None, env=(), workdir=None, hostname="box", tty=False,
                   read_only=False, capabilities=caps.DEFAULT, binds=(), tmpfs=(), etc={}, init="",
                   seccomp=None, no_new_privileges=False, rlimits=(), limits=Limits(),
                   cgroups_path="minirun/" + "c" * 64, network_path="", settings=settings._replace(**own))
    return base._replace(**changes)


def spec(**changes: Any) -> dict[str, Any]:
    return build(request(**changes))
