"""Anthropic's Messages API through the ``anthropic`` SDK, streamed.

The Messages API of the current SDK takes no sampling temperature: a ``--temperature``
is recorded in the conversation's config but not sent to Anthropic models.

Usage: Anthropic counts cache reads and writes apart from ``input_tokens``; the reply's
``prompt_tokens`` adds them back, so it means every input token, as for the other APIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._models import ChatMessage, OnChunk, Reply
from ._base import ProviderModel, merged_turns, system_text
from ._errors import refused
from ._settings import Secret

__all__ = ["AnthropicModel"]

_REFUSALS = frozenset({"refusal"})


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
    ) -> Reply:
        # Plain JSON already: sent as given, past the SDK's parameter transformer, whose
        # CPU cost grows with every message of the history (see _openai.py).
        body: dict[str, Any] = {
            "messages": [{"role": role, "content": text} for role, text in merged_turns(messages)],
        }
        system = system_text(messages)
        if system:
            body["system"] = system
        common = {"model": self.model_id, "max_tokens": self.max_tokens, "messages": []}
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
        )

    def _check(self, client: Any) -> None:
        client.models.retrieve(self.model_id)
