"""The running commands: ``pidgin run``, ``pidgin chat`` and ``pidgin experiment stop``.

``run`` starts an experiment in a background process that outlives the terminal and then
follows it (``-q``/``--detach`` return at once); ``chat`` runs one conversation in the
foreground and prints its messages as they arrive; ``stop`` ends a running experiment
cleanly, its conversations in flight recorded as ``interrupted``.
"""

from __future__ import annotations

import random
import shlex
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._output import (
    fail,
    make_console,
    output_option,
    resolve_output_root,
    rich_text,
    safe_text,
    use_rich,
)
from ._resolve import complete_run_id, resolve_run

if TYPE_CHECKING:
    from rich.console import Console

    from ._conductor import ConvergenceAction, ConversationPlan, ConversationResult

__all__ = ["chat_command", "run_command", "stop_command"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TURNS = 20
"""pidgin-ai's default number of turns."""
STOP_TIMEOUT = 10.0
LOAD_WAIT = 60.0
"""How long ``run`` waits, after the experiment completed, for the automatic load."""

_ADJECTIVES = (
    "curious", "wandering", "seeking", "pondering", "observing", "dancing", "flowing",
    "shifting", "drifting", "echoing", "quiet", "gentle", "bold", "swift", "patient",
    "hidden", "bright", "ancient", "distant", "spiral", "fractal", "woven",
)  # fmt: skip
_NOUNS = (
    "pattern", "signal", "echo", "wave", "pulse", "drift", "flow", "stream", "current",
    "tide", "spiral", "orbit", "path", "trace", "thread", "whisper", "murmur", "chord",
    "tone", "lattice", "web", "mesh", "field", "spark", "glow", "shimmer",
)  # fmt: skip


def _conversation_options(function: F) -> F:
    """The options ``run`` and ``chat`` share, with pidgin-ai's names and meanings."""
    options = [
        click.option(
            "-a",
            "--agent-a",
            required=True,
            metavar="MODEL",
            help="Model of the first agent, e.g. local:drift (see 'Models' below).",
        ),
        click.option(
            "-b", "--agent-b", required=True, metavar="MODEL", help="Model of the second agent."
        ),
        click.option(
            "-p",
            "--prompt",
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
            help="At the threshold: end the conversation, say so and go on, or just go on.",
        ),
        click.option(
            "--seed",
            type=int,
            callback=check_seed,
            help="Seed of seedable models (default: random, recorded in the config).",
        ),
    ]
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
        "'\u2026'), local:drift (seedable, drifts toward its partner). More can be "
        "registered by installed packages."
    )


def _check_model(text: str, option: str) -> str:
    from ._models import MODELS, UnknownModelError

    try:
        return MODELS.resolve(text).name
    except UnknownModelError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


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
) -> ConversationPlan:
    from ._conductor import ConversationPlan

    actions: dict[str, ConvergenceAction] = {"stop": "stop", "warn": "warn", "continue": "continue"}
    action = actions[convergence_action]
    return ConversationPlan(
        agent_a=_check_model(agent_a, "'-a' / '--agent-a'"),
        agent_b=_check_model(agent_b, "'-b' / '--agent-b'"),
        max_turns=turns,
        initial_prompt=prompt,
        temperature_a=temp_a if temp_a is not None else temperature,
        temperature_b=temp_b if temp_b is not None else temperature,
        convergence_threshold=convergence_threshold,
        convergence_action=action,
        seed=seed if seed is not None else random.SystemRandom().randrange(2**31),
    )


def _experiment_name(root: Path, name: str | None) -> str:
    """A valid name nobody else uses: the one given (checked), else a fresh 'adjective-noun'."""
    from pidgin_events import validate_id

    from ._resolve import scan_runs

    taken = {ref.name: ref.id for ref in scan_runs(root, ("experiment",)) if ref.name}
    if name is not None:
        try:
            validate_id(name, "experiment name")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'-n' / '--name'") from None
        if name in taken:
            raise click.BadParameter(
                f"experiment name {name!r} is already used by {taken[name]}; choose another",
                param_hint="'-n' / '--name'",
            )
        return name
    chooser = random.SystemRandom()
    for attempt in range(50):
        candidate = f"{chooser.choice(_ADJECTIVES)}-{chooser.choice(_NOUNS)}"
        if attempt >= 10:
            candidate += f"-{chooser.randrange(1000, 10000)}"
        if candidate not in taken:
            return candidate
    raise fail("could not find an unused experiment name; give one with -n")


def _hint_root(output: Path | None, root: Path) -> str:
    return f" -o {shlex.quote(str(root))}" if output is not None else ""


# --- pidgin run -------------------------------------------------------------------------


@click.command(
    "run",
    short_help="Run an experiment in the background and follow it.",
    epilog=_models_epilog(),
)
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
@click.option(
    "--max-parallel",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Conversations running at the same time.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the experiment id and return.")
@click.option("--detach", is_flag=True, help="Return once started instead of following it.")
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
    quiet: bool,
    detach: bool,
) -> None:
    """Run an experiment: REPETITIONS conversations between two models.

    It runs in a background process that keeps going when the terminal closes; this
    command then follows it live (Ctrl-C stops following, not the experiment). Every event
    goes to JSONL under OUTPUT/experiments/ID/; when it ends it is loaded into DuckDB.

    \b
    Examples:
      pidgin run -a local:drift -b local:drift -t 12 -r 4 --max-parallel 2
      pidgin run -a local:test -b silent:none -p "Hello" -t 10 -q
      pidgin run -a local:drift -b local:drift --convergence-threshold 0.8 -n trial-1
    """
    from pidgin_events import new_id

    from ._background import LaunchError, launch_experiment
    from ._runner import ExperimentSpec

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
    )
    root = resolve_output_root(ctx, output).absolute()
    spec = ExperimentSpec(
        root=str(root),
        experiment_id=new_id("exp"),
        name=_experiment_name(root, name),
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
    )
    try:
        launched = launch_experiment(spec)
    except (LaunchError, OSError) as exc:
        message = f"could not start experiment {spec.experiment_id}: {exc}"
        raise fail(message) from None
    if quiet:
        click.echo(launched.experiment_id)
        return
    hint = _hint_root(output, root)
    click.echo(
        f"Started experiment {launched.experiment_id} ({spec.name}): {repetitions} "
        f"conversation(s) of {spec.agent_a} vs {spec.agent_b}, {turns} turns each, "
        f"seed {spec.seed}\n"
        f"  directory  {launched.directory}\n"
        f"  follow     pidgin experiment attach {spec.name}{hint}\n"
        f"  stop       pidgin experiment stop {spec.name}{hint}"
    )
    if detach:
        return
    ctx.exit(follow_and_report(root, launched.experiment_id))


def follow_and_report(root: Path, experiment_id: str) -> int:
    """Follow the experiment to its end, then report its automatic load; the exit status."""
    from pidgin_events import EXPERIMENTS_DIR

    from ._background import attach, completion, database_load, wait_until_loaded

    directory = root / EXPERIMENTS_DIR / experiment_id
    code = attach(root, experiment_id)
    complete = completion(directory)
    if complete is None:
        return code  # detached: it is still running
    try:
        finished = wait_until_loaded(directory, LOAD_WAIT)
    except KeyboardInterrupt:
        click.echo("Not waiting for the database load; 'pidgin experiment status' will tell.")
        return code
    load = database_load(directory)
    if not finished:
        click.echo("The database load is still running; 'pidgin experiment status' will tell.")
    elif load is not None and load.status == "loaded":
        click.echo(f"Loaded into DuckDB: {safe_text(load.db_path)}")
    else:
        reason = load.error if load is not None else "see runner.log"
        click.echo(
            f"Not loaded into DuckDB: {safe_text(reason)}\n"
            f"  The experiment itself is {safe_text(complete.status)}; load it later with "
            f"'pidgin load-db {experiment_id}' or 'pidgin load-db --all'."
        )
    return code


# --- pidgin chat ------------------------------------------------------------------------


class _ChatPrinter:
    """Prints each message as it arrives: rich on a terminal, plain lines otherwise."""

    def __init__(self, plan: ConversationPlan) -> None:
        self.plan = plan
        self.console: Console | None = make_console() if use_rich() else None

    def message(self, agent_id: str, content: str, turn: int) -> None:
        """A model's reply: its text is the model's, so it is shown, never obeyed."""
        model = safe_text(self.plan.model(agent_id))
        label = "Agent A" if agent_id == "agent_a" else "Agent B"
        if self.console is None:
            shown = safe_text(content, multiline=True)
            click.echo(f"[turn {turn + 1}] {safe_text(agent_id)} ({model}): {shown}")
            return
        from rich.text import Text

        style = "bold cyan" if agent_id == "agent_a" else "bold magenta"
        header = Text.assemble((f"{label}", style), (f"  {model}  turn {turn + 1}", "dim"))
        self.console.print(header)
        self.console.print(rich_text(content, multiline=True))

    def turn(self, turn: int, score: float, warn: bool) -> None:
        warning = ""
        if warn:
            warning = f"  (at or above the threshold {self.plan.convergence_threshold:g})"
        if self.console is None:
            click.echo(f"[turn {turn + 1}] convergence {score:.2f}{warning}")
            return
        from rich.text import Text

        line = Text(f"convergence {score:.2f}", style="dim")
        if warning:
            line.append(warning, style="bold yellow")
        self.console.print(line)
        self.console.print()

    def say(self, text: str) -> None:
        if self.console is None:
            click.echo(safe_text(text, multiline=True))
        else:
            # soft_wrap: paths stay copyable
            self.console.print(rich_text(text, multiline=True), soft_wrap=True)


@click.command(
    "chat", short_help="Chat between two agents in the foreground.", epilog=_models_epilog()
)
@_conversation_options
@click.option(
    "--no-load", is_flag=True, help="Do not load the chat into the chats database afterwards."
)
@output_option
@click.pass_context
def chat_command(
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
    no_load: bool,
) -> None:
    """One conversation between two models, shown as it happens.

    Stored under OUTPUT/chats/STAMP_ID/ and then loaded into ~/.pidgin/chats.duckdb
    ($PIDGIN_CHATS_DB overrides). Ctrl-C ends it as interrupted, its events kept.
    Exit status 0 when it completed, 1 when it failed or was interrupted.

    \b
    Examples:
      pidgin chat -a local:test -b silent:none -t 5
      pidgin chat -a local:drift -b local:drift -p "What is a pidgin?" --seed 7
    """
    from pidgin_events import Chat

    from ._conductor import StopRequest, run_conversation
    from ._runner import load_run

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
    )
    root = resolve_output_root(ctx, output)
    printer = _ChatPrinter(plan)
    stop = StopRequest()
    try:
        conversation = Chat.create(root, **plan.start_arguments())
    except OSError as exc:
        raise fail(f"could not create the chat under {root}: {exc}") from None
    directory = conversation.directory
    printer.say(f"Chat {conversation.id}: {plan.agent_a} vs {plan.agent_b}, {turns} turn(s)")
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(signum: int, frame: object) -> None:
        stop.request("SIGINT")
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C is the usual KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    try:
        result = run_conversation(
            conversation, plan, stop=stop, on_message=printer.message, on_turn=printer.turn
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    printer.say(_describe_end(result))
    printer.say(f"Events: {conversation.path}")
    if not no_load:
        outcome = load_run(directory, log=lambda _message: None)
        if outcome.ok:
            printer.say(f"Loaded into DuckDB: {outcome.db_path}")
        else:
            printer.say(
                f"Not loaded into DuckDB ({outcome.db_path}): {outcome.error}\n"
                f"  The reason is recorded in {directory / '.load_failed'}."
            )
    ctx.exit(0 if result.status == "completed" else 1)


def _describe_end(result: ConversationResult) -> str:
    final = result.final_convergence
    text = f"Conversation {result.status} ({result.reason}) after {result.turns} turn(s)"
    if final is not None:
        text += f", final convergence {final:.2f}"
    if result.error:
        text += f": {result.error}"
    return text


# --- pidgin experiment stop -------------------------------------------------------------


@click.command("stop", short_help="Stop a running experiment cleanly.")
@click.argument("experiment", metavar="ID", shell_complete=complete_run_id)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 3600),
    default=STOP_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the experiment to record its end.",
)
@output_option
@click.pass_context
def stop_command(ctx: click.Context, experiment: str, timeout: float, output: Path | None) -> None:
    """Stop a running experiment: conversations in flight end as interrupted.

    Conversations not started yet are never started, and the experiment is recorded as
    interrupted (it is still loaded into DuckDB afterwards). ID is the id, the name or a
    unique prefix. Exit status 1 if it is not running or did not stop in time.

    \b
    Example:
      pidgin experiment stop curious-echo
    """
    from pidgin_events import is_running

    from ._background import completion, runner_pid, signal_runner, wait_until_ended

    root = resolve_output_root(ctx, output)
    directory = resolve_run(root, experiment, kinds=("experiment",))
    experiment_id = directory.name
    running = is_running(directory)
    if running is False:
        ended = completion(directory)
        if ended is not None:
            raise fail(
                f"experiment {experiment_id} is not running: it already ended ({ended.status})."
            )
        raise fail(
            f"experiment {experiment_id} is not running: its writer stopped without completing "
            "it (killed?), so it counts as interrupted."
        )
    pid = signal_runner(directory, signal.SIGTERM)
    if pid is None:
        known = runner_pid(directory)
        raise fail(
            f"experiment {experiment_id} is not written by a runner that pidgin started"
            + ("" if known is None else f" (runner.pid says {known}, which is not it)")
            + "; stop the process writing it."
        )
    shown = safe_text(experiment_id)
    click.echo(f"Stopping {shown} (runner pid {pid})...")
    complete = wait_until_ended(directory, timeout)
    if complete is None:
        raise fail(
            f"sent SIGTERM to runner {pid}, but {experiment_id} has not recorded its end "
            f"within {timeout:g} s. It ends at its conversations' next step; check again "
            f"with 'pidgin experiment status {experiment_id}'."
        )
    click.echo(
        f"Stopped {shown}: {safe_text(complete.status)} ({complete.completed_conversations} "
        f"completed, {complete.interrupted_conversations} interrupted, "
        f"{complete.failed_conversations} failed)."
    )
