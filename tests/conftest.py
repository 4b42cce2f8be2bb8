"""Shared test set-up: every test gets its own DCR_HOME and no model key."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("dcr_home")
    monkeypatch.setenv("DCR_HOME", str(home))
    for var in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "DCR_MODEL", "DCR_GEMINI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def dcr_home(_isolated_home: Path) -> Path:
    return _isolated_home


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


STUB_KEY = "stub-key"


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch):
    """The local Gemini REST stub (tests/gemini_stub.py), with a key and the client pointed at it."""
    from tests.gemini_stub import GeminiStub

    monkeypatch.setenv("GEMINI_API_KEY", STUB_KEY)
    monkeypatch.setenv("DCR_GEMINI_BACKOFF_S", "0.01")
    with GeminiStub() as s:
        monkeypatch.setenv("DCR_GEMINI_BASE_URL", s.url)
        yield s
