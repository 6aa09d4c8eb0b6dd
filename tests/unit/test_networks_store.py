"""Network records in the store: names, IDs, subnets as Docker allots them (a temporary store;
no kernel involved)."""

from __future__ import annotations

from pathlib import Path

import pytest

from minirun.containers.networks import Networks
from minirun.errors import ContainerConflict, NoSuchNetwork, UsageError

ROUTES = ("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
          "eth0\t00014E0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")  # 10.78.1.0/24 on eth0


def test_subnets_are_allotted_apart_from_each_other_and_the_host_s_routes(tmp_path: Path) -> None:
    nets = Networks(tmp_path)
    a = nets.create("a", None, None, False, {}, ROUTES)
    b = nets.create("b", None, None, True, {"k": "v"}, ROUTES)
    assert (a.subnet, a.gateway, b.subnet) == ("10.78.0.0/24", "10.78.0.1", "10.78.2.0/24")
    assert b.internal and b.labels == {"k": "v"} and b.bridge == f"mr-{b.id[:12]}" and len(b.bridge) <= 15
    c = nets.create("c", "10.99.0.0/16", "10.99.0.1", False, {}, ROUTES)
    assert c.net().subnet.prefix == 16 and c.net().names
    with pytest.raises(ContainerConflict, match="Pool overlaps"):
        nets.create("d", "10.99.7.0/24", None, False, {}, ROUTES)
    with pytest.raises(ContainerConflict, match="Pool overlaps"):
        nets.create("d", "10.77.3.0/24", None, False, {}, ROUTES)  # the default bridge's
    with pytest.raises(UsageError, match="the subnet's first address"):
        nets.create("d", "10.98.0.0/24", "10.98.0.9", False, {}, ROUTES)
    assert [n.name for n in nets.all()] == ["a", "b", "c"]


def test_names_ids_and_prefixes_as_docker(tmp_path: Path) -> None:
    nets = Networks(tmp_path)
    a = nets.create("app", None, None, False, {}, "")
    assert nets.find("app") == a and nets.find(a.id) == a and nets.find(a.id[:5]) == a
    for name in ("app", "bridge", "host", "none"):
        with pytest.raises(ContainerConflict, match=f"network with name {name} already exists"):
            nets.create(name, None, None, False, {}, "")
    for bad in ("-x", "a b", "", "a/b"):
        with pytest.raises(UsageError, match="invalid network name"):
            nets.create(bad, None, None, False, {}, "")
    with pytest.raises(NoSuchNetwork, match="network nosuch not found"):
        nets.find("nosuch")
    nets.remove(a)
    with pytest.raises(NoSuchNetwork):
        nets.find("app")
    (tmp_path / "networks" / "torn.json").write_text("{")  # a damaged record is passed over
    assert nets.all() == []
