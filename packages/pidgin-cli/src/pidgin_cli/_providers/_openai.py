"""OpenAI's Chat Completions API through the ``openai`` SDK, streamed; also xAI, Ollama and
any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, OpenRouter).

Chat Completions rather than the newer Responses API: it is what every compatible server
implements. Usage arrives in the stream's last chunk (``stream_options.include_usage``);
``prompt_tokens`` already includes ``prompt_tokens_details.cached_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._models import ChatMessage, ModelError, OnChunk, Reply
from ._base import ProviderModel
from ._errors import refused
from ._settings import Secret

__all__ = ["OpenAIModel"]

_NO_KEY = "not-needed"
"""What local servers get as a key: the SDK refuses to start without one."""


class OpenAIModel(ProviderModel):
    def _make_client(self, key: Secret | None, base_url: str | None, timeout: float) -> Any:
        import openai

        return openai.OpenAI(
            api_key=_NO_KEY if key is None else key.reveal(),
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
        arguments: dict[str, Any] = {
            "model": self.model_id,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.provider.name == "openai":
            arguments["max_completion_tokens"] = self.max_tokens  # o-series refuse max_tokens
        else:
            arguments["max_tokens"] = self.max_tokens
        if temperature is not None:
            arguments["temperature"] = temperature
        if seed is not None:
            arguments["seed"] = seed % 2**31
        pieces: list[str] = []
        finish: str | None = None
        usage: Any = None
        model_version: str | None = None
        response_id: str | None = None
        stream = client.chat.completions.create(**arguments)
        try:
            request_id = stream.response.headers.get("x-request-id")
            for chunk in stream:
                model_version = chunk.model or model_version
                response_id = chunk.id or response_id
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        pieces.append(text)
                        if on_chunk is not None:
                            on_chunk(text)
                    if choice.finish_reason is not None:
                        finish = choice.finish_reason
        finally:
            stream.close()
        content = "".join(pieces)
        if finish == "content_filter":
            raise refused(self.provider.name, self.model_id, finish, content)
        prompt_tokens = completion_tokens = 0
        cached: int | None = None
        if usage is not None:
            prompt_tokens = usage.prompt_tokens or 0
            completion_tokens = usage.completion_tokens or 0
            details = getattr(usage, "prompt_tokens_details", None)
            cached = getattr(details, "cached_tokens", None) if details is not None else None
        return Reply(
            content=content,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cache_read_tokens=cached,
            request_id=request_id or response_id,
            model_version=model_version,
            stop_reason=finish,
        )

    def _check(self, client: Any) -> None:
        if self.provider.name in ("openai", "xai"):
            client.models.retrieve(self.model_id)
            return
        # Local servers list their models; not all of them answer GET /models/{id}.
        listed = {model.id for model in client.models.list()}
        if listed and self.model_id not in listed:
            shown = ", ".join(sorted(listed)[:10])
            raise ModelError(
                f"{self.provider.name} {self.model_id}: the server at {client.base_url} has "
                f"no such model; it has {shown}",
                provider=self.provider.name,
                code="model_not_found",
                status=404,
                kind="model",
            )
