"""Model providers behind one contract (`base.Provider`): gemini, offline, fake (tests)."""

from __future__ import annotations

from escalation.errors import BadRequest
from escalation.providers.base import Message, Provider, ProviderReply, ProviderRequest, Usage

__all__ = [
    "PROVIDERS",
    "get_provider",
    "default_provider_name",
    "Message",
    "Provider",
    "ProviderReply",
    "ProviderRequest",
    "Usage",
]

PROVIDERS = ("gemini", "offline", "fake")


def default_provider_name() -> str:
    """gemini when a key is set, else offline."""
    from escalation.providers.gemini import api_key

    return "gemini" if api_key() else "offline"


def get_provider(name: str | None, model: str | None = None) -> Provider:
    """The provider by name; MissingApiKey for gemini without a key."""
    name = name or default_provider_name()
    if name == "gemini":
        from escalation.providers.gemini import GeminiProvider

        return GeminiProvider(model)
    if name == "offline":
        from escalation.providers.offline import OfflineProvider

        return OfflineProvider()
    if name == "fake":
        from escalation.providers.fake import FakeProvider

        return FakeProvider.shared()
    raise BadRequest(f"unknown provider {name!r}: use one of {', '.join(PROVIDERS)}")
