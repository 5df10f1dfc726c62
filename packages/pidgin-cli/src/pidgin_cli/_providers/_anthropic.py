"""Anthropic's Messages API through the ``anthropic`` SDK, streamed.

The Messages API of the current SDK takes no sampling temperature: a ``--temperature``
is recorded in the conversation's config but not sent to Anthropic models.

Usage: Anthropic counts cache reads and writes apart from ``input_tokens``; the reply's
``prompt_tokens`` adds them back, so it means every input token, as for the other APIs.

Extended thinking: ``thinking={"type": "enabled", "budget_tokens": N}``, with
``max_tokens`` raised above the budget when needed (the API wants it larger). The trace
arrives as a ``thinking`` block (streamed as ``thinking_delta``, sealed by a
``signature_delta``) before the text; it becomes the reply's ``thought``, never its text,
and goes back unchanged, signature included, ahead of the text of that agent's message
in its later requests. Anthropic counts thinking in ``output_tokens`` and reports no
separate figure, so the trace's own token count is unknown (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._models import ChatMessage, OnChunk, Reply
from .._thinking import Thought
from ._base import ProviderModel, merged_messages, system_text
from ._errors import refused
from ._settings import Secret

__all__ = ["AnthropicModel"]

_REFUSALS = frozenset({"refusal"})
_ANSWER_ROOM = 4096
"""Tokens left for the answer beyond the thinking budget when ``max_tokens`` is raised."""


def _thought(blocks: list[Any]) -> Thought | None:
    """One reply's thinking blocks as one thought (a reply without tools has one block)."""
    if not blocks:
        return None
    text = "\n\n".join(block.thinking for block in blocks)
    return Thought(text, None, blocks[-1].signature if len(blocks) == 1 else None)


def anthropic_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The Messages API's ``messages``: roles alternating, thinking sent back sealed.

    An assistant message that came with a signed thought goes out as content blocks, the
    thinking block first, as the API requires; all others go out as plain text.
    """
    result: list[dict[str, Any]] = []
    for run in merged_messages(messages):
        role = run[0].role
        if not any(message.thought and message.thought.signature for message in run):
            text = "\n\n".join(message.content for message in run)
            result.append({"role": role, "content": text})
            continue
        blocks: list[dict[str, Any]] = []
        for message in run:
            thought = message.thought
            if thought is not None and thought.signature:
                blocks.append(
                    {
                        "type": "thinking",
                        "thinking": thought.content,
                        "signature": thought.signature,
                    }
                )
            blocks.append({"type": "text", "text": message.content})
        result.append({"role": role, "content": blocks})
    return result


class AnthropicModel(ProviderModel):
    def _make_client(self, key: Secret | None, base_url: str | None, timeout: float) -> Any:
        import anthropic

        return anthropic.Anthropic(
            api_key=None if key is None else key.reveal(),
            base_url=base_url,
            max_retries=0,
            timeout=timeout,
        )

    def _stream(
        self,
        client: Any,
        messages: Sequence[ChatMessage],
        temperature: float | None,
        seed: int | None,
        on_chunk: OnChunk | None,
        *,
        thinking_budget: int | None = None,
    ) -> Reply:
        # Plain JSON already: sent as given, past the SDK's parameter transformer, whose
        # CPU cost grows with every message of the history (see _openai.py).
        body: dict[str, Any] = {"messages": anthropic_messages(messages)}
        system = system_text(messages)
        if system:
            body["system"] = system
        max_tokens = self.max_tokens
        if thinking_budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": thinking_budget}
            max_tokens = max(max_tokens, thinking_budget + _ANSWER_ROOM)
        common = {"model": self.model_id, "max_tokens": max_tokens, "messages": []}
        if on_chunk is None:
            response = client.messages.with_raw_response.create(**common, extra_body=body)
            final = response.parse()
            request_id = response.headers.get("request-id")
        else:
            with client.messages.stream(**common, extra_body=body) as stream:
                for text in stream.text_stream:
                    if text:
                        on_chunk(text)
                final = stream.get_final_message()
                request_id = stream.request_id
        content = "".join(block.text for block in final.content if block.type == "text")
        thoughts = [block for block in final.content if block.type == "thinking"]
        if final.stop_reason in _REFUSALS:
            raise refused(self.provider.name, self.model_id, final.stop_reason, content)
        usage = final.usage
        cache_read = usage.cache_read_input_tokens
        cache_write = usage.cache_creation_input_tokens
        return Reply(
            content=content,
            prompt_tokens=usage.input_tokens + (cache_read or 0) + (cache_write or 0),
            completion_tokens=usage.output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            request_id=request_id or final.id,
            model_version=final.model,
            stop_reason=final.stop_reason,
            thought=_thought(thoughts),
        )

    def _check(self, client: Any) -> None:
        client.models.retrieve(self.model_id)
