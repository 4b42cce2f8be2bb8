"""The provider contract: one small interface that Gemini, offline and the fake implement.

    provider.generate(ProviderRequest) -> ProviderReply     raises ProviderError (after retries)
    provider.count_tokens(ProviderRequest) -> int | None    None when it cannot count honestly

A request is the whole conversation so far (`messages`, oldest first, the last one the
user's), the system instruction and the structured-output schema. `bundle_facts` carries the
bundle's structured facts for providers that reason without a model (offline); `functions` the
functions the model may call within its turn (Gemini: query_spans, get_trace). `deadline`
is when the caller stops waiting (the MCP time budget): a provider that calls a model makes
no attempt, backoff or read past it, so an answer nobody waits for is not left running.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["Message", "ProviderRequest", "Usage", "ProviderReply", "Provider", "FunctionRunner"]


@dataclass(frozen=True)
class Message:
    role: str  # "user" or "model"
    text: str


@dataclass(frozen=True)
class ProviderRequest:
    system_instruction: str
    messages: tuple[Message, ...]
    analysis_type: str
    depth_level: int  # 1..5
    response_schema: dict[str, Any]
    code_execution: bool = False  # the code-execution tool (hypothesis_test, execution_trace)
    timeout_s: float = 300.0  # one attempt
    bundle_facts: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic() when the caller stops waiting; None: no limit
    # functions the model may call within the turn (escalation/functions.py), or None
    functions: FunctionRunner | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ProviderReply:
    text: str  # the raw answer text (JSON for structured providers)
    analysis: dict[str, Any]  # parsed, RESPONSE_SCHEMA shape
    usage: Usage
    model: str
    checked_by_model: bool
    attempts: int = 1
    # the functions the model called within the turn, as the ledger records them (FunctionCall.to_dict())
    function_calls: tuple[dict[str, Any], ...] = ()


@runtime_checkable
class FunctionRunner(Protocol):
    """What a provider needs of the functions it offers (escalation.functions.DatasetFunctions)."""

    max_calls: int

    @property
    def declarations(self) -> list[dict[str, Any]]: ...

    @property
    def spent(self) -> bool: ...

    def __call__(self, name: str, args: dict[str, Any]) -> dict[str, Any]: ...

    def close(self) -> None: ...  # by its owner after the turn (escalation/api.py), not by the provider


@runtime_checkable
class Provider(Protocol):
    name: str
    model: str

    def generate(self, request: ProviderRequest) -> ProviderReply: ...

    def count_tokens(self, request: ProviderRequest) -> int | None: ...
