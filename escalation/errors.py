"""Errors of `escalation/`, with the kinds and remedies of the contract in `ingest/errors.py`.

    EscalationError                 base: the work failed (the ledger's database, …)            failed
     ├── BadRequest                 an unusable request: unknown analysis type, depth, provider,
     │                              empty question                                             invalid_input
     ├── DatasetUnavailable         the dataset does not exist or cannot be opened             not_found / unusable
     ├── MissingApiKey              provider "gemini" without GEMINI_API_KEY / GOOGLE_API_KEY   not_configured
     ├── ProviderError              the model call failed after retries; the bundle is saved   provider_failed
     │    ├── ProviderTimeout       no answer within the timeout
     │    └── MalformedReply        the answer was not the JSON the response schema asks for
     ├── ConversationNotFound       no conversation with that id                               not_found
     ├── ConversationExpired        older than DCR_CONVERSATION_TTL_S, or finalized            unusable
     ├── ConversationFull           DCR_CONVERSATION_MAX_TURNS reached                         over_limit
     └── ConversationBusy           another continue held the session longer than the lock wait busy

Foreign errors (google-genai, httpx, sqlite3, ingest/correlate) are translated where they
enter (`providers/gemini.py`, `store.py`, `bundle.py`); every message names the fix, and a next
step as a `Remedy` (the faces name it as a command or a tool).
"""

from __future__ import annotations

from ingest.errors import Kind, PackageError, Remedy

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
    "Kind",
    "Remedy",
]


class EscalationError(PackageError):
    """Base of escalation's errors. Raised as itself: the work failed."""

    kind = Kind.FAILED


class BadRequest(EscalationError):
    kind = Kind.INVALID_INPUT


class DatasetUnavailable(EscalationError):
    """The dataset of a request cannot be opened; `of(exc)` keeps the reason and remedy of the
    ingest or correlate error that said why."""

    kind = Kind.UNUSABLE

    @classmethod
    def of(cls, exc: PackageError) -> DatasetUnavailable:
        kind = Kind.NOT_FOUND if exc.kind == Kind.NOT_FOUND else Kind.UNUSABLE
        return cls(exc.reason, exc.hint, remedy=exc.remedy, kind=kind)


class MissingApiKey(EscalationError):
    kind = Kind.NOT_CONFIGURED

    def __init__(self, provider: str = "gemini") -> None:
        super().__init__(
            f"no API key for provider {provider!r}",
            ": set GEMINI_API_KEY (or GOOGLE_API_KEY), or use the offline report: {}",
            remedy=Remedy("escalate", {"provider": "offline"}),
        )


class ProviderError(EscalationError):
    """The model call failed (after retries). `bundle_path` names the saved bundle when known."""

    kind = Kind.PROVIDER_FAILED

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
    kind = Kind.NOT_FOUND

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"no conversation {session_id!r}",
            ": list them with {} or start one",
            remedy=Remedy("list_conversations"),
        )


class ConversationExpired(EscalationError):
    kind = Kind.UNUSABLE


class ConversationFull(EscalationError):
    kind = Kind.OVER_LIMIT


class ConversationBusy(EscalationError):
    kind = Kind.BUSY
