"""Kept for ``python -m limner`` (``limner/__main__.py`` imports ``main`` from here).

The app is assembled in :mod:`limner.cli.main`; import from there.
"""

from limner.cli.main import app, main

__all__ = ["app", "main"]
