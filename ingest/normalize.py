"""Small pure helpers every reader uses to put values into the shape of `ingest/schema.py`.

Each raises `ValueError` with a short constant message when the value cannot be used;
readers turn that into a `Reject` with that message as the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "norm_trace_id",
    "norm_span_id",
    "norm_parent_span_id",
    "dumps",
    "host_from_resource",
]

_HEX = re.compile(r"[0-9a-fA-F]+")


def _norm_id(value: Any, nbytes: int, what: str) -> str:
    """Hex (any case) or base64 of `nbytes` bytes -> lowercase hex of 2*nbytes chars."""
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    n = 2 * nbytes
    if len(value) == n and _HEX.fullmatch(value):
        return value.lower()
    # grpc-gateway exporters and older Tempo write ids as base64 of the raw bytes
    if value and len(value) % 4 == 0 and len(value) != n:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == nbytes:
            return raw.hex()
    raise ValueError(f"{what} is not {n} hex characters")


def norm_trace_id(value: Any) -> str:
    """A trace id as 32 lowercase hex; 16-hex (64-bit) ids are left-padded with zeros."""
    if isinstance(value, str) and len(value) == 16 and _HEX.fullmatch(value):
        return value.lower().rjust(32, "0")
    tid = _norm_id(value, 16, "trace id")
    if tid == "0" * 32:
        raise ValueError("trace id is all zeros")
    return tid


def norm_span_id(value: Any) -> str:
    sid = _norm_id(value, 8, "span id")
    if sid == "0" * 16:
        raise ValueError("span id is all zeros")
    return sid


def norm_parent_span_id(value: Any) -> str | None:
    """A parent id, or None for a root (absent, empty or all zeros)."""
    if value is None or value == "":
        return None
    pid = _norm_id(value, 8, "parent span id")
    return None if pid == "0" * 16 else pid


def dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 kept as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def host_from_resource(resource: Mapping[str, Any]) -> str | None:
    """The clock key of a process: host.id, else host.name, else the k8s pod."""
    for key in ("host.id", "host.name", "k8s.pod.name", "k8s.pod.uid"):
        value = resource.get(key)
        if value:
            return str(value)
    return None
