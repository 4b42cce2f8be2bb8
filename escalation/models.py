"""Model ids, context windows and prices: the one place they live.

Looked up in the Gemini API documentation (models page and pricing page, read 2026-11):
`gemini-3.1-pro-preview` is the current most capable Gemini Pro model (input limit
1,048,576 tokens, output limit 65,536); paid tier $2.00 / $12.00 per million input / output
tokens for prompts up to 200k tokens, $4.00 / $18.00 above. Thinking tokens are billed as
output. Update this table when Google ships a new Pro model; `DCR_MODEL` overrides the default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "ModelInfo",
    "MODELS",
    "DEFAULT_MODEL",
    "OFFLINE_MODEL",
    "model_info",
    "selected_model",
    "cost_usd",
    "thinking_config",
    "default_budget_tokens",
]


@dataclass(frozen=True)
class ModelInfo:
    id: str
    context_window_tokens: int
    max_output_tokens: int
    input_usd_per_mtok: float
    output_usd_per_mtok: float  # thinking tokens are billed at this rate too
    long_prompt_threshold_tokens: int | None = None  # above it the long rates apply
    input_long_usd_per_mtok: float | None = None
    output_long_usd_per_mtok: float | None = None


MODELS: dict[str, ModelInfo] = {
    m.id: m
    for m in (
        ModelInfo("gemini-3.1-pro-preview", 1_048_576, 65_536, 2.00, 12.00, 200_000, 4.00, 18.00),
        ModelInfo("gemini-3-pro-preview", 1_048_576, 65_536, 2.00, 12.00, 200_000, 4.00, 18.00),
        ModelInfo("gemini-2.5-pro", 1_048_576, 65_536, 1.25, 10.00, 200_000, 2.50, 15.00),
        ModelInfo("gemini-3.5-flash", 1_048_576, 65_536, 0.30, 2.50),
        ModelInfo("gemini-2.5-flash", 1_048_576, 65_536, 0.30, 2.50),
    )
}
DEFAULT_MODEL = "gemini-3.1-pro-preview"
OFFLINE_MODEL = "offline-report-v1"  # what the ledger records for the offline provider

# Unknown ids (a newer model through DCR_MODEL) get the default's limits and prices.
_FALLBACK = MODELS[DEFAULT_MODEL]


def model_info(model_id: str) -> ModelInfo:
    info = MODELS.get(model_id.removeprefix("models/"))
    if info is None:
        return ModelInfo(
            model_id,
            *[
                getattr(_FALLBACK, f)
                for f in (
                    "context_window_tokens",
                    "max_output_tokens",
                    "input_usd_per_mtok",
                    "output_usd_per_mtok",
                    "long_prompt_threshold_tokens",
                    "input_long_usd_per_mtok",
                    "output_long_usd_per_mtok",
                )
            ],
        )
    return info


def selected_model() -> str:
    return os.environ.get("DCR_MODEL") or DEFAULT_MODEL


def cost_usd(model_id: str, input_tokens: int, output_tokens: int, thinking_tokens: int = 0) -> float:
    """Estimated list-price cost of one call; 0 for the offline provider."""
    if model_id == OFFLINE_MODEL:
        return 0.0
    m = model_info(model_id)
    long = m.long_prompt_threshold_tokens is not None and input_tokens > m.long_prompt_threshold_tokens
    rate_in = m.input_long_usd_per_mtok if long and m.input_long_usd_per_mtok else m.input_usd_per_mtok
    rate_out = m.output_long_usd_per_mtok if long and m.output_long_usd_per_mtok else m.output_usd_per_mtok
    return round((input_tokens * rate_in + (output_tokens + thinking_tokens) * rate_out) / 1e6, 6)


def thinking_config(model_id: str, depth_level: int) -> dict[str, object]:
    """Thinking effort from depth_level 1..5: Gemini 3 takes a level, Gemini 2.5 a token budget."""
    depth = min(5, max(1, int(depth_level)))
    mid = model_id.removeprefix("models/")
    if mid.startswith("gemini-2."):
        return {"thinking_budget": (1024, 4096, 8192, 16384, 32768)[depth - 1]}
    if mid.startswith("gemini-3.1") or mid.startswith("gemini-3.5"):
        return {"thinking_level": ("LOW", "LOW", "MEDIUM", "HIGH", "HIGH")[depth - 1]}
    return {"thinking_level": "LOW" if depth <= 2 else "HIGH"}


def default_budget_tokens(model_id: str) -> int:
    """The bundle budget: the context window less room for the answer and the instructions."""
    m = model_info(model_id)
    return m.context_window_tokens - m.max_output_tokens - 8_192
