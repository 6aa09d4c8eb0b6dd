"""network create, ls, inspect, rm, prune, connect, disconnect in the typer app (Docker's output)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..ops import networks as ops
from ..spec.flags import label_matches
from . import completion as complete
from .many import each, print_docs
from .options import context_of, filters
from .output import confirmed, line, print_rows
from .volumes import labels_from


def create_cmd(
    tctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NETWORK")],
    subnet: Annotated[str | None, typer.Option("--subnet", help="CIDR (default: a free /24 of 10.78.0.0/16).")]
    = None,
    gateway: Annotated[str | None, typer.Option("--gateway", help="IPv4: the subnet's first address.")] = None,
    internal: Annotated[bool, typer.Option("--internal", help="No way out of the network.")] = False,
    driver: Annotated[str, typer.Option("--driver", "-d", help="bridge (the only one).")] = "bridge",
    label: Annotated[list[str], typer.Option("--label", help="KEY=VALUE (repeatable).")] = [],  # noqa: B006
) -> None:
    """Create a network; prints its ID."""
    line(ops.create_network(context_of(tctx), name, subnet, gateway, internal, labels_from(label), driver).id)


_FILTERS = ("name", "id", "label", "driver", "type")


def _filters(given: list[str]) -> dict[str, list[str]]:
    return filters(given, _FILTERS, "name=, id=, label=, driver= or type=custom|builtin")


def _matches(row: ops.NetworkRow, key: str, values: list[str]) -> bool:
    if key == "name":
        return any(v in row.name for v in values)
    if key == "id":
        return any(row.id.startswith(v) for v in values)
    if key == "driver":
        return row.driver in values
    if key == "type":
        return any((v == "custom") == (row.record is not None) for v in values)
    labels = row.record.labels if row.record else {}
    return any(label_matches(labels, v) for v in values)


def ls_cmd(
    tctx: typer.Context,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only IDs.")] = False,
    no_trunc: Annotated[bool, typer.Option("--no-trunc", help="Whole IDs.")] = False,
    filter: Annotated[list[str], typer.Option("--filter", "-f", help="name=, id=, label=, driver=, type=")]
    = [],  # noqa: B006 - typer reads the default, never mutates it
    format: Annotated[str, typer.Option("--format", help="table, json, or a template: {{.Name}}")] = "table",
) -> None:
    """List networks."""
    wanted = _filters(filter)
    rows = [r for r in ops.list_networks(context_of(tctx)) if all(_matches(r, k, v) for k, v in wanted.items())]
    print_rows([{"ID": r.id if no_trunc else r.id[:12], "Name": r.name, "Driver": r.driver, "Scope": "local",
                 "Internal": str(bool(r.record and r.record.internal)).lower(), "IPv6": "false",
                 "Labels": ",".join(f"{k}={v}" for k, v in (r.record.labels if r.record else {}).items()),
                 "CreatedAt": r.record.created if r.record else ""} for r in rows],
               quiet, format, [("NETWORK ID", "ID"), ("NAME", "Name"), ("DRIVER", "Driver"), ("SCOPE", "Scope")],
               quiet_key="ID", headers={"Internal": "INTERNAL", "IPv6": "IPV6", "Labels": "LABELS",
                                        "CreatedAt": "CREATED AT"})


def inspect_cmd(
    tctx: typer.Context,
    names: Annotated[list[str], typer.Argument(metavar="NETWORK...")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="json, or a template: {{.IPAM.Config}}")]
    = None,
) -> None:
    """Networks as JSON, with Docker's field names."""
    ctx = context_of(tctx)
    print_docs(names, lambda name: ops.inspect_doc(ctx, ops.find_row(ctx, name)), format)


def rm_cmd(
    tctx: typer.Context,
    names: Annotated[list[str], typer.Argument(metavar="NETWORK...")],
) -> None:
    """Remove networks no running container is attached to."""
    ctx = context_of(tctx)
    each(names, lambda name: ops.remove_network(ctx, name))


def prune_cmd(
    tctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", "-f", help="Do not ask.")] = False,
) -> None:
    """Remove every user network no running container is attached to."""
    if not confirmed(force, "This will remove all custom networks not used by at least one container."):
        return
    removed = ops.prune_networks(context_of(tctx))
    if removed:
        line("Deleted Networks:")
        for name in removed:
            line(name)
        line("")


def connect_cmd(
    tctx: typer.Context,
    network: Annotated[str, typer.Argument(metavar="NETWORK")],
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    alias: Annotated[list[str], typer.Option("--alias", help="Another name on the network.")] = [],  # noqa: B006
    ip: Annotated[str, typer.Option("--ip", help="Its address on the network.")] = "",
) -> None:
    """Connect a container to a network (a running one at once, as ethN)."""
    ops.connect(context_of(tctx), network, container, tuple(alias), ip)


def disconnect_cmd(
    tctx: typer.Context,
    network: Annotated[str, typer.Argument(metavar="NETWORK")],
    container: Annotated[str, typer.Argument(metavar="CONTAINER", autocompletion=complete.containers)],
    force: Annotated[bool, typer.Option("--force", "-f", help="Accepted, as Docker's.")] = False,
) -> None:
    """Disconnect a container from a network."""
    ops.disconnect(context_of(tctx), network, container)
