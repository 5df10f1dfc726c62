"""Reading a spec file: YAML safely parsed, every key and value checked, with its line.

The YAML is composed into its node tree first (which keeps each key's line and column)
and only then turned into Python values, so every complaint can point at the place in
the file. A value is checked strictly against its option's type (``max_turns: "12"`` is
a string, not a number) and then by the option itself (its range and callback), exactly
as if it had been typed on the command line.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._keys import (
    GRID_KEY,
    GRID_MODE_KEY,
    GRID_MODES,
    PIDGIN_AI_KEYS,
    UNSUPPORTED_PIDGIN_AI,
    SpecKey,
    aliases_of,
    expected,
)

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = ["SPEC_SUFFIXES", "Spec", "SpecCheck", "SpecError", "fits", "load_spec"]

SPEC_SUFFIXES = (".yaml", ".yml")


class SpecError(click.ClickException):
    """A spec that cannot run: where it is wrong and what was expected. Exit status 2."""

    exit_code = 2

    def __init__(
        self,
        path: Path | str,
        message: str,
        node: Node | None = None,
        *,
        at: tuple[int, int] | None = None,
    ) -> None:
        at = _position(node) if node is not None else at
        where = f"{path}:{at[0]}:{at[1]}" if at else str(path)
        super().__init__(f"{where}: {message}")
        self.at = at or (0, 0)
        """Line and column (from 1) of what is wrong; (0, 0) for the file as a whole."""
        self.problems = [self.message]
        """Each problem on a line of its own, starting with ``FILE:LINE:COLUMN``."""

    @classmethod
    def listing(cls, path: Path | str, errors: Sequence[SpecError]) -> SpecError:
        """One error for every problem found in a file, so all are mended in one go."""
        in_order = sorted(errors, key=lambda error: error.at)
        problems = list(dict.fromkeys(line for error in in_order for line in error.problems))
        if len(problems) == 1:
            return errors[0]
        listed = cls(path, "\n".join([f"{len(problems)} problems", *problems]))
        listed.problems = problems
        return listed


def _position(node: Node) -> tuple[int, int]:
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


@dataclass(frozen=True, slots=True)
class Spec:
    """A checked spec: values by key (our names), the grid, and the file as given."""

    path: Path
    sha256: str
    given: dict[str, Any]
    """The mapping exactly as written (pidgin-ai names included), for the record."""
    values: dict[str, Any] = field(default_factory=dict)
    """Spec key -> value, grid excluded; keys are ``pidgin run``'s option names."""
    grid: dict[str, list[Any]] = field(default_factory=dict)
    grid_mode: str = GRID_MODES[0]
    places: dict[str, tuple[int, int]] = field(default_factory=dict)
    """``key`` or ``key[i]`` (a grid item) -> line and column of its value."""

    def error(self, name: str, message: str, index: int | None = None) -> SpecError:
        """An error about key ``name`` (grid item ``index``) found after loading."""
        at = self.places.get(name if index is None else f"{name}[{index}]")
        return SpecError(self.path, message, at=at)

    def cells(self) -> list[dict[str, Any]]:
        """The grid's cells (its cartesian product, first key slowest); one empty cell if none."""
        names = list(self.grid)
        return [
            dict(zip(names, combination, strict=True))
            for combination in itertools.product(*(self.grid[name] for name in names))
        ]


SpecCheck = Callable[[Spec], Iterable[SpecError]]
"""A further check of a spec whose keys and values are sound: the problems it finds."""


def load_spec(
    path: Path,
    keys: Mapping[str, SpecKey],
    ctx: click.Context,
    *,
    per_conversation: Collection[str] = (),
    checks: Iterable[SpecCheck] = (),
) -> Spec:
    """The checked spec in ``path``; ``SpecError`` lists every problem, each with its line.

    A file that is not a YAML mapping stops at that; otherwise every key, value and grid
    item is checked, and then ``checks`` run on what was sound. ``per_conversation`` are
    the keys a grid may vary in ``grid_mode: conversations``.
    """
    import yaml

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(path, f"cannot read the spec: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(path, f"not UTF-8 text (byte {exc.start})") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        given = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(where, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(path, f"YAML syntax error: {exc}") from None
    finally:
        loader.dispose()
    if root is None:
        raise SpecError(path, "the spec is empty: expected a mapping of keys such as agent_a")
    if not isinstance(root, yaml.MappingNode) or not isinstance(given, dict):
        raise SpecError(path, "expected a mapping of keys (agent_a: ..., max_turns: ...)", root)
    reader = _Reader(path, keys, ctx)
    values: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}
    grid_node: Node | None = None
    grid_mode = GRID_MODES[0]
    for key_node, value_node in reader.entries(root):
        with reader.noting():
            name = reader.key(key_node, allow_grid=True)
            if name == GRID_KEY:
                grid_node = value_node
            elif name == GRID_MODE_KEY:
                grid_mode = reader.grid_mode(value_node)
            else:
                value = reader.value(name, value_node)
                if value is not None:
                    values[name] = value
                    reader.places[name] = _position(value_node)
    if grid_node is not None:
        with reader.noting():
            grid = reader.grid(grid_node, values)
            if grid_mode == "conversations":
                reader.vary_per_conversation(grid_node, per_conversation)
    spec = Spec(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        given=given,
        values=values,
        grid=grid,
        grid_mode=grid_mode,
        places=reader.places,
    )
    for check in checks:
        reader.problems.extend(check(spec))
    if reader.problems:
        raise SpecError.listing(path, reader.problems)
    return spec


class _Reader:
    """Checks keys and values of one spec file against the command's options."""

    def __init__(self, path: Path, keys: Mapping[str, SpecKey], ctx: click.Context) -> None:
        self.path = path
        self.keys = keys
        self.aliases = aliases_of(keys)
        self.ctx = ctx
        self.places: dict[str, tuple[int, int]] = {}
        self.problems: list[SpecError] = []

    @contextlib.contextmanager
    def noting(self) -> Iterator[None]:
        """Note a problem of one key or item, and go on to the next."""
        try:
            yield
        except SpecError as problem:
            self.problems.append(problem)

    def entries(self, mapping: Node) -> list[tuple[Node, Node]]:
        """The mapping's (key, value) nodes; a key given twice (or with its alias) is noted."""
        seen: dict[str, str] = {}
        entries: list[tuple[Node, Node]] = mapping.value
        for key_node, _ in entries:
            with self.noting():
                written = self._text(key_node)
                name = self.aliases.get(written, written)
                if name in seen:
                    first = seen[name]
                    also = "" if first == written else f" (as {first!r})"
                    raise SpecError(self.path, f"key {written!r} is given twice{also}", key_node)
                seen[name] = written
        return entries

    def key(self, node: Node, *, allow_grid: bool = False) -> str:
        """The option name a written key means; unknown keys get the closest known ones."""
        written = self._text(node)
        if written in self.keys:
            return written
        if written in self.aliases:
            return self.aliases[written]
        if allow_grid and written in (GRID_KEY, GRID_MODE_KEY):
            return written
        if written in UNSUPPORTED_PIDGIN_AI:
            hint = UNSUPPORTED_PIDGIN_AI[written]
            raise SpecError(
                self.path, f"pidgin-ai's key {written!r} is not supported: {hint}", node
            )
        if written in PIDGIN_AI_KEYS:
            raise SpecError(
                self.path,
                f"pidgin-ai's key {written!r} has no 'pidgin run' option in this version of "
                "Pidgin ('pidgin spec schema' lists the keys it has)",
                node,
            )
        known = [*self.keys, *self.aliases, *((GRID_KEY, GRID_MODE_KEY) if allow_grid else ())]
        close = difflib.get_close_matches(written, known, n=3, cutoff=0.6)
        hint = (
            f"; did you mean {' or '.join(repr(name) for name in close)}?"
            if close
            else " ('pidgin spec schema' lists the keys)"
        )
        raise SpecError(self.path, f"unknown key {written!r}{hint}", node)

    def value(self, name: str, node: Node, *, label: str | None = None) -> Any:
        """The checked value of key ``name`` (None: not set), as the option would take it."""
        spec_key = self.keys[name]
        option = spec_key.option
        raw = self._construct(node)
        label = label or f"key {name!r}"
        if raw is None:
            if option.required:
                raise SpecError(self.path, f"{label}: expected {expected(option)}, got null", node)
            return None
        if not fits(option, raw):
            raise SpecError(
                self.path,
                f"{label}: expected {expected(option)}, got {_shown(raw)}",
                node,
            )
        try:
            option.process_value(self.ctx, list(raw) if option.multiple else raw)
        except click.BadParameter as exc:
            raise SpecError(self.path, f"{label}: {exc.message}", node) from None
        return raw

    def grid_mode(self, node: Node) -> str:
        raw = self._construct(node)
        if raw not in GRID_MODES:
            raise SpecError(
                self.path,
                f"key {GRID_MODE_KEY!r}: expected one of {', '.join(GRID_MODES)}, "
                f"got {_shown(raw)}",
                node,
            )
        return str(raw)

    def grid(self, node: Node, values: Mapping[str, Any]) -> dict[str, list[Any]]:
        import yaml

        if not isinstance(node, yaml.MappingNode) or not node.value:
            raise SpecError(
                self.path,
                f"key {GRID_KEY!r}: expected a mapping of keys to lists of values "
                "(e.g. temperature: [0.2, 0.8])",
                node,
            )
        grid: dict[str, list[Any]] = {}
        for key_node, value_node in self.entries(node):
            with self.noting():
                name = self.key(key_node)
                if name in values:
                    raise SpecError(
                        self.path,
                        f"grid key {name!r} is also set outside the grid; set it in one place",
                        key_node,
                    )
                if not isinstance(value_node, yaml.SequenceNode) or not value_node.value:
                    raise SpecError(
                        self.path,
                        f"grid key {name!r}: expected a non-empty list of values, each "
                        f"{expected(self.keys[name].option)}",
                        value_node,
                    )
                grid[name] = self._grid_values(name, value_node.value)
        return grid

    def vary_per_conversation(self, grid: Node, per_conversation: Collection[str]) -> None:
        """Note each key of ``grid`` that one experiment's conversations cannot vary."""
        for key_node, _ in grid.value:
            with self.noting():
                name = self.key(key_node)
                if name not in per_conversation:
                    varies = ", ".join(sorted(per_conversation))
                    raise SpecError(
                        self.path,
                        f"grid key {name!r} cannot vary between the conversations of one "
                        f"experiment (grid_mode: conversations varies only {varies}); "
                        "use grid_mode: experiments",
                        key_node,
                    )

    def _grid_values(self, name: str, items: list[Node]) -> list[Any]:
        """The checked values of grid key ``name``: every bad item is noted."""
        cell_values = []
        for index, item in enumerate(items):
            with self.noting():
                value = self.value(name, item, label=f"grid key {name!r}, item {index + 1}")
                if value is None:
                    raise SpecError(
                        self.path, f"grid key {name!r}, item {index + 1}: null is no value", item
                    )
                cell_values.append(value)
                self.places[f"{name}[{index}]"] = _position(item)
        return cell_values

    def _text(self, node: Node) -> str:
        import yaml

        if not isinstance(node, yaml.ScalarNode) or not isinstance(node.value, str):
            raise SpecError(self.path, "keys must be plain words such as max_turns", node)
        if node.tag != "tag:yaml.org,2002:str":
            raise SpecError(self.path, f"key {node.value!r} must be a word", node)
        return node.value

    def _construct(self, node: Node) -> Any:
        import yaml

        loader = yaml.SafeLoader("")
        try:
            return loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            raise SpecError(self.path, f"invalid value: {exc.problem}", node) from None
        finally:
            loader.dispose()


def fits(option: click.Option, value: Any) -> bool:
    """Whether ``value`` has the JSON type the option's schema states (no coercion)."""
    if option.multiple:
        return isinstance(value, list) and all(_fits_one(option.type, item) for item in value)
    if option.is_flag and isinstance(option.type, click.types.BoolParamType):
        return isinstance(value, bool)
    return _fits_one(option.type, value)


def _fits_one(kind: click.ParamType[Any], value: Any) -> bool:
    if isinstance(value, bool):
        return isinstance(kind, click.types.BoolParamType)
    if isinstance(kind, click.Choice):
        return isinstance(value, str) and value in kind.choices
    if isinstance(kind, click.IntRange) or kind == click.INT:
        return isinstance(value, int)
    if isinstance(kind, click.FloatRange) or kind == click.FLOAT:
        return isinstance(value, int | float)
    if isinstance(kind, click.types.BoolParamType):
        return False
    return isinstance(value, str)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value[:60] + ("..." if len(value) > 60 else ""))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)
