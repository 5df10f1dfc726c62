"""``pidgin chat``: one conversation in the foreground, its messages printed as they arrive.

It shares its options with ``pidgin run`` (``_commands_run``); unlike a run it needs no
background process: Ctrl-C ends it as ``interrupted``, its events kept.
"""

from __future__ import annotations

import signal
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._commands_run import _conversation_options, _models_epilog, _plan
from ._output import (
    fail,
    make_console,
    output_option,
    resolve_output_root,
    rich_text,
    safe_text,
    use_rich,
)
from ._run_options import provider_options

if TYPE_CHECKING:
    from rich.console import Console

    from ._conductor import ConversationPlan, ConversationResult
    from ._prompting import PromptOptions

__all__ = ["chat_command"]


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
            warning = f"  warning: reached the threshold {self.plan.convergence_threshold:g}"
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
@provider_options
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
    max_cost: float | None,
    context_policy: str,
    base_url: str | None,
    request_timeout: float | None,
    chunk_interval: float,
    provider_limits: dict[str, dict[str, int]],
    prompting: PromptOptions,
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
    from pidgin_events import Chat, plural

    from ._conductor import StopRequest, run_conversation
    from ._run_options import request_settings
    from ._runner import LOCK_WAIT_LOG, load_run

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
    root = resolve_output_root(ctx, output)
    printer = _ChatPrinter(plan)
    stop = StopRequest()
    try:
        conversation = Chat.create(root, **plan.start_arguments())
    except OSError as exc:
        raise fail(f"could not create the chat under {root}: {exc}") from None
    directory = conversation.directory
    agents = f"{plan.agent_a} vs {plan.agent_b}"
    printer.say(f"Chat {conversation.id}: {agents}, {plural(turns, 'turn')}")
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(signum: int, frame: object) -> None:
        stop.request("SIGINT")
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C is the usual KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    try:
        settings = request_settings(
            max_cost=max_cost,
            context_policy=plan.context_policy,
            chunk_interval=chunk_interval,
            base_url=base_url,
            request_timeout=request_timeout,
            provider_limits=provider_limits,
        )
        result = run_conversation(
            conversation,
            plan,
            stop=stop,
            on_message=printer.message,
            on_turn=printer.turn,
            settings=settings,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    printer.say(_describe_end(result))
    printer.say(f"Events: {conversation.path}")
    if not no_load:

        def log(message: str) -> None:  # only a wait for a locked database is news here
            if message.startswith(LOCK_WAIT_LOG):
                printer.say("Waiting: " + message.removeprefix(LOCK_WAIT_LOG))

        outcome = load_run(directory, log=log)
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
    from pidgin_events import plural

    text = f"Conversation {result.status} ({result.reason}) after {plural(result.turns, 'turn')}"
    if final is not None:
        text += f", final convergence {final:.2f}"
    if result.error:
        text += f": {result.error}"
    return text
