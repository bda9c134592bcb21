"""An experiment file as read: plain data with the line of every field, variables and problems.

`read_source` turns YAML text into plain Python values (mappings, lists, scalars) while
keeping, for every field path, the line of its value and of its key, so that any problem
found later can name its line. `substitute` replaces ``${…}`` variables in every string.
`Source.add_validation_error` words a pydantic error for the file's author.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from chaos_service.errors import InvalidInput
from chaos_service.experiments.durations import shown

if typing.TYPE_CHECKING:
    from chaos_service.sandbox.environment import Environment

#: A field's place in the document: keys and list indexes, e.g. ``("method", 2, "duration")``.
FieldPath = tuple[str | int, ...]
#: Most YAML nodes a file may expand to (aliases can multiply them).
MAX_NODES = 100_000
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_\-]+")


@dataclass(frozen=True, order=True)
class Problem:
    """One reason a file is invalid: ``file:line: path: message`` (line 0: the file as a whole)."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvalidExperiment(InvalidInput):
    """An experiment file that cannot be run: ``problems`` lists every reason, in line order."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(path: FieldPath) -> str:
    """``("method", 2, "duration")`` → ``method[2].duration``; odd keys are quoted: ``headers."X Y"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if _SIMPLE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            text += f".{key}" if text else key
    return text


@dataclass
class Source:
    """One file's data, where each field is, and the problems found in it so far."""

    file: str
    data: Any = None
    lines: dict[FieldPath, int] = field(default_factory=dict)  # the line of each value
    key_lines: dict[FieldPath, int] = field(default_factory=dict)  # the line of each mapping key
    problems: list[Problem] = field(default_factory=list)
    unresolved: set[FieldPath] = field(default_factory=set)  # strings left with ${env.…}: no environment

    def line(self, path: FieldPath, *, key: bool = False) -> int:
        """The line of ``path``'s key (``key``) or value, or else of its nearest ancestor."""
        if key and path in self.key_lines:
            return self.key_lines[path]
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def add(self, path: FieldPath, message: str, *, key: bool = False, line: int | None = None) -> None:
        line = self.line(path, key=key) if line is None else line
        self.problems.append(Problem(self.file, line, format_path(path), message))

    def add_validation_error(self, base: FieldPath, error: ErrorDetails, model: type[BaseModel]) -> None:
        """A pydantic error of ``model`` validated from the value at ``base``, worded for people."""
        loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
        context: dict[str, Any] = dict(error.get("ctx") or {})
        path: FieldPath = (*base, *loc)
        if kind == "experiment":
            if "at" in context:
                path = (*path, context["at"])
            self.add(path, context["message"], key="at" in context)
        elif kind == "missing":
            self.add(path, "required")
        elif kind == "extra_forbidden":
            self.add(path, _unknown_field(str(loc[-1]), _model_at(model, loc[:-1])), key=True)
        else:
            template = _MESSAGES.get(kind)
            if template is None:
                self.add(path, error["msg"])
            else:
                limits = {name: shown(context.get(name)) for name in ("ge", "le", "gt", "lt")}
                expected = str(context.get("expected", "")).replace("'", "")
                self.add(path, template.format(value=shown(value), expected=expected, **limits))


def validate_part(source: Source, model: type[BaseModel], value: Any, path: FieldPath) -> Any:
    """``model`` validated from the mapping ``value`` found at ``path``, or None after adding its problems."""
    if not isinstance(value, dict):
        source.add(path, f"must be a mapping, not {shown(value)}")
        return None
    try:
        return _adapter(model).validate_python(value)
    except ValidationError as exc:
        for error in exc.errors():
            source.add_validation_error(path, error, model)
        return None


@cache
def _adapter(model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def listing(what: str, names: Iterable[str]) -> str:
    """``probes: chat, health`` (or ``there are no probes``), for messages that name what would do."""
    listed = ", ".join(names)
    return f"{what}: {listed}" if listed else f"there are no {what}"


def unique_name(base: str, taken: Mapping[str, object]) -> str:
    """``base``, or ``base-2``, ``base-3``… whichever is not taken."""
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


_MESSAGES = {
    "string_type": "must be a string, not {value}",
    "int_type": "must be a whole number, not {value}",
    "int_parsing": "must be a whole number, not {value}",
    "int_from_float": "must be a whole number, not {value}",
    "float_type": "must be a number, not {value}",
    "float_parsing": "must be a number, not {value}",
    "finite_number": "must be a finite number, not {value}",
    "bool_type": "must be true or false, not {value}",
    "bool_parsing": "must be true or false, not {value}",
    "list_type": "must be a list, not {value}",
    "dict_type": "must be a mapping, not {value}",
    "model_type": "must be a mapping, not {value}",
    "model_attributes_type": "must be a mapping, not {value}",
    "literal_error": "must be {expected}, not {value}",
    "greater_than_equal": "must be {ge} or more, not {value}",
    "less_than_equal": "must be {le} or less, not {value}",
    "greater_than": "must be more than {gt}, not {value}",
    "less_than": "must be less than {lt}, not {value}",
}


def _unknown_field(key: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return "unknown field"
    fields = [info.alias or name for name, info in model.model_fields.items()]
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {close[0]}?"
    return f"unknown field; fields here: {', '.join(fields)}"


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model whose fields are at ``loc`` below ``model`` (through nested model fields)."""
    for part in loc:
        fields = {info.alias or name: info for name, info in model.model_fields.items()}
        info = fields.get(part) if isinstance(part, str) else None
        nested = [t for t in _members(info.annotation) if _is_model(t)] if info is not None else []
        if not nested:
            return None
        model = nested[0]
    return model


def _members(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    return [annotation, *(member for arg in args for member in _members(arg))]


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


# -- YAML with lines -----------------------------------------------------------------------------


def read_source(text: str, file: str) -> Source:
    """The document in ``text``, with the line of every field.

    Raises:
        InvalidExperiment: not YAML, more than one document, or no document at all.
    """
    source = Source(file)
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = exc.context
        if context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            context += f" (line {exc.context_mark.line + 1})"
        reason = ": ".join(part for part in (context, exc.problem) if part)
        raise InvalidExperiment(
            file, [Problem(file, mark.line + 1 if mark else 1, "", f"not valid YAML: {reason}")]
        ) from None
    except yaml.YAMLError as exc:  # a character YAML does not allow
        position = getattr(exc, "position", 0)
        line = text.count("\n", 0, position) + 1
        reason = str(exc).splitlines()[0]
        raise InvalidExperiment(file, [Problem(file, line, "", f"not valid YAML: {reason}")]) from None
    if node is None:
        message = "the file is empty: an experiment needs at least title, probes and method"
        raise InvalidExperiment(file, [Problem(file, 1, "", message)])
    builder = _Builder(source)
    source.data = builder.build(node, ())
    if builder.count > MAX_NODES:
        raise InvalidExperiment(file, [Problem(file, 1, "", f"the file expands to more than {MAX_NODES} values")])
    return source


_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp", "binary")
)
_TAGS: dict[type[yaml.Node], frozenset[str]] = {
    yaml.ScalarNode: _SCALAR_TAGS,
    yaml.SequenceNode: frozenset({"tag:yaml.org,2002:seq"}),
    yaml.MappingNode: frozenset({"tag:yaml.org,2002:map"}),
}


class _Builder:
    """Plain values from YAML nodes, recording lines; keys are taken as written (``on:`` stays "on")."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.constructor = yaml.SafeLoader("")
        self.count = 0
        self.active: set[int] = set()  # the collections being built: an alias to one of them is a cycle

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.count += 1
        self.source.lines[path] = node.start_mark.line + 1
        if self.count > MAX_NODES:
            return None
        if node.tag not in _TAGS[type(node)]:
            self.source.add(path, f"unsupported YAML tag {node.tag.replace('tag:yaml.org,2002:', '!!')}")
            return None
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.constructor.construct_object(node)
            except yaml.YAMLError as exc:
                self.source.add(path, str(getattr(exc, "problem", None) or exc))
                return None
        if id(node) in self.active:
            self.source.add(path, "an alias that contains itself")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        try:
            self.constructor.flatten_mapping(node)  # merge keys (<<: *defaults)
        except yaml.YAMLError as exc:
            self.source.add(path, str(getattr(exc, "problem", None) or exc))
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.source.add(path, "keys must be plain text, not a list or a mapping", line=line)
                continue
            key = str(key_node.value)
            if key in result:
                first = self.source.key_lines[(*path, key)]
                self.source.add((*path, key), f"duplicate key (first at line {first})", line=line)
                continue
            self.source.key_lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key))
            if isinstance(value_node, yaml.CollectionNode) and not value_node.flow_style:
                self.source.lines[(*path, key)] = line  # a block below its key: the key's line names it
        return result


# -- variables -----------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)(?P<end>\}?)")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_FORMS = "${env.engine}, ${env.endpoints.NAME}, ${env.direct.NAME} and ${env.proxies.NAME.listen} (or .upstream)"


class _Unresolvable(Exception):
    pass


def substitute(source: Source, environment: Environment | None, variables: Mapping[str, str]) -> Any:
    """``source.data`` with the variables of every string replaced (``$${`` is a literal ``${``).

    Unknown variables are problems of ``source``; without an environment, ``${env.…}`` is
    checked for form, left as written and its path added to ``source.unresolved``.
    """
    return _Substitution(source, environment, variables).value(source.data, ())


@dataclass
class _Substitution:
    source: Source
    env: Environment | None
    variables: Mapping[str, str]

    def value(self, value: Any, path: FieldPath) -> Any:
        if isinstance(value, dict):
            return {key: self.value(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item, (*path, index)) for index, item in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            try:
                return _VARIABLE.sub(lambda match: self.replace(match, path), value)
            except _Unresolvable as exc:
                self.source.add(path, str(exc))
        return value

    def replace(self, match: re.Match[str], path: FieldPath) -> str:
        if match[0] == "$${":
            return "${"
        body = match["body"]
        if not match["end"]:
            raise _Unresolvable(f"unterminated variable {shown(match[0])}: close it with }}")
        if body == "env" or body.startswith("env."):
            return self.environment(body, match[0], path)
        name, default_given, default = body.partition(":-")
        if not _PLAIN.fullmatch(name):
            raise _Unresolvable(f"bad variable ${{{body}}}: write ${{NAME}}, ${{NAME:-default}} or {_ENV_FORMS}")
        value = self.variables.get(name)
        if value:
            return value
        if default_given:
            return default
        if value is not None:
            return value
        raise _Unresolvable(f"unknown variable ${{{name}}}: it is not set (write ${{{name}:-default}} for a default)")

    def environment(self, body: str, text: str, path: FieldPath) -> str:
        parts = body.split(".")
        group = parts[1] if len(parts) > 1 else ""
        if parts == ["env", "engine"]:
            name, field_ = "", ""
        elif group in ("endpoints", "direct") and len(parts) >= 3:
            name, field_ = ".".join(parts[2:]), ""
        elif group == "proxies" and len(parts) >= 4 and parts[-1] in ("listen", "upstream"):
            name, field_ = ".".join(parts[2:-1]), parts[-1]
        else:
            raise _Unresolvable(f"unknown variable ${{{body}}}; the environment gives {_ENV_FORMS}")
        if self.env is None:
            self.source.unresolved.add(path)
            return text
        if group == "env" or parts == ["env", "engine"]:
            return self.env.engine
        table: Mapping[str, Any] = getattr(self.env, group)
        if name not in table:
            what = {"endpoints": "endpoint", "direct": "direct address", "proxies": "proxy"}[group]
            known = ", ".join(table) or "none"
            raise _Unresolvable(
                f"unknown variable ${{{body}}}: the environment has no {what} {shown(name)} ({group}: {known})"
            )
        entry = table[name]
        return str(getattr(entry, field_) if field_ else entry)
