"""Checking event logs against the JSON Schema, without a third-party validator.

pidgin-events depends on orjson only, so it carries a validator for exactly the subset of
JSON Schema that ``json_schema()`` emits. Any other keyword is refused when the schema is
compiled: a schema this validator cannot fully check is never half-checked in silence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import orjson

from ._codec import json_type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeAlias

    _Check: TypeAlias = Callable[[Any, str, list[str]], None]

__all__ = ["SchemaError", "SchemaValidator"]


class SchemaError(ValueError):
    """The schema uses something this validator does not implement, or is malformed."""


# --- JSON types -------------------------------------------------------------------------


def _is_integer(value: Any) -> bool:
    # JSON Schema: 1.0 is an integer, true is not.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPE_TESTS: Mapping[str, Callable[[Any], bool]] = {
    "null": lambda value: value is None,
    "boolean": lambda value: isinstance(value, bool),
    "integer": _is_integer,
    "number": _is_number,
    "string": lambda value: isinstance(value, str),
    "array": lambda value: isinstance(value, list),
    "object": lambda value: isinstance(value, dict),
}


def _json_equal(left: Any, right: Any) -> bool:
    """Equality as JSON Schema means it: ``1 == 1.0``, but ``true != 1``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_json_equal, left, right))
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    return type(left) is type(right) and bool(left == right)


def _show(value: Any, limit: int = 60) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _child_path(key: str) -> str:
    """The JSONPath step to a property: ``.name``, or ``['odd key']`` when it needs quoting."""
    if _IDENTIFIER.fullmatch(key):
        return "." + key
    return "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"


def _python_pattern(pattern: str) -> re.Pattern[str]:
    """Compile an ECMA-262 pattern (what JSON Schema specifies) with ECMA's ``$``.

    In Python ``$`` also matches before a final newline, so ``"...+00:00\\n"`` would pass a
    timestamp pattern; ECMA's ``$`` is the end of the input, which is Python's ``\\Z``.
    """
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as exc:
        raise SchemaError(f"invalid pattern {pattern!r}: {exc}") from None


# --- compiling a schema into checks --------------------------------------------------------

# Keywords that only describe: they never make an instance invalid.
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",  # an annotation by default in draft 2020-12; "date-time" comes with a pattern
    }
)


class SchemaValidator:
    """Checks decoded JSON values against one schema, compiled once.

    Supported: ``type`` (a name or a list), ``const``, ``enum``, ``properties``,
    ``required``, ``additionalProperties: true``, ``items`` (one schema), ``$ref`` to
    ``#/$defs/...``, ``allOf``, ``if``/``then``/``else``, ``minimum``, ``minLength``,
    ``pattern``, boolean schemas, and annotations. Anything else raises ``SchemaError``.
    """

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        self._defs: dict[str, _Check] = {}
        definitions = schema.get("$defs", {}) if isinstance(schema, Mapping) else {}
        if not isinstance(definitions, Mapping):
            raise SchemaError("$defs must be an object")
        self._names = frozenset(definitions)
        for name, definition in definitions.items():
            self._defs[name] = self._compile(definition, f"#/$defs/{name}")
        self._root = self._compile(schema, "#")

    def errors(self, instance: Any) -> list[str]:
        """Every way ``instance`` breaks the schema, as ``$.json.path: reason``; [] if valid."""
        found: list[str] = []
        self._root(instance, "$", found)
        return list(dict.fromkeys(found)) if len(found) > 1 else found

    def is_valid(self, instance: Any) -> bool:
        found: list[str] = []
        self._root(instance, "$", found)
        return not found

    # Each keyword becomes a function (value, path, errors) that appends what is wrong.

    def _compile(self, schema: Any, where: str) -> _Check:
        if schema is True:
            return _accept
        if schema is False:
            return _reject
        if not isinstance(schema, Mapping):
            raise SchemaError(f"{where}: a schema must be an object or a boolean")
        checks: list[_Check] = []
        if "type" in schema:
            checks.append(_type_check(schema["type"], where))
        for key, value in schema.items():
            here = f"{where}/{key}"
            if key in _ANNOTATIONS or key in ("type", "then", "else"):
                continue
            if key == "const":
                checks.append(_const_check(value))
            elif key == "enum":
                checks.append(_enum_check(value, here))
            elif key == "properties":
                checks.append(self._properties_check(value, here))
            elif key == "required":
                checks.append(_required_check(value, here))
            elif key == "additionalProperties":
                if value is not True:
                    raise SchemaError(f"{here}: only additionalProperties: true is supported")
            elif key == "items":
                checks.append(self._items_check(value, here))
            elif key == "$ref":
                checks.append(self._ref_check(value, here))
            elif key == "allOf":
                if not isinstance(value, list) or not value:
                    raise SchemaError(f"{here}: allOf must be a non-empty array")
                checks.extend(self._compile(sub, f"{here}/{i}") for i, sub in enumerate(value))
            elif key == "if":
                checks.append(self._condition_check(schema, where))
            elif key == "minimum":
                checks.append(_minimum_check(value, here))
            elif key == "minLength":
                checks.append(_min_length_check(value, here))
            elif key == "pattern":
                checks.append(_pattern_check(value, schema.get("format") == "date-time", here))
            else:
                raise SchemaError(
                    f"{here}: unsupported JSON Schema keyword {key!r}; this validator checks the "
                    "subset json_schema() emits (use the jsonschema package for others)"
                )
        return _all(checks)

    def _properties_check(self, properties: Any, where: str) -> _Check:
        if not isinstance(properties, Mapping):
            raise SchemaError(f"{where}: properties must be an object")
        steps = tuple(
            (key, _child_path(key), self._compile(sub, f"{where}/{key}"))
            for key, sub in properties.items()
        )

        def check(value: Any, path: str, errors: list[str]) -> None:
            if isinstance(value, dict):
                for key, step, sub in steps:
                    if key in value:
                        sub(value[key], path + step, errors)

        return check

    def _items_check(self, items: Any, where: str) -> _Check:
        if isinstance(items, list):
            raise SchemaError(f"{where}: items must be one schema (draft 2020-12)")
        sub = self._compile(items, where)

        def check(value: Any, path: str, errors: list[str]) -> None:
            if isinstance(value, list):
                for index, item in enumerate(value):
                    sub(item, f"{path}[{index}]", errors)

        return check

    def _ref_check(self, reference: Any, where: str) -> _Check:
        prefix = "#/$defs/"
        if not isinstance(reference, str) or not reference.startswith(prefix):
            raise SchemaError(f"{where}: only $ref to '#/$defs/<name>' is supported")
        name = reference[len(prefix) :]
        if name not in self._names:
            raise SchemaError(f"{where}: $ref {reference!r} names no definition")
        definitions = self._defs  # filled in before any check runs; allows recursion

        def check(value: Any, path: str, errors: list[str]) -> None:
            definitions[name](value, path, errors)

        return check

    def _condition_check(self, schema: Mapping[str, Any], where: str) -> _Check:
        condition = self._compile(schema["if"], f"{where}/if")
        then = self._compile(schema["then"], f"{where}/then") if "then" in schema else None
        otherwise = self._compile(schema["else"], f"{where}/else") if "else" in schema else None

        def check(value: Any, path: str, errors: list[str]) -> None:
            failures: list[str] = []
            condition(value, path, failures)
            branch = otherwise if failures else then
            if branch is not None:
                branch(value, path, errors)

        return check


def _accept(value: Any, path: str, errors: list[str]) -> None:
    return None


def _reject(value: Any, path: str, errors: list[str]) -> None:
    errors.append(f"{path}: not allowed")


def _all(checks: list[_Check]) -> _Check:
    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]
    steps = tuple(checks)

    def check(value: Any, path: str, errors: list[str]) -> None:
        for step in steps:
            step(value, path, errors)

    return check


def _type_check(names: Any, where: str) -> _Check:
    listed = [names] if isinstance(names, str) else names
    if not isinstance(listed, list) or not listed or not all(n in _TYPE_TESTS for n in listed):
        raise SchemaError(f"{where}/type: expected JSON type names, got {names!r}")
    tests = tuple(_TYPE_TESTS[name] for name in listed)
    expected = " or ".join(listed)

    def check(value: Any, path: str, errors: list[str]) -> None:
        for test in tests:
            if test(value):
                return
        errors.append(f"{path}: expected {expected}, got {json_type(value)}")

    return check


def _const_check(constant: Any) -> _Check:
    def check(value: Any, path: str, errors: list[str]) -> None:
        if not _json_equal(value, constant):
            errors.append(f"{path}: expected {_show(constant)}, got {_show(value)}")

    return check


def _enum_check(options: Any, where: str) -> _Check:
    if not isinstance(options, list) or not options:
        raise SchemaError(f"{where}: enum must be a non-empty array")
    allowed = tuple(options)
    hashable = frozenset(o for o in allowed if isinstance(o, str))
    strings_only = len(hashable) == len(allowed)
    listed = ", ".join(_show(o) for o in allowed[:8]) + (", …" if len(allowed) > 8 else "")

    def check(value: Any, path: str, errors: list[str]) -> None:
        if strings_only:
            if isinstance(value, str) and value in hashable:
                return
        elif any(_json_equal(value, option) for option in allowed):
            return
        errors.append(f"{path}: expected one of {listed}, got {_show(value)}")

    return check


def _required_check(names: Any, where: str) -> _Check:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SchemaError(f"{where}: required must be an array of strings")
    required = tuple(names)

    def check(value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, dict):
            missing = [name for name in required if name not in value]
            if missing:
                plural = "s" if len(missing) > 1 else ""
                listed = ", ".join(repr(name) for name in missing)
                errors.append(f"{path}: missing required field{plural} {listed}")

    return check


def _minimum_check(minimum: Any, where: str) -> _Check:
    if not _is_number(minimum):
        raise SchemaError(f"{where}: minimum must be a number")

    def check(value: Any, path: str, errors: list[str]) -> None:
        if _is_number(value) and value < minimum:
            errors.append(f"{path}: {_show(value)} is less than the minimum {minimum}")

    return check


def _min_length_check(length: Any, where: str) -> _Check:
    if not _is_integer(length) or length < 0:
        raise SchemaError(f"{where}: minLength must be a non-negative integer")

    def check(value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, str) and len(value) < length:
            if value:
                errors.append(f"{path}: {_show(value)} is shorter than {length} characters")
            else:
                errors.append(f"{path}: must not be empty")

    return check


def _pattern_check(pattern: Any, is_date_time: bool, where: str) -> _Check:
    if not isinstance(pattern, str):
        raise SchemaError(f"{where}: pattern must be a string")
    search = _python_pattern(pattern).search
    if is_date_time:
        reason = "is not a date-time with a UTC offset, like 2026-01-02T03:04:05.678+00:00"
    else:
        reason = f"does not match {pattern}"

    def check(value: Any, path: str, errors: list[str]) -> None:
        if isinstance(value, str) and search(value) is None:
            errors.append(f"{path}: {_show(value)} {reason}")

    return check


# --- lines and files ----------------------------------------------------------------------
