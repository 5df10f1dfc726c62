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
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

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
    "UnknownModelError",
    "estimate_tokens",
]

ENTRY_POINT_GROUP = "pidgin.models"
"""Entry points in this group are callables ``register(registry: ModelRegistry) -> None``."""

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message as the agent being asked sees it: its own are ``assistant``."""

    role: Role
    content: str


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
    """A model name that no registered provider knows; the message lists those that exist."""


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


class ModelRegistry:
    """Maps ``"provider:model"`` names (and aliases) to factories."""

    def __init__(self) -> None:
        self._models: dict[str, ModelInfo] = {}
        self._aliases: dict[str, str] = {}
        self._entry_points_loaded = False
        self._resolvers: list[Callable[[str], ModelInfo | None]] = []
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

    def add_resolver(self, resolver: Callable[[str], ModelInfo | None]) -> None:
        """Ask ``resolver`` about names nobody registered (``provider:any-model-id``)."""
        with self._guard:
            self._resolvers.append(resolver)

    def resolve(self, text: str) -> ModelInfo:
        """The model ``text`` names (canonical name or alias), else ``UnknownModelError``."""
        info = self._lookup(text)
        for resolver in () if info is not None else tuple(self._resolvers):
            info = resolver(text)
            if info is not None:
                break
        if info is None and not self._entry_points_loaded:
            self._load_entry_points()
            info = self._lookup(text)
        if info is None:
            listed = ", ".join(
                f"{model.name} ({', '.join(model.aliases)})" if model.aliases else model.name
                for model in self.available()
            )
            raise UnknownModelError(f"unknown model {text!r}; available models: {listed}")
        return info

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
            name = self._aliases.get(text, text)
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
        content = self._respond(messages)
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


# --- local:drift ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Voice:
    """One agent's own way of speaking before it starts borrowing."""

    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    verbs: tuple[str, ...]
    templates: tuple[str, ...]
    sentences: tuple[int, int]


def _words(*lines: str) -> tuple[str, ...]:
    return tuple(word for line in lines for word in line.split())


_VOICES = (
    _Voice(
        nouns=_words(
            "river stone forest horizon tide meadow lantern harbor",
            "ember valley cloud orchard shore canyon moss glacier",
        ),
        adjectives=_words("quiet distant green slow ancient misty warm hidden gentle wild"),
        verbs=_words("carries shelters remembers follows gathers softens hides"),
        templates=(
            "I wonder whether the {adj} {noun} {verb} the {noun2}, or the {noun3}?",
            "What if every {noun}, like the {adj} {noun2}, {verb} a little {noun3}?",
            "Perhaps the {noun} {verb} the {adj} {noun2}, and the {noun3} listens.",
            "Could a {adj} {noun} be what {verb} the {noun2}, slowly, like a {noun3}?",
        ),
        sentences=(3, 4),
    ),
    _Voice(
        nouns=_words(
            "pattern signal system structure memory language network symbol",
            "layer grammar circuit vector rhythm protocol index model",
        ),
        adjectives=_words(
            "recursive precise layered formal dense modular shared encoded stable sharp"
        ),
        verbs=_words("encodes compresses mirrors predicts aligns links parses"),
        templates=(
            "The {noun} {verb} the {noun2}!",
            "{Noun} - {adj} {noun2} - {verb} everything.",
            "Yes: the {adj} {noun} {verb} the {noun2}.",
            "Every {noun} {verb} a {adj} {noun2}!",
        ),
        sentences=(1, 2),
    ),
)

_CATEGORY: dict[str, str] = {}
for _voice in _VOICES:
    _CATEGORY.update(dict.fromkeys(_voice.nouns, "noun"))
    _CATEGORY.update(dict.fromkeys(_voice.adjectives, "adj"))
    _CATEGORY.update(dict.fromkeys(_voice.verbs, "verb"))
_TEMPLATE_OWNER = {template: index for index, v in enumerate(_VOICES) for template in v.templates}
_WORD = re.compile(r"[a-z]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_ARTICLE = re.compile(r"\b([Aa]) ([aeiou])")


class DriftModel:
    """Two voices that drift toward each other; deterministic for a given seed.

    The share of borrowed material grows with the agent's number of previous replies
    ``n`` as ``0.9 * (1 - exp(-n / 4))``, plus Gaussian noise whose spread grows with the
    temperature (0.7 when none is given). A borrowed slot takes a word of the same kind
    (noun, adjective, verb) from the partner's last message; a borrowed sentence uses one
    of the partner's templates; the reply's sentence count moves toward the partner's.
    """

    def __init__(self, *, delay: float = 0.08) -> None:
        self.delay = delay

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        agent_id: str,
        temperature: float | None,
        seed: int | None = None,
    ) -> Reply:
        own = 0 if agent_id == "agent_a" else 1 if agent_id == "agent_b" else _stable(agent_id) % 2
        previous = sum(1 for message in messages if message.role == "assistant")
        partner = next((m.content for m in reversed(messages) if m.role == "user"), "")
        rng = random.Random(f"drift|{seed}|{agent_id}|{len(messages)}|{temperature}")
        content = self._compose(_VOICES[own], partner, previous, rng, temperature)
        if self.delay > 0:
            time.sleep(self.delay)
        return Reply(content, _prompt_tokens(messages), estimate_tokens(content))

    @staticmethod
    def borrow_share(previous_replies: int) -> float:
        """The mean share of borrowed material after ``previous_replies`` own replies."""
        return 0.9 * (1 - math.exp(-previous_replies / 4))

    def _compose(
        self,
        voice: _Voice,
        partner: str,
        previous: int,
        rng: random.Random,
        temperature: float | None,
    ) -> str:
        spread = 0.05 + 0.1 * (0.7 if temperature is None else temperature)
        share = min(0.97, max(0.0, self.borrow_share(previous) + rng.gauss(0.0, spread)))
        borrowed = self._partner_words(partner)
        partner_templates = [
            template
            for template in dict.fromkeys(_templates_used(partner))
            if template not in voice.templates
        ]
        low, high = voice.sentences
        count = rng.randint(low, high)
        partner_sentences = len([s for s in _SENTENCE_END.split(partner.strip()) if s])
        if partner_sentences and rng.random() < share:
            count = max(1, round(count + (partner_sentences - count) * share))
        sentences = []
        for _ in range(count):
            if partner_templates and rng.random() < share:
                template = rng.choice(partner_templates)
            else:
                template = rng.choice(voice.templates)
            sentences.append(self._fill(template, voice, borrowed, share, rng))
        return " ".join(sentences)

    @staticmethod
    def _partner_words(partner: str) -> dict[str, list[str]]:
        words: dict[str, list[str]] = {"noun": [], "adj": [], "verb": []}
        for word in _WORD.findall(partner.lower()):
            category = _CATEGORY.get(word)
            if category is not None and word not in words[category]:
                words[category].append(word)
        return words

    @staticmethod
    def _fill(
        template: str,
        voice: _Voice,
        borrowed: dict[str, list[str]],
        share: float,
        rng: random.Random,
    ) -> str:
        own = {"noun": voice.nouns, "adj": voice.adjectives, "verb": voice.verbs}

        def pick(category: str) -> str:
            theirs = borrowed[category]
            if theirs and rng.random() < share:
                return rng.choice(theirs)
            return rng.choice(own[category])

        nouns = [pick("noun") for _ in range(3)]
        text = template.format(
            noun=nouns[0],
            Noun=nouns[0].capitalize(),
            noun2=nouns[1],
            noun3=nouns[2],
            adj=pick("adj"),
            verb=pick("verb"),
        )
        text = _ARTICLE.sub(r"\1n \2", text)
        return text[0].upper() + text[1:]


def _templates_used(text: str) -> list[str]:
    """The templates (of either voice) whose fixed words a message's sentences match."""
    used = []
    for sentence in _SENTENCE_END.split(text.strip()):
        for template, pattern in _TEMPLATE_PATTERNS.items():
            if pattern.fullmatch(sentence):
                used.append(template)
                break
    return used


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[A-Za-z0-9]+\}", template)
    escaped = (re.escape(part).replace("\\ ", " ") for part in parts)
    pattern = "[a-z]+".join(escaped).replace(" a ", " an? ")
    return re.compile(pattern, re.IGNORECASE)


_TEMPLATE_PATTERNS = {template: _template_pattern(template) for template in _TEMPLATE_OWNER}


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


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
