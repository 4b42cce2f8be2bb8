"""Redaction: nothing leaves the machine before this ran over it.

A secret becomes a typed placeholder (`<redacted:auth_header>`); `Redactor.counts` records how
many of each kind were removed, never the value. A secret is found two ways:

- by content (`Redactor.text`): our rules, in order, then the regex detectors of detect-secrets
  for the provider key shapes it knows (AWS, Azure, GitHub, GitLab, Slack, Stripe, SendGrid,
  Twilio, npm, PyPI, Mailchimp, Discord, Telegram, Square, IBM, Cloudant, Artifactory, …).
  Our rules cover credentials in every form telemetry carries them:

      Authorization: Basic|Bearer|Digest|Negotiate|AWS4-HMAC-SHA256 …   (header, JSON, escaped JSON)
      … auth header was Basic YWRtaW46…                 a scheme and its credential, no header name
      Cookie: … / Set-Cookie: …                          x-api-key, x-*-token, x-*-secret headers
      postgres|mysql|mongodb+srv|redis|amqp|jdbc:…://user:password@host   user:pw@tcp(host) (Go)
      jdbc:oracle:thin:user/password@host   …;Password=…;   ALTER USER … PASSWORD '…'
      ?token=…&key=…&sig=…&X-Amz-Signature=…             Credential=… Signature=… (SigV4)
      password=… passwd: … "secret": "…" (JSON, YAML, code, escaped JSON)   --password …
      private key blocks (also an excerpt that starts inside one), JWTs, provider key shapes

  A rule whose match could be ordinary text is checked before it fires: `Basic x` only when x
  decodes to `user:password`, `Bearer x` only when x looks like a token (not a word), a
  `password = x` in code not when x is a reference (`os.environ[…]`, `self.password`, `${X}`).
- by name (`Redactor.value`, `Redactor.mapping`): an attribute whose name says it carries a
  credential (`http.request.header.authorization`, `…header.cookie`, `…header.x-api-key`,
  `db.password`, `*.secret`) is replaced whole, whatever its value looks like; a name that says
  token / key / signature only when the value looks random.

Kept on purpose, and tested: trace and span ids, UUIDs, commit and content hashes, timestamps,
ordinary base64 payloads. docs/redaction.md lists both; bench/redaction.py measures the cost.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Redactor", "KINDS", "IP_MODES", "PATH_MODES", "placeholder", "shannon_entropy"]

_PH = "<redacted:{}>"
_NOT_PH = r"(?!<redacted:)"


def placeholder(kind: str) -> str:
    return _PH.format(kind)


@dataclass(frozen=True)
class _Rule:
    kind: str
    regex: re.Pattern[str]
    group: int = 0  # the group that is the secret (0: the whole match)
    check: Callable[[str], bool] | None = None  # the secret group must pass it (a match could be text)
    bounded: bool = False  # the match must not start inside a word (library patterns have no \b)


def _r(
    kind: str, pattern: str, group: int = 0, flags: int = 0, check: Callable[[str], bool] | None = None
) -> _Rule:
    return _Rule(kind, re.compile(pattern, flags), group, check)


# checks ----------------------------------------------------------------------------------------


def _is_basic_credential(token: str) -> bool:
    """`Basic x`: x is base64 of `user:password` (printable, with a colon)."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return ":" in raw and raw.isprintable()


def _is_token(value: str) -> bool:
    """An opaque token, not a word: digits, mixed case or token punctuation in 8+ characters."""
    v = value.rstrip("=")
    if len(v) < 8 or len(set(v)) < 4:
        return False
    return (
        any(c.isdigit() for c in v) or (not v.islower() and not v.isupper()) or any(c in "-._~+/" for c in v)
    )


def _is_digest_credential(params: str) -> bool:
    return re.search(r"(?i)\b(?:response|username)\s*=", params) is not None


# what code and config write where a secret would be: a reference to one, not the secret
_REFERENCE = re.compile(
    r"^(?:\$\{?\w|\{\{?|%\(|%s$|<[\w.-]+>$|\*+$|(?:None|null|nil|undefined|true|false)$"
    r"|(?:[A-Za-z_]+\.)+[A-Za-z_]+$"  # self.password, settings.API_KEY
    r"|[A-Za-z_][\w.]*[(\[]"  # os.environ[…], getenv(…), get_secret(…)
    r"|[A-Z]+(?:_[A-Z]+)+$)"  # PAYMENT_API_KEY: a constant's name
)
# a variable closed by a bracket (`f(token=token)`, `{"X-API-Key": key}`): a reference unless it
# has the digits of a token
_CLOSED_NAME = re.compile(r"^([A-Za-z_][\w.]*)[)\]}]+$")


def _is_literal(value: str) -> bool:
    value = value.rstrip(",;")
    if not any(c.isalnum() for c in value):  # '…', '***': a stand-in, not a value
        return False
    closed = _CLOSED_NAME.match(value)
    if closed and (len(closed.group(1)) < 8 or not any(c.isdigit() for c in closed.group(1))):
        return False
    return _REFERENCE.match(value) is None


_SCHEME_WORD = re.compile(
    r"(?i)^(?:basic|bearer|token|digest|negotiate|ntlm|apikey|aws4-hmac-sha256|hmac-sha256|dpop)\b\s*"
)


def _is_credential(value: str) -> bool:
    """An Authorization value that holds a credential: not a scheme alone (`"Bearer " + token`)
    and not a reference to one (`f"Bearer {API_KEY}"`, `Bearer ${TOKEN}`, `'Bearer %s' % t`)."""
    rest = _SCHEME_WORD.sub("", value.strip(), count=1)
    return bool(rest) and _is_literal(rest)


# rules -----------------------------------------------------------------------------------------

_I = re.IGNORECASE
_VAL = r"[^\s\"'<>;,&\\]+"  # a bare value
# between a name and its value: `name: v`, `name=v`, `"name": "v"`, `"name": ["v"]`, `\"name\": \"v\"`
_SEP = r"(?:\\?[\"'])?\s*(?:=>|:=|[:=])\s*\[?\s*(?:[fFrRbBuU]{0,2}\\?[\"'])?"
# an auth parameter: `response="6629…"`, `Credential=AKID…/aws4_request` (also in escaped JSON)
_PARAM = r"[A-Za-z][\w-]*=(?:\\?\"[^\"\\\n]*\\?\"|[^\s\"',\\]+)"
_SCHEME = r"(?:basic|bearer|token|digest|negotiate|ntlm|apikey|aws4-hmac-sha256|hmac-sha256|dpop)"
_CREDENTIAL = rf"(?:{_SCHEME}\s+)?{_NOT_PH}(?:{_PARAM}(?:\s*,\s*{_PARAM})*|[^\s\"',;\\]+)"
# a Cookie / Set-Cookie value: `a=1; b="2"`, `sid=…; Path=/; HttpOnly` (RFC 6265: no spaces inside a
# value), else one bare token
_COOKIE_PAIR = r"[^\s=;,\"'\\]+(?:=(?:\"[^\"\n]*\"|[^\s;,\"'\\]*))?"
_COOKIE = rf"(?:{_COOKIE_PAIR}(?:\s*;\s*{_COOKIE_PAIR})*)"
# names whose value is a secret in `name = value` text
_SECRET_NAME = (
    r"\b[\w.-]*(?:passw(?:or)?d|passwd|passphrase|secret|token|credentials?|apikey|"
    r"(?:api|access|secret|private|signing|encryption|master|client)[_-]?key)\b"
)
_PEM = r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
_PEM_END = r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"

# Order matters: whole blocks and headers with their names first, then schemes and connection
# strings, then provider key shapes, generic `name = value` rules last.
_OWN_RULES: tuple[_Rule, ...] = (
    _r("private_key", _PEM + r".*?" + _PEM_END, flags=re.S),
    _r("private_key", _PEM + r"(?:[A-Za-z0-9+/=\s:-]|\\n|\\r)*"),
    # an excerpt that starts inside a key block: the base64 lines before the END line (anchored at
    # the start of a run of those characters, so a long run without END costs one scan)
    _r("private_key", r"(?<![A-Za-z0-9+/=\s\"'|>\\,])[A-Za-z0-9+/=\s\"'|>\\,]{40,}" + _PEM_END),
    _r("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    _r(
        "auth_header", r"\b(?:proxy-)?authorization\b" + _SEP + "(" + _CREDENTIAL + ")", 1, _I, _is_credential
    ),
    _r("cookie", r"\b(?:set-)?cookie\b" + _SEP + "(" + _NOT_PH + _COOKIE + ")", 1, _I),
    # AWS SigV4 (header and presigned URL), GCS signed URLs, webhook signatures
    _r(
        "signature",
        r"(?<![\w-])(?:x-amz-|x-goog-)?(?:credential|signature)\s*=\s*("
        + _NOT_PH
        + r"[A-Za-z0-9/+=%_.-]{16,})",
        1,
        _I,
    ),
    _r(
        "api_key_header",
        r"\b(?:x-(?:[a-z0-9]+-)*(?:api-?key|token|secret|signature|password)|api-key|apikey|"
        r"ocp-apim-subscription-key)\b" + _SEP + "(" + _NOT_PH + _VAL + ")",
        1,
        _I,
        _is_literal,
    ),
    # a scheme and its credential in free text ("auth header was Basic YWRt…")
    _r(
        "auth_header",
        r"\bbasic\s+(" + _NOT_PH + r"[A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])",
        1,
        _I,
        _is_basic_credential,
    ),
    _r("auth_header", r"\bbearer\s+(" + _NOT_PH + r"[A-Za-z0-9._~+/-]{8,}=*)", 1, _I, _is_token),
    _r(
        "auth_header",
        r"\b(?:negotiate|ntlm|kerberos)\s+(" + _NOT_PH + r"[A-Za-z0-9+/]{16,}={0,2})",
        1,
        _I,
        _is_token,
    ),
    _r(
        "auth_header",
        r"\bdigest\s+(" + _NOT_PH + _PARAM + r"(?:\s*,\s*" + _PARAM + ")+)",
        1,
        _I,
        _is_digest_credential,
    ),
    # user:password@ in URLs and DSNs of every scheme; the password may hold '@' (the last one ends it)
    _r(
        "url_password",
        r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"'<>]*:(" + _NOT_PH + r"[^\s/?#\"'<>]+)@",
        1,
        _I,
        _is_literal,
    ),
    _r("url_password", r"(?<![\w/])[\w.%+-]+:(" + _NOT_PH + r"[^\s/\"'<>()]+)@(?:tcp6?|udp|unix)\(", 1),
    _r("url_password", r"\bjdbc:oracle:[a-z]+:[^\s/@\"':]+/(" + _NOT_PH + r"[^\s@\"']+)@", 1, _I),
    _r(
        "connection_string_password",
        r"(?:^|[;\s\"'])(?:password|passwd|pwd)\s*=\s*(" + _NOT_PH + r"(?![fFrRbBuU]{1,2}[\"'])[^;\"'\s]+)",
        1,
        _I,
        _is_literal,
    ),
    _r(
        "sql_password",
        r"\b(?:password|identified\s+by)\s+(['\"])(" + _NOT_PH + r"(?:(?!\1)[^\\\n]|\\.)+)\1",
        2,
        _I,
    ),
    _r(
        "query_token",
        r"[?&](?:access_token|id_token|refresh_token|token|api_key|apikey|key|sig|signature|"
        r"x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|"
        r"client_secret|secret|password|passwd|pwd|pass|auth|jwt|session|sessionid|sessiontoken|"
        r"private_token|code)=(" + _NOT_PH + r"[^&\s\"'#<>\\]+)",
        1,
        _I,
    ),
    _r(
        "cli_secret",
        r"(?<![\w-])--?(?:password|passwd|pass|secret|token|api-?key|access-token|auth-token|"
        r"client-secret)(?:=|\s+)(?:[\"'])?(" + _NOT_PH + r"[^\s\"']+)",
        1,
        _I,
        _is_literal,
    ),
    _r("cli_secret", r"\bcurl\b[^\n]*?\s(?:-u|--user)\s+[\"']?[^\s:\"']*:(" + _NOT_PH + r"[^\s\"']+)", 1),
    _r("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    _r("google_oauth_token", r"\bya29\.[0-9A-Za-z_-]{20,}"),
    _r("gcp_service_account_key_id", r"\"private_key_id\"\s*:\s*\"([0-9a-f]{40})\"", 1),
    _r(
        "aws_secret_key", r"\baws_?secret_?(?:access_?)?key(?:_id)?\b" + _SEP + r"([A-Za-z0-9/+=]{40})", 1, _I
    ),
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
    # `name = value` in text, JSON, YAML and code: a quoted value whole (it may hold spaces), else a bare one
    _r(
        "secret_assignment",
        _SECRET_NAME + r"(?:\\?[\"'])?\s*(?:=>|:=|[:=])\s*\[?\s*(\\?[\"'])(" + _NOT_PH + r"(?:(?!\1).)+?)\1",
        2,
        _I,
        _is_literal,
    ),
    _r("secret_assignment", _SECRET_NAME + _SEP + "(" + _NOT_PH + r"[^\s\"',;&}\\]{6,})", 1, _I, _is_literal),
)

# detect-secrets' regex detectors (its denylist patterns, run here over the whole text):
# class name -> (kind, {pattern index: secret group}).
# Not taken: KeywordDetector and the entropy detectors (the rules above, by name and by shape),
# PrivateKeyDetector (whole blocks above), IPPublicDetector (addresses are evidence).
_DETECT_SECRETS = {
    "AWSKeyDetector": ("aws_access_key", {1: 1}),  # pattern index 1 has the secret in group 1
    "ArtifactoryDetector": ("artifactory_token", {}),
    "AzureStorageKeyDetector": ("azure_storage_key", {}),
    "BasicAuthDetector": ("url_password", {0: 1}),
    "CloudantDetector": ("cloudant_key", {0: 1, 1: 1, 2: 1, 3: 1}),
    "DiscordBotTokenDetector": ("discord_token", {}),
    "GitHubTokenDetector": ("github_token", {}),
    "GitLabTokenDetector": ("gitlab_token", {}),
    "IbmCloudIamDetector": ("ibm_cloud_iam_key", {0: 1}),
    "IbmCosHmacDetector": ("ibm_cos_hmac_key", {0: 1}),
    "JwtTokenDetector": ("jwt", {}),
    "MailchimpDetector": ("mailchimp_key", {}),
    "NpmDetector": ("npm_token", {0: 1}),
    "OpenAIDetector": ("openai_key", {}),
    "PypiTokenDetector": ("pypi_token", {}),
    "SendGridDetector": ("sendgrid_key", {}),
    "SlackDetector": ("slack_token", {}),
    "SoftlayerDetector": ("softlayer_key", {0: 1, 1: 1}),
    "SquareOAuthDetector": ("square_oauth_secret", {}),
    "StripeDetector": ("stripe_key", {}),
    "TelegramBotTokenDetector": ("telegram_bot_token", {}),
    "TwilioKeyDetector": ("twilio_key", {}),
}
# Artifactory's second pattern (`AP` + a hex digit + 8 letters or digits between spaces) matches
# ordinary identifiers and base64 fragments; its `AKC…` API keys are kept.
_SKIP_PATTERNS = {("ArtifactoryDetector", 1)}


def _library_rules() -> tuple[_Rule, ...]:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    # the library's return type names an unbound TypeVar: the checker is told what it holds, classes
    plugins: dict[str, type] = get_mapping_from_secret_type_to_class()
    by_name = {cls.__name__: cls for cls in plugins.values()}
    rules = []
    for name, (kind, groups) in _DETECT_SECRETS.items():
        plugin = by_name.get(name)
        for i, regex in enumerate(getattr(plugin, "denylist", ()) or ()):
            if (name, i) not in _SKIP_PATTERNS:
                # a URL's password may be a reference in code (`postgres://{user}:{password}@`)
                check = _is_literal if kind == "url_password" else None
                rules.append(_Rule(kind, regex, groups.get(i, 0), check, bounded=True))
    return tuple(rules)


_ALL_RULES: tuple[_Rule, ...] | None = None


def _rules() -> tuple[_Rule, ...]:
    global _ALL_RULES
    if _ALL_RULES is None:
        _ALL_RULES = _OWN_RULES + _library_rules()
    return _ALL_RULES


KINDS = tuple(
    sorted(
        {r.kind for r in _OWN_RULES}
        | {k for k, _ in _DETECT_SECRETS.values()}
        | {"secret_attribute", "api_key_header", "ip_address", "local_path"}
    )
)

# Personal data beside the secrets (DCR_REDACT_IPS, DCR_REDACT_PATHS):
#   IPs    "clients" (default): the value of an attribute that names a client's address
#          (client.address, http.client_ip, source.address, x-forwarded-for, …) and every
#          internet (global) address in any text; private, loopback and documentation addresses
#          are infrastructure and stay. "all": every IPv4/IPv6 address. "off": none.
#   paths  "home" (default): this machine's home directory becomes "~" (it names the user).
#          "all": also the local folders the bundle names (the sources' folders, the code roots,
#          DCR_HOME) become "<local>". "off": none.
IP_MODES = ("clients", "all", "off")
PATH_MODES = ("home", "all", "off")
_CLIENT_ADDRESS = re.compile(
    r"(?i)(^|[._-])(client[._]?(address|addr|ip)|source\.address|remote[._]?(addr|address|ip)|"
    r"x-forwarded-for|x-real-ip|true-client-ip|cf-connecting-ip|forwarded|user\.ip|end_user\.ip)$"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)


def _mode(value: str | None, env: str, modes: tuple[str, ...]) -> str:
    got = (value or os.environ.get(env) or modes[0]).strip().lower()
    return got if got in modes else modes[0]


# attribute names: always secret / secret when the value looks random
_ALWAYS = re.compile(
    r"(?i)(passw(or)?d|passwd|passphrase|pwd|secret|cookie|authorization|credential|"
    r"private[_.-]?key)"
)
# a request or response header that carries a credential (OTel: http.request.header.<name>)
_SECRET_HEADER = re.compile(r"(?i)header[._-][\w.-]*(api[_-]?key|token|secret|signature|session|auth)")
# "key" alone is too broad (lock.key, cache.key, messaging…message.key are identifiers): only keys
# whose name says what secret they are, or an attribute named just "key"
_SECRETISH = re.compile(
    r"(?i)(token|(api|access|secret|private|signing|encryption|client|auth|master|license)"
    r"[_.-]?key|apikey|^key$|auth|signature|session)"
)
# names of something about a secret, not the secret: k8s.secret.name, vault.secret.path, ….secret.arn
_NOT_SECRET_NAME = re.compile(
    r"(?i)(count|length|size|type|usage|expires|ttl|limit|_ms$|_ns$|_s$|id_name|keyspace|"
    r"[._](name|ref|path|file|arn|version)$)"
)


def _name_kind(name: str) -> str:
    if re.search(r"(?i)authorization", name):
        return "auth_header"
    if re.search(r"(?i)cookie", name):
        return "cookie"
    return "api_key_header" if _SECRET_HEADER.search(name) else "secret_attribute"


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
    """Stateful only in its counts: one per bundle, so the bundle knows what was removed.

    `ips` and `paths` (default: DCR_REDACT_IPS, DCR_REDACT_PATHS, else "clients" and "home"):
    what personal data beside the secrets is masked; `local_paths`: the folders of this machine
    the "all" paths mode masks."""

    def __init__(
        self, *, ips: str | None = None, paths: str | None = None, local_paths: Sequence[str] = ()
    ) -> None:
        self.counts: Counter[str] = Counter()
        self.ips = _mode(ips, "DCR_REDACT_IPS", IP_MODES)
        self.paths = _mode(paths, "DCR_REDACT_PATHS", PATH_MODES)
        prefixes: list[tuple[str, str]] = []
        if self.paths == "all":
            prefixes += [(str(p).rstrip("/"), "<local>") for p in local_paths if len(str(p).rstrip("/")) > 1]
        if self.paths != "off":
            home = os.path.expanduser("~").rstrip("/")
            if len(home) > 1 and home != "~":
                prefixes.append((home, "~"))
        prefixes.sort(key=lambda p: -len(p[0]))  # the longest first: a code root inside the home
        self._paths = [(re.compile(re.escape(p) + r"(?![\w.-])"), mark) for p, mark in dict(prefixes).items()]

    def text(self, text: str) -> str:
        if not text:
            return text
        for rule in _rules():
            text = self._apply(rule, text)
        if self.ips != "off":
            text = self._ips(text)
        for rx, mark in self._paths:
            text, n = rx.subn(mark, text)
            if n:
                self.counts["local_path"] += n
        return text

    def _ips(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            try:
                ip = ipaddress.ip_address(m.group(0))
            except ValueError:
                return m.group(0)
            if self.ips == "clients" and not ip.is_global:
                return m.group(0)
            self.counts["ip_address"] += 1
            return placeholder("ip_address")

        text = _IPV4.sub(sub, text)
        return _IPV6.sub(sub, text) if ":" in text else text

    def _apply(self, rule: _Rule, text: str) -> str:
        out: list[str] = []
        pos = 0
        for m in rule.regex.finditer(text):
            g = rule.group if rule.group <= (rule.regex.groups or 0) else 0
            start, end = m.span(g)
            if start < 0 or start < pos or text.startswith("<redacted:", start):
                continue
            if rule.bounded and m.start() > 0 and text[m.start() - 1].isalnum() and text[m.start()].isalnum():
                continue  # the tail of a longer word or base64 run, not a key that starts here
            if rule.check is not None and not rule.check(m.group(g)):
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
        if (
            value
            and self.ips != "off"
            and _CLIENT_ADDRESS.search(name)
            and not value.startswith("<redacted:")
        ):
            self.counts["ip_address"] += 1
            return placeholder("ip_address")
        if value and not value.startswith("<redacted:") and not _NOT_SECRET_NAME.search(name):
            if (
                _ALWAYS.search(name)
                or _SECRET_HEADER.search(name)
                or (_SECRETISH.search(name) and _looks_random(value))
            ):
                kind = _name_kind(name)
                self.counts[kind] += 1
                return placeholder(kind)
        return self.text(value)

    def mapping(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {str(k): self.value(str(k), v) for k, v in attrs.items()}

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))
