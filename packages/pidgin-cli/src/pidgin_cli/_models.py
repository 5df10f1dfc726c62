"""Models the conductor talks to: one small interface, a registry, and three built-ins.

The conductor only ever sees ``Model.generate``; a real provider (an HTTP API, a local
server) plugs in by registering a factory under ``"provider:model"``, either in code with
``MODELS.register`` or from another distribution through the ``pidgin.models`` entry-point
group, without touching the conductor.

Built-ins (no network, no key):

* ``local:test``: pidgin-ai 1.1's deterministic template responder, ported rule for rule.
  It answers from the last message it sees (questions, agreement, elaboration) and falls
  into one-word agreement ("Indeed.", "Agreed.") after ten of its own messages. Two
  ``local:test`` agents typically produce identical replies from the second turn on.
* ``silent:none``: pidgin-ai's "silent" partner for meditation mode. Every reply is the
  single character ``"…"`` (U+2026), never the empty string, so the conversation runs all
  its turns; completion tokens are 0 (silence costs nothing), as in pidgin-ai.
* ``local:drift``: seedable and varied. Each agent writes sentences from its own
  vocabulary and style, and borrows a growing share of words, sentence templates and
  length from its partner's last message, with noise, so convergence rises over a
  conversation the way it does between real models. It sleeps briefly per reply so that
  live displays have something to show.

Token counts of the built-ins are estimates: ``ceil(characters / 4)``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeGuard

from ._thinking import Thought

__all__ = [
    "ENTRY_POINT_GROUP",
    "MODELS",
    "ChatMessage",
    "DriftModel",
    "Model",
    "ModelError",
    "ModelInfo",
    "ModelRegistry",
    "OnChunk",
    "Reply",
    "SilentModel",
    "StreamingModel",
    "TestModel",
    "ThinkingModel",
    "UnknownModelError",
    "estimate_tokens",
    "streams",
]

ENTRY_POINT_GROUP = "pidgin.models"
"""Entry points in this group are callables ``register(registry: ModelRegistry) -> None``."""

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message as the agent being asked sees it: its own are ``assistant``."""

    role: Role
    content: str
    thought: Thought | None = None
    """The reasoning that came with one of the agent's own messages (sent back to Anthropic)."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What a model said, with the tokens it cost and what its provider reported."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    request_id: str | None = None
    model_version: str | None = None
    stop_reason: str | None = None
    thought: Thought | None = None
    """The reasoning trace, when thinking was asked for and the provider returned one."""


OnChunk = Callable[[str], None]
"""Called with each piece of text as a streaming model receives it."""


class Model(Protocol):
    """What the conductor needs from a model; implementations must be thread-safe."""

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
    ) -> Reply:
        """The next message of ``agent_id`` after ``messages``.

        ``seed`` is the conversation's seed: a seedable model must give the same reply to
        the same (messages, agent_id, temperature, seed). Raise ``ModelError`` for a
        provider failure; the conductor records it and decides whether to retry.
        """
        ...


class ThinkingModel(Model, Protocol):
    """A model that can reason before it answers; its class sets ``can_think = True``.

    The conductor passes ``thinking_budget`` (tokens) only when the agent thinks, so
    models written against ``Model`` keep working unchanged.
    """

    can_think: bool

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
        thinking_budget: int | None = None,
    ) -> Reply:
        """As ``Model.generate``; ``thinking_budget`` caps the tokens it may reason with."""
        ...


class StreamingModel(Model, Protocol):
    """A model that hands over its reply's text while it arrives; it sets ``streams = True``.

    The conductor passes ``on_chunk`` only to models whose ``streams`` attribute is true,
    so models written against ``Model`` keep working unchanged.
    """

    streams: bool

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
        on_chunk: OnChunk | None = None,
    ) -> Reply:
        """As ``Model.generate``; ``on_chunk`` receives each piece of text on arrival."""
        ...


def streams(model: Model) -> TypeGuard[StreamingModel]:
    """Whether ``model`` hands over its reply's text while it arrives."""
    return bool(getattr(model, "streams", False))


ErrorKind = Literal[
    "auth", "model", "context", "refused", "bad_request", "rate_limit", "overloaded",
    "server", "timeout", "connection", "other",
]  # fmt: skip
"""What went wrong, whatever the provider: decides retrying, failing fast, truncating."""


class ModelError(Exception):
    """A provider failed to answer; ``retryable`` ones are retried by the conductor.

    ``status`` is the HTTP status (None for timeouts and dropped connections),
    ``retry_after`` the seconds the provider asked us to wait, ``kind`` the category.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        code: str | None = None,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        kind: ErrorKind = "other",
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.code = code
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.kind: ErrorKind = kind


class UnknownModelError(ValueError):
    """A model name that no registered provider knows; the message says what was likely meant."""


def estimate_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``: the usual rough rate of English text, 0 for nothing."""
    return (len(text) + 3) // 4


def _prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(message.content) for message in messages)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A registered model: its canonical name, how to make one, and what to call it."""

    name: str
    factory: Callable[[], Model]
    description: str
    display_name: str
    aliases: tuple[str, ...] = ()

    @property
    def provider(self) -> str:
        return self.name.partition(":")[0]


@dataclass(frozen=True, slots=True)
class _Resolver:
    resolve: Callable[[str], ModelInfo | None]
    names: Callable[[], Iterable[str]]
    guess: Callable[[str], str | None]
    naming: Callable[[], str] | None


class ModelRegistry:
    """Maps ``"provider:model"`` names (and aliases) to factories."""

    def __init__(self) -> None:
        self._models: dict[str, ModelInfo] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points_loaded = False
        self._resolvers: list[_Resolver] = []
        self._guard = threading.Lock()
        self._plugins_guard = threading.Lock()
        """Held while plugins register: other threads wait for them instead of missing them."""

    def register(
        self,
        name: str,
        factory: Callable[[], Model],
        *,
        description: str,
        display_name: str | None = None,
        aliases: Iterable[str] = (),
    ) -> ModelInfo:
        """Add a model; a later registration of the same name replaces the earlier one."""
        provider, colon, model = name.partition(":")
        if not colon or not provider or not model:
            raise ValueError(f"model names look like 'provider:model', not {name!r}")
        info = ModelInfo(name, factory, description, display_name or name, tuple(aliases))
        with self._guard:
            self._models[name] = info
            for alias in info.aliases:
                self._aliases[alias] = name
        return info

    def add_resolver(
        self,
        resolver: Callable[[str], ModelInfo | None],
        *,
        names: Callable[[], Iterable[str]] = tuple,
        guess: Callable[[str], str | None] = lambda _text: None,
        naming: Callable[[], str] | None = None,
    ) -> None:
        """Ask ``resolver`` about names nobody registered (``provider:any-model-id``).

        For the error on an unknown name: ``names`` lists the names it knows (to suggest
        the closest), ``guess`` the name it would give a text that looks like one of its
        models, and ``naming`` says in a sentence how its models are named.
        """
        with self._guard:
            self._resolvers.append(_Resolver(resolver, names, guess, naming))

    def resolve(self, text: str) -> ModelInfo:
        """The model ``text`` names (canonical name or alias), else ``UnknownModelError``."""
        info = self._lookup(text)
        for resolver in () if info is not None else tuple(self._resolvers):
            info = resolver.resolve(text)
            if info is not None:
                break
        if info is None and not self._entry_points_loaded:
            self._load_entry_points()
            info = self._lookup(text)
        if info is None:
            raise UnknownModelError(self._unknown(text))
        return info

    def _unknown(self, text: str) -> str:
        from ._unknown_model import unknown_model_message

        known = [name for info in self.available() for name in (info.name, *info.aliases)]
        with self._guard:
            resolvers = tuple(self._resolvers)
        guesses = [guessed for r in resolvers if (guessed := r.guess(text)) is not None]
        return unknown_model_message(
            text,
            [*known, *(name for r in resolvers for name in r.names())],
            guesses,
            [r.naming() for r in resolvers if r.naming is not None],
        )

    def create(self, text: str) -> Model:
        return self.resolve(text).factory()

    def available(self) -> list[ModelInfo]:
        """Every registered model, sorted by name (plugins included)."""
        if not self._entry_points_loaded:
            self._load_entry_points()
        with self._guard:
            return sorted(self._models.values(), key=lambda info: info.name)

    def _lookup(self, text: str) -> ModelInfo | None:
        with self._guard:
            name = self._aliases.get(text) or self._aliases.get(text.lower(), text)
            return self._models.get(name)

    def _load_entry_points(self) -> None:
        """Let installed distributions add providers; costs an import only when needed.

        Conversations resolve models from several threads at once: the first one in loads
        the plugins while the others wait, and the flag is set only once every plugin has
        registered, so nobody sees it set and the plugin's model still missing. A plugin
        that fails is not retried (its error reaches the first caller).
        """
        with self._plugins_guard:
            if self._entry_points_loaded:
                return
            from importlib.metadata import entry_points

            try:
                for entry in entry_points(group=ENTRY_POINT_GROUP):
                    register = entry.load()
                    register(self)
            finally:
                self._entry_points_loaded = True


def _name_answer(messages: Sequence[ChatMessage], agent_id: str, seed: int | None) -> str | None:
    """An offline model's deterministic answer to ``--choose-names``'s request, else None."""
    from ._names import is_name_request, offline_name

    if not is_name_request(messages):
        return None
    return f"Call me {offline_name(agent_id, seed)}."


# --- local:test -------------------------------------------------------------------------

_TEST_RESPONSES: dict[str, tuple[str, ...]] = {
    "greetings": (
        "Hello! I'm a test model designed for offline experimentation.",
        "Greetings! I provide deterministic responses for testing.",
        "Hi there! I help test conversation patterns without API calls.",
    ),
    "questions": (
        "That's an interesting question. Let me think about that.",
        "I see what you're asking. Here's my perspective:",
        "Good question! Based on our discussion so far:",
    ),
    "agreements": (
        "I agree with your point.",
        "Yes, that makes sense.",
        "Absolutely, I see what you mean.",
    ),
    "elaborations": (
        "Building on that idea, we might consider",
        "To expand on this further,",
        "Following that line of thought,",
    ),
    "convergence": ("Indeed.", "Agreed.", "Precisely.", "Yes."),
}


class TestModel:
    """pidgin-ai 1.1's ``LocalTestModel``: the same rules, so the same replies.

    pidgin-ai streamed it word by word with 10 ms pauses and kept a trailing space on
    every reply; this port returns the reply at once and without the trailing space.
    """

    __test__ = False  # not a pytest test class despite the name

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
    ) -> Reply:
        content = _name_answer(messages, agent_id, seed) or self._respond(messages)
        return Reply(content, _prompt_tokens(messages), estimate_tokens(content))

    @staticmethod
    def _respond(messages: Sequence[ChatMessage]) -> str:
        if not messages:
            return _TEST_RESPONSES["greetings"][0]
        turn_count = sum(1 for message in messages if message.role == "assistant")
        last = messages[-1].content.lower()
        if turn_count > 10:
            options = _TEST_RESPONSES["convergence"]
            return options[turn_count % len(options)]
        if any(word in last for word in ("?", "what", "how", "why", "when", "where")):
            digest = int(hashlib.md5(last.encode(), usedforsecurity=False).hexdigest()[:8], 16)
            options = _TEST_RESPONSES["questions"]
            base = options[digest % len(options)]
            if "pattern" in last:
                return f"{base} I notice we're discussing patterns in our conversation."
            if "test" in last:
                return (
                    f"{base} As a test model, I provide consistent responses for experimentation."
                )
            if "convergence" in last:
                return (
                    f"{base} Convergence is an interesting phenomenon where responses "
                    "become shorter and more aligned."
                )
            return f"{base} Let me share some thoughts on this topic."
        if any(word in last for word in ("yes", "agree", "right", "exactly", "correct")):
            options = _TEST_RESPONSES["agreements"]
            return options[turn_count % len(options)]
        options = _TEST_RESPONSES["elaborations"]
        base = options[turn_count % len(options)]
        words = len(last.split())
        if words < 10:
            return f"{base} perhaps we could explore this topic in more depth."
        if words > 50:
            return f"{base} I appreciate the detailed perspective you've shared."
        return f"{base} the points you've raised connect to broader themes in our discussion."


# --- silent:none ------------------------------------------------------------------------

SILENCE = "\u2026"
"""What ``silent:none`` says: a single ellipsis, exactly as pidgin-ai 1.1's silent provider."""


class SilentModel:
    """pidgin-ai's silent partner: always ``"…"``, which costs no completion tokens."""

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
    ) -> Reply:
        return Reply(SILENCE, _prompt_tokens(messages), 0)


from ._model_drift import DriftModel  # noqa: E402  (it builds on the definitions above)

MODELS = ModelRegistry()
"""The registry the command line resolves ``-a``/``-b`` against."""

MODELS.register(
    "local:test",
    TestModel,
    description="pidgin-ai's deterministic template responder (no network)",
    display_name="Local Test",
    aliases=("test",),
)
MODELS.register(
    "silent:none",
    SilentModel,
    description="always answers '\u2026' (pidgin-ai's meditation partner)",
    display_name="Silent",
    aliases=("silent", "none"),
)
MODELS.register(
    "local:drift",
    DriftModel,
    description="seedable voices that drift toward each other (no network)",
    display_name="Local Drift",
    aliases=("drift",),
)


def _install_providers() -> None:
    """Real providers (``anthropic:...``, ``sonnet``, ...) resolve through the catalogue."""
    from ._providers import install

    install(MODELS)


_install_providers()
