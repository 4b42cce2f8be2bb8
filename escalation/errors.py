"""Errors of `escalation/`.

    EscalationError
     ├── BadRequest             an unusable request: unknown analysis type, depth, provider, empty question (exit 2)
     ├── DatasetUnavailable     the dataset does not exist or cannot be opened (exit 2)
     ├── MissingApiKey          provider "gemini" without GEMINI_API_KEY / GOOGLE_API_KEY (exit 2)
     ├── ProviderError          the model call failed after retries (exit 1); the bundle is saved
     │    ├── ProviderTimeout   no answer within the timeout
     │    └── MalformedReply    the answer was not the JSON the response schema asks for
     ├── ConversationNotFound   no conversation with that id (exit 2)
     ├── ConversationExpired    older than DCR_CONVERSATION_TTL_S (exit 2)
     ├── ConversationFull       DCR_CONVERSATION_MAX_TURNS reached (exit 2)
     └── ConversationBusy       another continue held the session longer than the lock wait (exit 1)

Foreign errors (google-genai, httpx, sqlite3, ingest/correlate) are translated where they
enter (`providers/gemini.py`, `store.py`, `bundle.py`); every message names the fix.
"""

from __future__ import annotations

__all__ = [
    "EscalationError",
    "BadRequest",
    "DatasetUnavailable",
    "MissingApiKey",
    "ProviderError",
    "ProviderTimeout",
    "MalformedReply",
    "ConversationNotFound",
    "ConversationExpired",
    "ConversationFull",
    "ConversationBusy",
]


class EscalationError(Exception):
    """Base of escalation's errors."""


class BadRequest(EscalationError):
    pass


class DatasetUnavailable(EscalationError):
    pass


class MissingApiKey(EscalationError):
    def __init__(self, provider: str = "gemini") -> None:
        super().__init__(
            f"no API key for provider {provider!r}: set GEMINI_API_KEY (or GOOGLE_API_KEY), "
            "or use --provider offline, or --dry-run to see what would be sent"
        )


class ProviderError(EscalationError):
    """The model call failed (after retries). `bundle_path` names the saved bundle when known."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.bundle_path: str | None = None


class ProviderTimeout(ProviderError):
    pass


class MalformedReply(ProviderError):
    pass


class ConversationNotFound(EscalationError):
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"no conversation {session_id!r}: list them with 'dcr conversation list' or start one"
        )


class ConversationExpired(EscalationError):
    pass


class ConversationFull(EscalationError):
    pass


class ConversationBusy(EscalationError):
    pass
