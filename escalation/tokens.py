"""Token counting: the provider's counter when online, else a measured estimate.

The estimate mimics a large-vocabulary subword tokenizer of the SentencePiece kind Gemini
uses: a word up to 12 letters is one token, a longer one about one per 10 letters, every
digit one token (Gemini's tokenizer splits numbers into digits, so ids and timings cost more
than in GPT-style encodings), a run of punctuation one token per 4 marks, a newline one
token and runs of indentation one token per 16 spaces. It was measured against real tokenizers on
rendered bundles (`bench/token_estimate.py`; docs/benchmarks.md has the figures);
the budget keeps `ESTIMATE_MARGIN` of headroom for the error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

__all__ = ["estimate_tokens", "ESTIMATE_MARGIN", "TokenCounter"]

# Headroom kept when packing by estimate (the measured error on bundles stays inside it).
ESTIMATE_MARGIN = 0.10

_PIECE = re.compile(r"[A-Za-z]+|\d|[^\w\s\x80-\U0010ffff]+|_| +|\n|\t|[^\x00-\x7f]")

TokenCounter = Callable[[str], int]


# Fitted on rendered bundles and source files (bench/token_estimate.py): a large vocabulary keeps
# words up to 12 letters whole, splits longer ones about every 10; punctuation runs merge by 4.
WORD_WHOLE = 12
WORD_SPLIT = 10
PUNCT_RUN = 4
INDENT_RUN = 16


def _word_tokens(n: int) -> int:
    return 1 if n <= WORD_WHOLE else math.ceil(n / WORD_SPLIT)


def estimate_tokens(text: str) -> int:
    """Estimated Gemini tokens of `text` (deterministic, no I/O)."""
    if not text:
        return 0
    total = 0
    for piece in _PIECE.findall(text):
        c = piece[0]
        if c.isalpha() and c.isascii():
            total += _word_tokens(len(piece))
        elif c == " ":
            total += 0 if len(piece) == 1 else math.ceil((len(piece) - 1) / INDENT_RUN)
        elif c.isdigit() or c in "\n\t_" or not c.isascii():
            total += 1
        else:
            total += math.ceil(len(piece) / PUNCT_RUN)
    return total
