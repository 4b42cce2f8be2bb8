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
