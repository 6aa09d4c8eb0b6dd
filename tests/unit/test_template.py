"""--format templates: Go's text/template as Docker exposes it."""

from __future__ import annotations

import pytest

from minirun.cli.template import render
from minirun.errors import TemplateError

DOC = {"Id": "abc", "State": {"Status": "running", "Running": True, "Pid": 42}, "Config": {"Env": ["A=1"]},
       "Name": "/web", "Gone": None}


def test_paths_and_json() -> None:
    assert render("{{.State.Status}}", DOC) == "running"
    assert render("{{ .Name }} {{.State.Pid}} {{.State.Running}}", DOC) == "/web 42 true"
    assert render("{{json .Config.Env}}", DOC) == '["A=1"]'
    assert render("{{json .State}}", DOC) == '{"Status":"running","Running":true,"Pid":42}'  # Go's encoder
    assert render("{{.Id}}\\t{{.Gone}}", DOC) == "abc\t<nil>"  # a null
    assert render("id={{.Id}} {{index .State \"Nope\"}}", DOC) == "id=abc <no value>"  # index of a missing key


# Go's text/template as Docker 20.10 runs it (issue 29's engine): each case's expected output
# is what Go gives for the same document.
CASES = {
    "{{range .Config.Env}}[{{.}}]{{end}}": "[A=1][B=2]",
    "{{range $i, $e := .Config.Env}}{{$i}}={{$e}} {{end}}": "0=A=1 1=B=2 ",
    "{{if .State.Running}}up{{else}}down{{end}}": "up",
    "{{if not .State.Running}}up{{else if .Id}}id{{else}}no{{end}}": "id",
    "{{.State.Status | upper}}": "RUNNING",
    "{{index .Config.Env 1}} {{len .Config.Env}} {{join .Config.Env \",\"}}": "B=2 2 A=1,B=2",
    "{{.Config.Labels}}": "map[a:1 b:2]",
    "{{with .State}}{{.Pid}}{{end}}{{with .Empty}}x{{else}}none{{end}}": "42none",
    "{{printf \"%s-%d\" .Name .State.Pid}}": "/web-42",
    "{{- .Id -}} x {{- /* a comment */ -}} y": "abcxy",
    "{{$x := .Id}}{{$x}}{{$x = \"z\"}}{{$x}}": "abcz",
    "{{range .Empty}}x{{else}}empty{{end}}": "empty",
    "{{eq .State.Status \"running\" \"up\"}} {{ne .State.Pid 42}} {{lt 1 2}}": "true false true",
    "{{index .Config.Labels \"a\"}}{{(index .Config.Env 0)}}": "1A=1",
    "{{split \"a:b\" \":\"}} {{title \"ab cd\"}} {{pad \"x\" 1 2}}| {{truncate .Id 2}}": "[a b] Ab Cd  x  | ab",
    "{{range $k, $v := .Config.Labels}}{{$k}}{{$v}}{{end}}": "a1b2",
    "{{and .Id .State.Pid}} {{or .Empty .Name}} {{json .Empty}}": "42 /web []",
}


@pytest.mark.parametrize("template", sorted(CASES))
def test_go_template_semantics(template: str) -> None:
    doc: dict[str, object] = {**DOC, "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}}, "Empty": []}
    assert render(template, doc) == CASES[template]


def test_the_parser_knows_every_function() -> None:
    from minirun.cli.gofuncs import FUNCTIONS
    from minirun.cli.gotemplate import FUNCTION_NAMES
    assert set(FUNCTIONS) == FUNCTION_NAMES


def test_parse_and_execution_errors_are_gos() -> None:
    for bad, said in (("{{", "unclosed action"), ("{{.Id", "unclosed action"), ("{{.Id}} {{", "unclosed action"),
                      ("{{foo .}}", 'function "foo" not defined'), ("{{end}}", "unexpected {{end}}"),
                      ("{{if .Id}}x", "unexpected EOF"), ("{{else}}", "unexpected {{else}}")):
        with pytest.raises(TemplateError, match=said):
            render(bad, DOC)
    for bad, said in (("{{index .Config.Env 5}}", "index out of range: 5"),
                      ("{{.Name.First}}", "can't evaluate field First in type string"),
                      ("{{.Id 1}}", "can't give argument to non-function"),
                      ("{{.Nope}}", 'map has no entry for key "Nope"')):
        with pytest.raises(TemplateError, match=said):
            render(bad, DOC)


def test_durations_are_worded_as_dockers() -> None:
    """go-units' HumanDuration, as docker ps prints "Up ..." and "Exited (0) ... ago"."""
    from minirun.cli.output import human_duration
    cases = {0.4: "Less than a second", 1.2: "1 second", 2: "2 seconds", 59.9: "59 seconds", 60: "About a minute",
             119: "About a minute", 120: "2 minutes", 3599: "59 minutes", 3600: "About an hour",
             5400: "2 hours", 47 * 3600: "47 hours", 48 * 3600: "2 days", 14 * 86400: "2 weeks",
             60 * 86400: "2 months", 800 * 86400: "2 years"}
    assert {k: human_duration(k) for k in cases} == cases


# Recorded once from Docker 20.10.24 here (tests/unit/data/record-docker-templates.py): `docker
# inspect -f TEMPLATE` over one created container, and that container's `docker inspect`
# document, which our engine is given. Docker runs templates over typed structs, so a null in
# the JSON prints as its type's zero: we cannot know the type, and print Go's <nil>.
KNOWN_DIFFERENCES = {"{{.HostConfig.Binds}}": "<nil>"}


def test_templates_as_docker_20_10_runs_them() -> None:
    import json
    from pathlib import Path
    recorded = json.loads((Path(__file__).parent / "data" / "docker-20.10-templates.json").read_text())
    assert recorded["docker"].startswith("20.10.")
    for template, answer in recorded["cases"].items():
        if answer["exit"] != 0:
            with pytest.raises(TemplateError) as e:
                render(template, recorded["document"])
            assert answer["stderr"].split(": ")[-1] in str(e.value), (template, answer)
        else:
            assert render(template, recorded["document"]) == KNOWN_DIFFERENCES.get(template, answer["stdout"]), template
