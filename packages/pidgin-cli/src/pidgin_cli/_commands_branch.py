"""``pidgin branch``: new conversations that share another's first turns (``_branch``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._log_text import LOG_TEXT
from ._output import command_hint, fail, output_option, resolve_output_root, safe_text
from ._run_options import MAX_PARALLEL

__all__ = ["branch_command"]


@click.command("branch", short_help="Branch a conversation at a turn and go on differently.")
@click.argument("conversation_id", metavar="CONV_ID")
@click.option(
    "--turn",
    "turn",
    type=click.IntRange(0, 100_000),
    help="How many of the parent's turns the branch keeps (turns 1..N are replayed) "
    "[default: all its complete turns, as pidgin-ai].",
)
@click.option(
    "-a",
    "--agent-a",
    type=LOG_TEXT,
    metavar="MODEL",
    help="Model of agent A [default: the parent's].",
)
@click.option(
    "-b",
    "--agent-b",
    type=LOG_TEXT,
    metavar="MODEL",
    help="Model of agent B [default: the parent's].",
)
@click.option("--temperature", type=click.FloatRange(0.0, 2.0), help="Temperature of both agents.")
@click.option("--temp-a", type=click.FloatRange(0.0, 2.0), help="Temperature of agent A.")
@click.option("--temp-b", type=click.FloatRange(0.0, 2.0), help="Temperature of agent B.")
@click.option(
    "-p",
    "--prompt",
    type=LOG_TEXT,
    metavar="TEXT",
    help="A message both agents are sent at the branch point, before turn N+1.",
)
@click.option(
    "-t",
    "--turns",
    "--max-turns",
    "turns",
    type=click.IntRange(1, 100_000),
    help="Maximum number of turns, the replayed ones included [default: the parent's].",
)
@click.option(
    "-r",
    "--repetitions",
    type=click.IntRange(1, 100_000),
    default=1,
    show_default=True,
    help="Number of branches (each its own conversation, seeds counting up).",
)
@click.option("--seed", type=int, help="Seed of the first branch [default: the parent's].")
@click.option("-n", "--name", help="Name of the new experiment (default: generated).")
@click.option(
    "--max-parallel",
    type=click.IntRange(1, MAX_PARALLEL),
    default=1,
    show_default=True,
    help="Branches running at the same time.",
)
@click.option("--detach", is_flag=True, help="Return once started instead of following it.")
@output_option
@click.pass_context
def branch_command(
    ctx: click.Context,
    *,
    conversation_id: str,
    turn: int | None,
    agent_a: str | None,
    agent_b: str | None,
    temperature: float | None,
    temp_a: float | None,
    temp_b: float | None,
    prompt: str | None,
    turns: int | None,
    repetitions: int,
    seed: int | None,
    name: str | None,
    max_parallel: int,
    detach: bool,
    output: Path | None,
) -> None:
    """Start new conversations whose first N turns are CONV_ID's, then their own.

    The parent's first N turns are rebuilt from its log (replay) into each branch, word for
    word; from turn N+1 the branch goes on with what you change: models, temperatures, a
    prompt injected at the branch point, the seed. The branches form a new experiment that
    records its parent and branch turn (loaded as parent_conversation_id and branch_turn).
    With nothing changed and the parent's seed, a seeded model repeats the parent.

    \b
    Examples:
      pidgin branch conv_3f2a9c0d1e2b --turn 2 --temperature 1.2 -r 3
      pidgin branch conv_3f2a9c0d1e2b --turn 2 -b local:test -p "Now disagree."
      pidgin branch conv_3f2a9c0d1e2b -t 20     # from its last turn, up to turn 20
    """
    from pidgin_events import new_id
    from pidgin_state import ReplayError, replay

    from ._background import LaunchError, launch_experiment
    from ._branch import BranchError, find_conversation
    from ._commands_run import _check_model
    from ._experiment_names import experiment_name
    from ._resume import plan_from_config
    from ._run_follow import follow_and_report
    from ._runner import ExperimentSpec

    root = resolve_output_root(ctx, output).absolute()
    try:
        log = find_conversation(root, conversation_id)
        parent = replay(log)
    except (BranchError, ReplayError, OSError) as exc:
        raise fail(f"cannot branch {conversation_id}: {exc}") from None
    given_turn = turn is not None
    turn = parent.turns_completed if turn is None else turn
    if parent.turns_completed < turn:
        raise click.BadParameter(
            f"{parent.conversation_id} has {parent.turns_completed} complete turns",
            param_hint="'--turn'",
        )
    try:
        was = plan_from_config(parent.start.get("config") or {})
    except TypeError:
        was = None
    old_a = was.agent_a if was else parent.start.get("agent_a_model")
    old_b = was.agent_b if was else parent.start.get("agent_b_model")
    if not (isinstance(old_a, str) and isinstance(old_b, str)) and not (agent_a and agent_b):
        raise fail(f"{parent.conversation_id} does not name its models: give -a and -b")
    new: dict[str, Any] = {
        "agent_a": _check_model(agent_a or str(old_a), "'-a' / '--agent-a'"),
        "agent_b": _check_model(agent_b or str(old_b), "'-b' / '--agent-b'"),
        "temperature_a": _first(temp_a, temperature, was.temperature_a if was else None),
        "temperature_b": _first(temp_b, temperature, was.temperature_b if was else None),
        "max_turns": turns or (was.max_turns if was else None) or parent.start.get("max_turns"),
        "seed": _first(seed, was.seed if was else None, 0),
    }
    old = {
        "agent_a": old_a,
        "agent_b": old_b,
        "temperature_a": was.temperature_a if was else None,
        "temperature_b": was.temperature_b if was else None,
        "max_turns": was.max_turns if was else parent.start.get("max_turns"),
        "seed": was.seed if was else None,
    }
    changes = {key: value for key, value in new.items() if value != old[key]}
    if prompt:
        changes["prompt"] = prompt
    if not isinstance(new["max_turns"], int) or new["max_turns"] < turn:
        raise click.BadParameter(f"must be at least --turn ({turn})", param_hint="'-t'")
    if new["max_turns"] == turn and not given_turn:
        raise click.UsageError(
            f"{parent.conversation_id} used all of its {turn} turns, so a branch from its end "
            f"has none left: give -t/--turns above {turn}, or --turn below it"
        )
    source = {
        "experiment_id": parent.experiment_id,
        "conversation_id": parent.conversation_id,
        "turn": turn,
    }
    spec = ExperimentSpec(
        root=str(root),
        experiment_id=new_id("exp"),
        name=experiment_name(root, name),
        agent_a=new["agent_a"],
        agent_b=new["agent_b"],
        max_turns=new["max_turns"],
        repetitions=repetitions,
        max_parallel=max_parallel,
        initial_prompt=parent.start.get("initial_prompt"),
        temperature_a=new["temperature_a"],
        temperature_b=new["temperature_b"],
        convergence_threshold=was.convergence_threshold if was else None,
        convergence_action=was.convergence_action if was else "stop",
        seed=int(new["seed"]),
        branch={
            "log": str(log),
            "turn": turn,
            "prompt": prompt,
            "changes": changes,
            "source": source,
        },
    )
    try:
        launched = launch_experiment(spec)
    except (LaunchError, OSError) as exc:
        raise fail(f"could not start the branch: {exc}") from None
    changed = ", ".join(f"{key} {value}" for key, value in changes.items()) or "nothing changed"
    click.echo(
        f"Branched {safe_text(parent.conversation_id)} at turn {turn} into experiment "
        f"{launched.experiment_id} ({spec.name}): {repetitions} conversation(s) "
        f"({safe_text(changed)})\n"
        f"  follow     {command_hint('experiment', 'attach', spec.name, root=root)}\n"
        f"  stop       {command_hint('experiment', 'stop', spec.name, root=root)}"
    )
    if detach:
        return
    ctx.exit(follow_and_report(root, launched.experiment_id))


def _first(*values: Any) -> Any:
    """The first value that is not None."""
    return next((value for value in values if value is not None), None)
