"""An install from the repository (uvx --from, pipx run --spec) is complete: every package on disk
is listed in pyproject.toml, and the bundled fixtures ship as package data of mcp_server.fixtures, so
`dcr demo` and the MCP server have the traces and scenarios outside a checkout (issue 17, item 8)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

from mcp_server.commands import demo

REPO = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_on_disk_is_listed():
    found = find_namespace_packages(
        str(REPO), include=["ingest*", "correlate*", "escalation*", "mcp_server*"]
    )
    found = [p for p in found if "__pycache__" not in p]
    assert sorted(SETUPTOOLS["packages"]) == sorted([*found, "mcp_server.fixtures"])


def test_the_fixtures_ship_as_package_data():
    assert SETUPTOOLS["package-dir"] == {"mcp_server.fixtures": "fixtures"}
    assert SETUPTOOLS["package-data"]["mcp_server.fixtures"] == ["**/*"]
    assert (REPO / "fixtures" / "scenarios" / demo.SCENARIO / "truth.json").is_file()


def test_the_demo_finds_the_checkouts_fixtures_first(tmp_path, monkeypatch):
    assert demo.fixtures_root() == REPO / "fixtures" and demo.SCENARIOS.is_dir() and demo.FIXTURES.is_dir()
    # installed: no fixtures/ beside the package, the package data inside it
    fake = tmp_path / "site" / "mcp_server" / "commands" / "demo.py"
    fake.parent.mkdir(parents=True)
    monkeypatch.setattr(demo, "__file__", str(fake))
    assert demo.fixtures_root() == tmp_path / "site" / "mcp_server" / "fixtures"
