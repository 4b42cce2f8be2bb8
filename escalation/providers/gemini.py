"""Gemini through the real `google-genai` client.

- key: GEMINI_API_KEY, else GOOGLE_API_KEY (MissingApiKey names them otherwise);
- model: DCR_MODEL, default `models.DEFAULT_MODEL`;
- DCR_GEMINI_BASE_URL points the client at a gateway, a proxy or the test stub (http_options);
- system instruction, JSON structured output with `prompts.RESPONSE_SCHEMA`, thinking effort
  from depth_level (`models.thinking_config`), the code-execution tool when asked;
- a timeout per call (the request's `timeout_s`); retries on 429 and 5xx with exponential
  backoff and jitter (DCR_GEMINI_RETRIES, default 4; DCR_GEMINI_BACKOFF_S, default 1.0),
  waiting at least what the server asks for (RetryInfo.retryDelay or Retry-After);
- nothing past the request's `deadline`: an attempt's timeout ends there, and a retry whose
  backoff would end past it is not made (ProviderTimeout at once);
- the request's `functions` (escalation/functions.py: query_spans, get_trace) offered as function
  declarations: when the model calls them, they run here, their (redacted, cut) results go back
  in the same turn with the model's own parts (thought signatures kept), until it answers; past
  the runner's budget or MAX_FUNCTION_ROUNDS the last round may not call (mode NONE).

The SDK's own retries are off (no retry_options), so that this loop is the only one and
honours the server's hint. google-genai and httpx errors are mapped here, where they enter.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable
from typing import Any

from escalation.errors import MalformedReply, MissingApiKey, ProviderError, ProviderTimeout
from escalation.models import model_info, selected_model, thinking_config
from escalation.providers.base import ProviderReply, ProviderRequest, Usage

__all__ = ["GeminiProvider", "api_key", "retry_hint_s", "map_genai_error", "request_body"]

API_VERSION = "v1beta"  # responseSchema, thinkingConfig and tools are documented on v1beta
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
MAX_DELAY_S = 60.0
MAX_FUNCTION_ROUNDS = 6  # model turns that may call functions before one that must answer
_OUT_OF_TIME = (
    "no time left for Gemini to answer within the time budget: raise the time budget or lower the depth"
)


def api_key() -> str | None:
    return os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or None


_DURATION = re.compile(r"^\s*([0-9.]+)\s*s\s*$")


def retry_hint_s(exc: BaseException) -> float | None:
    """The server's retry hint: google.rpc.RetryInfo.retryDelay ("2s", "0.5s"), else Retry-After."""
    details = getattr(exc, "details", None)
    items: object = []  # JSON from the server: checked below
    if isinstance(details, dict):
        err = details.get("error", details)
        items = err.get("details", []) if isinstance(err, dict) else []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("@type", "")).endswith("google.rpc.RetryInfo"):
            m = _DURATION.match(str(item.get("retryDelay", "")))
            if m:
                return float(m.group(1))
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        value = headers.get("retry-after")
        if value:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Timeout and transport error classes of whichever HTTP library the SDK uses (httpx or httpx2)."""
    import importlib

    timeouts: list[type[BaseException]] = []
    transport: list[type[BaseException]] = []
    for name in ("httpx", "httpx2"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(mod.TimeoutException)
        transport.append(mod.HTTPError)
    return tuple(timeouts), tuple(transport)


def map_genai_error(exc: BaseException, model: str, attempts: int) -> ProviderError:
    """One ProviderError (with the fix in its message) for any error of the SDK or its transport."""
    from google.genai import errors as gerrors

    timeouts, transport = _transport_errors()
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, timeouts):
        return ProviderTimeout(
            f"Gemini did not answer within the timeout ({type(exc).__name__}): raise "
            "the time budget or lower the depth",
            attempts=attempts,
        )
    if isinstance(exc, (gerrors.UnknownApiResponseError, json.JSONDecodeError)):
        return MalformedReply(f"Gemini's reply was not valid JSON: {str(exc)[:160]}", attempts=attempts)
    if isinstance(exc, gerrors.APIError):
        code = int(exc.code or 0)
        msg = (exc.message or str(exc))[:200]
        if code in (401, 403):
            hint = "the key was refused: check GEMINI_API_KEY"
        elif code == 404:
            hint = f"model {model!r} not found: set DCR_MODEL to an available model"
        elif code == 429:
            hint = "rate limited or out of quota: wait, or check the quota of the key"
        elif code >= 500:
            hint = "the service failed: try again later"
        else:
            hint = "the request was rejected"
        return ProviderError(
            f"Gemini error {code} after {attempts} attempt(s): {hint} ({msg})", status=code, attempts=attempts
        )
    if isinstance(exc, transport):
        return ProviderError(
            f"cannot reach Gemini ({type(exc).__name__}: {exc}): check the network or DCR_GEMINI_BASE_URL",
            attempts=attempts,
        )
    return ProviderError(f"Gemini call failed: {type(exc).__name__}: {exc}", attempts=attempts)


def _parse_json(text: str) -> dict[str, Any]:
    t = text.strip()
    if t.startswith("```"):
        t = re.sub(r"^```(?:json)?\s*|\s*```$", "", t)
    value = json.loads(t)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


class GeminiProvider:
    name = "gemini"

    def __init__(
        self,
        model: str | None = None,
        *,
        key: str | None = None,
        base_url: str | None = None,
        retries: int | None = None,
        backoff_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.model = model or selected_model()
        self.key = key or api_key()
        if not self.key:
            raise MissingApiKey("gemini")
        self.base_url = base_url or os.environ.get("DCR_GEMINI_BASE_URL") or None
        self.retries = int(os.environ.get("DCR_GEMINI_RETRIES", "4")) if retries is None else retries
        self.backoff_s = (
            float(os.environ.get("DCR_GEMINI_BACKOFF_S", "1.0")) if backoff_s is None else backoff_s
        )
        self.sleep = sleep
        self.sleeps: list[float] = []  # every backoff waited, for the ledger and tests
        self._clients: dict[int, Any] = {}

    def _client(self, timeout_s: float) -> Any:
        from google import genai
        from google.genai import types

        ms = max(1000, int(timeout_s * 1000))
        if ms not in self._clients:
            self._clients[ms] = genai.Client(
                api_key=self.key,
                http_options=types.HttpOptions(base_url=self.base_url, api_version=API_VERSION, timeout=ms),
            )
        return self._clients[ms]

    def _contents(self, request: ProviderRequest) -> list[Any]:
        from google.genai import types

        return [types.Content(role=m.role, parts=[types.Part(text=m.text)]) for m in request.messages]

    def config(self, request: ProviderRequest) -> Any:
        from google.genai import types

        declarations = request.functions.declarations if request.functions is not None else []
        tool = types.Tool(
            code_execution=types.ToolCodeExecution() if request.code_execution else None,
            function_declarations=[types.FunctionDeclaration.model_validate(d) for d in declarations] or None,
        )
        tools: list[types.ToolUnion] | None = (
            [tool] if tool.code_execution is not None or tool.function_declarations else None
        )
        tool_config = None
        if declarations:
            tool_config = types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(
                    mode=types.FunctionCallingConfigMode.AUTO
                ),
                # code execution (a built-in tool) and our functions in one turn
                include_server_side_tool_invocations=True if request.code_execution else None,
            )
        return types.GenerateContentConfig(
            system_instruction=request.system_instruction,
            response_mime_type="application/json",
            response_schema=request.response_schema,
            thinking_config=types.ThinkingConfig.model_validate(
                thinking_config(self.model, request.depth_level)
            ),
            max_output_tokens=model_info(self.model).max_output_tokens,
            tools=tools,
            tool_config=tool_config,
            # the calls are ours to run (through the sealed dataset session), never the SDK's
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
            if declarations
            else None,
        )

    def _with_retries(
        self, call: Callable[[float | None], Any], deadline: float | None = None
    ) -> tuple[Any, int]:
        """`call(seconds left before the deadline, or None)`, retried; (its result, attempts)."""
        from google.genai import errors as gerrors

        attempt = 0
        while True:
            attempt += 1
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ProviderTimeout(_OUT_OF_TIME, attempts=attempt - 1)
            try:
                return call(left), attempt
            except gerrors.APIError as exc:
                if int(exc.code or 0) not in RETRYABLE or attempt > self.retries:
                    raise map_genai_error(exc, self.model, attempt) from None
                backoff = min(MAX_DELAY_S, self.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                hint = retry_hint_s(exc)
                delay = min(MAX_DELAY_S, max(backoff, hint)) if hint is not None else backoff
                self._pause(delay, deadline, exc, attempt)
            except Exception as exc:
                timeouts, transport = _transport_errors()
                # a refused or reset connection is worth another try; a timeout already spent the budget
                if isinstance(exc, transport) and not isinstance(exc, timeouts) and attempt <= self.retries:
                    delay = min(MAX_DELAY_S, self.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
                    self._pause(delay, deadline, exc, attempt)
                    continue
                raise map_genai_error(exc, self.model, attempt) from None

    def _pause(self, delay: float, deadline: float | None, exc: BaseException, attempt: int) -> None:
        """The backoff before the next attempt; ProviderTimeout when it would end past the deadline."""
        if deadline is not None and time.monotonic() + delay >= deadline:
            raise ProviderTimeout(
                f"{_OUT_OF_TIME} (the last attempt: {map_genai_error(exc, self.model, attempt)}; "
                f"the next would start in {delay:.1f} s)",
                attempts=attempt,
            ) from None
        self.sleeps.append(delay)
        self.sleep(delay)

    def generate(self, request: ProviderRequest) -> ProviderReply:
        from google.genai import types

        client = self._client(request.timeout_s)
        config = self.config(request)
        contents = self._contents(request)
        functions = request.functions
        used = [0, 0, 0]  # prompt, candidates and thoughts tokens over the rounds
        attempts = 0

        def attempt(left: float | None) -> Any:
            cfg = config
            if left is not None and left < request.timeout_s:  # this attempt ends at the deadline
                cfg = config.model_copy(
                    update={"http_options": types.HttpOptions(timeout=max(1, int(left * 1000)))}
                )
            return client.models.generate_content(model=self.model, contents=contents, config=cfg)

        # a turn: the model answers, or calls functions; their results go back in the same turn
        # until it answers (at most the runner's budget of calls, then one round that may not call)
        for round_ in range(MAX_FUNCTION_ROUNDS + 1):
            response, n = self._with_retries(attempt, request.deadline)
            attempts += n
            um = response.usage_metadata
            for i, key in enumerate(("prompt_token_count", "candidates_token_count", "thoughts_token_count")):
                used[i] += int(getattr(um, key, 0) or 0)
            calls = _function_calls(response)
            if not calls or functions is None:
                break
            contents.append(response.candidates[0].content)  # as sent: thought signatures kept
            parts = [
                types.Part(
                    function_response=types.FunctionResponse(
                        id=fc.id, name=fc.name, response=functions(str(fc.name), dict(fc.args or {}))
                    )
                )
                for fc in calls
            ]
            contents.append(types.Content(role="user", parts=parts))
            if functions.spent or round_ + 1 >= MAX_FUNCTION_ROUNDS:  # the next round answers
                config = config.model_copy(
                    update={
                        "tool_config": types.ToolConfig(
                            function_calling_config=types.FunctionCallingConfig(
                                mode=types.FunctionCallingConfigMode.NONE
                            )
                        )
                    }
                )
        calls_made = tuple(c.to_dict() for c in getattr(functions, "calls", []))
        text = _response_text(response)
        try:
            analysis = _parse_json(text)
        except ValueError:
            raise MalformedReply(
                f"Gemini's answer is not the JSON the schema asks for: {text[:120]!r}", attempts=attempts
            ) from None
        return ProviderReply(
            text,
            analysis,
            Usage(*used),
            getattr(response, "model_version", None) or self.model,
            checked_by_model=True,
            attempts=attempts,
            function_calls=calls_made,
        )

    def count_tokens(self, request: ProviderRequest) -> int | None:
        """countTokens over the system instruction and the messages (the Gemini API counts contents only)."""
        from google.genai import types

        client = self._client(min(request.timeout_s, 60.0))
        contents = [types.Content(role="user", parts=[types.Part(text=request.system_instruction)])]
        contents += self._contents(request)
        response, _ = self._with_retries(
            lambda _: client.models.count_tokens(model=self.model, contents=contents)
        )
        return int(response.total_tokens or 0)

    def count_text(self, text: str, timeout_s: float = 60.0) -> int:
        from google.genai import types

        client = self._client(timeout_s)
        contents = [types.Content(role="user", parts=[types.Part(text=text)])]
        response, _ = self._with_retries(
            lambda _: client.models.count_tokens(model=self.model, contents=contents)
        )
        return int(response.total_tokens or 0)


def request_body(request: ProviderRequest, model: str | None = None) -> dict[str, Any]:
    """The exact generateContent REST body the client would send (for --dry-run), and its path.

    Built by the SDK's own converter with a placeholder key, so it contacts nothing and needs
    no key; the stub-server tests check that it equals what the client really sends.
    """
    from google import genai
    from google.genai import _common, types
    from google.genai import models as gmodels

    model = model or selected_model()
    prov = GeminiProvider.__new__(GeminiProvider)
    prov.model = model
    client = genai.Client(
        api_key="dry-run-no-key",
        http_options=types.HttpOptions(base_url="http://127.0.0.1:9", api_version=API_VERSION),
    )
    params = types._GenerateContentParameters(
        model=model, contents=prov._contents(request), config=prov.config(request)
    )
    body = gmodels._GenerateContentParameters_to_mldev(client._api_client, params, None, params)
    url = body.pop("_url", {})
    body.pop("config", None)
    body = _common.encode_unserializable_types(_common.convert_to_dict(body))
    return {
        "method": "POST",
        "path": f"{API_VERSION}/{url.get('model', 'models/' + model)}:generateContent",
        "body": body,
    }


def _function_calls(response: Any) -> list[Any]:
    """The function calls of the first candidate's answer (none: it answered)."""
    cands = getattr(response, "candidates", None) or []
    content = getattr(cands[0], "content", None) if cands else None
    parts = getattr(content, "parts", None) or []
    return [p.function_call for p in parts if getattr(p, "function_call", None) is not None]


def _response_text(response: Any) -> str:
    """The text parts of the first candidate (code-execution parts are left out)."""
    cands = getattr(response, "candidates", None) or []
    if not cands:
        feedback = getattr(response, "prompt_feedback", None)
        raise MalformedReply(f"Gemini returned no answer (prompt feedback: {feedback})")
    content = getattr(cands[0], "content", None)
    parts = getattr(content, "parts", None) or []
    texts = [p.text for p in parts if getattr(p, "text", None) and not getattr(p, "thought", False)]
    if not texts:
        raise MalformedReply(
            f"Gemini's answer has no text (finish reason {getattr(cands[0], 'finish_reason', None)})"
        )
    return texts[-1] if len(texts) > 1 and texts[-1].lstrip().startswith("{") else "".join(texts)
