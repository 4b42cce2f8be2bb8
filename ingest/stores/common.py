"""What every store pull shares: the source string, the pull's options, errors, limits and HTTP.

A *store source* is a string the command line and the MCP tool take where they take paths:

    clickhouse://[user@]host[:port]/db?traces=otel_traces&logs=otel_logs[&secure=1]
    chdb://PATH[?database=otel&traces=otel_traces&logs=otel_logs]
    jaeger+http://host:16686[/base]          (jaeger+https:// for TLS)
    tempo+http://host:3200[/base]            (tempo+https:// for TLS)

`StoreSource.public` is the source as the manifest, messages and progress show it: scheme, host,
port, path and the non-secret query options; never a user name, a password or a header value.

Secrets reach a pull only from the URL, the environment (`CLICKHOUSE_PASSWORD`,
`DCR_STORE_HEADERS`) or `--header`, and every message a pull raises is passed through `scrub`,
which removes each secret it was given.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import IngestError, Kind, PackageError

__all__ = [
    "STORE_SCHEMES",
    "DEFAULT_BUDGET_SPANS",
    "DEFAULT_MAX_SPANS",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_RETRIES",
    "HEADERS_ENV",
    "StoreSource",
    "PullOptions",
    "PullProgress",
    "StoreError",
    "is_store_source",
    "parse_source",
    "parse_header",
    "env_headers",
    "scrub",
    "pull_secrets",
    "scrub_error",
    "check_trace_id",
    "HttpClient",
]

STORE_SCHEMES = ("clickhouse", "chdb", "jaeger+http", "jaeger+https", "tempo+http", "tempo+https")
DEFAULT_BUDGET_SPANS = 5_000_000  # beyond it ClickHouse samples whole traces in the query
DEFAULT_MAX_SPANS = 10_000_000  # the hard cap of one pull (spans; logs have the same cap)
DEFAULT_TIMEOUT_S = 60.0  # one request (HTTP stores), one query's silence (ClickHouse)
DEFAULT_RETRIES = 4  # tries after the first, on 429 and 5xx, with exponential backoff
HEADERS_ENV = "DCR_STORE_HEADERS"  # "Name: value" lines, sent to Jaeger and Tempo

PullProgress = Callable[[int, int, str], None]  # (records pulled, expected or 0, what)


class StoreError(IngestError):
    """A pull that could not be done: unreachable, refused, a bad answer, bad options."""

    kind = Kind.FAILED


def _bad(reason: str) -> StoreError:
    return StoreError(reason, kind=Kind.INVALID_INPUT)


@dataclass(frozen=True)
class StoreSource:
    """A parsed store source. `secrets` are the values no message may show."""

    kind: str  # "clickhouse", "chdb", "jaeger", "tempo"
    public: str  # the source without credentials, as recorded and shown
    host: str = ""
    port: int | None = None
    path: str = ""  # chdb: the data path; HTTP stores: the base path
    secure: bool = False
    verify: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: Mapping[str, str] = field(default_factory=dict)  # the URL's query options

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password,) if s)

    def base_url(self) -> str:
        """An HTTP store's base URL (no credentials, no trailing slash)."""
        scheme = "https" if self.secure else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"{scheme}://{host}{port}{self.path.rstrip('/')}"


def is_store_source(text: str) -> bool:
    """True for a string naming a store (a scheme of STORE_SCHEMES), not a file path."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in STORE_SCHEMES


_CH_OPTIONS = ("traces", "logs", "secure", "verify", "database")


def parse_source(text: str) -> StoreSource:
    """A store source string -> StoreSource (StoreError, invalid_input, when malformed)."""
    if not is_store_source(text):
        raise _bad(f"not a store source: give one of {', '.join(s + '://' for s in STORE_SCHEMES)}")
    scheme = text.partition("://")[0].lower()
    if scheme == "chdb":
        return _parse_chdb(text)
    try:
        u = urllib.parse.urlsplit(text)
        port = u.port
    except ValueError as exc:
        raise _bad(f"bad store URL {_strip_userinfo(text)!r}: {exc}") from None
    if not u.hostname:
        raise _bad(f"bad store URL {_strip_userinfo(text)!r}: no host")
    query = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
    username = urllib.parse.unquote(u.username) if u.username else None
    password = urllib.parse.unquote(u.password) if u.password is not None else None
    host = u.hostname
    if scheme == "clickhouse":
        unknown = sorted(set(query) - set(_CH_OPTIONS))
        if unknown:
            raise _bad(
                f"unknown option {', '.join(unknown)} in {_strip_userinfo(text)!r}: "
                f"the options are {', '.join(_CH_OPTIONS)}"
            )
        secure = _flag(query.get("secure", "0"), "secure")
        verify = _flag(query.get("verify", "1"), "verify")
        database = u.path.strip("/") or query.get("database") or ""
        opts = {k: v for k, v in query.items() if k in ("traces", "logs")}
        if database:
            opts["database"] = database
        port = port or (8443 if secure else 8123)
        public_q = urllib.parse.urlencode(
            {k: query[k] for k in _CH_OPTIONS if k in query and k != "database"}
        )
        public = f"clickhouse://{_host_port(host, port)}/{database}" + (f"?{public_q}" if public_q else "")
        return StoreSource("clickhouse", public, host, port, "", secure, verify, username, password, opts)
    kind, _, transport = scheme.partition("+")
    secure = transport == "https"
    if query:
        raise _bad(f"{kind} sources take no query options (got {', '.join(sorted(query))}); use the flags")
    public = f"{scheme}://{_host_port(host, port)}{u.path.rstrip('/')}"
    return StoreSource(kind, public, host, port, u.path, secure, True, username, password, {})


def _parse_chdb(text: str) -> StoreSource:
    rest = text[len("chdb://") :]
    path, _, q = rest.partition("?")
    path = urllib.parse.unquote(path)
    if not path:
        raise _bad("chdb:// needs the ClickHouse data path: chdb:///var/lib/clickhouse or chdb://./data")
    query = dict(urllib.parse.parse_qsl(q, keep_blank_values=True))
    unknown = sorted(set(query) - {"traces", "logs", "database"})
    if unknown:
        raise _bad(f"unknown option {', '.join(unknown)} in {text!r}: the options are database, traces, logs")
    public = f"chdb://{path}" + (f"?{q}" if q else "")
    return StoreSource("chdb", public, "", None, path, False, True, None, None, query)


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise _bad(f"{name}={value!r}: use {name}=1 or {name}=0")


def _host_port(host: str, port: int | None) -> str:
    h = f"[{host}]" if ":" in host else host
    return f"{h}:{port}" if port else h


def _strip_userinfo(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    netloc, slash, tail = rest.partition("/")
    return f"{scheme}{sep}{netloc.rpartition('@')[2]}{slash}{tail}"


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> (name, value); StoreError naming the header (never its value)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n"):
        raise _bad("a header is 'Name: value' (e.g. 'X-Scope-OrgID: tenant-1')")
    return name, value.strip()


def env_headers(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers of DCR_STORE_HEADERS: one 'Name: value' a line."""
    raw = (os.environ if env is None else env).get(HEADERS_ENV, "")
    return dict(parse_header(line) for line in raw.splitlines() if line.strip())


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret (and its URL-quoted form) replaced by ***."""
    for s in secrets:
        if s and len(s) >= 1:
            for form in {s, urllib.parse.quote(s, safe=""), urllib.parse.quote_plus(s)}:
                text = text.replace(form, "***")
    return text


_HEX = frozenset("0123456789abcdefABCDEF")


def check_trace_id(tid: str) -> str:
    """`tid` if it is a trace id (1 to 32 hex digits), which goes into a URL's path as it is;
    StoreError (invalid_input) naming it otherwise."""
    if not tid or len(tid) > 32 or not set(tid) <= _HEX:
        raise _bad(f"{tid!r} is not a trace id: a trace id is up to 32 hex digits")
    return tid


def pull_secrets(src: StoreSource, opts: PullOptions) -> tuple[str, ...]:
    """Every form of a pull's secrets a message could carry: the password, each header value and
    the token after its scheme word ("Bearer x" -> "x"), and the Basic token of user:password."""
    import base64

    out = list(src.secrets) + list(opts.secrets())
    for value in opts.secrets():
        _, sep, token = value.strip().partition(" ")
        if sep and len(token.strip()) >= 4:
            out.append(token.strip())
    if src.username or src.password:
        basic = base64.b64encode(f"{src.username or ''}:{src.password or ''}".encode()).decode()
        out += [f"Basic {basic}", basic]
    # the longest first: a secret inside another is replaced after the one that holds it
    return tuple(sorted(set(out), key=len, reverse=True))


def scrub_error(exc: PackageError, secrets: Sequence[str]) -> PackageError:
    """`exc` with its reason and hint (and so its message) scrubbed of `secrets`."""
    exc.reason = scrub(exc.reason, secrets)
    exc.hint = scrub(exc.hint, secrets)
    exc.args = (exc.message(str),)
    return exc


@dataclass(frozen=True)
class PullOptions:
    """What to pull and the limits of a pull; times are ns since the epoch, [start, end)."""

    start_ns: int | None = None
    end_ns: int | None = None
    services: tuple[str, ...] = ()
    operation: str | None = None  # Jaeger
    trace_ids: tuple[str, ...] = ()  # Jaeger, Tempo: these traces only
    query: str | None = None  # Tempo: TraceQL
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # HTTP stores
    budget_spans: int = DEFAULT_BUDGET_SPANS
    max_spans: int = DEFAULT_MAX_SPANS
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    search_depth: int = 500  # Jaeger's query.searchDepth, Tempo's limit: traces a search asks for
    logs: bool = True  # ClickHouse: pull the logs table too

    def check(self, kind: str) -> None:
        """StoreError (invalid_input) naming what `kind` needs and did not get."""
        if self.trace_ids and kind in ("jaeger", "tempo"):
            for tid in self.trace_ids:
                check_trace_id(tid)
            return
        if self.start_ns is None or self.end_ns is None:
            raise _bad(
                f"pulling from {kind} needs a start and an end (the whole range to analyse, baseline included)"
            )
        if self.end_ns <= self.start_ns:
            raise _bad("the range's end is not after its start: give an end after the start")
        if self.budget_spans < 1 or self.max_spans < 1:
            raise _bad("the span budget and the cap must be at least 1")

    def secrets(self) -> tuple[str, ...]:
        return tuple(v for v in self.headers.values() if v)


# ---- HTTP (Jaeger, Tempo) ----------------------------------------------------------------------

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class HttpClient:
    """GET with a timeout, and retries with exponential backoff (and Retry-After) on 429 and 5xx
    and on connection failures. Headers are sent, never shown; messages are scrubbed."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout_s: float,
        retries: int,
        secrets: Sequence[str] = (),
        public: str = "",
        basic_auth: tuple[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": "dcr", **headers}
        if basic_auth is not None:
            import base64

            token = base64.b64encode(f"{basic_auth[0]}:{basic_auth[1]}".encode()).decode()
            self.headers.setdefault("Authorization", f"Basic {token}")
        self.timeout_s = timeout_s
        self.retries = retries
        self.secrets = tuple(secrets) + tuple(v for v in headers.values() if v)
        if basic_auth is not None:
            self.secrets += (basic_auth[1], self.headers["Authorization"])
        self.public = public or self.base_url
        self.sleep = sleep
        self.requests = 0
        self.retried = 0
        self.bytes = 0

    @classmethod
    def for_pull(cls, src: StoreSource, opts: PullOptions) -> HttpClient:
        """The client of an HTTP store pull (Jaeger, Tempo): the source's URL and user, the pull's
        headers, timeout and retries, and every form of its secrets scrubbed from messages."""
        auth = (src.username or "", src.password or "") if src.username or src.password else None
        return cls(
            src.base_url(),
            opts.headers,
            timeout_s=opts.timeout_s,
            retries=opts.retries,
            secrets=pull_secrets(src, opts),
            public=src.public,
            basic_auth=auth,
        )

    def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) of GET base+path?params; 404 and other 4xx are answers, not
        errors; StoreError after the retries on 429/5xx or a connection failure."""
        url = self.base_url + path + (f"?{urllib.parse.urlencode(list(params))}" if params else "")
        shown = self.public + path
        delay = 0.5
        attempt = 0
        while True:
            attempt += 1
            self.requests += 1
            retry_after: float | None = None
            try:
                req = urllib.request.Request(url, headers=self.headers, method="GET")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    body = resp.read()
                    self.bytes += len(body)
                    return resp.status, body, dict(resp.headers.items())
            except urllib.error.HTTPError as exc:
                body = exc.read() if exc.fp is not None else b""
                self.bytes += len(body)
                if exc.code not in _RETRY_STATUSES:
                    return exc.code, body, dict(exc.headers.items()) if exc.headers else {}
                why = f"HTTP {exc.code}"
                retry_after = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                why = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
            if attempt > self.retries:
                raise StoreError(
                    scrub(
                        f"{shown}: {why} after {attempt} tries over the timeout of {self.timeout_s:g} s a "
                        "request; check that the store is up and reachable, or allow a longer timeout or more retries",
                        self.secrets,
                    )
                )
            self.retried += 1
            wait = retry_after if retry_after is not None else delay * (1 + random.random() / 4)
            self.sleep(min(wait, 30.0))
            delay = min(delay * 2, 30.0)

    def get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> tuple[int, Any, bytes]:
        status, body, _ = self.get(path, params)
        try:
            doc = json.loads(body) if body.strip() else None
        except ValueError:
            doc = None
        return status, doc, body


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_text(status: int, body: bytes, limit: int = 200) -> str:
    """A store's error answer, short: Jaeger's {"error":{"message"}}, else the text."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict) and err.get("message"):
            return f"HTTP {status}: {str(err['message'])[:limit]}"
        if isinstance(err, str):
            return f"HTTP {status}: {err[:limit]}"
    text = body.decode("utf-8", "replace").strip().splitlines()
    return f"HTTP {status}" + (f": {text[0][:limit]}" if text else "")
