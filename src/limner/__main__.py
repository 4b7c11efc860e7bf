"""``python -m limner`` runs the CLI (the same as the ``limner`` command)."""

from limner.cli.main import main

main()
