"""``limner ui``: the web studio (Streamlit) as a client of a limner API.

Why a subprocess: Streamlit runs its own server and script threads; starting it with
``python -m streamlit run`` keeps it out of the API's process (``limner serve --ui`` starts both
through :func:`start_ui_subprocess`) and lets the studio point at a remote API just as well.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from limner.ui import API_URL_ENV, DEFAULT_API_URL, app_path

DEFAULT_UI_HOST = "127.0.0.1"
DEFAULT_UI_PORT = 8501

# Offline and quiet: no usage statistics, no file watcher, no tracebacks in the browser.
_STREAMLIT_OPTIONS: dict[str, str] = {
    "server.headless": "true",
    "browser.gatherUsageStats": "false",
    "server.fileWatcherType": "none",
    "server.runOnSave": "false",
    "client.showErrorDetails": "none",
    "client.toolbarMode": "minimal",
    "global.developmentMode": "false",
}


def streamlit_command(host: str = DEFAULT_UI_HOST, port: int = DEFAULT_UI_PORT) -> list[str]:
    """The ``streamlit run`` command line for the studio, with the current Python."""
    options = {**_STREAMLIT_OPTIONS, "server.address": host, "server.port": str(port)}
    flags = [f"--{name}={value}" for name, value in options.items()]
    return [sys.executable, "-m", "streamlit", "run", str(app_path()), *flags]


def ui_environment(api_url: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the studio process: the API URL it talks to, telemetry off."""
    env = dict(os.environ if base is None else base)
    env[API_URL_ENV] = api_url
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return env


def start_ui_subprocess(
    api_url: str, host: str = DEFAULT_UI_HOST, port: int = DEFAULT_UI_PORT, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start the studio in the background (for ``limner serve --ui``); the caller terminates it."""
    return subprocess.Popen(streamlit_command(host, port), env=ui_environment(api_url), **popen)


def ui(
    api_url: Annotated[
        str, typer.Option("--api-url", envvar=API_URL_ENV, help="The limner API the studio talks to.")
    ] = DEFAULT_API_URL,
    host: Annotated[str, typer.Option(help="Interface the studio listens on.")] = DEFAULT_UI_HOST,
    port: Annotated[int, typer.Option(help="Port of the studio.")] = DEFAULT_UI_PORT,
) -> None:
    """Start the web studio (Streamlit) for a limner API; sign in there with your limner account."""
    if importlib.util.find_spec("streamlit") is None:
        typer.echo("error: the studio needs Streamlit: pip install streamlit (into limner's environment)", err=True)
        raise typer.Exit(1)
    typer.echo(f"limner studio on http://{host}:{port}  (API: {api_url})", err=True)
    try:
        completed = subprocess.run(streamlit_command(host, port), env=ui_environment(api_url), check=False)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(completed.returncode)
