"""--format templates: the dotted paths and json scripts use; the rest refused in one line."""

from __future__ import annotations

import pytest

from minirun.cli.template import render
from minirun.errors import UsageError

DOC = {"Id": "abc", "State": {"Status": "running", "Running": True, "Pid": 42}, "Config": {"Env": ["A=1"]},
       "Name": "/web", "Gone": None}


def test_paths_and_json() -> None:
    assert render("{{.State.Status}}", DOC) == "running"
    assert render("{{ .Name }} {{.State.Pid}} {{.State.Running}}", DOC) == "/web 42 true"
    assert render("{{json .Config.Env}}", DOC) == '["A=1"]'
    assert render("{{json .State}}", DOC) == '{"Status": "running", "Running": true, "Pid": 42}'
    assert render("{{.Id}}\\t{{.Gone}}", DOC) == "abc\t<no value>"
    assert render("id={{.Id}}", DOC) == "id=abc"


def test_what_is_not_supported_is_said() -> None:
    for bad in ("{{range .Config.Env}}{{.}}{{end}}", "{{.State.Status | upper}}", "{{if .State.Running}}x{{end}}"):
        with pytest.raises(UsageError, match="is not supported; only"):
            render(bad, DOC)
    with pytest.raises(UsageError, match=r"no field \.State\.Nope"):
        render("{{.State.Nope}}", DOC)
