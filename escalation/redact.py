"""Redaction: nothing leaves the machine before this ran over it.

A secret becomes a typed placeholder (`<redacted:jwt>`); `Redactor.counts` records how many
of each kind were removed, never the value. Two sources of rules, applied in order:

1. our own patterns, for what the detector library misses or catches too narrowly: headers
   (authorization, cookie, API-key), passwords in URLs and connection strings, tokens in query
   strings, Google API keys (Gemini, Maps, …), Google OAuth tokens, GCP service-account key
   ids, whole private-key blocks, new-style OpenAI / Anthropic keys, Stripe test and webhook
   keys, mixed-case Slack tokens, GitHub fine-grained PATs, and `name = value` assignments
   whose name says password / secret / token / key;
2. the regex detectors of detect-secrets (AWS, Azure, GitHub, GitLab, JWT, Slack, Stripe,
   OpenAI, SendGrid, Twilio, npm, PyPI, Mailchimp, Discord, Telegram, Square, basic auth).

`redact_mapping` also looks at attribute *names*: a value under a name that says secret,
token, password or key is removed when it looks like a secret (high entropy), and always
when the name says password / secret / cookie / authorization.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Redactor", "KINDS", "placeholder", "shannon_entropy"]

_PH = "<redacted:{}>"
_NOT_PH = r"(?!<redacted:)"


def placeholder(kind: str) -> str:
    return _PH.format(kind)


@dataclass(frozen=True)
class _Rule:
    kind: str
    regex: re.Pattern[str]
    group: int = 0  # the group that is the secret (0: the whole match)


def _r(kind: str, pattern: str, group: int = 0, flags: int = 0) -> _Rule:
    return _Rule(kind, re.compile(pattern, flags), group)


_VAL = r"[^\s\"'<>;,&]+"  # a bare value
_I = re.IGNORECASE

# Order matters: whole blocks and specific formats first, generic keyword rules last.
_OWN_RULES: tuple[_Rule, ...] = (
    _r("private_key", r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----",
       flags=re.S),
    _r("private_key", r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:-]|\\n|\\r)*"),
    _r("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    _r("auth_header", r"\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?((?:(?:bearer|basic|token|digest|negotiate|"
       r"apikey|aws4-hmac-sha256)\s+)?" + _NOT_PH + r"[^\s\"',;]+(?:[ ,][A-Za-z]+=[^\s\"',;]+)*)", 1, _I),
    _r("cookie", r"\b(?:set-)?cookie\b[\"']?\s*[:=]\s*[\"']?(" + _NOT_PH + r"[^\"'\n]+)", 1, _I),
    _r("api_key_header", r"\b(?:x-(?:goog-)?api-key|api-key|x-auth-token|x-access-token|x-csrf-token|"
       r"x-amz-security-token|ocp-apim-subscription-key)\b[\"']?\s*[:=]\s*[\"']?(" + _NOT_PH + _VAL + ")", 1, _I),
    _r("url_password", r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"'<>]+:(" + _NOT_PH + r"[^\s@/\"'<>]+)@", 1, _I),
    _r("connection_string_password", r"(?:^|[;\s\"'])(?:password|pwd)\s*=\s*(" + _NOT_PH + r"[^;\"'\s]+)", 1, _I),
    _r("query_token", r"[?&](?:access_token|id_token|refresh_token|token|api_key|apikey|key|sig|signature|"
       r"x-amz-signature|x-goog-signature|client_secret|secret|password|passwd|auth|session|sessionid|code)="
       r"(" + _NOT_PH + r"[^&\s\"'#<>]+)", 1, _I),
    _r("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    _r("google_oauth_token", r"\bya29\.[0-9A-Za-z_-]{20,}"),
    _r("gcp_service_account_key_id", r"\"private_key_id\"\s*:\s*\"([0-9a-f]{40})\"", 1),
    _r("aws_secret_key", r"\baws_?secret_?(?:access_?)?key(?:_id)?\b[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})",
       1, _I),
    _r("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    _r("openai_key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    _r("stripe_key", r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"),
    _r("stripe_webhook_secret", r"\bwhsec_[0-9A-Za-z]{24,}"),
    _r("slack_token", r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),
    _r("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]+"),
    _r("github_token", r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
    _r("github_token", r"\bgh[pousr]_[A-Za-z0-9_]{30,}"),
    _r("gitlab_token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    _r("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}"),
    _r("secret_assignment", r"\b[\w.-]*(?:passw(?:or)?d|passwd|pwd|secret|client_secret|api[_-]?key|apikey|"
       r"access[_-]?key|private[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|token)\b[\"']?"
       r"\s*[:=]\s*[\"']?(" + _NOT_PH + r"[^\s\"',;&}]{6,})", 1, _I),
)

# detect-secrets regex detectors we trust line by line (class name -> kind, secret group).
_DETECT_SECRETS = {
    "AWSKeyDetector": ("aws_access_key", {1: 1}),  # pattern index 1 has the secret in group 1
    "AzureStorageKeyDetector": ("azure_storage_key", {}),
    "BasicAuthDetector": ("url_password", {0: 1}),
    "DiscordBotTokenDetector": ("discord_token", {}),
    "GitHubTokenDetector": ("github_token", {}),
    "GitLabTokenDetector": ("gitlab_token", {}),
    "JwtTokenDetector": ("jwt", {}),
    "MailchimpDetector": ("mailchimp_key", {}),
    "NpmDetector": ("npm_token", {0: 1}),
    "OpenAIDetector": ("openai_key", {}),
    "PypiTokenDetector": ("pypi_token", {}),
    "SendGridDetector": ("sendgrid_key", {}),
    "SlackDetector": ("slack_token", {}),
    "SquareOAuthDetector": ("square_oauth_secret", {}),
    "StripeDetector": ("stripe_key", {}),
    "TelegramBotTokenDetector": ("telegram_bot_token", {}),
    "TwilioKeyDetector": ("twilio_key", {}),
}


def _library_rules() -> tuple[_Rule, ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    by_name = {cls.__name__: cls for cls in get_mapping_from_secret_type_to_class().values()}
    rules = []
    for name, (kind, groups) in _DETECT_SECRETS.items():
        cls = by_name.get(name)
        for i, regex in enumerate(getattr(cls, "denylist", ()) or ()):
            rules.append(_Rule(kind, regex, groups.get(i, 0)))
    return tuple(rules)


_ALL_RULES: tuple[_Rule, ...] | None = None


def _rules() -> tuple[_Rule, ...]:
    global _ALL_RULES
    if _ALL_RULES is None:
        _ALL_RULES = _OWN_RULES + _library_rules()
    return _ALL_RULES


KINDS = tuple(sorted({r.kind for r in _OWN_RULES} | {k for k, _ in _DETECT_SECRETS.values()}
                     | {"secret_attribute"}))

# attribute names: always secret / secret when the value looks random
_ALWAYS = re.compile(r"(?i)(passw(or)?d|passwd|pwd|secret|cookie|authorization|credential|private[_.-]?key)")
# "key" alone is too broad (lock.key, cache.key, messaging…message.key are identifiers): only keys
# whose name says what secret they are, or an attribute named just "key"
_SECRETISH = re.compile(r"(?i)(token|(api|access|secret|private|signing|encryption|client|auth|master|license)"
                        r"[_.-]?key|apikey|^key$|auth|signature|session)")
_NOT_SECRET_NAME = re.compile(r"(?i)(count|length|size|type|usage|expires|ttl|limit|_ms$|_ns$|_s$|id_name|keyspace)")


def shannon_entropy(s: str) -> float:
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _looks_random(value: str) -> bool:
    v = value.strip()
    if len(v) < 8 or v.startswith("<redacted:") or " " in v:
        return False
    classes = sum(bool(re.search(p, v)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^A-Za-z0-9]"))
    return shannon_entropy(v) >= 3.0 and classes >= 2


class Redactor:
    """Stateful only in its counts: one per bundle, so the bundle knows what was removed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def text(self, text: str) -> str:
        if not text:
            return text
        for rule in _rules():
            text = self._apply(rule, text)
        return text

    def _apply(self, rule: _Rule, text: str) -> str:
        out: list[str] = []
        pos = 0
        for m in rule.regex.finditer(text):
            g = rule.group if rule.group <= (rule.regex.groups or 0) else 0
            start, end = m.span(g)
            if start < 0 or start < pos or text.startswith("<redacted:", start):
                continue
            out.append(text[pos:start])
            out.append(placeholder(rule.kind))
            self.counts[rule.kind] += 1
            pos = end
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def value(self, name: str, value: Any) -> Any:
        """One attribute: name-aware, then the text rules."""
        if isinstance(value, (dict, list)):
            return self.mapping(value) if isinstance(value, dict) else [self.value(name, v) for v in value]
        if not isinstance(value, str):
            return value
        if value and not value.startswith("<redacted:") and not _NOT_SECRET_NAME.search(name):
            if _ALWAYS.search(name) or (_SECRETISH.search(name) and _looks_random(value)):
                kind = "auth_header" if re.search(r"(?i)authorization", name) else (
                    "cookie" if re.search(r"(?i)cookie", name) else "secret_attribute")
                self.counts[kind] += 1
                return placeholder(kind)
        return self.text(value)

    def mapping(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {str(k): self.value(str(k), v) for k, v in attrs.items()}

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))
