"""``python -m limner`` runs the CLI (the same as the ``limner`` command)."""

from limner.cli.app import main

main()
