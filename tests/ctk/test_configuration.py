"""Configuration, secrets and ``${name}`` substitution behave like chaostoolkit-lib's; journals hide secrets.

chaoslib reads ``os.environ``; each comparison hands it the same explicit environment by
replacing ``os.environ`` for the test.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from chaoslib import substitute as chaoslib_substitute
from chaoslib.configuration import load_configuration as chaoslib_load_configuration
from chaoslib.secret import load_secrets as chaoslib_load_secrets

from chaos_service.ctk.configuration import dynamic_keys, load_configuration, load_secrets, masked, substitute
from chaos_service.errors import InvalidInput


def env(key: str, **extra: Any) -> dict[str, Any]:
    return {"type": "env", "key": key, **extra}


DYNAMIC = {"type": "probe", "name": "read-port", "provider": {"type": "process", "path": "cat", "arguments": "port"}}

# (raw configuration, environment, expected)
CONFIGURATION: list[tuple[dict[str, Any], dict[str, str], dict[str, Any]]] = [
    (
        {"a": 1, "b": "x", "c": {"k": "v"}, "d": [1, 2], "e": None},
        {},
        {"a": 1, "b": "x", "c": {"k": "v"}, "d": [1, 2], "e": None},
    ),
    ({"host": env("CTK_HOST")}, {"CTK_HOST": "api.local"}, {"host": "api.local"}),
    ({"host": env("CTK_HOST", default="localhost")}, {}, {"host": "localhost"}),
    ({"host": env("CTK_HOST", default="localhost")}, {"CTK_HOST": "api.local"}, {"host": "api.local"}),
    ({"host": env("CTK_HOST", default=None)}, {}, {"host": None}),
    ({"port": env("CTK_PORT", env_var_type="int")}, {"CTK_PORT": "8080"}, {"port": 8080}),
    ({"port": env("CTK_PORT", env_var_type="integer")}, {"CTK_PORT": " 8080 "}, {"port": 8080}),
    ({"port": env("CTK_PORT", env_var_type="int", default="42")}, {}, {"port": 42}),  # the default converts too
    ({"port": env("CTK_PORT", env_var_type="int", default=42)}, {}, {"port": 42}),
    ({"ratio": env("CTK_RATIO", env_var_type="float")}, {"CTK_RATIO": "0.5"}, {"ratio": 0.5}),
    ({"ratio": env("CTK_RATIO", env_var_type="number")}, {"CTK_RATIO": "1e3"}, {"ratio": 1000.0}),
    ({"raw": env("CTK_RAW", env_var_type="bytes")}, {"CTK_RAW": "héllo"}, {"raw": "héllo".encode()}),
    ({"port": env("CTK_PORT", env_var_type="str")}, {"CTK_PORT": "5"}, {"port": "5"}),
    ({"port": env("CTK_PORT", env_var_type="string")}, {"CTK_PORT": "5"}, {"port": "5"}),
    ({"on": env("CTK_ON", env_var_type="bool")}, {"CTK_ON": "no"}, {"on": False}),
    ({"on": env("CTK_ON", env_var_type="bool")}, {"CTK_ON": "FALSE"}, {"on": False}),
    ({"on": env("CTK_ON", env_var_type="bool")}, {"CTK_ON": "0"}, {"on": False}),
    ({"on": env("CTK_ON", env_var_type="bool")}, {"CTK_ON": "yes"}, {"on": True}),
    ({"on": env("CTK_ON", env_var_type="bool")}, {"CTK_ON": ""}, {"on": True}),  # anything else is true
    ({"on": env("CTK_ON", env_var_type="bool", default=False)}, {}, {"on": False}),
    ({"doc": env("CTK_DOC", env_var_type="json")}, {"CTK_DOC": '{"a": [1, null]}'}, {"doc": {"a": [1, None]}}),
    ({"doc": env("CTK_DOC", env_var_type="json")}, {"CTK_DOC": ""}, {"doc": ""}),
    ({"doc": env("CTK_DOC", env_var_type="json", default={"a": 1})}, {}, {"doc": {"a": 1}}),
    ({"other": {"type": "file", "path": "/x"}}, {}, {"other": {"type": "file", "path": "/x"}}),  # only env is read
    ({"port": DYNAMIC, "host": "h"}, {}, {"port": DYNAMIC, "host": "h"}),  # dynamic: left for the runner
]


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment chaoslib sees during the test (it reads ``os.environ``); empty until filled."""
    fake: dict[str, str] = {}
    monkeypatch.setattr(os, "environ", fake)
    return fake


@pytest.mark.parametrize(("raw", "variables", "expected"), CONFIGURATION)
def test_load_configuration_agrees_with_chaoslib(
    raw: dict[str, Any], variables: dict[str, str], expected: dict[str, Any], environ: dict[str, str]
) -> None:
    before = copy.deepcopy(raw)
    assert load_configuration(raw, variables) == expected
    assert raw == before
    environ.update(variables)
    assert chaoslib_load_configuration(copy.deepcopy(raw)) == expected


# (raw configuration, environment, fragments of our message, chaoslib's exception)
CONFIGURATION_ERRORS: list[tuple[dict[str, Any], dict[str, str], list[str], type[Exception]]] = [
    ({"host": env("CTK_HOST")}, {}, ["'host'", "CTK_HOST", "not set", "no default"], Exception),
    (
        {"port": env("CTK_PORT", env_var_type="int")},
        {"CTK_PORT": "80a"},
        ["'port'", "CTK_PORT", "'80a'", "int"],
        ValueError,
    ),
    ({"port": env("CTK_PORT", env_var_type="int", default=None)}, {}, ["'port'", "None"], TypeError),
    ({"doc": env("CTK_DOC", env_var_type="json")}, {"CTK_DOC": "{oops"}, ["'doc'", "CTK_DOC", "json"], ValueError),
    ({"raw": env("CTK_RAW", env_var_type="bytes", default=5)}, {}, ["'raw'", "bytes"], AttributeError),
    ({"port": env("CTK_PORT", env_var_type="list")}, {"CTK_PORT": "1"}, ["'port'", "env_var_type 'list'"], ValueError),
    ({"port": {"type": "env"}}, {}, ["'port'", "names no variable"], KeyError),
]


@pytest.mark.parametrize(("raw", "variables", "fragments", "crash"), CONFIGURATION_ERRORS)
def test_configuration_errors_name_the_key_and_the_variable(
    raw: dict[str, Any],
    variables: dict[str, str],
    fragments: list[str],
    crash: type[Exception],
    environ: dict[str, str],
) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_configuration(raw, variables)
    for fragment in fragments:
        assert fragment in str(caught.value)
    environ.update(variables)
    with pytest.raises(crash):
        chaoslib_load_configuration(copy.deepcopy(raw))


def test_no_configuration_and_dynamic_keys() -> None:
    assert load_configuration(None, {}) == {}
    assert dynamic_keys(None) == []
    raw = {"a": DYNAMIC, "b": 1, "c": {"type": "env", "key": "X"}, "d": {**DYNAMIC, "name": "other"}}
    assert dynamic_keys(raw) == ["a", "d"]


# (raw secrets, environment, expected)
SECRETS: list[tuple[dict[str, Any], dict[str, str], dict[str, Any]]] = [
    ({"api": {"token": "abc"}}, {}, {"api": {"token": "abc"}}),
    ({"api": {"token": env("CTK_TOKEN")}}, {"CTK_TOKEN": "t0k"}, {"api": {"token": "t0k"}}),
    ({"api": {"port": env("CTK_PORT", env_var_type="int")}}, {"CTK_PORT": "1"}, {"api": {"port": "1"}}),  # no types
    (
        {"api": {"a": 1, "b": env("CTK_B")}, "db": {"c": "x"}},
        {"CTK_B": "b"},
        {"api": {"a": 1, "b": "b"}, "db": {"c": "x"}},
    ),
    (
        {"db": {"creds": {"user": "u", "password": env("CTK_PW")}}},
        {"CTK_PW": "pw"},
        {"db": {"creds": {"user": "u", "password": "pw"}}},
    ),
    ({"api": {"kind": {"type": "other", "x": 1}}}, {}, {"api": {"kind": {"type": "other", "x": 1}}}),
    ({}, {}, {}),
]


@pytest.mark.parametrize(("raw", "variables", "expected"), SECRETS)
def test_load_secrets_agrees_with_chaoslib(
    raw: dict[str, Any], variables: dict[str, str], expected: dict[str, Any], environ: dict[str, str]
) -> None:
    assert load_secrets(raw, variables) == expected
    environ.update(variables)
    assert chaoslib_load_secrets(copy.deepcopy(raw)) == expected


# (raw secrets, environment, fragments of our message, what chaoslib does: an exception or its result)
SECRETS_ERRORS: list[tuple[dict[str, Any], dict[str, str], list[str], Any]] = [
    ({"api": {"token": env("CTK_TOKEN")}}, {}, ["'api/token'", "CTK_TOKEN", "not set"], Exception),
    ({"api": {"token": env("CTK_TOKEN", default="x")}}, {}, ["'api/token'", "CTK_TOKEN"], Exception),  # no default
    ({"api": {"token": {"type": "env"}}}, {}, ["'api/token'", "names no variable"], KeyError),
    ({"db": {"creds": {"pw": env("CTK_PW")}}}, {}, ["'db/creds/pw'", "CTK_PW"], Exception),
    # chaoslib without hvac logs an error and yields an empty secret
    ({"k8s": {"token": {"type": "vault", "path": "foo/bar"}}}, {}, ["'k8s/token'", "Vault"], {"k8s": {"token": {}}}),
    ({"k8s": {"type": "vault", "path": "foo/bar"}}, {}, ["'k8s'", "Vault"], {"k8s": {}}),
    ({"api": "literal"}, {}, ["'api'", "single value"], {"api": "literal"}),
    ({"api": env("CTK_TOKEN")}, {"CTK_TOKEN": "t"}, ["'api'", "single value"], {"api": "t"}),
]


@pytest.mark.parametrize(("raw", "variables", "fragments", "chaoslib_does"), SECRETS_ERRORS)
def test_secrets_errors_name_the_scope_and_key(
    raw: dict[str, Any], variables: dict[str, str], fragments: list[str], chaoslib_does: Any, environ: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_secrets(raw, variables)
    for fragment in fragments:
        assert fragment in str(caught.value)
    environ.update(variables)
    if isinstance(chaoslib_does, type):
        with pytest.raises(chaoslib_does):
            chaoslib_load_secrets(copy.deepcopy(raw))
    else:
        assert chaoslib_load_secrets(copy.deepcopy(raw)) == chaoslib_does


def test_no_secrets() -> None:
    assert load_secrets(None, {}) == {}


CONFIG = {"port": 8080, "host": "api.local", "flag": True, "nothing": None, "ids": [1, 2], "shared": "from-config"}
SECRETS_LOADED = {"api": {"token": "s3cr3t", "shared": "from-secrets"}, "db": {"password": "pw", "token": "db-token"}}

# (value, expected)
SUBSTITUTIONS: list[tuple[Any, Any]] = [
    ("${port}", 8080),  # exactly a reference: the typed value
    ("${host}", "api.local"),
    ("${flag}", True),
    ("${nothing}", None),
    ("${ids}", [1, 2]),
    ("http://${host}:${port}/x", "http://api.local:8080/x"),  # embedded: text
    ("a${nothing}", "aNone"),
    ("flag=${flag}", "flag=True"),
    ("${unknown}", "${unknown}"),  # unknown: left as written
    ("a ${unknown} b ${port}", "a ${unknown} b 8080"),
    ("${PORT}", "${PORT}"),  # names are case-sensitive
    ("${shared}", "from-config"),  # configuration first
    ("${token}", "s3cr3t"),  # then the secrets scopes, in order
    ("${password}", "pw"),
    ("$port", "8080"),  # the brace-less form is substituted, always as text
    ("$$port", "$port"),  # $$ escapes
    ("cost: $$5", "cost: $5"),
    ("cost: $5", "cost: $5"),  # not a name: left
    ("${my-key}", "${my-key}"),
    ("${ port}", "${ port}"),
    ("", ""),
    (5, 5),
    (None, None),
    ({}, {}),
    (("${port}",), ("${port}",)),  # a tuple on its own is left alone
    ({"${host}": "${host}"}, {"${host}": "api.local"}),  # keys are kept
    (
        {
            "url": "http://${host}/",
            "timeout": "${port}",
            "headers": {"Authorization": "Bearer ${token}"},
            "arguments": ["${flag}", 3, None, ("${port}",), {"deep": ["${ids}"]}],
        },
        {
            "url": "http://api.local/",
            "timeout": 8080,
            "headers": {"Authorization": "Bearer s3cr3t"},
            "arguments": [True, 3, None, [8080], {"deep": [[1, 2]]}],
        },
    ),
]


@pytest.mark.parametrize(("value", "expected"), SUBSTITUTIONS)
def test_substitute_agrees_with_chaoslib(value: Any, expected: Any) -> None:
    before = copy.deepcopy(value)
    assert substitute(value, CONFIG, SECRETS_LOADED) == expected
    assert value == before
    assert chaoslib_substitute(copy.deepcopy(value), CONFIG, copy.deepcopy(SECRETS_LOADED)) == expected


def test_substitute_with_nothing_to_look_up() -> None:
    assert substitute({"a": "${a}", "b": "x${a}"}, {}, {}) == {"a": "${a}", "b": "x${a}"}
    assert substitute("${a}", {"a": 1}, {}) == 1
    assert substitute("${a}", {}, {"scope": {"a": 2}}) == 2


SECRETS_TO_MASK = {
    "api": {"token": "s3cr3t", "pin": 4242},
    "db": {"creds": {"password": "pw-123", "user": "s3cr3t-admin"}},
    "misc": {"empty": "", "flag": True, "none": None},
}

# (value, masked)
MASKED: list[tuple[Any, Any]] = [
    ("s3cr3t", "***"),
    ("Bearer s3cr3t", "Bearer ***"),
    ("s3cr3t-admin logs in", "*** logs in"),  # the longer secret first
    ("pw-123 and s3cr3t", "*** and ***"),
    ("nothing here", "nothing here"),
    (4242, "***"),
    (4242.5, 4242.5),
    ("4242", "4242"),  # a number is masked where it is a number
    (True, True),
    (None, None),
    ("", ""),
    (
        {
            "experiment": {"secrets": {"api": {"token": "s3cr3t", "pin": 4242}}},
            "run": [{"activity": {"provider": {"headers": {"Authorization": "Bearer s3cr3t"}}}, "output": ("pw-123",)}],
            "s3cr3t": "a key is kept",
        },
        {
            "experiment": {"secrets": {"api": {"token": "***", "pin": "***"}}},
            "run": [{"activity": {"provider": {"headers": {"Authorization": "Bearer ***"}}}, "output": ("***",)}],
            "s3cr3t": "a key is kept",
        },
    ),
]


@pytest.mark.parametrize(("value", "expected"), MASKED)
def test_masked_hides_every_secret(value: Any, expected: Any) -> None:
    before = copy.deepcopy(value)
    assert masked(value, SECRETS_TO_MASK) == expected
    assert value == before


def test_masked_without_secrets_is_an_equal_copy() -> None:
    journal = {"run": [{"output": "x"}], "n": 1}
    copied = masked(journal, {})
    assert copied == journal
    assert copied is not journal
    assert copied["run"] is not journal["run"]
