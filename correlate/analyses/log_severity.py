"""Severity read from a log line's text, for records that carry no severity field.

Container stdout, syslog files and many shippers keep the level only inside the text:

    17:25:34.987 ERROR s.s.SecurityServiceImpl#119 TraceID: … [check][…]
    E0412 10:01:02.123456   1 reflector.go:138] failed to list …
    {"level":"warn","msg":"retrying"}
    level=error msg="dial tcp 10.0.0.7:5432: connect: connection refused"
    Traceback (most recent call last):
        at com.example.Foo.bar(Foo.java:42)

In order: a level word among the first tokens (or a `level=`/`"level":` field, or a klog
letter) names the level; else a stack-trace line or an exception class name means ERROR; else
nothing is known (0). A level word wins over an exception name, so "INFO retried after
TimeoutException" stays INFO. Numbers are OTLP severity numbers (INFO 9, WARN 13, ERROR 17,
FATAL 21).
"""

from __future__ import annotations

import re

__all__ = ["infer_severity", "effective_severity", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]

TRACE, DEBUG, INFO, WARN, ERROR, FATAL = 1, 5, 9, 13, 17, 21

_WORDS = {
    "trace": TRACE,
    "debug": DEBUG,
    "dbg": DEBUG,
    "fine": DEBUG,
    "finer": TRACE,
    "finest": TRACE,
    "info": INFO,
    "information": INFO,
    "notice": INFO + 1,
    "warn": WARN,
    "warning": WARN,
    "error": ERROR,
    "err": ERROR,
    "severe": ERROR,
    "fatal": FATAL,
    "critical": FATAL,
    "crit": FATAL,
    "panic": FATAL,
    "emerg": FATAL,
    "emergency": FATAL,
    "alert": FATAL,
}
_HEAD_CHARS = 96  # a level word counts only near the start of the line
_FIELD = re.compile(r"""(?i)["']?(?:level|severity|lvl|loglevel|log\.level)["']?\s*[=:]\s*["']?([a-z]+)""")
_HEAD_WORD = re.compile(r"(?<![\w.-])([A-Za-z]{3,11})(?![\w-])")
_KLOG = re.compile(r"^([IWEF])\d{4} \d{2}:\d{2}:\d{2}")
_KLOG_LEVEL = {"I": INFO, "W": WARN, "E": ERROR, "F": FATAL}
_STACK = re.compile(
    r"(?m)^\s+at [\w$.<>]+\([^)]*\)|Traceback \(most recent call last\)|^\s+File \"[^\"]+\", line \d+"
    r"|^goroutine \d+ \[|^panic: "
)
_EXCEPTION = re.compile(r"\b(?:[a-z_][\w]*\.)*[A-Z]\w*(?:Exception|Error)\b(?!Controller|Handler|Page|Code)")


def infer_severity(body: str | None) -> int:
    """The OTLP severity number the text of `body` states or implies; 0 when it says nothing."""
    if not body:
        return 0
    head = body[:_HEAD_CHARS]
    field = _FIELD.search(head)
    if field and field.group(1).lower() in _WORDS:
        return _WORDS[field.group(1).lower()]
    klog = _KLOG.match(head)
    if klog:
        return _KLOG_LEVEL[klog.group(1)]
    for i, m in enumerate(_HEAD_WORD.finditer(head)):
        if i >= 6:
            break
        word = m.group(1)
        # an upper-case level word, or a capitalised/lower one in brackets ([error], <Warn>)
        bracketed = m.start() > 0 and head[m.start() - 1] in "[<(" and head[m.end() : m.end() + 1] in "]>)"
        labelled = word.istitle() and head[m.end() : m.end() + 1] == ":"  # "Warning: disk almost full"
        if (word.isupper() or bracketed or labelled) and word.lower() in _WORDS:
            return _WORDS[word.lower()]
    if _STACK.search(body) or _EXCEPTION.search(body):
        return ERROR
    return 0


def effective_severity(number: int | None, body: str | None) -> tuple[int, bool]:
    """The record's own severity when it has one, else the one inferred from its text; and
    whether it was inferred."""
    if number and number > 0:
        return int(number), False
    inferred = infer_severity(body)
    return inferred, inferred > 0
