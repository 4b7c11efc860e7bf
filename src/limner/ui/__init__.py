"""The web studio: a Streamlit app that is a client of limner's REST API only.

Why a separate client: the UI must work against a remote server exactly as against a local one,
so it never imports the engine, the services or the database; everything goes through
:mod:`limner.ui.client`. ``limner ui`` (see :mod:`limner.cli.ui`) starts it.
"""

from __future__ import annotations

from pathlib import Path

API_URL_ENV = "LIMNER_UI_API_URL"
DEFAULT_API_URL = "http://127.0.0.1:8000"


def app_path() -> Path:
    """The Streamlit entry script, the file given to ``streamlit run``."""
    return Path(__file__).with_name("app.py")
