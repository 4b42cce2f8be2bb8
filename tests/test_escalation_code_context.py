"""Code context: only inside the roots; a path-escape and secret-file corpus is refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from escalation import EscalationRequest, escalate
from escalation.code_context import REFUSAL_REASONS, CodeContext, CodeRef, refs_from_stacktrace


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "src" / "app.py").write_text("".join(f"line_{n} = {n}\n" for n in range(1, 31)))
    (root / "src" / "big.py").write_text("".join(f"x_{n} = {n}\n" for n in range(1, 501)))
    (root / ".env").write_text("DB_PASSWORD=x\n")
    (root / ".env.local").write_text("X=1\n")
    (root / "config").mkdir()
    (root / "config" / "credentials.json").write_text("{}")
    (root / "config" / "server.key").write_text("k")
    (root / "config" / "cert.pem").write_text("c")
    (root / "config" / "id_rsa").write_text("r")
    (root / "build").mkdir()
    (root / "build" / "gen.py").write_text("ignored = 1\n")
    (root / "debug.log").write_text("log\n")
    (root / "blob.py").write_bytes(b"\x00\x01binary")
    (root / "huge.py").write_text("a" * 2_000_000)
    outside = tmp_path / "outside.py"
    outside.write_text("secret = 1\n")
    os.symlink(outside, root / "src" / "link_out.py")
    os.symlink(root / ".env", root / "src" / "env_alias.py")
    return root


# path -> reason (a REFUSAL_REASONS key)
CORPUS = [
    ("../outside.py", "outside"),
    ("src/../../outside.py", "outside"),
    ("{tmp}/outside.py", "outside"),
    ("/etc/passwd", "outside"),
    ("src/link_out.py", "outside"),
    ("src/env_alias.py", "secret"),
    (".env", "secret"),
    (".env.local", "secret"),
    ("config/credentials.json", "secret"),
    ("config/server.key", "secret"),
    ("config/cert.pem", "secret"),
    ("config/id_rsa", "secret"),
    ("~/.ssh/id_ed25519", "secret"),
    (".git/config", "git"),
    ("build/gen.py", "ignored"),
    ("debug.log", "ignored"),
    ("blob.py", "binary"),
    ("huge.py", "huge"),
    ("src/nope.py", "missing"),
    ("/no/such/dir/app.py", "absent"),  # said so, not "outside the roots"
]


@pytest.mark.parametrize(("path", "reason"), CORPUS)
def test_refused(repo: Path, path: str, reason: str) -> None:
    ctx = CodeContext(roots=(repo.resolve(),))
    got = ctx.resolve(path.replace("{tmp}", str(repo.parent)))
    assert not isinstance(got, tuple), f"{path} was accepted"
    assert got is not None and got.reason == REFUSAL_REASONS[reason]


def test_small_file_whole_with_line_numbers_and_marks(repo: Path) -> None:
    ctx = CodeContext(roots=(repo.resolve(),))
    [ex] = ctx.excerpts([CodeRef("src/app.py", 12, "file")])
    lines = ex.text.splitlines()
    assert len(lines) == 30 and ex.path == "src/app.py"
    assert lines[11] == "12 >| line_12 = 12" and lines[0] == " 1  | line_1 = 1"


def test_big_file_excerpts_around_referenced_lines(repo: Path) -> None:
    ctx = CodeContext(roots=(repo.resolve(),))
    [ex] = ctx.excerpts([CodeRef("src/big.py", 100, "span"), CodeRef("src/big.py", 400, "stack_trace")])
    text = ex.text
    assert "100 >| x_100 = 100" in text and "400 >| x_400 = 400" in text
    assert "x_250 = 250" not in text and "(lines 121-379 omitted)" in text
    assert ex.origins == ("span", "stack_trace")


def test_telemetry_paths_match_by_suffix_and_unknown_ones_are_skipped(repo: Path) -> None:
    ctx = CodeContext(roots=(repo.resolve(),))
    exs = ctx.excerpts(
        [CodeRef("/srv/app/src/app.py", 3, "span"), CodeRef("/usr/lib/python3/x.py", 1, "span")]
    )
    assert [e.path for e in exs] == ["src/app.py"]
    assert ctx.refusals == [] and ctx.missing_telemetry == 1


def test_stack_traces_give_refs() -> None:
    py = 'Traceback:\n  File "/app/pay/charge.py", line 41, in charge\n    x()\n'
    java = "at com.shop.Pay.charge(Pay.java:88)\n"
    go = "goroutine 1:\nmain.charge()\n\t/src/pay/charge.go:17 +0x1d\n"
    assert [(r.path, r.line, r.function) for r in refs_from_stacktrace(py)] == [
        ("/app/pay/charge.py", 41, "charge")
    ]
    assert [(r.path, r.line) for r in refs_from_stacktrace(java)] == [("Pay.java", 88)]
    assert [(r.path, r.line) for r in refs_from_stacktrace(go)] == [("/src/pay/charge.go", 17)]


def test_entry_point_by_function_name(repo: Path) -> None:
    (repo / "src" / "svc.py").write_text(
        "".join(f"# {n}\n" for n in range(300)) + "def handle(x):\n    return x\n"
    )
    ctx = CodeContext(roots=(repo.resolve(),))
    [ex] = ctx.excerpts([CodeRef("src/svc.py", None, "entry_point", "handle")])
    assert ex.lines == (301,) and "301 >| def handle(x):" in ex.text


def test_refused_files_are_warnings_and_the_bundle_is_still_built(repo: Path, monkeypatch, capsys) -> None:
    from mcp_server.cli import main

    monkeypatch.setenv("DCR_CODE_ROOTS", str(repo))
    result = escalate(
        EscalationRequest(
            question="why?",
            provider="offline",
            files=("src/app.py", ".env", "../outside.py", "src/link_out.py"),
        )
    )
    assert "code file refused: .env: " + REFUSAL_REASONS["secret"] in result.warnings
    assert "code file refused: ../outside.py: " + REFUSAL_REASONS["outside"] in result.warnings
    assert "code file refused: src/link_out.py: " + REFUSAL_REASONS["outside"] in result.warnings
    assert result.bundle_sections["code"] > 0
    sent = open(result.bundle_path or "", encoding="utf-8").read()
    assert "line_12 = 12" in sent and "DB_PASSWORD" not in sent and "secret = 1" not in sent
    monkeypatch.chdir(repo)
    code = main(["escalate", "nothing-yet", "--question", "q", "--file", ".env", "--dry-run"])
    assert code == 2  # an unknown dataset is bad input; with a dataset the refusal is only a warning


def test_default_root_is_the_git_root(repo: Path, monkeypatch) -> None:
    from escalation.code_context import code_roots

    monkeypatch.delenv("DCR_CODE_ROOTS", raising=False)
    monkeypatch.chdir(repo / "src")
    assert code_roots() == (repo.resolve(),)


def test_a_bare_file_name_does_not_match_a_telemetry_path(repo: Path) -> None:
    (repo / "util.py").write_text("x = 1\n")
    ctx = CodeContext(roots=(repo.resolve(),))
    assert ctx.excerpts([CodeRef("/srv/other/pkg/util.py", 1, "span")]) == []
    assert [e.path for e in ctx.excerpts([CodeRef("/srv/x/src/app.py", 1, "span")])] == ["src/app.py"]


def test_a_referenced_line_shows_its_function_not_the_whole_file(repo: Path) -> None:
    body = ["import time", "", "", "def other():", "    return 1", "", ""]
    body += ["@retry", "def reserve(order):", "    for attempt in range(4):", "        try:"]
    body += [
        "            return call(order)",
        "        except Timeout:",
        "            time.sleep(0)",
        "    raise Gone",
    ]
    body += ["", ""] + [f"def f{n}():\n    return {n}\n" for n in range(40)]
    (repo / "src" / "checkout.py").write_text("\n".join(body) + "\n")
    ctx = CodeContext(roots=(repo.resolve(),))
    [ex] = ctx.excerpts([CodeRef("src/checkout.py", 12, "span")])
    text = ex.text
    assert "12 >|             return call(order)" in text
    assert " 8  | @retry" in text and "15  |     raise Gone" in text  # the whole function, decorator too
    assert "def f20" not in text and "def other" not in text and ex.total_lines > 100
    assert "(lines 1-5 omitted)" in text and "more lines)" in text


def test_telemetry_paths_not_under_the_roots_are_named(repo: Path) -> None:
    ctx = CodeContext(roots=(repo.resolve(),))
    ctx.excerpts([CodeRef("/app/pay/charge.py", 3, "span"), CodeRef("/app/pay/charge.py", 9, "stack_trace")])
    assert ctx.missing_telemetry_paths == ["/app/pay/charge.py"] and ctx.missing_telemetry == 1
