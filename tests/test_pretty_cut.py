"""The JSON stream's guess at where a pretty-printed value ends (ingest/json_stream.py
`_pretty_end`: the first line that closes at the value's indentation, confirmed by simdjson)
changes nothing: the items a document is cut into are those msgspec's skim alone gives, and
simdjson never accepts what msgspec refuses (the guess would otherwise let it through)."""

from __future__ import annotations

import io
import json
import os
import random

import msgspec
import pytest
import simdjson

from ingest import json_stream, otlp_json
from tests.test_otlp_document_stream import SRC, logs, traces

_otlpscan = json_stream._native


def _native_built() -> None:
    if _otlpscan is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ingest._otlpscan is not built")
        pytest.skip("ingest._otlpscan is not built (no compiler at install)")


def _items(data: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch, read_bytes: int) -> tuple[list, int]:
    """The document's items, and how many values the guess ended."""
    monkeypatch.setattr(json_stream, "_NO_SIMD", not fast)
    monkeypatch.setattr(otlp_json, "_READ_BYTES", read_bytes)
    hits = [0]
    real = json_stream._Scanner._pretty_end

    def spy(self, start, head):  # type: ignore[no-untyped-def]
        end = real(self, start, head)
        hits[0] += end is not None and end >= 0
        return end

    monkeypatch.setattr(json_stream._Scanner, "_pretty_end", spy)
    tail: list = []
    items = list(otlp_json._items(io.BytesIO(data), SRC, tail))
    return items + tail, hits[0]


def _documents() -> dict[str, bytes]:
    doc = traces(3, resources=6, scopes=2, spans=5)
    big = traces(4, resources=3)
    big["resourceSpans"][1]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "n", "value": {"intValue": 123456789012345678901234567890}}  # past 64 bits: simdjson refuses
    )
    text = json.dumps(traces(5, resources=3), indent=2)
    bad_utf8 = text.replace('"service.name"', '"service.n\udcffame"', 1).encode("utf-8", "surrogateescape")
    uneven = json.dumps(traces(6, resources=2), indent=2).replace("\n    }", "\n   }", 1).encode()
    return {
        "indent 2": json.dumps(doc, indent=2).encode(),
        "indent 4": json.dumps(doc, indent=4).encode(),
        "tabs": json.dumps(doc, indent="\t").encode(),
        "logs": json.dumps(logs(), indent=2).encode(),
        "a number past 64 bits": json.dumps(big, indent=2).encode(),
        "invalid UTF-8 in a key": bad_utf8,
        "a closing brace out of line": uneven,
        "malformed near its end": json.dumps(doc, indent=2).encode()[:-200] + b"]]}",
    }


@pytest.mark.parametrize("read_bytes", [128 * 1024, 700, 64])
@pytest.mark.parametrize("name", list(_documents()))
def test_the_guess_gives_the_items_of_the_skim(name: str, read_bytes: int, monkeypatch: pytest.MonkeyPatch):
    _native_built()
    data = _documents()[name]
    slow, none = _items(data, False, monkeypatch, read_bytes)
    fast, hits = _items(data, True, monkeypatch, read_bytes)
    assert none == 0
    assert fast == slow
    if name in ("indent 2", "indent 4", "tabs", "logs"):
        assert hits >= 3  # the guess ended values, not only the skim


def test_simdjson_never_accepts_what_msgspec_refuses():
    """Mutated runs of pretty-printed records (bytes replaced, dropped, inserted) and hand-made
    edge cases: whatever simdjson accepts, msgspec's skim accepts too."""
    raws = msgspec.json.Decoder(list[msgspec.Raw])
    parser = simdjson.Parser()

    def simd_ok(b: bytes) -> bool:
        try:
            parser.parse(b)
            return True
        except Exception:
            return False

    def msgspec_ok(b: bytes) -> bool:
        try:
            raws.decode(b)
            return True
        except (msgspec.DecodeError, RecursionError):
            return False

    edges = [b"[1e999]", b"[-0]", b"[123456789012345678901234567890]", b'["\\ud800"]', b'["\xff"]',
             b'["\xc0\x80"]', b'["\xed\xa0\x80"]', b'["a\x00"]', b'["\\u00"]', b"[tru]", b"[1.]", b"[01]",
             b'[{"a":1,}]', b'["\x7f"]', b"[\x0c1]", b'[{"a":1,"a":2}]', b"[" + b"[" * 1100 + b"]" * 1100 + b"]",
             b'["\\x"]', b"[1E+2]", b"[\r\n\t1]", b"[1\x00]", b"[1] x"]  # fmt: skip
    runs = []
    for seed in range(6):
        for rs in traces(seed, resources=2, scopes=1, spans=4)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                runs.append(json.dumps(ss["spans"], indent=2).encode())
    rng = random.Random(11)
    special = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00", b"\xff", b"\xc3", b"e", b".", b"-",
               b"0", b"\n", b" ", b"\\u", b"\\ud800", b"1e999", b"\x1f", b"\x7f"]  # fmt: skip
    mutants = []
    for _ in range(4000):
        b = bytearray(rng.choice(runs))
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(len(b))
            op = rng.random()
            if op < 0.4:
                b[k : k + 1] = rng.choice(special)
            elif op < 0.6:
                del b[k : k + rng.randint(1, 4)]
            elif op < 0.8:
                b[k:k] = rng.choice(special)
            else:
                b[k] = rng.randrange(256)
        mutants.append(bytes(b))
    accepted = [m for m in edges + mutants if simd_ok(m)]
    assert len(accepted) > 300  # many mutants stay JSON (a changed string, a digit)
    assert [m for m in accepted if not msgspec_ok(m)] == []


def test_line_close_is_find():
    _native_built()
    rng = random.Random(3)
    for _ in range(20000):
        n = rng.randrange(0, 90)
        data = bytes(rng.choice(b"\n }a]\t") for _ in range(n))
        head = rng.choice([b" ", b"  ", b"", b"\t", b"    "]) + rng.choice([b"}", b"]"])
        start = rng.randrange(0, n + 2)
        want = data.find(b"\n" + head, start) if start <= n else -1
        assert _otlpscan.line_close(data, start, head) == want
