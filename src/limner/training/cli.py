"""``python -m limner.training.cli base ...``: the ``limner train`` commands without the main CLI.

The commands themselves are in :mod:`limner.cli.train`, declared with typer alone so that
``limner --help`` does not import the training code (torch, diffusers, transformers); each
command imports ``limner.training`` in its body.
"""

from __future__ import annotations

from limner.cli.train import train_app

__all__ = ["train_app"]

if __name__ == "__main__":
    train_app()
