"""The keys a spec accepts, derived from the options of ``pidgin run``.

There is no second list: every option of the command is a key (its long flag with ``_``
for ``-``), with the option's type, choices, range, default and help. An option added to
``pidgin run`` tomorrow is a spec key tomorrow. What is written here by hand is only what
the options cannot say: pidgin-ai's names for the same settings, the few options that
steer the command rather than the run, and the grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import click

__all__ = [
    "COMMAND_ONLY",
    "GRID_KEY",
    "GRID_MODES",
    "GRID_MODE_KEY",
    "PIDGIN_AI_ALIASES",
    "PIDGIN_AI_KEYS",
    "SpecKey",
    "expected",
    "spec_keys",
]

PIDGIN_AI_ALIASES: Mapping[str, str] = {
    "agent_a_model": "agent_a",
    "agent_b_model": "agent_b",
    "max_turns": "turns",
    "temperature_a": "temp_a",
    "temperature_b": "temp_b",
    "custom_prompt": "prompt",
}
"""pidgin-ai's spec keys (and ``ExperimentStartEvent.config`` keys) for our options."""

UNSUPPORTED_PIDGIN_AI: Mapping[str, str] = {
    "dimensions": "dimensional prompts are not part of Pidgin; write the prompt out",
    "dimension": "dimensional prompts are not part of Pidgin; write the prompt out",
    "display_mode": "the display is chosen by the command ('pidgin experiment attach')",
    "prompt_tag": "Pidgin sends the prompt as written, without a tag",
    "allow_truncation": "use context_policy: truncate (the default) or end",
    "max_tokens": "response lengths are the catalogue's per model",
    "notify": "Pidgin has no desktop notifications",
    "convergence_profile": "Pidgin has one convergence measure",
    "meditation": "use agent_b: silent:none",
    "show_system_prompts": "every system prompt is in the log as a SystemPromptEvent",
    "tail": "use 'pidgin run SPEC --tail' or 'pidgin experiment attach ID --tail'",
}
"""pidgin-ai keys without a Pidgin option, and what to do instead."""

PIDGIN_AI_KEYS = frozenset({
    "name", "agent_a", "agent_b", "agent_a_model", "agent_b_model", "repetitions",
    "max_turns", "turns", "temperature", "temperature_a", "temperature_b", "prompt",
    "custom_prompt", "convergence_threshold", "convergence_action", "awareness",
    "awareness_a", "awareness_b", "choose_names", "max_parallel", "think", "think_a",
    "think_b", "think_budget", "output", *UNSUPPORTED_PIDGIN_AI,
})  # fmt: skip
"""Every key pidgin-ai 1.1 reads from a spec: one without an option here gets a clear
word rather than 'unknown key'."""

COMMAND_ONLY = frozenset({"quiet", "detach", "tail", "like", "help"})
"""Options that say how the command behaves, not what runs: never spec keys."""

GRID_KEY = "grid"
GRID_MODE_KEY = "grid_mode"
GRID_MODES = ("experiments", "conversations")


@dataclass(frozen=True, slots=True)
class SpecKey:
    """One spec key: the ``pidgin run`` option it sets."""

    name: str
    option: click.Option

    @property
    def param_name(self) -> str:
        """The keyword the command's function receives (``provider_limits`` for ``limit``)."""
        assert self.option.name is not None
        return self.option.name

    @property
    def flag(self) -> str:
        return max(self.option.opts, key=len)

    def schema(self) -> dict[str, Any]:
        """This key's JSON Schema, from the option's type, range, choices, default and help."""
        item = _type_schema(self.option.type)
        schema: dict[str, Any] = (
            {"type": "array", "items": item} if self.option.multiple else dict(item)
        )
        if self.option.help:
            schema["description"] = f"{self.option.help} (pidgin run {self.flag})"
        if self.default is not None:
            schema["default"] = self.default
        return schema

    @property
    def default(self) -> bool | int | float | str | None:
        """The option's default when it is a plain value (not a callable, not unset)."""
        default = self.option.default
        if isinstance(default, bool | int | float | str) and not self.option.multiple:
            return default
        return None


def spec_keys(command: click.Command) -> dict[str, SpecKey]:
    """Spec key -> option, for every option of ``command`` that describes a run."""
    keys: dict[str, SpecKey] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in COMMAND_ONLY:
            continue
        if param.hidden or not param.expose_value:
            continue
        long_flags = [opt for opt in param.opts if opt.startswith("--")]
        if not long_flags:
            continue
        keys[long_flags[0][2:].replace("-", "_")] = SpecKey(
            long_flags[0][2:].replace("-", "_"), param
        )
    return keys


def aliases_of(keys: Iterable[str]) -> dict[str, str]:
    """The pidgin-ai aliases whose target is one of ``keys`` (alias -> key)."""
    present = set(keys)
    return {alias: key for alias, key in PIDGIN_AI_ALIASES.items() if key in present}


def expected(option: click.Option) -> str:
    """What a value of this option must be, in words, for error messages."""
    if option.multiple:
        return f"a list of {_describe(option.type, plural=True)}"
    if option.is_flag and option.type == click.BOOL:
        return "true or false"
    return _describe(option.type, plural=False)


def _describe(kind: click.ParamType[Any], *, plural: bool) -> str:
    s = "s" if plural else ""
    if isinstance(kind, click.Choice):
        return ("each " if plural else "") + "one of " + ", ".join(map(str, kind.choices))
    if isinstance(kind, click.IntRange | click.FloatRange):
        noun = "an integer" if isinstance(kind, click.IntRange) else "a number"
        if plural:
            noun = "integers" if isinstance(kind, click.IntRange) else "numbers"
        return f"{noun} {kind._describe_range()}"
    if kind == click.INT:
        return "integers" if plural else "an integer"
    if kind == click.FLOAT:
        return "numbers" if plural else "a number"
    if kind == click.BOOL:
        return "true or false"
    return f"string{s}" if plural else "a string"


def _type_schema(kind: click.ParamType[Any]) -> dict[str, Any]:
    if isinstance(kind, click.Choice):
        return {"enum": list(kind.choices)}
    if isinstance(kind, click.IntRange | click.FloatRange):
        schema: dict[str, Any] = {
            "type": "integer" if isinstance(kind, click.IntRange) else "number"
        }
        if kind.min is not None:
            schema["exclusiveMinimum" if kind.min_open else "minimum"] = kind.min
        if kind.max is not None:
            schema["exclusiveMaximum" if kind.max_open else "maximum"] = kind.max
        return schema
    if kind == click.INT:
        return {"type": "integer"}
    if kind == click.FLOAT:
        return {"type": "number"}
    if kind == click.BOOL:
        return {"type": "boolean"}
    return {"type": "string"}
