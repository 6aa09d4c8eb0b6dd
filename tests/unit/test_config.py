"""The configuration file's parsing and its place below the environment (pure)."""

from __future__ import annotations

import pytest

from minirun import config
from minirun.errors import ConfigError


def test_settings_become_their_variables() -> None:
    got = config.parse('root = "/srv/mr"\nregistry-mirrors = ["https://a", "http://b:5000"]\n'
                       'network = "none"\n[log-opts]\nmax-size = "10m"\nmax-file = 3\n', "f")
    assert got == {"MINIRUN_ROOT": "/srv/mr", "MINIRUN_REGISTRY_MIRROR": "https://a,http://b:5000",
                   "MINIRUN_NETWORK": "none", "MINIRUN_LOG_OPTS": "max-size=10m,max-file=3"}


@pytest.mark.parametrize("text,said", [
    ("root = 1", "root must be a string"), ("registry-mirrors = \"x\"", "must be a list of strings"),
    ("registry-mirrors = [\"a,b\"]", "must be a list of strings"), ("nope = 1", "unknown setting 'nope'"),
    ("[log-opts]\nmax-size = [1]", "must be a table"), ("root = ", "not valid TOML")])
def test_bad_settings_name_the_file(text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=f"reading /etc/x.toml: .*{said}"):
        config.parse(text, "/etc/x.toml")


def test_the_environment_wins() -> None:
    environ = {"MINIRUN_ROOT": "/mine"}
    sources = config.apply("/etc/x.toml", {"MINIRUN_ROOT": "/file", "MINIRUN_NETWORK": "none"}, environ)
    assert environ == {"MINIRUN_ROOT": "/mine", "MINIRUN_NETWORK": "none"}
    assert sources == {"MINIRUN_ROOT": "environment", "MINIRUN_NETWORK": "/etc/x.toml"}
    assert config.path_of(None, {}) == (config.DEFAULT_PATH, False)
    assert config.path_of(None, {"MINIRUN_CONFIG": "/a"}) == ("/a", True)
    assert config.path_of("/b", {"MINIRUN_CONFIG": "/a"}) == ("/b", True)
