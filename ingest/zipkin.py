"""Zipkin v2 JSON (`POST /api/v2/spans` bodies, `GET /api/v2/trace/{id}` responses) -> spans.

    [{"traceId", "parentId", "id", "kind", "name", "timestamp", "duration", "debug", "shared",
      "localEndpoint": {"serviceName", "ipv4", "ipv6", "port"}, "remoteEndpoint": {…},
      "annotations": [{"timestamp", "value"}], "tags": {"k": "v"}}, …]

Also accepted: a list of traces (`GET /api/v2/traces`: a list of lists of spans) and several
arrays one after the other. Spans may come in any order. Zipkin v1 (`binaryAnnotations`) is not.

Mapping (as the OpenTelemetry Collector's Zipkin receiver, zipkinv2 -> OTLP):

- times are microseconds; `timestamp` may be absent (an incomplete span): start_ns and end_ns
  are then NULL and duration_ns is still `duration` * 1000 when given;
- `localEndpoint.serviceName` is the service; the resource is {"service.name", "host.ip"}
  (ipv4, else ipv6, of the local endpoint), which is also the host (the clock key); a local
  port becomes the span attribute `network.local.port`;
- `remoteEndpoint` becomes `peer.service`, `network.peer.address` (ipv4, else ipv6) and
  `network.peer.port`; tags of the same name win;
- kind CLIENT/SERVER/PRODUCER/CONSUMER; no kind and a `span.kind` tag of "internal" ->
  INTERNAL (the tag is consumed), else UNSPECIFIED;
- tags become attributes; annotations become events (name = value);
- status: `otel.status_code` (OK/ERROR) with `otel.status_description` as the message (both
  consumed); an `error` tag makes it ERROR: `"error": "true"` (or "") is consumed, any other
  value is the error's text, kept as an attribute and used as the message when there is no
  description;
- shared spans: in Zipkin's B3 propagation a server may reuse its client's span id and mark
  its half `"shared": true`. Both halves are kept, as Jaeger's span-id de-duplication adjuster
  does: the shared SERVER span gets span_id = the first 8 bytes of
  blake2b("zipkin-shared:" + trace_id + ":" + span_id), its parent becomes the client span
  (the original id), and the original id stays in the attribute `zipkin.shared_span_id`. This
  needs no look-ahead, so it also holds when the client half is in another file.

Ids are lowercase hex; shorter hex ids are left-padded (as Zipkin's own Span.Builder does),
64-bit trace ids to 32 chars; an id that is not hex, empty or all zeros is a reject (a zero or
empty parentId means a root). Offsets are the span's 1-based index in the input (unit
"record"); malformed JSON is rejected at its byte offset and ends the input.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec

from ingest.formats import CORRUPT_ERRORS
from ingest.json_stream import Element, MalformedJSON, iter_array
from ingest.normalize import dumps
from ingest.otlp_model import first_exception
from ingest.records import Chunk, Reject, SourceInfo, reject_reason
from ingest.span_rows import MAX_NS, Resource, SpanRows, dumpb

__all__ = ["sniff", "read", "shared_span_id", "CHUNK_SPANS"]

CHUNK_SPANS = 4096


class _Endpoint(msgspec.Struct, gc=False):
    serviceName: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    port: int | None = None


class _Annotation(msgspec.Struct, gc=False):
    timestamp: int | None = None
    value: str | None = None


class _Span(msgspec.Struct, gc=False):
    traceId: str | None = None
    parentId: str | None = None
    id: str | None = None
    kind: str | None = None
    name: str | None = None
    timestamp: int | None = None
    duration: int | None = None
    shared: bool | None = None
    localEndpoint: _Endpoint | None = None
    remoteEndpoint: _Endpoint | None = None
    annotations: list[_Annotation] | None = None
    tags: dict[str, Any] | None = None


_SPAN = msgspec.json.Decoder(_Span, strict=False)
_LIST = msgspec.json.Decoder(list[msgspec.Raw])

# ---- sniff --------------------------------------------------------------------------------

_START = re.compile(rb"^\s*\[\s*(\[\s*)?\{")
_EMPTY = re.compile(rb"^\s*\[\s*\]\s*$")
_ID_KEY = re.compile(rb'"id"\s*:')
_NOT_ZIPKIN_V2 = re.compile(rb'"(traceID|spanID|resourceSpans|scopeSpans|binaryAnnotations)"')


def sniff(head: bytes) -> bool:
    """Zipkin v2: a list (or list of lists) of objects with "traceId" and "id"; also `[]`."""
    head = head.removeprefix(b"\xef\xbb\xbf")
    if _EMPTY.match(head):
        return True
    return (
        _START.match(head) is not None
        and b'"traceId"' in head
        and _ID_KEY.search(head) is not None
        and _NOT_ZIPKIN_V2.search(head) is None
    )


# ---- ids ----------------------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-fA-F]+")


def _hex_id(text: Any, width: int, what: str, most: int | None = None) -> str:
    """Lowercase hex of `width` characters, left-padded with zeros; `most`: the longest id the
    message names (a trace id may be 32 characters though a short one is read at 16)."""
    if type(text) is not str or not text:
        raise ValueError(f"{what} missing" if text is None or text == "" else f"{what} is not a string")
    if len(text) > width or not _HEX.fullmatch(text):
        raise ValueError(f"{what} is not hex of at most {most or width} characters")
    out = text.lower().rjust(width, "0")
    if out.count("0") == width:
        raise ValueError(f"{what} is all zeros")
    return out


def _trace_id(text: Any) -> str:
    width = 32 if type(text) is str and len(text) > 16 else 16  # 64-bit ids, then padded to 128
    return _hex_id(text, width, "traceId", most=32).rjust(32, "0")


def shared_span_id(trace_id: str, span_id: str) -> str:
    """The id given to the SERVER half of a shared span (see the module docstring)."""
    digest = hashlib.blake2b(f"zipkin-shared:{trace_id}:{span_id}".encode(), digest_size=8).hexdigest()
    return digest if digest != "0" * 16 else "0" * 15 + "1"


# ---- span -> row --------------------------------------------------------------------------

_KINDS = {"CLIENT": "CLIENT", "SERVER": "SERVER", "PRODUCER": "PRODUCER", "CONSUMER": "CONSUMER"}
_OTEL_STATUS = {"OK": "OK", "ERROR": "ERROR", "UNSET": "UNSET"}


def _micros(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    ns = value * 1000
    if not 0 <= ns <= MAX_NS:
        raise ValueError(f"{what} out of range")
    return ns


def _status(attrs: dict[str, Any]) -> tuple[str, str | None]:
    code, message = "UNSET", None
    if "otel.status_code" in attrs:
        code = _OTEL_STATUS.get(str(attrs.pop("otel.status_code")).upper(), "UNSET")
        desc = attrs.pop("otel.status_description", None)
        message = None if desc is None else str(desc)
    if "error" in attrs:
        code = "ERROR"
        err = attrs["error"]
        if err is True or (isinstance(err, str) and err.lower() in ("true", "")):
            del attrs["error"]
        elif message is None:
            message = str(err)
    return code, message or None


def _row(sp: _Span, offset: int, resources: dict[tuple[str | None, str | None], Resource]) -> tuple:
    """One span's row (see ingest/span_rows.py); ValueError when the span cannot be used."""
    tid = _trace_id(sp.traceId)
    sid = _hex_id(sp.id, 16, "id")
    parent = None
    if sp.parentId not in (None, "") and (type(sp.parentId) is not str or sp.parentId.strip("0")):
        parent = _hex_id(sp.parentId, 16, "parentId")
    start = _micros(sp.timestamp, "timestamp")
    dur = _micros(sp.duration, "duration")
    end = None if start is None else min(start + (dur or 0), MAX_NS)

    attrs: dict[str, Any] = {}
    remote = sp.remoteEndpoint
    if remote is not None:
        if remote.serviceName:
            attrs["peer.service"] = remote.serviceName
        if remote.ipv4 or remote.ipv6:
            attrs["network.peer.address"] = remote.ipv4 or remote.ipv6
        if remote.port:
            attrs["network.peer.port"] = remote.port
    local = sp.localEndpoint
    if local is not None and local.port:
        attrs["network.local.port"] = local.port
    if sp.tags:
        attrs.update(sp.tags)
    kind = _KINDS.get((sp.kind or "").upper(), "UNSPECIFIED")
    if sp.kind is None and "span.kind" in attrs:
        if str(attrs["span.kind"]).lower() == "internal":
            kind = "INTERNAL"
        del attrs["span.kind"]
    status, status_msg = _status(attrs)
    if sp.shared and kind == "SERVER":
        attrs["zipkin.shared_span_id"] = sid
        parent, sid = sid, shared_span_id(tid, sid)

    service = local.serviceName if local is not None and local.serviceName else None
    ip = (local.ipv4 or local.ipv6 or None) if local is not None else None
    res = resources.get((service, ip))
    if res is None:
        attrs_res: dict[str, Any] = {} if service is None else {"service.name": service}
        if ip is not None:
            attrs_res["host.ip"] = ip
        res = resources[(service, ip)] = Resource(attrs_res, fallback_host=ip)
    events: list[dict[str, Any]] = [
        {
            "time_ns": _micros(a.timestamp, "annotation timestamp"),
            "name": a.value or "",
            "attributes": {},
            "dropped_attributes_count": 0,
        }
        for a in sp.annotations or ()
    ]
    exc_type, exc_msg = (first_exception(events) or (None, None)) if events else (None, None)
    return (
        tid,
        sid,
        parent,
        None,
        sp.name or "",
        kind,
        None,
        None,
        start,
        end,
        status,
        status_msg,
        dumpb(attrs) if attrs else b"{}",
        dumpb(events) if events else b"[]",
        b"[]",
        None,
        None,
        exc_type,
        exc_msg,
        offset,
        res,
        attrs,
    )


# ---- the reader ---------------------------------------------------------------------------


class _Reader:
    def __init__(self, source: SourceInfo) -> None:
        self.source = source
        self.rows = SpanRows()
        self.rejects: list[Reject] = []
        self.resources: dict[tuple[str | None, str | None], Resource] = {}
        self.index = 0

    def reject(self, offset: int, reason: str, raw: bytes, unit: str = "record") -> None:
        self.rejects.append(Reject(self.source.path, offset, reason, raw, unit))

    def span(self, raw: bytes) -> None:
        self.index += 1
        if raw[:1] != b"{":
            self.reject(self.index, "span is not a JSON object", raw)
            return
        try:
            sp = _SPAN.decode(raw)
            row = _row(sp, self.index, self.resources)
        except (
            msgspec.DecodeError,
            msgspec.ValidationError,
            ValueError,
            OverflowError,
            RecursionError,
        ) as exc:
            self.reject(self.index, reject_reason(exc), raw)
            return
        self.rows.rows.append(row)
        if row[8] is None and sp.duration is not None:  # no timestamp: keep the duration
            self.rows.set_duration(sp.duration * 1000)

    def element(self, el: Element) -> None:
        if el.raw[:1] != b"[":
            self.span(el.raw)
            return
        try:  # a list of traces: this element is one trace's list of spans
            spans = _LIST.decode(el.raw)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
            self.reject(el.offset, f"trace is not readable: {reject_reason(exc)}", el.raw, "byte")
            return
        for raw in spans:
            self.span(bytes(raw))

    def ready(self) -> bool:
        return len(self.rows) >= CHUNK_SPANS or len(self.rejects) >= CHUNK_SPANS

    def flush(self) -> Chunk:
        chunk = Chunk(
            spans=self.rows.to_batch(self.source.source_id) if len(self.rows) else None, rejects=self.rejects
        )
        self.rows = SpanRows()
        self.rejects = []
        return chunk


def read(stream: BinaryIO, source: SourceInfo) -> Iterator[Chunk]:
    """Chunks of span rows (and rejects) from a Zipkin v2 JSON stream; never raises on bad data."""
    rd = _Reader(source)
    items = iter_array(stream, None)
    while True:
        try:
            item = next(items)
        except StopIteration:
            break
        except CORRUPT_ERRORS:  # a compressed input broke off: the spans read before it land, then the error
            if len(rd.rows) or rd.rejects:
                yield rd.flush()
            raise
        except MalformedJSON as exc:
            rd.reject(
                exc.offset, f"malformed JSON, the rest of the input is skipped: {exc.reason}", exc.raw, "byte"
            )
            break
        if isinstance(item, Element):
            rd.element(item)
        else:
            rd.reject(
                item.offset,
                "not a Zipkin v2 list of spans (a JSON object)",
                dumps({k: v.decode("utf-8", "replace")[:200] for k, v in item.members.items()}).encode(),
                "byte",
            )
        if rd.ready():
            yield rd.flush()
    if len(rd.rows) or rd.rejects:
        yield rd.flush()
