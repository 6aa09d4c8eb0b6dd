"""--format templates: the dotted paths and json scripts use; the rest refused in one line."""

from __future__ import annotations

import pytest

from minirun.cli.template import render
from minirun.errors import TemplateError, UsageError

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
    with pytest.raises(TemplateError, match=r"no field \.State\.Nope"):
        render("{{.State.Nope}}", DOC)
    for unclosed in ("{{", "{{.Id", "{{.Id}} {{", "x {{json .State}"):  # Issue 25, defect 10
        with pytest.raises(TemplateError, match="unclosed action"):
            render(unclosed, DOC)


def test_durations_are_worded_as_dockers() -> None:
    """go-units' HumanDuration, as docker ps prints "Up ..." and "Exited (0) ... ago"."""
    from minirun.cli.output import human_duration
    cases = {0.4: "Less than a second", 1.2: "1 second", 2: "2 seconds", 59.9: "59 seconds", 60: "About a minute",
             119: "About a minute", 120: "2 minutes", 3599: "59 minutes", 3600: "About an hour",
             5400: "2 hours", 47 * 3600: "47 hours", 48 * 3600: "2 days", 14 * 86400: "2 weeks",
             60 * 86400: "2 months", 800 * 86400: "2 years"}
    assert {k: human_duration(k) for k in cases} == cases
