"""Local stand-ins for Anthropic, OpenAI (and xAI, Ollama, any compatible server) and Gemini.

One server answers all three wire formats on 127.0.0.1, so a test can point every
provider's SDK at it through the SDKs' own base-URL settings. Used by the pidgin-cli
provider tests and by the providers benchmark; ``python tools/fake_providers --latency
0.2`` runs one in the foreground and prints its URL. Standard library only.
"""

from ._server import Behaviour, FakeServer, Fault, Request

__all__ = ["Behaviour", "FakeServer", "Fault", "Request", "environment"]


def environment(url: str, key: str = "test-key") -> dict[str, str]:
    """The environment variables that send every provider's SDK to ``url`` with ``key``."""
    return {
        "ANTHROPIC_API_KEY": key,
        "ANTHROPIC_BASE_URL": url,
        "OPENAI_API_KEY": key,
        "OPENAI_BASE_URL": f"{url}/v1",
        "XAI_API_KEY": key,
        "XAI_BASE_URL": f"{url}/v1",
        "GOOGLE_API_KEY": key,
        "GOOGLE_GEMINI_BASE_URL": url,
        "OLLAMA_HOST": url,
        "OLLAMA_API_KEY": key,
        "PIDGIN_COMPATIBLE_BASE_URL": f"{url}/v1",
        "PIDGIN_COMPATIBLE_API_KEY": key,
    }
