"""``pidgin run``, and the options runs and chats share.

``run`` starts an experiment in a background process that outlives the terminal and then
follows it (``-q``/``--detach`` return at once; ``_run_follow``). ``pidgin chat``
(``_commands_chat``) takes the same conversation options; ``pidgin experiment stop`` is
``_commands_stop``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._experiment_names import experiment_name
from ._log_text import LOG_TEXT
from ._output import (
    command_hint,
    fail,
    output_option,
    resolve_output_root,
    tail_option,
)
from ._prompting import DEFAULT_AWARENESS, PromptOptions, prompt_options
from ._run_options import parallel_options, provider_options
from ._spec import like_option, spec_argument

if TYPE_CHECKING:
    from ._commands_watch import View
    from ._conductor import ConvergenceAction, ConversationPlan

__all__ = ["run_command"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TURNS = 20
"""pidgin-ai's default number of turns."""


def _conversation_options(function: F) -> F:
    """The options ``run`` and ``chat`` share, with pidgin-ai's names and meanings."""
    options = [
        click.option(
            "-a",
            "--agent-a",
            required=True,
            type=LOG_TEXT,
            metavar="MODEL",
            help="Model of the first agent, e.g. local:drift (see 'Models' below).",
        ),
        click.option(
            "-b",
            "--agent-b",
            required=True,
            type=LOG_TEXT,
            metavar="MODEL",
            help="Model of the second agent.",
        ),
        click.option(
            "-p",
            "--prompt",
            type=LOG_TEXT,
            metavar="TEXT",
            help="Initial prompt (default: none; the first agent is sent '[Begin]').",
        ),
        click.option(
            "-t",
            "--turns",
            type=click.IntRange(1, 100_000),
            default=DEFAULT_TURNS,
            show_default=True,
            help="Maximum number of turns (one message from each agent per turn).",
        ),
        click.option(
            "--temperature", type=click.FloatRange(0.0, 2.0), help="Temperature of both agents."
        ),
        click.option("--temp-a", type=click.FloatRange(0.0, 2.0), help="Temperature of agent A."),
        click.option("--temp-b", type=click.FloatRange(0.0, 2.0), help="Temperature of agent B."),
        click.option(
            "--convergence-threshold",
            type=click.FloatRange(0.0, 1.0),
            help="Act when a turn's convergence score reaches this (0-1).",
        ),
        click.option(
            "--convergence-action",
            type=click.Choice(["stop", "warn", "continue"]),
            default="stop",
            show_default=True,
            help="At the threshold: end the conversation (stop), record a warning event and "
            "go on (warn), or just go on (continue).",
        ),
        click.option(
            "--seed",
            type=int,
            callback=check_seed,
            help="Seed of seedable models (default: random, recorded in the config).",
        ),
    ]
    function = prompt_options(function)  # listed after the options above in --help
    for option in reversed(options):
        function = option(function)
    return function


def check_seed(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    """Seeds are recorded in the config and loaded into DuckDB: keep them within 64 bits."""
    if value is not None and not 0 <= value < 2**63:
        raise click.BadParameter("must be between 0 and 2**63 - 1")
    return value


def _models_epilog() -> str:
    return (
        "Models: local:test (pidgin-ai's deterministic test model), silent:none (always "
        "'\u2026'), local:drift (seedable, drifts toward its partner); real models as "
        "provider:model (anthropic, openai, google, xai, ollama, openai-compatible) or an "
        "alias such as opus, sonnet, gpt-4o, gemini, grok. 'pidgin models' lists them."
    )


def _check_model(text: str, option: str, base_url: str | None = None) -> str:
    """The canonical name of a usable model; a one-line fix when its provider is not set up."""
    from ._models import MODELS, UnknownModelError
    from ._providers import ProviderSetupError, check_ready, configure

    try:
        name = MODELS.resolve(text).name
        if base_url is not None:
            configure(base_urls={"openai-compatible": base_url})
        check_ready(name)
    except (UnknownModelError, ProviderSetupError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    return name


def _plan(
    *,
    agent_a: str,
    agent_b: str,
    prompt: str | None,
    turns: int,
    temperature: float | None,
    temp_a: float | None,
    temp_b: float | None,
    convergence_threshold: float | None,
    convergence_action: str,
    seed: int | None,
    context_policy: str = "truncate",
    base_url: str | None = None,
    awareness: str = DEFAULT_AWARENESS,
    awareness_a: str | None = None,
    awareness_b: str | None = None,
    choose_names: bool = False,
    think: bool = False,
    think_a: bool = False,
    think_b: bool = False,
    think_budget: int | None = None,
) -> ConversationPlan:
    """A conversation's plan from the options (their names: a spec's per-conversation keys)."""
    from ._conductor import ConversationPlan, agent_names
    from ._prompting import resolve_prompting

    actions: dict[str, ConvergenceAction] = {"stop": "stop", "warn": "warn", "continue": "continue"}
    action = actions[convergence_action]
    models = {
        "agent_a": _check_model(agent_a, "'-a' / '--agent-a'", base_url),
        "agent_b": _check_model(agent_b, "'-b' / '--agent-b'", base_url),
    }
    return ConversationPlan(
        agent_a=models["agent_a"],
        agent_b=models["agent_b"],
        prompting=resolve_prompting(
            PromptOptions(
                awareness,
                awareness_a,
                awareness_b,
                choose_names,
                think,
                think_a,
                think_b,
                think_budget,
            ),
            models,
            agent_names(models),
        ),
        max_turns=turns,
        initial_prompt=prompt,
        temperature_a=temp_a if temp_a is not None else temperature,
        temperature_b=temp_b if temp_b is not None else temperature,
        convergence_threshold=convergence_threshold,
        convergence_action=action,
        seed=seed if seed is not None else random.SystemRandom().randrange(2**31),
        context_policy="end" if context_policy == "end" else "truncate",
    )


# --- pidgin run -------------------------------------------------------------------------


@click.command(
    "run",
    short_help="Run an experiment in the background and follow it.",
    epilog=_models_epilog(),
)
@spec_argument(_plan)
@_conversation_options
@click.option(
    "-r",
    "--repetitions",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="Number of conversations.",
)
@click.option("-n", "--name", help="Experiment name (default: a generated 'adjective-noun').")
@parallel_options
@click.option("-q", "--quiet", is_flag=True, help="Print only the experiment id and return.")
@click.option("--detach", is_flag=True, help="Return once started instead of following it.")
@tail_option
@like_option
@provider_options
@output_option
@click.pass_context
def run_command(
    ctx: click.Context,
    *,
    agent_a: str,
    agent_b: str,
    prompt: str | None,
    turns: int,
    temperature: float | None,
    temp_a: float | None,
    temp_b: float | None,
    convergence_threshold: float | None,
    convergence_action: str,
    seed: int | None,
    output: Path | None,
    repetitions: int,
    name: str | None,
    max_parallel: int,
    workers: int | None,
    quiet: bool,
    detach: bool,
    tail: bool,
    max_cost: float | None,
    context_policy: str,
    base_url: str | None,
    request_timeout: float | None,
    chunk_interval: float,
    provider_limits: dict[str, dict[str, int]],
    prompting: PromptOptions,
) -> None:
    """Run an experiment: REPETITIONS conversations between two models.

    It runs in a background process that keeps going when the terminal closes; this
    command then follows it live (Ctrl-C stops following, not the experiment): one
    conversation as a chat (names, turns, convergence, replies as they stream), several
    as progress and convergence, or with --tail the raw events. Every event goes to JSONL
    under OUTPUT/experiments/ID/; when it ends it is loaded into DuckDB.

    SPEC.yaml, if given, sets the options (its keys: 'pidgin spec schema'); options given
    here override it, and its grid may make it several experiments. --like reruns one.

    \b
    Examples:
      pidgin run -a local:drift -b local:drift -t 12 -r 4 --max-parallel 2
      pidgin run -a local:test -b silent:none -p "Hello" -t 10 -q
      pidgin run -a local:drift -b local:drift --convergence-threshold 0.8 -n trial-1
      pidgin run -a sonnet -b gpt-4o -t 20 -r 100 --max-parallel 50 --max-cost 5
      pidgin run -a local:drift -b local:drift -w research --choose-names -t 6
      pidgin run -a local:drift -b local:drift --awareness-b firm --think-a -t 4
      pidgin run -a sonnet -b o3 -w research --think --think-budget 4000 -t 6
      pidgin spec example > study.yaml && pidgin run study.yaml -t 3
      pidgin run --like greetings --temperature 0.9
      pidgin run -a local:drift -b local:drift -t 5 -r 8 --max-parallel 8 --workers 2
    """
    from pidgin_events import new_id, plural

    from ._background import LaunchError, launch_experiment
    from ._runner import ExperimentSpec
    from ._spec import run_extras, run_grid

    if run_grid(ctx, run_command):
        return
    plan = _plan(
        agent_a=agent_a,
        agent_b=agent_b,
        prompt=prompt,
        turns=turns,
        temperature=temperature,
        temp_a=temp_a,
        temp_b=temp_b,
        convergence_threshold=convergence_threshold,
        convergence_action=convergence_action,
        seed=seed,
        context_policy=context_policy,
        base_url=base_url,
        **asdict(prompting),
    )
    root = resolve_output_root(ctx, output).absolute()
    spec = ExperimentSpec(
        root=str(root),
        experiment_id=new_id("exp"),
        name=experiment_name(root, name),
        agent_a=plan.agent_a,
        agent_b=plan.agent_b,
        max_turns=turns,
        repetitions=repetitions,
        max_parallel=max_parallel,
        initial_prompt=prompt,
        temperature_a=plan.temperature_a,
        temperature_b=plan.temperature_b,
        convergence_threshold=convergence_threshold,
        convergence_action=plan.convergence_action,
        seed=plan.seed if plan.seed is not None else 0,
        max_cost=max_cost,
        context_policy=plan.context_policy,
        chunk_interval=chunk_interval,
        base_url=base_url,
        request_timeout=request_timeout,
        provider_limits=provider_limits,
        prompting=plan.prompting.to_dict(),
        workers=workers,
        **run_extras(ctx, plan, _plan),
    )
    try:
        launched = launch_experiment(spec)
    except (LaunchError, OSError) as exc:
        message = f"could not start experiment {spec.experiment_id}: {exc}"
        raise fail(message) from None
    if quiet:
        click.echo(launched.experiment_id)
        return
    click.echo(
        f"Started experiment {launched.experiment_id} ({spec.name}): "
        f"{plural(spec.conversations, 'conversation')} of {spec.agent_a} vs {spec.agent_b}, "
        f"{plural(turns, 'turn')} each, seed {spec.seed}\n"
        f"  directory  {launched.directory}\n"
        f"  follow     {command_hint('experiment', 'attach', spec.name, root=root)}\n"
        f"  stop       {command_hint('experiment', 'stop', spec.name, root=root)}",
        err=tail,  # with --tail, stdout carries the events only
    )
    if detach:
        return
    from ._run_follow import follow_and_report

    view: View = "tail" if tail else "chat" if spec.conversations == 1 else "progress"
    ctx.exit(follow_and_report(root, launched.experiment_id, view))
