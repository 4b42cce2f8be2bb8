"""A short run of the native tier's parity fuzz (bench/fuzz_native.py) under ASan and UBSan, and
the writer's native gather (ingest/_gather.c) and the JSON stream's closing-line search
(`_otlpscan.line_close`) through their parity tests under both.

The scanner (ingest/_otlpscan.c) is built with -fsanitize=address,undefined into a temporary
folder and fed mutated fixture lines for a bounded time: any line whose rows or rejects differ
from the Python tiers', and any sanitizer report, fails. `python bench/fuzz_native.py` runs the
long version. Without gcc or its sanitizer runtime the test skips, naming the install; under
CI=true it fails (.ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import fuzz_native

FUZZ_SECONDS = 15.0  # a bounded slice of the fuzz: ~1,000 mutant pairs on a loaded 2-core machine
INSTALL = "sudo apt-get install -y gcc (Debian's gcc brings libasan and libubsan)"


def _missing_toolchain() -> str | None:
    if shutil.which("gcc") is None:
        return f"gcc is missing: {INSTALL}"
    if not os.path.isabs(fuzz_native.libasan()):
        return f"gcc has no AddressSanitizer runtime: {INSTALL}"
    return None


def _sanitized(tmp_path: Path, module: str) -> Path:
    """ingest/<module>.c built with the sanitizers; a skip naming the install without them (a
    failure under CI=true, whose .ci/run installs them)."""
    missing = _missing_toolchain()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    try:
        return fuzz_native.build_sanitized(tmp_path, module)
    except subprocess.CalledProcessError as exc:  # e.g. libubsan absent: the link fails
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"the sanitized build failed ({exc}): {INSTALL}")


def test_native_tier_matches_python_tiers_under_sanitizers(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    so = _sanitized(tmp_path, "_otlpscan")
    rc = fuzz_native.run(so, runs=1_000_000, seed=11, seconds=FUZZ_SECONDS, fixtures_only=True)
    out, err = capfd.readouterr()
    assert "AddressSanitizer" not in err and "runtime error" not in err, err[-4000:]
    assert rc == 0, out[-2000:] + err[-2000:]
    assert "chunks that differed: 0" in out, out
    took = int(out.split("native took ")[1].split(",")[0])
    assert took > 50, out  # the fast paths were exercised, not only the refusals


# the child: a sanitized extension in place of the installed one (in sys.modules before any ingest
# module imports it), then some of the tests of a file
_CHILD = """
import importlib.util, sys
module, so, tests, which = sys.argv[1:5]
spec = importlib.util.spec_from_file_location(f"ingest.{module}", so)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
sys.modules[f"ingest.{module}"] = mod
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:xdist", tests, "-k", which]))
"""


def _sanitized_tests(tmp_path: Path, module: str, tests: str, which: str) -> None:
    so = _sanitized(tmp_path, module)
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, module, str(so), str(Path(__file__).with_name(tests)), which],
        env=fuzz_native.sanitizer_env(),
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr[-4000:]
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout, r.stdout


def test_gather_matches_arrow_under_sanitizers(tmp_path: Path) -> None:
    _sanitized_tests(tmp_path, "_gather", "test_arrays.py", "take")


def test_line_close_under_sanitizers(tmp_path: Path) -> None:
    """The JSON stream's search for a pretty value's closing line (in the scanner's module). Its
    tests alone: simdjson's C++ exceptions abort under a preloaded ASan runtime."""
    _sanitized_tests(tmp_path, "_otlpscan", "test_pretty_cut.py", "line_close")
