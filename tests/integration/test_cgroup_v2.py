"""cgroup v2, for real: the limit tests of test_run.py on a kernel where cgroup2 holds every
controller (a VM: this machine's own kernel is v1/hybrid; see tests/support/vm.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.integration.conftest import Minirun
from tests.support import vm

REPO = Path(__file__).resolve().parents[2]

# The run tests that touch cgroups, and hello-world end to end on the guest's kernel; the
# device policy, which v2 enforces with a BPF program of minirun's own.
TESTS = [f"tests/integration/test_run.py::{name}" for name in (
    "test_hello_world_end_to_end",
    "test_memory_limit_ends_with_137_and_cgroups_are_removed",
    "test_pids_limit_stops_a_fork_bomb",
    "test_the_container_sees_its_own_cgroup_read_only",
    "test_limits_are_set_while_running_and_removed_after",
    "test_running_container_ps_rm_f_and_killed_monitor",
)] + ["tests/integration/test_confinement.py::test_host_block_devices_are_denied"]


def test_limits_on_a_cgroup_v2_kernel(tmp_path: Path, mr: Minirun) -> None:
    # scripts/smoke in the guest too, with images it loads from archives (no registry there)
    archives = []
    for name in ("hello-world", "busybox"):
        archive = tmp_path / f"{name}.tar"
        assert mr("pull", "-q", name).returncode == 0 and mr("save", "-o", str(archive), name).returncode == 0
        archives.append(str(archive))
    script = f"""
echo "guest controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
{sys.executable} -c "from minirun.runtime import cgroups; print('guest cgroup version', cgroups.version())"
cd {REPO}
{sys.executable} -m pytest -p no:cacheprovider -v --color=no -o faulthandler_timeout=240 --basetemp /mnt/tmp/pytest \
    {" ".join(TESTS)}
echo "guest pytest exit $?"
MINIRUN_ROOT=/mnt/smoke-store {sys.executable} {REPO}/scripts/smoke --minirun "{sys.executable} -m minirun" \
    --load {" ".join(archives)}
echo "guest smoke exit $?"
"""
    # (-v names each test as it starts, and faulthandler_timeout dumps every thread's stack when
    # one takes over 4 minutes: a hang in the guest, seen twice, then shows where it is)
    out = vm.run_guest(script, tmp_path)
    tail = out[-3000:]
    controllers = re.search(r"guest controllers: (.*)", out)
    assert controllers is not None, tail
    assert {"memory", "pids", "cpu"} <= set(controllers.group(1).split()), tail
    assert "guest cgroup version 2" in out, tail
    assert re.search(rf"\b{len(TESTS)} passed\b", out) and "guest pytest exit 0" in out, tail
    smoke = re.search(r"(\d+) passed, (\d+) failed", out)
    assert smoke and int(smoke.group(1)) >= 8 and smoke.group(2) == "0" and "guest smoke exit 0" in out, tail
