"""What the three SDK adapters share: one client per endpoint, the message shapes, the call.

A few SDK clients per (provider, base URL, key), shared by the conversations of the
process: the clients are thread-safe and keep a pool of keep-alive connections, so 256
conversations reuse their connections instead of opening one per request. Each thread
sticks to one of ``CLIENT_SHARDS`` clients: a client's pool looks through all its
connections on every request, under a lock, and with 256 in one pool that search was the
largest CPU cost of a request after the SDK's own parsing. The SDKs' own
retries are switched off (``max_retries=0``): every attempt is ours, so every attempt is
an event.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .._models import ChatMessage, ModelError, OnChunk, Reply
from ._catalogue import ModelEntry, ProviderEntry
from ._errors import classify
from ._settings import Secret, provider_key, provider_url, request_timeout

__all__ = ["ProviderModel", "merged_turns", "system_text"]

_SDK_PACKAGES = frozenset({"anthropic", "openai", "google", "httpx", "httpx2", "httpcore", "h11"})
CLIENT_SHARDS = 16
_clients: dict[tuple[str, str | None, str | None, float, int], Any] = {}
_clients_guard = threading.Lock()
_thread_shard = threading.local()
_next_shard = itertools.count()


def _shard() -> int:
    """This thread's client shard, handed out in turn so threads spread evenly."""
    shard: int | None = getattr(_thread_shard, "value", None)
    if shard is None:
        shard = _thread_shard.value = next(_next_shard) % CLIENT_SHARDS
    return shard


def system_text(messages: Sequence[ChatMessage]) -> str | None:
    parts = [message.content for message in messages if message.role == "system"]
    return "\n\n".join(parts) if parts else None


def merged_turns(messages: Sequence[ChatMessage]) -> list[tuple[str, str]]:
    """``(role, text)`` without system messages, consecutive same-role messages joined.

    Agent B's view begins with two user messages (the prompt, then agent A's first
    reply); Anthropic and Gemini want roles to alternate, so they are joined.
    """
    turns: list[tuple[str, str]] = []
    for message in messages:
        if message.role == "system":
            continue
        if turns and turns[-1][0] == message.role:
            turns[-1] = (message.role, f"{turns[-1][1]}\n\n{message.content}")
        else:
            turns.append((message.role, message.content))
    return turns


class ProviderModel:
    """A model behind an HTTP API; subclasses speak one SDK."""

    streams = True

    def __init__(self, provider: ProviderEntry, model_id: str, entry: ModelEntry | None) -> None:
        self.provider = provider
        self.model_id = model_id
        self.entry = entry
        self.max_tokens = entry.max_output_tokens if entry is not None else 4096

    # --- what subclasses provide ---------------------------------------------------------

    def _make_client(self, key: Secret | None, base_url: str | None, timeout: float) -> Any:
        raise NotImplementedError

    def _stream(
        self,
        client: Any,
        messages: Sequence[ChatMessage],
        temperature: float | None,
        seed: int | None,
        on_chunk: OnChunk | None,
    ) -> Reply:
        raise NotImplementedError

    def _check(self, client: Any) -> None:
        """One cheap request proving the key works and the model exists."""
        raise NotImplementedError

    # --- the interface --------------------------------------------------------------------

    def client(self) -> Any:
        key = provider_key(self.provider)
        url = provider_url(self.provider)
        timeout = request_timeout()
        slot = (self.provider.name, url, None if key is None else key.reveal(), timeout, _shard())
        with _clients_guard:
            client = _clients.get(slot)
            if client is None:
                client = _clients[slot] = self._make_client(key, url, timeout)
        return client

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
        on_chunk: OnChunk | None = None,
    ) -> Reply:
        reply: Reply = self._call(
            lambda: self._stream(self.client(), messages, temperature, seed, on_chunk)
        )
        return reply

    def check(self) -> None:
        """Raise the ``ModelError`` a conversation would meet on a bad key or model name."""
        self._call(lambda: self._check(self.client()))

    def _call(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except ModelError:
            raise
        except (TimeoutError, ConnectionError) as exc:
            raise classify(exc, provider=self.provider.name, model=self.model_id) from exc
        except Exception as exc:
            if type(exc).__module__.partition(".")[0] not in _SDK_PACKAGES:
                raise  # a bug here, not a provider's failure: keep its traceback
            raise classify(exc, provider=self.provider.name, model=self.model_id) from exc
