"""Google's Gemini API through the ``google-genai`` SDK, streamed (``streamGenerateContent``).

Usage: ``promptTokenCount`` includes cached tokens; thinking tokens are billed as output,
so ``completion_tokens`` adds ``thoughtsTokenCount`` to ``candidatesTokenCount``. The
request id recorded is the response's ``responseId``.

Thinking: ``thinkingConfig`` with the budget and ``includeThoughts``; the parts marked
``thought`` are the reply's thought (with ``thoughtsTokenCount``), never its text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._models import ChatMessage, OnChunk, Reply
from .._thinking import Thought
from ._base import ProviderModel, merged_turns, system_text
from ._errors import refused
from ._settings import Secret

__all__ = ["GoogleModel"]

_REFUSALS = frozenset(
    {"SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "RECITATION", "IMAGE_SAFETY"}
)


class GoogleModel(ProviderModel):
    def _make_client(self, key: Secret | None, base_url: str | None, timeout: float) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(timeout=int(timeout * 1000))  # milliseconds
        if base_url is not None:
            options.base_url = base_url
        return genai.Client(api_key=None if key is None else key.reveal(), http_options=options)

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
        contents = [
            {"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]}
            for role, text in merged_turns(messages)
        ]
        config: dict[str, Any] = {"max_output_tokens": self.max_tokens}
        system = system_text(messages)
        if system:
            config["system_instruction"] = system
        if temperature is not None:
            config["temperature"] = temperature
        if seed is not None:
            config["seed"] = seed % 2**31
        if thinking_budget is not None:
            config["thinking_config"] = {
                "thinking_budget": thinking_budget,
                "include_thoughts": True,
            }
        pieces: list[str] = []
        thoughts: list[str] = []
        finish: str | None = None
        blocked: str | None = None
        usage: Any = None
        model_version: str | None = None
        response_id: str | None = None
        if on_chunk is None:  # nobody watches the text arrive: one response, less CPU
            responses = [
                client.models.generate_content(
                    model=self.model_id, contents=contents, config=config
                )
            ]
        else:
            responses = client.models.generate_content_stream(
                model=self.model_id, contents=contents, config=config
            )
        for chunk in responses:
            model_version = chunk.model_version or model_version
            response_id = chunk.response_id or response_id
            if chunk.usage_metadata is not None:
                usage = chunk.usage_metadata
            feedback = chunk.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                blocked = str(getattr(feedback.block_reason, "value", feedback.block_reason))
            for candidate in chunk.candidates or ():
                if candidate.finish_reason is not None:
                    reason = candidate.finish_reason
                    finish = str(getattr(reason, "value", reason))
                parts = candidate.content.parts if candidate.content is not None else None
                for part in parts or ():
                    if part.text and part.thought:
                        thoughts.append(part.text)
                    elif part.text:
                        pieces.append(part.text)
                        if on_chunk is not None:
                            on_chunk(part.text)
        content = "".join(pieces)
        if blocked is not None or finish in _REFUSALS:
            raise refused(self.provider.name, self.model_id, blocked or finish or "", content)
        prompt = completion = 0
        cached: int | None = None
        thought_tokens = usage.thoughts_token_count if usage is not None else None
        thought = Thought("".join(thoughts), thought_tokens) if thoughts else None
        if usage is not None:
            prompt = usage.prompt_token_count or 0
            completion = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
            cached = usage.cached_content_token_count
        return Reply(
            content=content,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cache_read_tokens=cached,
            request_id=response_id,
            model_version=model_version,
            stop_reason=finish,
            thought=thought,
        )

    def _check(self, client: Any) -> None:
        client.models.get(model=self.model_id)
