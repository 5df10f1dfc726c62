"""The options that decide what agents are told and whether they think, for ``run`` and ``chat``.

``prompt_options`` adds ``-w/--awareness``, ``--awareness-a/-b``, ``--choose-names``,
``--think``, ``--think-a/-b`` and ``--think-budget`` and hands the command one
``PromptOptions``; ``resolve_prompting`` turns it, once the models are known, into the
``Prompting`` a conversation runs with (awareness files read, prompts filled in), which
is recorded in the run's config as plain data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import click

from ._awareness import AgentPrompts, AwarenessError, resolve_awareness
from ._log_text import LOG_TEXT

__all__ = [
    "DEFAULT_AWARENESS",
    "DEFAULT_THINK_BUDGET",
    "PromptOptions",
    "Prompting",
    "prompt_options",
    "resolve_prompting",
]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_AWARENESS = "basic"
"""pidgin-ai's default awareness."""
DEFAULT_THINK_BUDGET = 10_000
"""Thinking tokens per reply when ``--think`` is given without ``--think-budget``."""
MIN_THINK_BUDGET = 1024
"""Anthropic's smallest thinking budget; the same floor for every provider keeps runs comparable."""


@dataclass(frozen=True, slots=True)
class PromptOptions:
    """The options as given on the command line, before anything is read or checked."""

    awareness: str = DEFAULT_AWARENESS
    awareness_a: str | None = None
    awareness_b: str | None = None
    choose_names: bool = False
    think: bool = False
    think_a: bool = False
    think_b: bool = False
    think_budget: int | None = None


def _basic() -> AgentPrompts:
    from ._awareness import presets

    return AgentPrompts(source=DEFAULT_AWARENESS, system=presets()[DEFAULT_AWARENESS].system)


@dataclass(frozen=True, slots=True)
class Prompting:
    """What each agent is told, whether it picks a name, and how much it may think."""

    prompts_a: AgentPrompts = field(default_factory=_basic)
    prompts_b: AgentPrompts = field(default_factory=_basic)
    choose_names: bool = False
    think_a: bool = False
    think_b: bool = False
    think_budget: int | None = None
    """Thinking tokens per reply for the agents that think; None when neither does."""

    def prompts(self, agent_id: str) -> AgentPrompts:
        return self.prompts_a if agent_id == "agent_a" else self.prompts_b

    def thinks(self, agent_id: str) -> bool:
        return self.think_a if agent_id == "agent_a" else self.think_b

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prompting:
        return cls(
            prompts_a=AgentPrompts.from_dict(data["prompts_a"]),
            prompts_b=AgentPrompts.from_dict(data["prompts_b"]),
            choose_names=bool(data.get("choose_names", False)),
            think_a=bool(data.get("think_a", False)),
            think_b=bool(data.get("think_b", False)),
            think_budget=data.get("think_budget"),
        )

    def config(self) -> dict[str, Any]:
        """pidgin-ai's config keys (``awareness_a``, ...) plus what was actually resolved."""
        return {
            "awareness_a": self.prompts_a.source,
            "awareness_b": self.prompts_b.source,
            "choose_names": self.choose_names,
            "think_a": self.think_a,
            "think_b": self.think_b,
            "think_budget": self.think_budget,
        }


def _agent_think(options: PromptOptions, agent_id: str, model: str, option: str) -> bool:
    from ._thinking import ThinkingUnsupportedError, check_can_think

    own = options.think_a if agent_id == "agent_a" else options.think_b
    if not (own or options.think):
        return False
    try:
        check_can_think(model)
    except ThinkingUnsupportedError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    return True


def resolve_prompting(
    options: PromptOptions, models: Mapping[str, str], names: Mapping[str, str]
) -> Prompting:
    """``options`` for the agents' canonical ``models``, whose display ``names`` fill prompts.

    Raises ``click.BadParameter`` naming the option, or the file and line of a bad
    awareness file.
    """
    resolved: dict[str, AgentPrompts] = {}
    for agent_id, own_text, hint in (
        ("agent_a", options.awareness_a, "'--awareness-a'"),
        ("agent_b", options.awareness_b, "'--awareness-b'"),
    ):
        text = own_text if own_text is not None else options.awareness
        try:
            resolved[agent_id] = resolve_awareness(text, agent_id, names)
        except AwarenessError as exc:
            where = hint if own_text is not None else "'-w' / '--awareness'"
            raise click.BadParameter(str(exc), param_hint=where) from None
    think_a = _agent_think(options, "agent_a", models["agent_a"], "'--think' / '--think-a'")
    think_b = _agent_think(options, "agent_b", models["agent_b"], "'--think' / '--think-b'")
    if options.think_budget is not None and not (think_a or think_b):
        raise click.BadParameter(
            "needs --think, --think-a or --think-b", param_hint="'--think-budget'"
        )
    budget = (options.think_budget or DEFAULT_THINK_BUDGET) if think_a or think_b else None
    return Prompting(
        prompts_a=resolved["agent_a"],
        prompts_b=resolved["agent_b"],
        choose_names=options.choose_names,
        think_a=think_a,
        think_b=think_b,
        think_budget=budget,
    )


def prompt_options(function: F) -> F:
    """Add the options and call ``function`` with them gathered as ``prompting``."""
    options = [
        click.option(
            "-w",
            "--awareness",
            type=LOG_TEXT,
            default=DEFAULT_AWARENESS,
            show_default=True,
            metavar="PRESET|FILE.yaml",
            help="What both agents are told: none, basic, firm, research, backrooms, or an "
            "awareness file that sets system prompts and injects prompts at given turns.",
        ),
        click.option(
            "--awareness-a",
            type=LOG_TEXT,
            metavar="PRESET|FILE.yaml",
            help="Awareness of agent A only.",
        ),
        click.option(
            "--awareness-b",
            type=LOG_TEXT,
            metavar="PRESET|FILE.yaml",
            help="Awareness of agent B only.",
        ),
        click.option(
            "--choose-names",
            is_flag=True,
            help="Each agent first picks its own name; displays and the database show it.",
        ),
        click.option(
            "--think",
            is_flag=True,
            help="Extended thinking for both agents (models that support it); the traces "
            "are recorded apart from the messages.",
        ),
        click.option("--think-a", is_flag=True, help="Extended thinking for agent A only."),
        click.option("--think-b", is_flag=True, help="Extended thinking for agent B only."),
        click.option(
            "--think-budget",
            type=click.IntRange(MIN_THINK_BUDGET, 1_000_000),
            metavar="TOKENS",
            help=f"Thinking tokens per reply [default: {DEFAULT_THINK_BUDGET}].",
        ),
    ]

    @functools.wraps(function)
    def gather(*args: Any, **kwargs: Any) -> Any:
        kwargs["prompting"] = PromptOptions(
            **{name: kwargs.pop(name) for name in PromptOptions.__dataclass_fields__}
        )
        return function(*args, **kwargs)

    command: Any = gather
    for option in reversed(options):
        command = option(command)
    result: F = command
    return result
