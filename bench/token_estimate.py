"""Measure the offline token estimate (escalation/tokens.py) against real tokenizers.

No Gemini tokenizer can be loaded offline (google-genai's local tokenizer downloads its model
at run time), so the estimate is measured against two large-vocabulary tokenizers shipped
inside a PyPI package, `quicktok-v1` (o200k_base, ~200k vocab; llama3, ~128k vocab), as
proxies, and against "o200k+d": o200k with Gemini's documented digit rule (every digit one
token), the closest proxy for Gemini's own SentencePiece tokenizer (256k vocab). Samples: the rendered bundle of every scenario in fixtures/scenarios (what is really
sent), and this repository's own Python sources and README.

    pip install quicktok-v1        # bench only, not a dependency
    .venv/bin/python bench/token_estimate.py

Prints one row per sample (chars, estimate, proxy counts, error) and the mean absolute error.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def samples() -> list[tuple[str, str]]:
    os.environ["DCR_HOME"] = tempfile.mkdtemp(prefix="dcr-bench-")
    from correlate.types import Window
    from escalation import EscalationRequest
    from escalation.preparation import prepare
    from ingest.pipeline import ingest_paths

    out = []
    scen = REPO / "fixtures" / "scenarios"
    for d in sorted(p for p in scen.iterdir() if (p / "truth.json").is_file()):
        truth = json.loads((d / "truth.json").read_text())
        w = truth["window"]
        ingest_paths([str(d)], dataset=d.name, workers=1)
        p = prepare(
            EscalationRequest(
                question="What is the root cause?",
                dataset=d.name,
                provider="offline",
                window=Window(w["incident_start_ns"], w["incident_end_ns"]),
                baseline=Window(w["baseline_start_ns"], w["baseline_end_ns"]),
            )
        )
        out.append((f"bundle:{d.name}", p.request.messages[0].text))
    for path in sorted((REPO / "escalation").rglob("*.py"))[:8] + [REPO / "README.md"]:
        out.append((f"file:{path.relative_to(REPO)}", path.read_text(encoding="utf-8")))
    return out


def main() -> int:
    try:
        import quicktok
    except ImportError:
        print(
            "needs the quicktok-v1 package (pip install quicktok-v1): it ships the o200k and llama3 tokenizers"
        )
        return 2
    from escalation.tokens import estimate_tokens

    o200k = quicktok.get_encoding("o200k_base")
    llama3 = quicktok.get_encoding("llama3")

    def gemini_digits(text: str) -> int:
        # o200k with Gemini's digit rule: a run of L digits costs L tokens, not ceil(L/3)
        n = len(o200k.encode(text))
        return n + sum(len(m) - math.ceil(len(m) / 3) for m in re.findall(r"\d+", text))

    encs = {
        "o200k": lambda t: len(o200k.encode(t)),
        "llama3": lambda t: len(llama3.encode(t)),
        "o200k+d": gemini_digits,
    }
    print(f"{'sample':<44}{'chars':>9}{'estimate':>10}" + "".join(f"{k:>9}{'err%':>8}" for k in encs))
    errs: dict[str, list[float]] = {k: [] for k in encs}
    bundle_errs: dict[str, list[float]] = {k: [] for k in encs}
    for name, text in samples():
        est = estimate_tokens(text)
        row = f"{name[:43]:<44}{len(text):>9,}{est:>10,}"
        for k, enc in encs.items():
            n = enc(text)
            e = (est - n) / n * 100
            errs[k].append(e)
            if name.startswith("bundle:"):
                bundle_errs[k].append(e)
            row += f"{n:>9,}{e:>+8.1f}"
        print(row)
    for label, table in (("all samples", errs), ("bundles", bundle_errs)):
        summary = ", ".join(
            f"{k}: mean {sum(v) / len(v):+.1f}%, mean |err| {sum(map(abs, v)) / len(v):.1f}%, "
            f"range {min(v):+.1f}..{max(v):+.1f}%"
            for k, v in table.items()
            if v
        )
        print(f"{label}: {summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
