"""``python -m morphstudio`` runs the command-line interface."""

from morphstudio.cli import entry

entry()
