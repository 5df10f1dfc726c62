"""Running an experiment's conversations: a pool of jobs, each one conversation, logged.

``pidgin run`` (``_runner``) and ``pidgin experiment resume`` (``_resume``) run their
conversations the same way: these functions.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pidgin_events import plural

from ._conductor import ConversationPlan, ConversationResult, StopRequest, run_conversation
from ._requests import RequestSettings

if TYPE_CHECKING:
    from pidgin_events import Conversation
    from pidgin_state import Replay

__all__ = ["Job", "Log", "run_logged", "run_pool"]

Log = Callable[[str], None]


def run_logged(
    conversation: Conversation,
    plan: ConversationPlan,
    stop: StopRequest,
    settings: RequestSettings,
    log: Log,
    *,
    resume: Replay | None = None,
) -> ConversationResult:
    """Run one conversation of the experiment, saying in the runner log how it went."""

    def on_turn(turn: int, score: float, warn: bool) -> None:
        if warn:
            log(
                f"conversation {conversation.id} turn {turn + 1}: convergence {score:.2f} "
                f"reached the threshold {plan.convergence_threshold:g} (warn: going on)"
            )

    result = run_conversation(
        conversation, plan, stop=stop, on_turn=on_turn, settings=settings, resume=resume
    )
    final = result.final_convergence
    log(
        f"conversation {result.conversation_id} {result.status} ({result.reason}) after "
        f"{plural(result.turns, 'turn')}" + ("" if final is None else f", convergence {final:.2f}")
    )
    return result


Job = Callable[[], ConversationResult | None]


def run_pool(jobs: Sequence[Job], max_parallel: int, stop: StopRequest) -> list[ConversationResult]:
    """Run ``jobs`` (one conversation each) ``max_parallel`` at a time; their results.

    A job returns None when it did not start a conversation. At a stop, jobs not started
    are cancelled; an exception from one job stops the others and is raised again.
    """
    results: list[ConversationResult] = []
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=max_parallel, thread_name_prefix="conversation"
    ) as pool:
        futures = [pool.submit(job) for job in jobs]
        pending = set(futures)
        failure: BaseException | None = None
        while pending:
            # A short timeout keeps the main thread free to run signal handlers.
            done, pending = concurrent.futures.wait(pending, timeout=0.2)
            for future in done:
                # Cancelled at a stop: a conversation that never started, not a failure
                # (``exception()`` would raise CancelledError for it).
                exc = None if future.cancelled() else future.exception()
                if exc is not None and failure is None:
                    failure = exc
                    stop.request("error")  # the others end as interrupted
            if stop.is_set():
                # Those still queued are never started: cancel them and stop waiting for
                # them. ``cancel()`` is False for those running; they end at their next step.
                pending = {future for future in pending if not future.cancel()}
        for future in futures:
            if not future.cancelled() and future.exception() is None:
                result = future.result()
                if result is not None:
                    results.append(result)
    if failure is not None:
        raise failure
    return results
