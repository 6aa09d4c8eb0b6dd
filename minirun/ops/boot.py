"""system boot: after a reboot, the containers Docker's daemon would start again when it starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..containers.state import list_all, refresh, user_stopped
from ..errors import MiniRunError
from ..records import TYPE_CHECKING
from ..spec import restart
from .containers import settings_or_defaults
from .start import start_container

if TYPE_CHECKING:
    from .context import Context


BOOT_UNIT = "minirun-boot.service"


def boot(ctx: Context, warn: Callable[[str], None]) -> list[str]:
    """system boot (after a reboot, from the systemd unit): every container whose policy is
    ``always``, or ``unless-stopped`` and not stopped by the user, started again in a monitor
    (as Docker's daemon does when it starts); the names of those started."""
    out = []
    for directory, state in list_all(ctx.root):
        name, _ = restart.name_and_max(settings_or_defaults(directory).restart)
        if name != "always" and (name != "unless-stopped" or user_stopped(directory)):
            continue
        if refresh(state, directory).status == "running":
            continue
        try:
            start_container(ctx, state.id, False, warn)
        except MiniRunError as e:
            warn(f"starting container {state.name}: {e}")
            continue
        out.append(state.name)
    return out


def boot_enabled() -> bool:
    """For info: whether systemd starts ``system boot`` at boot (the unit enabled)."""
    return any(Path(d, f"{t}.wants", BOOT_UNIT).exists() for d in ("/etc/systemd/system", "/lib/systemd/system")
               for t in ("multi-user.target", "default.target"))
