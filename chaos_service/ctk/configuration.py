"""Chaos Toolkit configuration and secrets: loading them, ``${name}`` substitution, masking secrets.

The rules are chaostoolkit-lib's (``chaoslib.configuration``, ``chaoslib.secret``,
``chaoslib.substitute``). The environment is passed in, never read from the process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from string import Template
from typing import Any

from chaos_service.errors import InvalidInput

__all__ = ["dynamic_keys", "load_configuration", "load_secrets", "masked", "substitute"]

#: The replacement of every secret value in what ``masked`` returns.
MASK = "***"
ENV_VAR_TYPES = ("str", "string", "int", "integer", "float", "number", "bytes", "bool", "json")


def load_configuration(raw: Mapping[str, Any] | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """An experiment's ``configuration`` block, with its environment values read from ``environ``.

    A value is kept as written unless it is ``{type: env, key, default?, env_var_type?}``: then it
    is the variable ``key``, or ``default`` when the variable is not set, converted by
    ``env_var_type`` (``str``/``string``: as is; ``int``/``integer``; ``float``/``number``;
    ``bytes``: UTF-8; ``bool``: false for ``false``, ``0`` or ``no`` in any case, true otherwise;
    ``json``: decoded, except an empty value). The default is converted too, as Chaos Toolkit does.
    Dynamic values (a probe as the value) stay in place; ``dynamic_keys`` names them.
    Raises ``InvalidInput`` for a variable that is not set and has no default, or a value that
    does not convert.
    """
    configuration: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        if isinstance(value, Mapping) and value.get("type") == "env":
            configuration[name] = _env_configuration(name, value, environ)
        else:
            configuration[name] = value
    return configuration


def dynamic_keys(raw: Mapping[str, Any] | None) -> list[str]:
    """The configuration names whose value is a probe (``{type: probe, provider: ...}``), in file order.

    Chaos Toolkit runs those probes once the secrets are loaded and uses their output as the
    value: a process probe's stripped ``stdout``, an http probe's ``body``, a python probe's
    return value.
    """
    return [name for name, value in (raw or {}).items() if isinstance(value, Mapping) and value.get("type") == "probe"]


def load_secrets(raw: Mapping[str, Any] | None, environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """An experiment's ``secrets`` block (scope → name → secret), with environment secrets read from ``environ``.

    A secret is a literal or ``{type: env, key}``, the variable ``key`` as text (no default and no
    conversion, unlike configuration). A mapping that is neither is a group of secrets, loaded the
    same way. Raises ``InvalidInput`` for an unset variable, a Vault secret (``{type: vault}``, not
    supported here), or a scope that is not a mapping of names to secrets.
    """
    secrets: dict[str, dict[str, Any]] = {}
    for scope, values in (raw or {}).items():
        if isinstance(values, Mapping) and values.get("type") == "vault":
            raise InvalidInput(f"secrets scope {scope!r} comes from Vault: Vault secrets are not supported")
        if not isinstance(values, Mapping) or values.get("type") == "env":
            raise InvalidInput(
                f"secrets scope {scope!r} must map secret names to secrets ({{scope: {{name: value}}}}), "
                "not be a single value"
            )
        secrets[scope] = _load_secret_group(values, (scope,), environ)
    return secrets


def substitute(value: Any, configuration: Mapping[str, Any], secrets: Mapping[str, Mapping[str, Any]]) -> Any:
    """``value`` with ``${name}`` references replaced, as Chaos Toolkit does before using a value.

    Strings are replaced inside mappings (values only, not keys) and lists, at any depth; a tuple
    inside them becomes a list. A string that is exactly ``${name}`` becomes the value itself,
    typed; a reference inside longer text becomes its text (``str``), and so does ``$name``
    without braces. ``$$`` stands for ``$``. A name is looked up in the configuration first, then
    in each secrets scope in order. An unknown name, or one that is not an identifier
    (``${my-key}``), is left as written. The value itself is not modified.
    """
    if not value:
        return value
    lookup = _Lookup(configuration, secrets)
    if isinstance(value, str):
        return _substitute_string(value, lookup)
    if isinstance(value, Mapping | list):
        return _substitute_deep(value, lookup)
    return value


def masked(value: Any, secrets: Mapping[str, Mapping[str, Any]]) -> Any:
    """A copy of ``value`` with every secret value replaced by ``***``, for a journal.

    Text equal to a secret becomes ``***``, and a secret appearing inside longer text (a
    ``Bearer <token>`` header) is replaced there; a non-text secret (a number) is masked where a
    value of the same type equals it, not inside text. Mapping keys are kept. Empty secrets,
    booleans and ``None`` are not masked: they would hide everything else.
    """
    texts: set[str] = set()
    others: list[Any] = []
    for secret in _leaves(secrets):
        if isinstance(secret, str):
            if secret:
                texts.add(secret)
        elif secret is not None and not isinstance(secret, bool):
            others.append(secret)
    # longest first, so a secret that contains another is masked whole
    return _mask(value, sorted(texts, key=len, reverse=True), others)


def _env_configuration(name: str, spec: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    variable = spec.get("key")
    if not isinstance(variable, str) or not variable:
        raise InvalidInput(f"configuration {name!r} reads the environment but names no variable ('key')")
    if variable in environ:
        raw: Any = environ[variable]
    elif "default" in spec:
        raw = spec["default"]
    else:
        raise InvalidInput(
            f"configuration {name!r} reads the environment variable {variable}, which is not set and has no default"
        )
    kind = spec.get("env_var_type")
    if kind is not None and kind not in ENV_VAR_TYPES:
        raise InvalidInput(f"configuration {name!r}: env_var_type {kind!r} is not one of {', '.join(ENV_VAR_TYPES)}")
    try:
        return _convert(kind, raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"configuration {name!r}: the value of {variable} ({raw!r}) is not a valid {kind}: {exc}"
        ) from exc


def _convert(kind: Any, raw: Any) -> Any:
    """chaoslib's ``convert_to_type``: ``raw`` (the variable's text or the default) as ``kind``."""
    if kind is None or kind in ("str", "string"):
        return raw
    if kind in ("int", "integer"):
        return int(raw)
    if kind in ("float", "number"):
        return float(raw)
    if kind == "bytes":
        return raw.encode("utf-8")
    if kind == "bool":
        return raw if isinstance(raw, bool) else raw.lower() not in ("false", "0", "no")
    if kind == "json":
        return json.loads(raw) if isinstance(raw, str) and raw != "" else raw
    raise ValueError(f"env_var_type must be one of {', '.join(ENV_VAR_TYPES)}")


def _load_secret_group(values: Mapping[str, Any], where: tuple[str, ...], environ: Mapping[str, str]) -> dict[str, Any]:
    group: dict[str, Any] = {}
    for name, value in values.items():
        here = (*where, name)
        label = "/".join(str(part) for part in here)
        if not isinstance(value, Mapping):
            group[name] = value
        elif value.get("type") == "env":
            variable = value.get("key")
            if not isinstance(variable, str) or not variable:
                raise InvalidInput(f"secret {label!r} reads the environment but names no variable ('key')")
            if variable not in environ:
                raise InvalidInput(f"secret {label!r} reads the environment variable {variable}, which is not set")
            group[name] = environ[variable]
        elif value.get("type") == "vault":
            raise InvalidInput(f"secret {label!r} comes from Vault: Vault secrets are not supported")
        else:
            group[name] = _load_secret_group(value, here, environ)
    return group


class _Lookup(Mapping[str, Any]):
    """Configuration first, then each secrets scope: where ``${name}`` is looked up."""

    def __init__(self, configuration: Mapping[str, Any], secrets: Mapping[str, Mapping[str, Any]]) -> None:
        self.maps = [configuration, *(scope for scope in secrets.values() if isinstance(scope, Mapping))]

    def __getitem__(self, name: str) -> Any:
        for mapping in self.maps:
            if name in mapping:
                return mapping[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter({name: None for mapping in self.maps for name in mapping})

    def __len__(self) -> int:
        return len({name for mapping in self.maps for name in mapping})


def _substitute_string(text: str, lookup: _Lookup) -> Any:
    template = Template(text)
    whole = template.pattern.fullmatch(text)
    if whole is not None and whole.group("braced") in lookup:
        return lookup[whole.group("braced")]
    return template.safe_substitute(lookup)


def _substitute_deep(value: Any, lookup: _Lookup) -> Any:
    if isinstance(value, str):
        return _substitute_string(value, lookup)
    if isinstance(value, Mapping):
        return {key: _substitute_deep(item, lookup) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_substitute_deep(item, lookup) for item in value]
    return value


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _mask(value: Any, texts: list[str], others: list[Any]) -> Any:
    if isinstance(value, str):
        for secret in texts:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {key: _mask(item, texts, others) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, texts, others) for item in value]
    if isinstance(value, tuple):
        return tuple(_mask(item, texts, others) for item in value)
    if any(type(value) is type(secret) and value == secret for secret in others):
        return MASK
    return value
