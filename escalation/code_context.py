"""Code excerpts for the bundle, read only inside the code roots.

Roots: `DCR_CODE_ROOTS` (paths separated by `os.pathsep`), default the git root of the working
directory (else the working directory). A path is resolved to its real path (symlinks
followed) and must stay inside a root. Refused, each named in a warning while the rest of the
bundle is built: paths that leave the roots (`..`, absolute paths, symlinks out), secret-bearing
files (`.env*`, keys, certificates, credential files), anything under `.git/`, files ignored by
`.gitignore` (`git check-ignore`), binaries and files over `DCR_CODE_MAX_BYTES` (1 MB).

References come from the agent (`code_scope.files`, `--file`, `entry_points` as `path:line` or
`path:function`) and from the telemetry (`code_filepath`/`code_lineno` columns, stack traces in
exception events). Telemetry paths are production paths (`/app/src/cart.py`): they are matched
by their longest suffix that exists under a root; those with none are listed in
`missing_telemetry_paths` (the bundle names them). A referenced line shows the function around
it (a long one: its head and the lines near), not the whole file; a file asked for without a
line goes whole up to WHOLE_FILE_LINES lines.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CodeRef",
    "CodeExcerpt",
    "Refusal",
    "CodeContext",
    "code_roots",
    "refs_from_stacktrace",
    "REFUSAL_REASONS",
]

MAX_BYTES_DEFAULT = 1_000_000
WHOLE_FILE_LINES = 200  # files up to this many lines are included whole
CONTEXT_LINES = 20  # lines either side of a referenced line
HEAD_LINES = 120  # a file asked for without a line: its first lines
MAX_SCOPE_LINES = 80  # a longer function: its first lines and CONTEXT_LINES around the line
SCOPE_MARGIN = 2  # lines shown before and after the function around a referenced line

REFUSAL_REASONS = {
    "outside": "outside the code roots (DCR_CODE_ROOTS)",
    "secret": "secret-bearing file (keys, certificates, credentials, .env)",
    "git": "inside .git/",
    "ignored": "ignored by .gitignore",
    "binary": "binary file",
    "huge": "larger than DCR_CODE_MAX_BYTES",
    "missing": "no such file under the code roots",
    "absent": "no such file",
}

_SECRET_NAMES = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.crt",
    "*.cer",
    "*.der",
    "*.p8",
    "*.asc",
    "*.gpg",
    "*.kdbx",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "*.ppk",
    "credentials",
    "credentials.*",
    "*credentials*.json",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".htpasswd",
    "secrets.*",
    "secret.*",
    "*.secret",
    "*.secrets",
    "service-account*.json",
    "*-sa.json",
    "*.tfstate",
    "*.tfvars",
    "kubeconfig",
    ".dockercfg",
    "token",
    "*.token",
)
_SECRET_DIRS = {".ssh", ".aws", ".gnupg", ".docker", ".kube"}


@dataclass(frozen=True)
class CodeRef:
    path: str
    line: int | None = None
    origin: str = "code_scope"  # "code_scope", "file", "entry_point", "span", "stack_trace"
    function: str | None = None
    evidence: str = ""  # trace/span ids that point here


@dataclass(frozen=True)
class CodeExcerpt:
    path: str  # relative to its root
    root: str
    lines: tuple[int, ...]  # referenced lines
    text: str  # numbered lines
    total_lines: int
    origins: tuple[str, ...]
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refusal:
    path: str
    reason: str  # a REFUSAL_REASONS value

    def warning(self) -> str:
        return f"code file refused: {self.path}: {self.reason}"


def code_roots(env: str | None = None) -> tuple[Path, ...]:
    raw = os.environ.get("DCR_CODE_ROOTS") if env is None else env
    if raw:
        return tuple(Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip())
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        top = ""
    return (Path(top).resolve() if top else Path.cwd().resolve(),)


_PY_FRAME = re.compile(r'File "([^"]+)", line (\d+)(?:, in ([\w<>.]+))?')
_JAVA_FRAME = re.compile(r"at [\w.$<>]+\(([\w.-]+\.(?:java|kt|scala)):(\d+)\)")
_GENERIC_FRAME = re.compile(
    r"(/?(?:[\w.-]+/)*[\w.-]+\.(?:go|js|mjs|ts|tsx|py|rb|rs|cs|cpp|cc|c|h|php|java|kt)):(\d+)"
)


def refs_from_stacktrace(stack: str, evidence: str = "") -> list[CodeRef]:
    refs: list[CodeRef] = []
    for m in _PY_FRAME.finditer(stack):
        refs.append(CodeRef(m.group(1), int(m.group(2)), "stack_trace", m.group(3), evidence))
    for rx in (_JAVA_FRAME, _GENERIC_FRAME):
        if refs:
            break
        refs.extend(
            CodeRef(m.group(1), int(m.group(2)), "stack_trace", None, evidence) for m in rx.finditer(stack)
        )
    return refs


@dataclass
class CodeContext:
    roots: tuple[Path, ...] = field(default_factory=code_roots)
    max_bytes: int = field(
        default_factory=lambda: int(os.environ.get("DCR_CODE_MAX_BYTES") or MAX_BYTES_DEFAULT)
    )
    refusals: list[Refusal] = field(default_factory=list)
    # telemetry paths with no file under the roots (production paths: not refusals; the bundle
    # names them in a note and a warning)
    missing_telemetry_paths: list[str] = field(default_factory=list)

    @property
    def missing_telemetry(self) -> int:
        return len(self.missing_telemetry_paths)

    def _inside(self, real: Path) -> Path | None:
        for root in self.roots:
            if real == root or root in real.parents:
                return root
        return None

    def _candidates(self, path: str, from_telemetry: bool) -> list[Path]:
        p = Path(path).expanduser()
        if p.is_absolute():
            out = [p]
            if from_telemetry:  # production path: try its suffixes under each root, longest first,
                parts = p.parts[1:]  # keeping a folder with the file name (a bare name matches too much)
                last = max(1, len(parts) - 1)
                out += [root / Path(*parts[i:]) for i in range(last) for root in self.roots]
            return out
        return [root / p for root in self.roots]

    def resolve(self, path: str, from_telemetry: bool = False) -> tuple[Path, Path] | Refusal | None:
        """(real path, its root), or a Refusal; None for a telemetry path not found (skipped)."""
        if self._secret_name(Path(path)):
            return Refusal(path, REFUSAL_REASONS["secret"])
        outside = False
        candidates = self._candidates(path, from_telemetry)
        if (
            not from_telemetry
            and Path(path).expanduser().is_absolute()
            and not os.path.lexists(candidates[0])
        ):
            return Refusal(path, REFUSAL_REASONS["absent"])  # "outside the roots" would send them looking
        for cand in candidates:
            if ".git" in cand.parts:
                return Refusal(path, REFUSAL_REASONS["git"])
            real = Path(os.path.realpath(cand))
            root = self._inside(real)
            if root is None:
                # a production path from telemetry that is not under a root is skipped, not refused;
                # anything else (the agent's own paths, symlinks out of a root) is refused
                under_root = self._inside(Path(os.path.abspath(cand))) is not None
                if from_telemetry and not under_root:
                    continue
                outside = outside or cand.exists() or ".." in Path(path).parts or Path(path).is_absolute()
                continue
            if not real.is_file():
                continue
            return self._check(path, real, root)
        if from_telemetry and not outside:
            if path not in self.missing_telemetry_paths:
                self.missing_telemetry_paths.append(path)
            return None
        return Refusal(path, REFUSAL_REASONS["outside" if outside else "missing"])

    def _secret_name(self, p: Path) -> bool:
        if any(part in _SECRET_DIRS for part in p.parts):
            return True
        return any(fnmatch.fnmatch(p.name.lower(), pat) for pat in _SECRET_NAMES)

    def _check(self, given: str, real: Path, root: Path) -> tuple[Path, Path] | Refusal:
        rel = real.relative_to(root)
        if ".git" in rel.parts:
            return Refusal(given, REFUSAL_REASONS["git"])
        if self._secret_name(rel):
            return Refusal(given, REFUSAL_REASONS["secret"])
        if _git_ignored(root, rel):
            return Refusal(given, REFUSAL_REASONS["ignored"])
        if real.stat().st_size > self.max_bytes:
            return Refusal(given, REFUSAL_REASONS["huge"])
        with real.open("rb") as fh:
            if b"\0" in fh.read(8192):
                return Refusal(given, REFUSAL_REASONS["binary"])
        return real, root

    def excerpts(self, refs: Iterable[CodeRef]) -> list[CodeExcerpt]:
        """One excerpt per file, in the order files were first referenced; refusals recorded."""
        by_file: dict[Path, tuple[Path, list[CodeRef]]] = {}
        refused: set[str] = set()
        for ref in refs:
            got = self.resolve(ref.path, from_telemetry=ref.origin in ("span", "stack_trace"))
            if got is None:
                continue
            if isinstance(got, Refusal):
                if got.path not in refused:
                    refused.add(got.path)
                    self.refusals.append(got)
                continue
            real, root = got
            by_file.setdefault(real, (root, []))[1].append(ref)
        return [self._excerpt(real, root, rs) for real, (root, rs) in by_file.items()]

    def _excerpt(self, real: Path, root: Path, refs: list[CodeRef]) -> CodeExcerpt:
        lines = real.read_text(encoding="utf-8", errors="replace").splitlines()
        wanted = sorted(
            {r.line for r in refs if r.line and r.line <= len(lines)} | set(_function_lines(lines, refs))
        )
        if wanted:  # the functions around the referenced lines, not the whole file
            spans = _merge([s for n in wanted for s in _scope(lines, n)])
        elif len(lines) <= WHOLE_FILE_LINES:
            spans = [(1, len(lines))]
        else:
            spans = [(1, HEAD_LINES)]
        width = len(str(len(lines)))
        out: list[str] = []
        for i, (a, b) in enumerate(spans):
            if i or a > 1:
                out.append(f"{'':>{width}}   … (lines {spans[i - 1][1] + 1 if i else 1}-{a - 1} omitted)")
            for n in range(a, b + 1):
                mark = ">" if n in wanted else " "
                out.append(f"{n:>{width}} {mark}| {lines[n - 1]}")
        if spans[-1][1] < len(lines):
            out.append(f"{'':>{width}}   … ({len(lines) - spans[-1][1]} more lines)")
        return CodeExcerpt(
            path=str(real.relative_to(root)),
            root=str(root),
            lines=tuple(wanted),
            text="\n".join(out),
            total_lines=len(lines),
            origins=tuple(dict.fromkeys(r.origin for r in refs)),
            evidence=tuple(dict.fromkeys(r.evidence for r in refs if r.evidence)),
        )


_DEF = re.compile(
    r"^(\s*)(?:(?:async\s+)?def\s|class\s|func\s|(?:export\s+)?(?:async\s+)?function\b|fn\s|"
    r"(?:pub\s+)?(?:async\s+)?fn\s|(?:(?:public|private|protected|static|final|synchronized|override)\s+)+[\w<>\[\], ]+\()"
)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _scope(lines: list[str], n: int) -> list[tuple[int, int]]:
    """The lines to show for referenced line `n`: the function (or method) around it with
    SCOPE_MARGIN lines either side, its first lines and CONTEXT_LINES around `n` when it is
    longer than MAX_SCOPE_LINES; CONTEXT_LINES either side when no function encloses it."""
    total = len(lines)
    near = (max(1, n - CONTEXT_LINES), min(total, n + CONTEXT_LINES))
    start = None
    for i in range(n - 1, max(-1, n - 1 - MAX_SCOPE_LINES * 4), -1):
        m = _DEF.match(lines[i])
        if m and (i == n - 1 or len(m.group(1)) < _indent(lines[n - 1]) or not lines[n - 1].strip()):
            start = i + 1
            break
    if start is None:
        return [near]
    head = lines[start - 1]
    end = _block_end(lines, start, _indent(head) if "{" not in head else None)
    if end < n:
        return [near]
    while start > 1 and lines[start - 2].strip().startswith("@"):  # decorators
        start -= 1
    if end - start + 1 > MAX_SCOPE_LINES:
        return [(start, min(start + 2, total)), near]
    return [(max(1, start - SCOPE_MARGIN), min(total, end + SCOPE_MARGIN))]


def _block_end(lines: list[str], start: int, indent: int | None) -> int:
    """The last line of the block that starts at line `start`: by indentation (`indent` of its
    header), else by braces."""
    if indent is None:
        depth = 0
        for i in range(start - 1, len(lines)):
            depth += lines[i].count("{") - lines[i].count("}")
            if depth <= 0 and i >= start - 1 and "{" in "".join(lines[start - 1 : i + 1]):
                return i + 1
        return len(lines)
    end = start
    for i in range(start, len(lines)):
        text = lines[i]
        if not text.strip():
            continue
        if _indent(text) <= indent and not text.lstrip().startswith((")", "]", "}")):
            break
        end = i + 1
    return end


def _function_lines(lines: list[str], refs: list[CodeRef]) -> list[int]:
    names = {r.function.rsplit(".", 1)[-1] for r in refs if r.function and not r.line}
    if not names:
        return []
    rx = re.compile(
        r"^\s*(?:async\s+)?(?:def|func|function|fn|class)\s+(?:\([^)]*\)\s*)?("
        + "|".join(re.escape(n) for n in names)
        + r")\b"
    )
    return [i + 1 for i, line in enumerate(lines) if rx.search(line)]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _git_ignored(root: Path, rel: Path) -> bool:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "check-ignore", "-q", "--", str(rel)],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0
