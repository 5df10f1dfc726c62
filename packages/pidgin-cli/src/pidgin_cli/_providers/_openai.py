"""OpenAI's Chat Completions API through the ``openai`` SDK, streamed; also xAI, Ollama and
any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio, OpenRouter).

Chat Completions rather than the newer Responses API: it is what every compatible server
implements. Usage arrives in the stream's last chunk (``stream_options.include_usage``);
``prompt_tokens`` already includes ``prompt_tokens_details.cached_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
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
        body: dict[str, Any] = {
            # Plain JSON already: sent as given. Passed through the SDK's typed parameter,
            # the history would be walked by its parameter transformer, whose CPU cost
            # grows with every message and doubles what a request costs by turn 20.
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        if self.provider.name == "openai":
            body["max_completion_tokens"] = self.max_tokens  # o-series refuse max_tokens
        else:
            body["max_tokens"] = self.max_tokens
        if temperature is not None:
            body["temperature"] = temperature
        if seed is not None:
            body["seed"] = seed % 2**31
        if on_chunk is None:
            # Nobody watches the text arrive: one response costs a fraction of the CPU
            # that parsing a stream of chunks does.
            response = client.chat.completions.with_raw_response.create(
                model=self.model_id, messages=[], extra_body=body
            )
            completion = response.parse()
            choice = completion.choices[0] if completion.choices else None
            content = (choice.message.content or "") if choice is not None else ""
            return self._reply(
                content,
                choice.finish_reason if choice is not None else None,
                completion.usage,
                response.headers.get("x-request-id") or completion.id,
                completion.model,
            )
        # The raw stream, read to its end, rather than the SDK's ``Stream``: that one builds a
        # typed model per chunk (nearly half the runner's CPU per request) and stops reading
        # at ``[DONE]`` before the body's last bytes, so the connection is discarded and
        # every request opens a new one. Requests, errors and retries stay the SDK's.
        with client.chat.completions.with_streaming_response.create(
            model=self.model_id,
            messages=[],
            stream=True,
            stream_options={"include_usage": True},
            extra_body=body,
        ) as response:
            reader = _ChunkReader(on_chunk)
            for event, data in _server_sent_events(response.iter_lines()):
                reader.read(event, data, response.http_request)
            request_id = response.headers.get("x-request-id") or reader.response_id
        return self._reply(
            "".join(reader.pieces), reader.finish, reader.usage, request_id, reader.model_version
        )

    def _reply(
        self,
        content: str,
        finish: str | None,
        usage: Any,
        request_id: str | None,
        model_version: str | None,
    ) -> Reply:
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
            request_id=request_id,
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


def _server_sent_events(lines: Iterable[str]) -> Iterator[tuple[str | None, str]]:
    """``(event, data)`` of each server-sent event; every line is read, to the body's end."""
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            event = line[6:].strip()
    if data:
        yield event, "\n".join(data)


class _ChunkReader:
    """What the chunks of a streamed completion say, read from their JSON as sent."""

    def __init__(self, on_chunk: OnChunk | None) -> None:
        self.on_chunk = on_chunk
        self.pieces: list[str] = []
        self.finish: str | None = None
        self.usage: Any = None
        self.model_version: str | None = None
        self.response_id: str | None = None

    def read(self, event: str | None, data: str, request: Any) -> None:
        if data.startswith("[DONE]"):
            return  # the body's end follows; reading it keeps the connection for reuse
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            return
        error = chunk.get("error")
        if error or event == "error":
            import openai

            message = error.get("message") if isinstance(error, dict) else None
            raise openai.APIError(
                message=message
                if isinstance(message, str) and message
                else "An error occurred during streaming",
                request=request,
                body=error,
            )
        self.model_version = chunk.get("model") or self.model_version
        self.response_id = chunk.get("id") or self.response_id
        if chunk.get("usage") is not None:
            self.usage = _Usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                self.pieces.append(text)
                if self.on_chunk is not None:
                    self.on_chunk(text)
            if choice.get("finish_reason") is not None:
                self.finish = choice["finish_reason"]


class _Usage:
    """A usage block as JSON, read the way ``_reply`` reads the SDK's typed one."""

    def __init__(self, usage: dict[str, Any]) -> None:
        self.prompt_tokens = usage.get("prompt_tokens")
        self.completion_tokens = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details")
        self.prompt_tokens_details = _Usage(details) if isinstance(details, dict) else None
        self.cached_tokens = usage.get("cached_tokens")
