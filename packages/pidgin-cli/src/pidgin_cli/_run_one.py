"""One conversation of an experiment, run and reported in the runner log.

Shared by the runner's own threads and by the threads of its worker processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pidgin_events import plural

from ._conductor import ConversationResult, StopRequest, run_conversation

if TYPE_CHECKING:
    from pidgin_events import Conversation

    from ._requests import RequestSettings
    from ._runner import ExperimentSpec

__all__ = ["run_planned"]


def run_planned(
    conversation: Conversation,
    spec: ExperimentSpec,
    index: int,
    *,
    stop: StopRequest,
    settings: RequestSettings,
    log: Callable[[str], None],
) -> ConversationResult:
    """Run conversation ``index`` of ``spec`` in its started log, saying so in the runner log."""
    plan = spec.plan(index)
    log(f"conversation {conversation.id} ({index + 1}/{spec.conversations}) started")

    def on_turn(turn: int, score: float, warn: bool) -> None:
        if warn:
            log(
                f"conversation {conversation.id} turn {turn + 1}: convergence {score:.2f} "
                f"reached the threshold {plan.convergence_threshold:g} (warn: going on)"
            )

    result = run_conversation(conversation, plan, stop=stop, on_turn=on_turn, settings=settings)
    final = result.final_convergence
    log(
        f"conversation {result.conversation_id} {result.status} ({result.reason}) after "
        f"{plural(result.turns, 'turn')}" + ("" if final is None else f", convergence {final:.2f}")
    )
    return result
