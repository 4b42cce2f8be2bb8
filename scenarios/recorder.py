"""The recorder: real OpenTelemetry SDK providers writing OTLP/JSON lines, on a controlled clock.

Each simulated service instance is a `Process` with its own `TracerProvider` and
`LoggerProvider` (the resource is per provider, as in a real deployment). Both use the SDK's
`SimpleSpanProcessor` / `SimpleLogRecordProcessor` in front of exporters that hand every ended
span and emitted record to the recorder, which batches them per resource and writes one
`TracesData` / `LogsData` line per batch, as a Collector's file exporter does behind a batch
processor:

    service code ──► SDK Tracer/Logger ──► Simple*Processor ──► _SpanSink/_LogSink
                                                                   │ batches per resource
                                                                   ▼
                                                traces.jsonl / logs.jsonl (OTLP/JSON)

Nothing reads the wall clock: callers pass every start, end and log timestamp explicitly, and
span and trace ids come from `SeededIdGenerator`, so output is a function of the seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from opentelemetry.sdk._logs import Logger, LoggerProvider, LogRecordLimits, ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.version import __version__ as SDK_VERSION

from scenarios.otlp_json import logs_line, traces_line

__all__ = ["SeededIdGenerator", "Process", "Recorder"]

SCOPE_VERSION = "1.0.0"
_SPAN_LIMITS = SpanLimits(
    max_attributes=128,
    max_events=128,
    max_links=128,
    max_event_attributes=128,
    max_link_attributes=128,
    max_attribute_length=8192,
)
_LOG_LIMITS = LogRecordLimits(max_attributes=128, max_attribute_length=8192)


class SeededIdGenerator(IdGenerator):
    """Trace and span ids from a seeded PRNG (never zero), so a seed fixes every id."""

    def __init__(self, seed: str) -> None:
        self._rng = random.Random(seed)

    def generate_span_id(self) -> int:
        while True:
            value = self._rng.getrandbits(64)
            if value:
                return value

    def generate_trace_id(self) -> int:
        while True:
            value = self._rng.getrandbits(128)
            if value:
                return value

    def is_trace_id_random(self) -> bool:
        return True


@dataclass(frozen=True)
class Process:
    """One running instance of a service (a pod on a host)."""

    service: str
    version: str
    instance: str
    host: str
    tracer: Tracer
    logger: Logger


class _Batches:
    """Per-resource buffers; a full buffer becomes one line."""

    def __init__(self, out: BinaryIO, size: int, encode) -> None:
        self._out = out
        self._size = size
        self._encode = encode
        self._buffers: dict[int, list] = {}
        self.items = 0
        self.lines = 0
        self.bytes = 0

    def add(self, key: int, items: Sequence) -> None:
        buf = self._buffers.setdefault(key, [])
        buf.extend(items)
        self.items += len(items)
        if len(buf) >= self._size:
            self._write(buf)
            self._buffers[key] = []

    def _write(self, items: list) -> None:
        line = self._encode(items)
        self._out.write(line)
        self.lines += 1
        self.bytes += len(line)

    def flush(self) -> None:
        for key in list(self._buffers):
            if self._buffers[key]:
                self._write(self._buffers[key])
            self._buffers[key] = []


class _SpanSink(SpanExporter):
    def __init__(self, recorder: Recorder, key: int) -> None:
        self._recorder = recorder
        self._key = key

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._recorder._on_spans(self._key, spans)
        return SpanExportResult.SUCCESS


class _LogSink(LogRecordExporter):
    def __init__(self, recorder: Recorder, key: int) -> None:
        self._recorder = recorder
        self._key = key

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._recorder._on_logs(self._key, batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Recorder:
    """Creates SDK-backed processes and streams what they emit to two OTLP/JSON line files.

    `keep=True` also keeps every ended span and emitted record in memory (`spans`, `logs`)
    so tests can compare the files with what the SDK recorded.
    """

    def __init__(
        self,
        traces_out: BinaryIO,
        logs_out: BinaryIO,
        seed: str,
        *,
        spans_per_batch: int = 40,
        logs_per_batch: int = 40,
        keep: bool = False,
    ) -> None:
        self._ids = SeededIdGenerator(f"{seed}:ids")
        self._traces = _Batches(traces_out, spans_per_batch, traces_line)
        self._logs = _Batches(logs_out, logs_per_batch, logs_line)
        self._processes: dict[tuple[str, str, str], Process] = {}
        self._providers: list[tuple[TracerProvider, LoggerProvider]] = []
        self.keep = keep
        self.spans: list[ReadableSpan] = []
        self.logs: list[ReadableLogRecord] = []

    def process(self, service: str, version: str, instance: str, host: str) -> Process:
        """The process for (service, version, instance), created on first use."""
        key = (service, version, instance)
        found = self._processes.get(key)
        if found is not None:
            return found
        attrs = {
            "service.name": service,
            "service.namespace": "shop",
            "service.version": version,
            "service.instance.id": instance,
            "host.name": host,
            "k8s.pod.name": instance,
            "deployment.environment.name": "production",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": SDK_VERSION,
        }
        resource = Resource(attrs)
        index = len(self._processes)
        tracer_provider = TracerProvider(
            sampler=ALWAYS_ON,
            resource=resource,
            shutdown_on_exit=False,
            id_generator=self._ids,
            span_limits=_SPAN_LIMITS,
        )
        tracer_provider.add_span_processor(SimpleSpanProcessor(_SpanSink(self, index)))
        logger_provider = LoggerProvider(
            resource=resource, shutdown_on_exit=False, log_record_limits=_LOG_LIMITS
        )
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(_LogSink(self, index)))
        scope = f"shop.{service}"
        proc = Process(
            service=service,
            version=version,
            instance=instance,
            host=host,
            tracer=tracer_provider.get_tracer(scope, SCOPE_VERSION),
            logger=logger_provider.get_logger(scope, SCOPE_VERSION),
        )
        self._processes[key] = proc
        self._providers.append((tracer_provider, logger_provider))
        return proc

    def _on_spans(self, key: int, spans: Sequence[ReadableSpan]) -> None:
        if self.keep:
            self.spans.extend(spans)
        self._traces.add(key, spans)

    def _on_logs(self, key: int, records: Sequence[ReadableLogRecord]) -> None:
        if self.keep:
            self.logs.extend(records)
        self._logs.add(key, records)

    def close(self) -> None:
        """Write what is still buffered and shut the providers down."""
        self._traces.flush()
        self._logs.flush()
        for tracer_provider, logger_provider in self._providers:
            tracer_provider.shutdown()
            logger_provider.shutdown()

    @property
    def span_count(self) -> int:
        return self._traces.items

    @property
    def log_count(self) -> int:
        return self._logs.items

    @property
    def bytes_written(self) -> int:
        return self._traces.bytes + self._logs.bytes
