"""How much of the scenario bundles' text redaction changes (the false-positive figure).

The scenarios in fixtures/scenarios hold no credentials, so every character redaction replaces
in their bundles is evidence lost. Each scenario is ingested into a temporary DCR_HOME and its
bundle built twice, with a budget large enough that nothing is cut: once with redaction
switched off, once as sent. The two texts are aligned (difflib) and the characters of the
unredacted text that differ are counted.

    .venv/bin/python bench/redaction.py

Prints one row per scenario (characters, characters changed, placeholders by kind), the total
figure, and every distinct replaced string, so a false positive can be read and judged.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BUDGET_TOKENS = 10_000_000  # nothing is cut, so both builds hold the same items


class _NoRedaction:
    """Stands in for escalation.redact.Redactor: returns everything unchanged."""

    def __init__(self, **_: Any) -> None:  # the real one's options (ips, paths, local_paths)
        self.counts: Counter[str] = Counter()

    def text(self, text: str) -> str:
        return text

    def value(self, name: str, value: Any) -> Any:
        return value

    def mapping(self, attrs: Any) -> dict[str, Any]:
        return {str(k): v for k, v in attrs.items()}

    def snapshot(self) -> dict[str, int]:
        return {}


@contextmanager
def _redaction_off() -> Iterator[None]:
    import escalation.bundle as bundle

    real = bundle.Redactor
    bundle.Redactor = _NoRedaction  # type: ignore[misc, assignment]
    try:
        yield
    finally:
        bundle.Redactor = real  # type: ignore[misc]


def _build(name: str, truth: dict[str, Any]) -> tuple[str, dict[str, int]]:
    from correlate import open_dataset
    from correlate.types import Window
    from escalation import EscalationRequest
    from escalation.bundle import BundleBuilder

    w = truth["window"]
    req = EscalationRequest(
        question="What is the root cause?",
        dataset=name,
        provider="offline",
        window=Window(w["incident_start_ns"], w["incident_end_ns"]),
        baseline=Window(w["baseline_start_ns"], w["baseline_end_ns"]),
    )
    session = open_dataset(name)
    try:
        bundle = BundleBuilder(req, session, budget_tokens=BUDGET_TOKENS).build()
    finally:
        session.close()
    return bundle.text(), bundle.redactions


_PLACEHOLDER = re.compile(r"<redacted:[a-z0-9_]+>")


def _replaced(before: str, after: str) -> list[str] | None:
    """The strings of `before` that became placeholders in `after`; None when `after` is not
    `before` with some spans replaced by placeholders."""
    parts = _PLACEHOLDER.split(after)
    pattern = "(.+?)".join(re.escape(p) for p in parts)
    m = re.fullmatch(pattern, before, re.S)
    # a placeholder already in `before` (this repository's sources name them) is not a replacement
    return [g for g in m.groups() if not _PLACEHOLDER.fullmatch(g)] if m else None


def _changed(before: str, after: str) -> tuple[int, list[str], int]:
    """Characters of `before` that redaction replaced in `after`, the replaced strings, and the
    characters that differ for another reason (correlate's ordering of ties is not stable
    between two builds: such lines are not redaction and are not counted as such)."""
    b_lines, a_lines = before.split("\n"), after.split("\n")
    n, replaced, other = 0, [], 0
    lines = difflib.SequenceMatcher(None, b_lines, a_lines, autojunk=False)
    for op, i1, i2, j1, j2 in lines.get_opcodes():
        if op == "equal":
            continue
        b, a = "\n".join(b_lines[i1:i2]), "\n".join(a_lines[j1:j2])
        strings = _replaced(b, a) if "<redacted:" in a else None
        if strings is None:
            other += len(b)
            continue
        n += sum(map(len, strings))
        replaced += strings
    return n, replaced, other


def main() -> int:
    os.environ["DCR_HOME"] = tempfile.mkdtemp(prefix="dcr-bench-redaction-")
    os.environ["DCR_CODE_ROOTS"] = str(REPO)  # code excerpts as a developer of this repository gets them
    from ingest.pipeline import ingest_paths

    scen = REPO / "fixtures" / "scenarios"
    total = changed = unstable = 0
    kinds: Counter[str] = Counter()
    replaced: Counter[str] = Counter()
    print(f"{'scenario':<22}{'chars':>10}{'changed':>9}  placeholders")
    for d in sorted(p for p in scen.iterdir() if (p / "truth.json").is_file()):
        truth = json.loads((d / "truth.json").read_text())
        ingest_paths([str(d)], dataset=d.name, workers=1)
        with _redaction_off():
            plain, _ = _build(d.name, truth)
        sent, counts = _build(d.name, truth)
        n, strings, other = _changed(plain, sent)
        total, changed, unstable = total + len(plain), changed + n, unstable + other
        kinds.update(counts)
        replaced.update(s.strip() for s in strings)
        print(f"{d.name:<22}{len(plain):>10,}{n:>9,}  {json.dumps(counts) if counts else '-'}")
    share = changed / total if total else 0.0
    print(
        f"total: {changed:,} of {total:,} characters changed by redaction ({share:.4%}); "
        f"placeholders {sum(kinds.values())} {dict(sorted(kinds.items()))}; "
        f"measured {datetime.now(UTC):%Y-%m-%d}"
    )
    if unstable:
        print(
            f"({unstable:,} characters differed between the two builds without a placeholder: not redaction)"
        )
    _report(replaced)
    _code_figure()
    return 0


def _report(replaced: Counter[str]) -> None:
    for s, k in replaced.most_common():
        print(f"  replaced {k}x: {s[:110]!r}")


def _code_figure() -> None:
    """The same figure over this repository's own sources, as code excerpts would carry them
    (tests/ is left out: it plants secrets on purpose)."""
    from escalation.redact import Redactor

    total = changed = 0
    kinds: Counter[str] = Counter()
    replaced: Counter[str] = Counter()
    files = sorted(
        f
        for d in ("ingest", "correlate", "escalation", "mcp_server", "bench")
        for f in (REPO / d).rglob("*.py")
    )
    for f in files:
        text = f.read_text(encoding="utf-8")
        r = Redactor()
        strings = _replaced(text, r.text(text)) or []
        n = sum(map(len, strings))
        total, changed = total + len(text), changed + n
        kinds.update(r.counts)
        replaced.update(f"{f.relative_to(REPO)}: {s.strip()}" for s in strings)
    share = changed / total if total else 0.0
    print(
        f"code: {changed:,} of {total:,} characters of {len(files)} source files changed ({share:.4%}); "
        f"placeholders {sum(kinds.values())} {dict(sorted(kinds.items()))}"
    )
    _report(replaced)


if __name__ == "__main__":
    raise SystemExit(main())
