"""What each agent is told: awareness presets, custom awareness files, name requests.

Presets and the name-request wording are data (``awareness.toml`` beside this module).
A custom awareness file is YAML with pidgin-ai 1.x's keys::

    name: gentle-nudge        # optional, recorded as the injections' source
    base: research            # optional preset giving the system prompts
    prompts:
      0:                      # turn 0: replaces the system prompt
        both: "You are ..."
      5:                      # before the agents' messages of turn 5 (0-based)
        agent_a: "A system message for agent A only"
        agent_b: {role: user, content: "A user message for agent B"}

An entry's value is the text of a ``system`` message (pidgin-ai's meaning) or a mapping
with ``role`` (``system`` or ``user``) and ``content``; ``agent_a``/``agent_b`` override
``both``. An injection stays in its agent's history from its turn on. Everything is
resolved once, at launch, into plain data (``AgentPrompts``) that the run records.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = [
    "AWARENESS_FILE",
    "AgentPrompts",
    "AwarenessError",
    "Injection",
    "NameWording",
    "Preset",
    "load_awareness",
    "name_wording",
    "presets",
    "resolve_awareness",
]

AWARENESS_FILE = "awareness.toml"
_ROLES = ("system", "user")
_AGENT_KEYS = ("both", "agent_a", "agent_b")


class AwarenessError(ValueError):
    """A bad awareness preset name or file; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    description: str
    system: str


@dataclass(frozen=True, slots=True)
class NameWording:
    request: str
    told: str


@dataclass(frozen=True, slots=True)
class Injection:
    """A message added to one agent's history before its message of ``turn``."""

    turn: int
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class AgentPrompts:
    """What one agent is told: its system prompt and its injections, in turn order."""

    source: str
    """The preset's name or the awareness file's path, as given."""
    system: str
    injections: tuple[Injection, ...] = field(default=())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentPrompts:
        """The inverse of ``dataclasses.asdict`` (the runner receives it as JSON)."""
        injections = tuple(Injection(**item) for item in data.get("injections", ()))
        return cls(source=data["source"], system=data["system"], injections=injections)

    def at(self, turn: int) -> tuple[Injection, ...]:
        return tuple(injection for injection in self.injections if injection.turn == turn)


@functools.cache
def _data() -> dict[str, Any]:
    """``awareness.toml``, read once per process (nobody changes what it returns)."""
    text = files(__package__ or "pidgin_cli").joinpath(AWARENESS_FILE).read_text("utf-8")
    return tomllib.loads(text)


def presets() -> dict[str, Preset]:
    """The awareness presets by name, in the file's order."""
    return {
        name: Preset(name, entry["description"], entry["system"])
        for name, entry in _data()["presets"].items()
    }


def name_wording() -> NameWording:
    names = _data()["names"]
    return NameWording(request=names["request"], told=names["told"])


def _fill(template: str, own: str, partner: str) -> str:
    return template.replace("{self}", own).replace("{partner}", partner)


def resolve_awareness(text: str, agent_id: str, names: Mapping[str, str]) -> AgentPrompts:
    """The prompts of ``agent_id`` for ``-w TEXT``: a preset name or a YAML file's path.

    ``names`` maps ``agent_a``/``agent_b`` to the display names that ``{self}`` and
    ``{partner}`` stand for.
    """
    partner_id = "agent_b" if agent_id == "agent_a" else "agent_a"
    own, partner = names[agent_id], names[partner_id]
    known = presets()
    if text in known:
        return AgentPrompts(source=text, system=_fill(known[text].system, own, partner))
    if not text.endswith((".yaml", ".yml")):
        raise AwarenessError(
            f"unknown awareness {text!r}: expected one of {', '.join(known)} "
            "or the path of a .yaml file"
        )
    awareness = load_awareness(Path(text))
    base = awareness.base
    system = _fill(known[base].system, own, partner) if base is not None else ""
    injections: list[Injection] = []
    for turn, entry in sorted(awareness.prompts.items()):
        chosen = entry.get(agent_id, entry.get("both"))
        if chosen is None:
            continue
        role, content = chosen
        if turn == 0 and role == "system":
            system = content  # pidgin-ai's meaning of turn 0: the system prompt
        else:
            injections.append(Injection(turn, role, content))
    return AgentPrompts(source=text, system=system, injections=tuple(injections))


@dataclass(frozen=True, slots=True)
class AwarenessFile:
    """A parsed awareness file: turn -> {both|agent_a|agent_b: (role, content)}."""

    name: str | None
    base: str | None
    prompts: dict[int, dict[str, tuple[str, str]]]


def load_awareness(path: Path) -> AwarenessFile:
    """Parse and check an awareness file; errors say ``FILE:LINE: what was expected``."""
    import yaml

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AwarenessError(f"{path}: cannot read the awareness file: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise AwarenessError(f"{where}: not valid YAML: {problem}") from None
    return _Checker(path).file(root)


class _Checker:
    """Walks the YAML node tree (which keeps line numbers) rather than plain values."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: Any, message: str) -> AwarenessError:
        line = node.start_mark.line + 1 if node is not None else 1
        return AwarenessError(f"{self.path}:{line}: {message}")

    def mapping(self, node: Any, what: str) -> list[tuple[Any, Any]]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        pairs: list[tuple[Any, Any]] = node.value
        return pairs

    def string(self, node: Any, what: str) -> str:
        import yaml

        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:str":
            raise self.fail(node, f"{what} must be text")
        value: str = node.value
        return value

    def file(self, root: Any) -> AwarenessFile:
        if root is None:
            raise AwarenessError(f"{self.path}:1: the awareness file is empty; it needs 'prompts'")
        name = base = None
        prompts: dict[int, dict[str, tuple[str, str]]] | None = None
        known = presets()
        for key_node, value in self.mapping(root, "an awareness file"):
            key = key_node.value
            if key == "name":
                name = self.string(value, "'name'")
            elif key == "base":
                base = self.string(value, "'base'")
                if base not in known:
                    raise self.fail(value, f"'base' must be one of {', '.join(known)}")
            elif key == "prompts":
                prompts = self.prompts(value)
            elif key != "description":
                raise self.fail(
                    key_node,
                    f"unknown key {key!r}: expected name, description, base, prompts",
                )
        if prompts is None:
            raise self.fail(root, "the awareness file needs a 'prompts' mapping")
        return AwarenessFile(name=name, base=base, prompts=prompts)

    def prompts(self, node: Any) -> dict[int, dict[str, tuple[str, str]]]:
        prompts: dict[int, dict[str, tuple[str, str]]] = {}
        for turn_node, entry_node in self.mapping(node, "'prompts'"):
            turn_text = str(turn_node.value)
            if not turn_text.isdigit() or turn_node.tag == "tag:yaml.org,2002:float":
                raise self.fail(turn_node, f"turn {turn_text!r} must be a whole number >= 0")
            turn = int(turn_text)
            if turn in prompts:
                raise self.fail(turn_node, f"turn {turn} appears twice")
            entry: dict[str, tuple[str, str]] = {}
            for key_node, value in self.mapping(entry_node, f"turn {turn}"):
                key = key_node.value
                if key not in _AGENT_KEYS:
                    raise self.fail(
                        key_node,
                        f"turn {turn}: unknown key {key!r}: expected both, agent_a, agent_b",
                    )
                entry[key] = self.message(value, f"turn {turn}, {key}")
            prompts[turn] = entry
        return prompts

    def message(self, node: Any, what: str) -> tuple[str, str]:
        import yaml

        if isinstance(node, yaml.ScalarNode):
            return "system", self.string(node, what)
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what}: must be text, or a mapping of role and content")
        role, content = "system", None
        for key_node, value in self.mapping(node, what):
            key = key_node.value
            if key == "role":
                role = self.string(value, f"{what}: 'role'")
                if role not in _ROLES:
                    raise self.fail(value, f"{what}: 'role' must be system or user, not {role!r}")
            elif key == "content":
                content = self.string(value, f"{what}: 'content'")
            else:
                raise self.fail(key_node, f"{what}: unknown key {key!r}: expected role, content")
        if content is None:
            raise self.fail(node, f"{what}: 'content' is missing")
        return role, content
