"""``limner ui``: the streamlit command line, its environment and the Typer command."""

from __future__ import annotations

import sys

import pytest
import typer
from typer.testing import CliRunner

from limner.cli import ui as ui_cli
from limner.ui import API_URL_ENV, app_path


def test_streamlit_command_is_offline_and_quiet() -> None:
    command = ui_cli.streamlit_command("0.0.0.0", 9000)
    assert command[:5] == [sys.executable, "-m", "streamlit", "run", str(app_path())]
    assert "--server.address=0.0.0.0" in command
    assert "--server.port=9000" in command
    assert "--browser.gatherUsageStats=false" in command
    assert "--client.showErrorDetails=none" in command
    assert app_path().is_file()


def test_environment_carries_the_api_url() -> None:
    env = ui_cli.ui_environment("http://api:8000", base={"PATH": "/bin"})
    assert env == {"PATH": "/bin", API_URL_ENV: "http://api:8000", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}


def test_command_reads_the_api_url_option_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run(command: list[str], env: dict[str, str], check: bool) -> object:
        seen.update(command=command, url=env[API_URL_ENV])
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(ui_cli.subprocess, "run", fake_run)
    app = typer.Typer()
    app.command()(ui_cli.ui)
    runner = CliRunner()
    result = runner.invoke(app, ["--api-url", "http://remote:9000", "--port", "8600"])
    assert result.exit_code == 0, result.output
    assert seen["url"] == "http://remote:9000"
    assert "--server.port=8600" in str(seen["command"])
    monkeypatch.setenv(API_URL_ENV, "http://from-env:1")
    assert runner.invoke(app, []).exit_code == 0
    assert seen["url"] == "http://from-env:1"
    assert "--api-url" in runner.invoke(app, ["--help"]).output


def test_command_says_what_to_install_without_streamlit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui_cli.importlib.util, "find_spec", lambda name: None)
    app = typer.Typer()
    app.command()(ui_cli.ui)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 1
    assert "pip install streamlit" in result.output
