"""The spec builder (pure): one config.json from the image's config and run's checked flags,
valid by the OCI runtime spec's own schema, and read back by the runtime's plan as built.
runc running these documents is tests/integration/test_runc.py."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from minirun.errors import StoreError
from minirun.runtime import _libc, caps
from minirun.runtime.cgroups import Limits
from minirun.runtime.plan import plan
from minirun.runtime.seccomp import load
from minirun.spec.build import OPTIONS, Request, build
from minirun.spec.defaults import DEVICE_RULES, INIT_TARGET, MASKED_PATHS
from minirun.spec.flags import Bind
from minirun.spec.seccomp import DEFAULT_PROFILE, oci_section
from minirun.spec.settings import PREFIX, Settings, from_annotations, to_annotations
from tests.support import ocischema
from tests.support.specs import IMAGE, request, spec

if TYPE_CHECKING:
    from minirun.spec.build import Spec

DEFAULT_SECCOMP = oci_section(load(Path(DEFAULT_PROFILE).read_text(), "default"), "amd64", caps.DEFAULT, (6, 1))

CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "user": {"user": "1000:1000", "workdir": "/tmp", "env": ("A=1", "B")},
    "read-only": {"read_only": True, "tmpfs": (("/run", "noexec,nosuid,nodev,size=1m"),),
                  "binds": (Bind("/srv", "/data", True),), "etc": {"/etc/hosts": "/c/hosts"}},
    "no capabilities": {"capabilities": frozenset()},
    "privileged": {"capabilities": frozenset(range(41)), "privileged": True},
    "limits": {"limits": Limits(64 << 20, 0.5, 20), "rlimits": (("RLIMIT_NOFILE", 100, 200),
                                                              ("RLIMIT_CORE", -1, -1))},
    "seccomp": {"seccomp": DEFAULT_SECCOMP, "no_new_privileges": True},
    "init": {"init": "/usr/bin/tini-static"},
    "host network": {"network_path": None, "network": "host"},
    "joined network": {"network_path": "/proc/42/ns/net", "network": "container:db"},
    "terminal": {"tty": True, "interactive": True},
}


@pytest.mark.parametrize("name", CASES)
def test_every_config_is_valid_by_the_runtime_specs_schema(name: str) -> None:
    assert ocischema.errors(spec(**CASES[name])) == []


def test_the_schema_judge_refuses_what_is_wrong() -> None:
    broken = spec()
    broken["mounts"][0].pop("destination")
    broken["process"]["capabilities"]["bounding"] = "CAP_CHOWN"
    said = ocischema.errors(broken)
    assert any("destination" in e for e in said) and any("capabilities/bounding" in e for e in said), said


def test_process_as_docker_makes_it() -> None:
    doc = spec(env=("A=1", "B"), workdir="/tmp", user="1000:1000", command=("ls", "-l"))
    process = doc["process"]
    assert process["args"] == ["ls", "-l"] and process["cwd"] == "/tmp"
    assert process["env"] == ["PATH=/bin", "HOSTNAME=box", "A=1"]  # B: not in the caller's environment
    assert process["user"] == {"uid": 1000, "gid": 1000}
    assert process["capabilities"]["bounding"] == process["capabilities"]["effective"]
    assert "CAP_NET_BIND_SERVICE" in process["capabilities"]["bounding"]
    assert process["capabilities"]["inheritable"] == [] and process["capabilities"]["ambient"] == []
    assert doc["annotations"][PREFIX + "user"] == "1000:1000"


def test_init_runs_first_and_is_bound_read_only() -> None:
    doc = spec(init="/usr/bin/tini-static")
    assert doc["process"]["args"][:3] == [INIT_TARGET, "--", "sh"]
    assert {"destination": INIT_TARGET, "type": "bind", "source": "/usr/bin/tini-static",
            "options": ["rbind", "rprivate", "ro"]} in doc["mounts"]
    assert plan(doc, False, "", "t").init


def test_namespaces_say_what_is_made_and_what_is_joined() -> None:
    kinds = {n["type"]: n.get("path") for n in spec()["linux"]["namespaces"]}
    assert kinds == {"pid": None, "ipc": None, "uts": None, "mount": None, "cgroup": None, "network": None}
    assert "network" not in {n["type"] for n in spec(network_path=None)["linux"]["namespaces"]}
    joined = plan(spec(network_path="/proc/42/ns/net"), False, "", "t")
    assert ("network", "/proc/42/ns/net") in joined.namespaces and not joined.new("network")


def test_privileged_has_every_device_and_no_masked_paths() -> None:
    plain, privileged = spec(), spec(privileged=True)
    assert plain["linux"]["resources"]["devices"] == list(DEVICE_RULES)
    assert privileged["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert plain["linux"]["maskedPaths"] == list(MASKED_PATHS) and "maskedPaths" not in privileged["linux"]
    assert plan(privileged, False, "", "t").device_rules is None


def test_the_runtime_reads_back_what_was_built() -> None:
    r = request(read_only=True, binds=(Bind("/srv", "/data", True),), tmpfs=(("/run", "noexec,size=1m"),),
                limits=Limits(64 << 20, 0.5, 20), rlimits=(("RLIMIT_NOFILE", 100, 200), ("RLIMIT_CORE", -1, -1)),
                seccomp=DEFAULT_SECCOMP, no_new_privileges=True, tty=True, cgroups_path="tests/abc")
    p = plan(build(r), True, "nobody", "t")
    assert p.argv == ("sh", "-c", "true") and p.cwd == "/work" and p.user == "nobody" and p.tty and p.interactive
    assert p.capabilities == caps.DEFAULT and p.no_new_privileges and p.root_readonly
    assert p.rlimits == ((7, 100, 200), (4, -1, -1)) and p.seccomp == DEFAULT_SECCOMP
    assert (p.cgroup_parent, p.cgroup_name, p.limits) == ("tests", "abc", Limits(64 << 20, 0.5, 20))
    volume = next(m for m in p.mounts if m.destination == "/data")
    assert volume.bind and volume.flags & _libc.MS_RDONLY and volume.source == "/srv"
    run = next(m for m in p.mounts if m.destination == "/run")
    assert (run.type, run.flags, run.data) == ("tmpfs", _libc.MS_NOEXEC, "size=1m")
    assert [m.destination for m in p.mounts][:7] == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup",
                                                     "/dev/mqueue", "/dev/shm"]
    assert [d.path for d in p.devices] == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                                           "/dev/tty"]


def test_a_new_part_is_one_option() -> None:
    """As containerd's SpecOpts: a part of the document is one function of the Request."""
    def with_sysctl(doc: Spec, r: Request) -> None:
        doc["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}

    doc = build(request(), (*OPTIONS, with_sysctl))
    assert doc["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1"} and ocischema.errors(doc) == []
    assert build(request()) == spec()  # and the rest unchanged


def test_settings_round_trip_through_annotations() -> None:
    s = Settings(network="container:db", publish=("8080:80",), publish_all=True, log_driver="none",
                 stop_signal="SIGQUIT", stop_timeout=-1, interactive=True, init=True, user="www-data",
                 security_opt=("seccomp=/p.json",), volume=("/a:/b:ro",))
    assert all(isinstance(v, str) for v in to_annotations(s).values())
    assert from_annotations(to_annotations(s), "t") == s
    assert from_annotations({}, "t") == Settings()
    with pytest.raises(StoreError, match=r"reading t: annotation io\.minirun\.stop-timeout has the wrong kind"):
        from_annotations({PREFIX + "stop-timeout": '"ten"'}, "t")


def test_a_config_the_runtime_cannot_read_is_one_error() -> None:
    with pytest.raises(StoreError, match=r"^reading the config of c: not a config\.json minirun can run"):
        plan({"process": {}, "linux": {}}, False, None, "the config of c")


def test_image_config_fields_of_the_wrong_kind_are_left_out() -> None:
    from minirun.oci import ImageConfig
    config = ImageConfig(None, (), None, {"config": {"Cmd": "not a list", "Env": ["A=1"], "User": 7}})
    assert config.run_config == {"Env": ["A=1"]}
    assert IMAGE["Cmd"] == ["sh", "-c", "true"]
